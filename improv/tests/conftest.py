"""Fixtures for the improv tests: the Gemini emulator (a real TLS server in a subprocess, reached
through the real google-genai SDK), its fault control API, and API helpers."""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings

from emulator.process import EmulatorProcess, start_emulator


@pytest.fixture(scope="session")
def gemini_emulator(tmp_path_factory) -> Iterator[EmulatorProcess]:
    """One emulator for the session, and settings pointing the app's client factory at it.

    Retry delays are shortened so the 429/5xx tests run quickly; the retry logic is the SDK's own.
    """
    proc = start_emulator(tmp_path_factory.mktemp("improv-emulator"), seed=11)
    overrides = override_settings(
        GEMINI_BACKEND="emulator",
        GEMINI_EMULATOR_URL=proc.url,
        GEMINI_EMULATOR_CA_FILE=proc.ca_file,
        GEMINI_HTTP_RETRY_INITIAL_DELAY_S=0.05,
        GEMINI_HTTP_RETRY_MAX_DELAY_S=0.2,
        GEMINI_TIMEOUT_S=10.0,
    )
    overrides.enable()
    try:
        yield proc
    finally:
        overrides.disable()
        proc.stop()


class EmulatorControl:
    """The emulator's own control API: arm faults, read counters."""

    def __init__(self, proc: EmulatorProcess) -> None:
        self._url = proc.url
        self._ctx = ssl.create_default_context(cafile=proc.ca_file)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self._url}{path}", data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, context=self._ctx, timeout=5) as resp:
            return json.loads(resp.read())

    def arm(self, *faults: dict[str, Any]) -> None:
        self._call("POST", "/emulator/faults", {"faults": list(faults)})

    def clear(self) -> None:
        self._call("DELETE", "/emulator/faults")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/emulator/stats")


@pytest.fixture
def gemini(gemini_emulator: EmulatorProcess) -> Iterator[EmulatorControl]:
    control = EmulatorControl(gemini_emulator)
    control.clear()
    yield control
    control.clear()


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
