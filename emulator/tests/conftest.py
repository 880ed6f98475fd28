"""Fixtures for the emulator's tests: an in-process emulator and real google-genai clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google import genai

from emulator import EmulatorServer, Options, tts
from emulator.tests.support import make_client


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    # realtime_factor 4: reply audio is paced, but four times faster, to keep the suite quick.
    server = EmulatorServer(state_dir=tmp_path / "emulator", options=Options(seed=7, realtime_factor=4.0))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(params=["vertex", "developer"])
def client(request: pytest.FixtureRequest, emulator: EmulatorServer) -> genai.Client:
    return make_client(emulator, vertex=request.param == "vertex")


@pytest.fixture(scope="session")
def speech_16k() -> bytes:
    """Real speech (espeak-ng) at 16 kHz, as a browser microphone would send it."""
    return tts.synthesize("let's open a bakery on the moon", rate=16000)
