"""Voice tests run the real stack: ai4joy.asgi.application (Origin check, session-cookie auth,
routing), the real google-genai SDK, and the Gemini emulator in a subprocess over TLS."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.cache import caches

# Imported here, not in a test: importing it runs django.setup(), whose logging config would
# otherwise replace pytest's capture handlers mid-test.
from ai4joy.asgi import application
from ai4joy.tests.serving import ServerProcess, start_server
from emulator.control import EmulatorControl
from emulator.tts import synthesize
from improv.store import get_store

ORIGIN = b"http://testserver"
LINE = (
    "The bakery on the moon is running out of flour and the astronauts are hungry, "
    "so we need a brave plan before the rocket leaves tonight."
)


@pytest.fixture
def voice_settings(settings, gemini_emulator):
    settings.GEMINI_BACKEND = "emulator"
    settings.GEMINI_EMULATOR_URL = gemini_emulator.url
    settings.GEMINI_EMULATOR_CA_FILE = gemini_emulator.ca_file
    settings.GEMINI_LIVE_MODEL = ""
    settings.WEBSOCKET_PING_INTERVAL = 30
    settings.WEBSOCKET_TIMEOUT = 3600
    return settings


@pytest.fixture
def faults(gemini) -> EmulatorControl:
    return gemini


@pytest.fixture(autouse=True)
def clean_caches_and_layer():
    caches["flags"].clear()  # waffle's cache outlives each test's database
    yield
    caches["flags"].clear()
    asyncio.run(get_channel_layer().flush())  # no stale group members between tests


@pytest.fixture
def audio_v2_on(db):
    from flags.services import rollout_set

    rollout_set(percent=100, actor_label="tests", reason="voice tests")


@pytest.fixture
def voice_user(make_user, audio_v2_on):
    return make_user()


@pytest.fixture
def scene(voice_user):
    return get_store().scene_create(user_id=voice_user.pk, status="active", game_slug="freeze-tag")


def cookie_for(client, user) -> bytes:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.fixture
def voice_cookie(client, voice_user) -> bytes:
    return cookie_for(client, voice_user)


def communicator(
    scene_id: str, cookie: bytes | None, *, origin: bytes = ORIGIN, query: str = ""
) -> WebsocketCommunicator:
    headers = [(b"origin", origin)]
    if cookie:
        headers.append((b"cookie", cookie))
    path = f"/ws/audio/{scene_id}/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture(scope="session")
def speech_16k() -> bytes:
    """About 6 s of real synthesised speech at 16 kHz, so the emulator's VAD hears a turn."""
    return synthesize(LINE, rate=16000)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(16000 * seconds)


def frames(pcm: bytes, ms: int = 40) -> list[bytes]:
    size = 16000 * 2 * ms // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


@dataclass
class Received:
    messages: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    close_code: int | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]


async def receive_until(
    comm: WebsocketCommunicator,
    stop: Any,
    *,
    timeout: float = 15.0,  # noqa: ASYNC109
    into: Received | None = None,
) -> Received:
    """Collect frames until `stop(message)` is true for a JSON message, or the socket closes."""
    got = into or Received()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"timed out; got {[m.get('type') for m in got.messages]}")
        out = await comm.receive_output(timeout=left)
        if out["type"] == "websocket.close":
            got.close_code = out.get("code", 1000)
            return got
        if out.get("bytes") is not None:
            got.audio += out["bytes"]
            continue
        message = json.loads(out["text"])
        got.messages.append(message)
        if stop(message):
            return got


def is_type(kind: str):
    return lambda m: m.get("type") == kind


async def speak_turn(comm: WebsocketCommunicator, pcm: bytes, *, as_base64: bool = False) -> None:
    for frame in frames(pcm + silence(1.0)):
        if as_base64:
            payload = {"type": "audio", "data": base64.b64encode(frame).decode()}
            await comm.send_to(text_data=json.dumps(payload))
        else:
            await comm.send_to(bytes_data=frame)
        await asyncio.sleep(0)


@pytest.fixture
async def open_voice() -> AsyncIterator[Any]:
    """Connect, and always disconnect at the end (Channels warns about leaked instances)."""
    opened: list[WebsocketCommunicator] = []

    async def connect(scene_id: str, cookie: bytes | None, **kwargs: Any) -> WebsocketCommunicator:
        comm = communicator(scene_id, cookie, **kwargs)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        opened.append(comm)
        return comm

    yield connect
    for comm in opened:
        try:
            await comm.disconnect(timeout=3)
        except Exception:
            pass


@pytest.fixture
def app_servers(tmp_path):
    """Start real `python -m ai4joy.serve` processes with the given env; all stopped afterwards."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str]) -> ServerProcess:
        server = start_server(env, tmp_path / f"server{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
