"""The google-genai client factory, exercised through the real SDK against the emulator.

`gemini_emulator` (a subprocess) and `gemini` (its fault control API) come from conftest.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from google.genai import errors, types

from improv import gemini as factory

SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "line": {"type": "STRING"},
        "mood": {"type": "STRING"},
        "coach_notes": {"type": "STRING", "nullable": True},
    },
    "required": ["line", "mood"],
}


def test_text_turn_goes_down_the_vertex_path(gemini_emulator, gemini) -> None:
    client = factory.get_client()
    assert client.vertexai  # the emulator backend uses the real Vertex code path
    response = client.models.generate_content(
        model=factory.text_model(),
        contents="Let's open a bakery on the moon",
        config=types.GenerateContentConfig(
            system_instruction="You are an improv partner.",
            response_mime_type="application/json",
            response_schema=SCHEMA,
        ),
    )
    body = json.loads(response.text or "")
    assert "bakery" in body["line"] or "moon" in body["line"]
    assert body["mood"] and response.usage_metadata and response.usage_metadata.total_token_count


def test_client_is_cached_per_settings(gemini_emulator) -> None:
    assert factory.get_client() is factory.get_client()
    with override_settings(GEMINI_TIMEOUT_S=7.0):
        other = factory.get_client()
        assert other is factory.get_client()
    assert other is not factory.get_client()


def test_sdk_retries_a_429_then_succeeds(gemini_emulator, gemini) -> None:
    gemini.arm({"type": "http_status", "status": 429, "count": 1})
    before = gemini.stats()["http_requests"]
    response = factory.get_client().models.generate_content(model=factory.text_model(), contents="a kazoo")
    assert "kazoo" in (response.text or "")
    assert gemini.stats()["http_requests"] - before == 2


def test_without_retries_a_503_reaches_the_caller(gemini_emulator, gemini) -> None:
    gemini.arm({"type": "http_status", "status": 503, "count": 1})
    with override_settings(GEMINI_HTTP_RETRY_ATTEMPTS=1), pytest.raises(errors.ServerError) as caught:
        factory.get_client().models.generate_content(model=factory.text_model(), contents="hi")
    assert caught.value.code == 503


def test_http_timeout_setting_applies(gemini_emulator, gemini) -> None:
    gemini.arm({"type": "latency", "scope": "http", "ms": 3000})
    with (
        override_settings(GEMINI_TIMEOUT_S=0.3, GEMINI_HTTP_RETRY_ATTEMPTS=1),
        pytest.raises(Exception) as caught,
    ):
        factory.get_client().models.generate_content(model=factory.text_model(), contents="hi")
    assert "timeout" in type(caught.value).__name__.lower() or "timed out" in str(caught.value).lower()


async def _live_turn(text: str) -> tuple[str, int]:
    client = factory.get_client()
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(),
    )
    transcript, audio = "", 0
    async with (
        asyncio.timeout(20),
        client.aio.live.connect(model=factory.live_model(), config=config) as session,
    ):
        await asyncio.sleep(1.0)  # idle long enough for keepalive pings to matter
        await session.send_realtime_input(text=text)
        async for msg in session.receive():
            sc = msg.server_content
            if sc and sc.output_transcription and sc.output_transcription.text:
                transcript += sc.output_transcription.text
            audio += len(msg.data or b"")
    return transcript, audio


async def test_live_session_with_generous_keepalive_survives_slow_pongs(gemini_emulator, gemini) -> None:
    gemini.arm({"type": "slow_pong", "ms": 600, "count": 1})
    with override_settings(GEMINI_WS_PING_INTERVAL=0.2, GEMINI_WS_PING_TIMEOUT=5):
        transcript, audio = await _live_turn("the pelican choir")
    assert "pelican" in transcript or "choir" in transcript
    assert audio > 0


async def test_live_keepalive_settings_reach_the_socket(gemini_emulator, gemini) -> None:
    # Same slow pongs, a timeout shorter than them: websockets gives up, proving the settings apply.
    gemini.arm({"type": "slow_pong", "ms": 3000, "count": 1})
    with override_settings(GEMINI_WS_PING_INTERVAL=0.2, GEMINI_WS_PING_TIMEOUT=0.4):
        # The SDK wraps a close seen by receive() in APIError; send() lets websockets' error through.
        with pytest.raises((errors.APIError, websockets.ConnectionClosed)):
            await _live_turn("the pelican choir")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"GEMINI_BACKEND": "vertex", "GEMINI_LIVE_MODEL": ""}, "gemini-live-2.5-flash-native-audio"),
        ({"GEMINI_BACKEND": "apikey", "GEMINI_LIVE_MODEL": ""}, factory.DEFAULT_LIVE_MODELS["apikey"]),
        ({"GEMINI_BACKEND": "vertex", "GEMINI_LIVE_MODEL": "custom-live"}, "custom-live"),
    ],
)
def test_model_settings(overrides, expected) -> None:
    with override_settings(**overrides):
        assert factory.live_model() == expected
    with override_settings(GEMINI_TEXT_MODEL=""):
        assert factory.text_model() == "gemini-2.5-flash"


def test_production_backends_build_without_network() -> None:
    with override_settings(
        GEMINI_BACKEND="vertex", GCP_PROJECT_ID="proj", VERTEX_AI_LOCATION="europe-west4", ADK_API_KEY=""
    ):
        client = factory.build_client()
        assert client.vertexai
        assert client._api_client.project == "proj" and client._api_client.location == "europe-west4"
    with override_settings(GEMINI_BACKEND="vertex", GCP_PROJECT_ID="proj", ADK_API_KEY="key"):
        express = factory.build_client()
        assert express.vertexai and express._api_client.api_key == "key"
    with override_settings(GEMINI_BACKEND="apikey", ADK_API_KEY="key"):
        assert not factory.build_client().vertexai


@pytest.mark.parametrize(
    "overrides",
    [
        {"GEMINI_BACKEND": "bedrock"},
        {"GEMINI_BACKEND": "apikey", "ADK_API_KEY": ""},
        {"GEMINI_BACKEND": "vertex", "GCP_PROJECT_ID": "", "ADK_API_KEY": ""},
        {"GEMINI_BACKEND": "emulator", "GEMINI_EMULATOR_URL": ""},
        {
            "GEMINI_BACKEND": "emulator",
            "GEMINI_EMULATOR_URL": "https://127.0.0.1:1",
            "GEMINI_EMULATOR_CA_FILE": "/nonexistent/ca.pem",
        },
    ],
)
def test_misconfiguration_is_a_clear_error(overrides) -> None:
    with override_settings(**overrides), pytest.raises(ImproperlyConfigured):
        factory.build_client()


def test_keepalive_defaults_are_generous() -> None:
    with override_settings(GEMINI_WS_PING_INTERVAL=None, GEMINI_WS_PING_TIMEOUT=None):
        args = factory.live_keepalive_args()
    assert args == {"ping_interval": 20.0, "ping_timeout": 60.0}
