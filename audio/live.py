"""One Gemini Live connection through the google-genai SDK, and the scene's voice prompt.

`LiveConnection` opens and closes SDK sessions (the SDK only offers an async context manager,
and a relay must be able to swap sessions while the browser stays connected) and sorts
failures into what the relay should do about them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from google.genai import errors, types
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from improv import gemini, prompts
from improv.models import Game

log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 1.0

# What the relay does after an upstream failure.
RESUME = "resume"  # the connection ended but the session lives on: reconnect with the handle
RETRY = "retry"  # a transient failure: reconnect with backoff, a bounded number of times
QUOTA = "quota"  # out of quota: tell the browser, close 4011
FATAL = "fatal"  # our request was refused: retrying cannot help


@dataclass(frozen=True)
class Failure:
    kind: str
    status: str  # for the gemini_error log line: a close code, HTTP status or exception name
    detail: str = ""


def classify(exc: BaseException) -> Failure:
    """Map an SDK/websockets exception to what to do next (notes/live-api.md §2.7)."""
    if isinstance(exc, errors.APIError):
        code, text = int(exc.code or 0), f"{exc.status or ''} {exc.message or ''}"
        if code in (1008, 429) or "RESOURCE_EXHAUSTED" in text:
            return Failure(QUOTA, str(code), text[:120])
        if code in (1000, 1001, 1012):  # the server ended the connection on purpose
            return Failure(RESUME, str(code), text[:120])
        if code == 1007 or 400 <= code < 500:
            return Failure(FATAL, str(code), text[:120])
        return Failure(RETRY, str(code), text[:120])  # 1006, 1011, 1013, 1014, 5xx
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status == 429:
            return Failure(QUOTA, str(status))
        return Failure(RETRY if status >= 500 else FATAL, str(status))
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else 1006
        return Failure(RESUME if code in (1000, 1001) else RETRY, str(code))
    if isinstance(exc, (OSError, TimeoutError, InvalidHandshake)):
        return Failure(RETRY, type(exc).__name__)
    return Failure(FATAL, type(exc).__name__, str(exc)[:120])


def system_instruction_for(scene: Any) -> str:
    """The scene's voice prompt (improv owns it). Reads the game: call it through
    database_sync_to_async."""
    return str(prompts.live_system_instruction(scene, _game_for(scene)))


def _game_for(scene: Any) -> Game | None:
    with contextlib.suppress(Exception):  # a missing game must not cost the player their scene
        return Game.objects.by_slug(getattr(scene, "game_slug", ""))
    return None


def connect_config(
    *, system_instruction: str, resume_handle: str | None, push_to_talk: bool = False
) -> types.LiveConnectConfig:
    # Push-to-talk turns the server's voice detection off: then, and only then, the service
    # takes activityStart/activityEnd, and it ignores audio outside them.
    realtime = (
        types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        )
        if push_to_talk
        else None
    )
    return types.LiveConnectConfig(
        realtime_input_config=realtime,
        response_modalities=[types.Modality.AUDIO],
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=gemini.voice())
            )
        ),
        system_instruction=types.Content(role="user", parts=[types.Part(text=system_instruction)]),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        # Audio-only sessions end at 15 minutes without compression; improv scenes run longer.
        context_window_compression=types.ContextWindowCompressionConfig(
            trigger_tokens=25_600, sliding_window=types.SlidingWindow(target_tokens=12_800)
        ),
        session_resumption=types.SessionResumptionConfig(handle=resume_handle),
    )


class LiveConnection:
    """One SDK Live session at a time; `open` again after `close` to reconnect."""

    def __init__(self, *, system_instruction: str, push_to_talk: bool = False) -> None:
        self._system_instruction = system_instruction
        self._push_to_talk = push_to_talk
        self._cm: AbstractAsyncContextManager[Any] | None = None
        self.session: Any = None

    async def open(self, *, resume_handle: str | None, open_timeout: float) -> Any:
        client = gemini.get_client()  # the one client factory (keepalive args included)
        model = gemini.live_model()
        config = connect_config(
            system_instruction=self._system_instruction,
            resume_handle=resume_handle,
            push_to_talk=self._push_to_talk,
        )
        cm = client.aio.live.connect(model=model, config=config)
        self.session = await asyncio.wait_for(cm.__aenter__(), open_timeout)
        self._cm = cm
        return self.session

    async def close(self) -> None:
        """Close the upstream socket, bounded: a peer that never answers must not hold us."""
        cm, session = self._cm, self.session
        self._cm = self.session = None
        if session is None or cm is None:
            return
        try:
            await asyncio.wait_for(session.close(), CLOSE_TIMEOUT_S)
        except Exception:  # TimeoutError included
            transport = getattr(getattr(session, "_ws", None), "transport", None)
            if transport is not None:
                transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(cm.__aexit__(None, None, None), CLOSE_TIMEOUT_S)
