"""Fixtures for the improv tests: the Gemini emulator (a real TLS server in a subprocess, reached
through the real google-genai SDK), its fault control API, and API helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings

from emulator.process import EmulatorProcess


@pytest.fixture(scope="session")
def gemini_emulator(gemini_emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The root conftest's emulator, with settings pointing the app's client factory at it.

    Retry delays are shortened so the 429/5xx tests run quickly; the retry logic is the SDK's own.
    """
    overrides = override_settings(
        GEMINI_BACKEND="emulator",
        GEMINI_EMULATOR_URL=gemini_emulator.url,
        GEMINI_EMULATOR_CA_FILE=gemini_emulator.ca_file,
        GEMINI_HTTP_RETRY_INITIAL_DELAY_S=0.05,
        GEMINI_HTTP_RETRY_MAX_DELAY_S=0.2,
        GEMINI_TIMEOUT_S=10.0,
    )
    overrides.enable()
    try:
        yield gemini_emulator
    finally:
        overrides.disable()


class Api:
    """JSON calls to /api/v1 as a signed-in user (the session cookie, like the browser)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, path: str) -> Any:
        return self.client.get(f"/api/v1{path}")

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            f"/api/v1{path}", data=json.dumps(body or {}), content_type="application/json"
        )


def ensure_content() -> None:
    """Seed games, principles and archetypes again if a transactional test flushed them."""
    import importlib

    from django.apps import apps

    importlib.import_module("improv.migrations.0002_seed_content").seed(apps, None)


@pytest.fixture
def content(db) -> None:
    ensure_content()


@pytest.fixture
def api(signed_in_client: Client, content) -> Api:
    return Api(signed_in_client)


@pytest.fixture
def other_api(make_user) -> Api:
    client = Client()
    client.force_login(make_user())
    return Api(client)


def play_to_active(api: Api, game: str = "questions-only") -> dict[str, Any]:
    """Start a scene, pick a game and take the audience's suggestion; returns the active scene."""
    created = api.post("/scenes", {})
    assert created.status_code == 201, created.content
    scene_id = created.json()["id"]
    assert api.post(f"/scenes/{scene_id}/game", {"game": game}).status_code == 200
    response = api.post(f"/scenes/{scene_id}/suggestion")
    assert response.status_code == 200, response.content
    return response.json()
