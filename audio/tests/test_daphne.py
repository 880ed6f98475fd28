"""The voice socket through a real Daphne process and a real WebSocket client (`websockets`)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from audio.protocol import CloseCode
from audio.tests.conftest import frames, silence

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_database_url(tmp_path: Path) -> str:
    """A database URL for the server process that sees this test's committed rows."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":  # the same test database, over the network
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if connection.vendor != "sqlite":
        pytest.skip(f"cannot share a {connection.vendor} test database with a server process")
    # SQLite's test database lives in memory: copy it (migrated, with this test's user, session,
    # flag and scene committed) to a file the server opens. No second migrate run.
    db_file = tmp_path / "daphne.sqlite3"
    with sqlite3.connect(db_file) as target:
        connection.ensure_connection()
        connection.connection.backup(target)
    return f"sqlite:///{db_file}"


@pytest.fixture
def daphne_url(tmp_path, gemini_emulator, scene, voice_cookie):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _server_database_url(tmp_path),
        "DJANGO_SETTINGS_MODULE": "ai4joy.settings",
        "GEMINI_BACKEND": "emulator",
        "GEMINI_EMULATOR_URL": gemini_emulator.url,
        "GEMINI_EMULATOR_CA_FILE": str(gemini_emulator.ca_file),
        "SERVICE_ROLE": "all",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    log = (tmp_path / "daphne.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ai4joy.asgi:application"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "daphne.log").read_text()[-2000:]) from None
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}", port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


async def _collect_until(ws, kind: str, timeout: float = 30.0):  # noqa: ASYNC109
    messages, audio = [], bytearray()
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                audio += frame
                continue
            message = json.loads(frame)
            messages.append(message)
            if message["type"] == kind:
                return messages, audio


async def test_voice_turn_through_daphne(daphne_url, scene, voice_cookie, speech_16k):
    url, port = daphne_url
    headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": voice_cookie.decode()}
    async with connect(f"{url}/ws/audio/{scene.id}/", additional_headers=headers, open_timeout=10) as ws:
        messages, _ = await _collect_until(ws, "ready", timeout=15)
        await ws.send(json.dumps({"type": "ping", "t": 5}))
        for frame in frames(speech_16k + silence(1.0)):
            await ws.send(frame)
        messages, audio = await _collect_until(ws, "turn_complete")
        assert any(m["type"] == "pong" and m["t"] == 5 for m in messages)
        assert any(m["type"] == "transcript" and m["role"] == "partner" and m["final"] for m in messages)
        assert len(audio) > 24000 and len(audio) % 2 == 0
        await ws.send(json.dumps({"type": "end"}))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.NORMAL


async def test_rejection_code_and_reason_reach_a_real_client(daphne_url, scene):
    url, port = daphne_url
    headers = {"Origin": f"http://127.0.0.1:{port}"}  # no session cookie
    async with connect(f"{url}/ws/audio/{scene.id}/", additional_headers=headers, open_timeout=10) as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error == {"type": "error", "code": "unauthenticated", "message": error["message"]}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.UNAUTHENTICATED
    assert settings.ALLOWED_HOSTS  # the Origin above passed the same check production uses
