"""Helpers for the emulator's tests: real google-genai clients, fault arming, turn collection."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from google import genai
from google.genai import types
from google.oauth2.credentials import Credentials

from emulator import EmulatorServer

TURN_TIMEOUT_S = 20


def make_client(
    server: EmulatorServer,
    *,
    vertex: bool = True,
    retry: types.HttpRetryOptions | None = None,
    keepalive: dict[str, float] | None = None,
) -> genai.Client:
    """A real SDK client that trusts only the emulator's CA."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    options = types.HttpOptions(
        base_url=server.url,
        timeout=15_000,
        retry_options=retry,
        client_args={"verify": ctx},
        async_client_args={"verify": ctx, "ssl": ctx, **(keepalive or {})},
    )
    if vertex:
        return genai.Client(
            vertexai=True,
            project="test-project",
            location="us-central1",
            credentials=Credentials(token="test-token"),
            http_options=options,
        )
    return genai.Client(api_key="test-key", http_options=options)


async def control(server: EmulatorServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, server.url + path, json=body, ssl=ctx) as resp,
    ):
        return resp.status, await resp.json()


async def arm(server: EmulatorServer, *faults: dict[str, Any]) -> None:
    status, body = await control(server, "POST", "/emulator/faults", {"faults": list(faults)})
    assert status == 200, body


def silence(seconds: float, rate: int = 16000) -> bytes:
    return bytes(int(seconds * rate) * 2)


async def send_audio(session: Any, pcm: bytes, chunk_ms: int = 100) -> None:
    step = 16000 * chunk_ms // 1000 * 2
    for i in range(0, len(pcm), step):
        await session.send_realtime_input(
            audio=types.Blob(data=pcm[i : i + step], mime_type="audio/pcm;rate=16000")
        )


@dataclass
class Turn:
    """Everything the SDK yielded for one model turn."""

    input_text: str = ""
    output_text: str = ""
    audio: bytearray = field(default_factory=bytearray)
    mime_types: set[str] = field(default_factory=set)
    interrupted: bool = False
    generation_complete: bool = False
    usage: types.UsageMetadata | None = None
    handles: list[str] = field(default_factory=list)
    go_away: types.LiveServerGoAway | None = None


async def receive_turn(session: Any, turn: Turn | None = None) -> Turn:
    """Reads until turn_complete (the SDK's receive() stops there)."""
    turn = turn or Turn()
    async for msg in session.receive():
        sc = msg.server_content
        if msg.session_resumption_update and msg.session_resumption_update.new_handle:
            turn.handles.append(msg.session_resumption_update.new_handle)
        if msg.go_away:
            turn.go_away = msg.go_away
        if sc is None:
            continue
        if sc.input_transcription and sc.input_transcription.text:
            turn.input_text += sc.input_transcription.text
        if sc.output_transcription and sc.output_transcription.text:
            turn.output_text += sc.output_transcription.text
        for part in (sc.model_turn.parts or []) if sc.model_turn else []:
            if part.inline_data and part.inline_data.data:
                turn.audio += part.inline_data.data
                turn.mime_types.add(part.inline_data.mime_type or "")
        turn.interrupted |= bool(sc.interrupted)
        turn.generation_complete |= bool(sc.generation_complete)
        if sc.turn_complete:
            turn.usage = msg.usage_metadata
    return turn


def live_config(**overrides: Any) -> types.LiveConnectConfig:
    """What the app sends: audio out, a voice, both transcriptions, compression, resumption."""
    base: dict[str, Any] = dict(
        response_modalities=[types.Modality.AUDIO],
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Puck"))
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        system_instruction="You are an improv partner in a scene about a lighthouse.",
        context_window_compression=types.ContextWindowCompressionConfig(
            trigger_tokens=25600, sliding_window=types.SlidingWindow(target_tokens=12800)
        ),
        session_resumption=types.SessionResumptionConfig(),
    )
    base.update(overrides)
    return types.LiveConnectConfig(**base)


def rms(pcm: bytes | bytearray) -> float:
    from array import array

    samples = array("h")
    samples.frombytes(bytes(pcm[: len(pcm) // 2 * 2]))
    if not samples:
        return 0.0
    return (sum(s * s for s in samples) / len(samples)) ** 0.5
