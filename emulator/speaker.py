"""Streams one partner reply over a Live socket: transcript pieces and 24 kHz audio in real time."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from emulator import partner
from emulator.tts import OUTPUT_RATE

AUDIO_TOKENS_PER_S = 32  # Gemini's documented audio token rate
_WORDS_PER_PIECE = 3

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Spoken:
    """How far a reply got: the words already sent (kept in history if interrupted)."""

    words: list[str]
    audio_seconds: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _pitch(voice: str) -> int:
    # Different prebuilt voice names sound different, deterministically.
    return 35 + partner.digest("voice", voice) % 30 if voice else 50


async def speak(
    *,
    send: Send,
    line: str,
    pcm_for: Callable[[str, int], Awaitable[bytes]],
    voice: str,
    audio: bool,
    transcribe: bool,
    chunk_ms: int,
    realtime_factor: float,
    spoken: Spoken,
    after_first_chunk: Callable[[], Awaitable[None]],
) -> None:
    """Sends `line` as outputTranscription pieces interleaved with audio chunks.

    Paced so chunk i leaves at t0 + i * chunk duration: a client sees audio at the rate it
    plays, as from the real service, and barge-in can interrupt a reply halfway.
    """
    words = line.split()
    pieces = [" ".join(words[i : i + _WORDS_PER_PIECE]) for i in range(0, len(words), _WORDS_PER_PIECE)]
    if not audio:
        for i, piece in enumerate(pieces):
            await send({"serverContent": {"modelTurn": {"parts": [{"text": piece + " "}]}}})
            spoken.words.extend(piece.split())
            if i == 0:
                await after_first_chunk()
        return
    pcm = await pcm_for(line, _pitch(voice))
    chunk_bytes = OUTPUT_RATE * chunk_ms // 1000 * 2
    chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)] or [b""]
    step = chunk_ms / 1000 / realtime_factor
    t0 = time.monotonic()
    next_piece = 0
    for i, chunk in enumerate(chunks):
        # Transcript pieces are spread over the audio so text and sound stay roughly in step.
        while next_piece < len(pieces) and next_piece * len(chunks) <= i * len(pieces):
            if transcribe:
                await send({"serverContent": {"outputTranscription": {"text": pieces[next_piece] + " "}}})
            spoken.words.extend(pieces[next_piece].split())
            next_piece += 1
        await send(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [
                            {
                                "inlineData": {
                                    "mimeType": f"audio/pcm;rate={OUTPUT_RATE}",
                                    "data": base64.b64encode(chunk).decode("ascii"),
                                }
                            }
                        ]
                    }
                }
            }
        )
        spoken.audio_seconds += len(chunk) / (2 * OUTPUT_RATE)
        if i == 0:
            await after_first_chunk()
        delay = t0 + (i + 1) * step - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    for piece in pieces[next_piece:]:
        if transcribe:
            await send({"serverContent": {"outputTranscription": {"text": piece + " "}}})
        spoken.words.extend(piece.split())


def usage(*, prompt_text: str, heard_seconds: float, spoken: Spoken, vertex: bool) -> dict[str, Any]:
    """usageMetadata as each API spells it: Vertex says "candidates", the Developer API "response"."""
    text_tokens = partner.approx_tokens(prompt_text)
    audio_in = round(heard_seconds * AUDIO_TOKENS_PER_S)
    audio_out = round(spoken.audio_seconds * AUDIO_TOKENS_PER_S)
    out_tokens = audio_out or partner.approx_tokens(spoken.text)
    prompt = text_tokens + audio_in
    out = "candidates" if vertex else "response"
    return {
        "promptTokenCount": prompt,
        f"{out}TokenCount": out_tokens,
        "totalTokenCount": prompt + out_tokens,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": text_tokens},
            {"modality": "AUDIO", "tokenCount": audio_in},
        ],
        f"{out}TokensDetails": [{"modality": "AUDIO" if audio_out else "TEXT", "tokenCount": out_tokens}],
    }
