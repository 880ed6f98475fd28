"""The relay's uplink: browser -> Live.

Owns the input buffer (PCM16 at 16 kHz, at most HOLD_BYTES: stale audio is dropped, oldest
first), the event that wakes the sender, and the queue of control messages (typed text and
push-to-talk marks) that must go upstream in order with the audio. Per audio frame it only
appends to the buffer; the sender sends 100 ms per upstream message (a shorter tail after
FLUSH_TAIL_S).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from operator import mul
from typing import TYPE_CHECKING

from google.genai import types

from audio import protocol
from audio.turns import SessionTally

if TYPE_CHECKING:  # only the type: the uplink needs no SDK or Django to load
    from audio.upstream import Upstream
    from audio.wire import LiveWire

# Each upstream message costs the SDK a pydantic model, JSON, base64 and a TLS write, so the sender
# waits for 100 ms of audio (10 messages a second, not 25): at most 100 ms more before the service
# hears a word, against its own ~600 ms of silence to end a turn (make bench: before/after).
BATCH_MIN = protocol.IN_RATE * 2 * 100 // 1000  # 100 ms of PCM16
BATCH_MAX = BATCH_MIN
FLUSH_TAIL_S = 0.1  # send a short tail rather than hold it for the next frame
HOLD_BYTES = protocol.IN_RATE * 2  # at most 1 s of input waits for the upstream
SPEECH_RMS = 300  # a batch louder than this counts as the user speaking (latency measure)
LEVEL_SAMPLES = 64  # samples read per batch for its loudness


def level(pcm: bytes) -> int:
    """Root mean square of PCM16 (native byte order, as audioop.rms was), from LEVEL_SAMPLES
    evenly spaced samples: enough for a speech/silence gate (within a few % of the full RMS), and
    ~6 us per 40 or 100 ms batch where reading every sample costs 100+ us (timeit on the 2-core
    dev box, Python 3.11; audioop.rms, gone in 3.13, took 0.5-2 us)."""
    samples = memoryview(pcm)[: len(pcm) & ~1].cast("h")
    samples = samples[:: max(1, len(samples) // LEVEL_SAMPLES)]
    if not samples:
        return 0
    return math.isqrt(sum(map(mul, samples, samples)) // len(samples))


class Uplink:
    def __init__(self, *, tally: SessionTally, push_to_talk: bool) -> None:
        self._tally = tally
        self._push_to_talk = push_to_talk
        self._buf = bytearray()
        # Stream positions: bytes ever fed, and ever taken off the buffer's front (sent or dropped).
        # A control message carries the fed position it arrived at, so the audio before it goes
        # upstream before it, and the audio after it after it, however the tasks interleave.
        self._fed = 0
        self._taken = 0
        self._wake = asyncio.Event()
        self._control: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=64)

    # --- called by the consumer, per frame ------------------------------------------------------
    def feed_audio(self, pcm: bytes) -> None:
        buf = self._buf
        buf += pcm
        self._fed += len(pcm)
        self._tally.bytes_in += len(pcm)
        over = len(buf) - HOLD_BYTES
        if over > 0:
            over += over & 1  # keep whole samples
            del buf[:over]
            self._taken += over
            self._tally.dropped_bytes += over
        if len(buf) >= BATCH_MIN:
            self._wake.set()

    def control(self, kind: str, text: str = "") -> None:
        now = time.monotonic()
        if kind == "activity_start":
            self._tally.talking = self._push_to_talk
        elif kind == "activity_end":
            self._tally.talking = False
            self._tally.speech_end_at = now
        elif kind == "text":
            self._tally.typed(text, now)
        if kind != "text" and not self._push_to_talk:
            return  # with voice detection on, the service finds turns itself (and refuses these)
        self._control.append((kind, text, self._fed))
        self._wake.set()

    def requeue_unanswered(self, text: str) -> None:
        """A lost connection heard the user's turn but never answered it: ask again first (as
        text: the audio is gone), so the turn is answered and saved once, not lost."""
        if text and not any(kind == "text" for kind, _, _ in self._control):
            self._control.appendleft(("text", text, self._taken))  # before any audio still held
            self._wake.set()

    # --- the sender task ------------------------------------------------------------------------
    async def run(self, upstream: Upstream) -> None:
        buf = self._buf
        while True:
            if not self._control and len(buf) < BATCH_MIN:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):  # asyncio.timeout makes no task (wait_for does)
                    async with asyncio.timeout(FLUSH_TAIL_S if buf else None):
                        await self._wake.wait()
            session = await upstream.session()
            try:
                if self._control:
                    kind, text, at = self._control[0]
                    while self._taken < at and buf:  # the audio that came before it
                        await self._send_audio(session, at - self._taken)
                    self._control.popleft()
                    if kind == "text":
                        await session.send_realtime_input(text=text)
                    elif kind == "activity_start":
                        await session.send_realtime_input(activity_start=types.ActivityStart())
                    else:
                        await session.send_realtime_input(activity_end=types.ActivityEnd())
                elif buf:
                    await self._send_audio(session)
            except Exception:  # the downlink sees the same failure and reconnects
                await upstream.replaced(session)

    async def _send_audio(self, session: LiveWire, limit: int = BATCH_MAX) -> None:
        chunk = bytes(self._buf[: min(BATCH_MAX, limit)])
        del self._buf[: len(chunk)]
        self._taken += len(chunk)
        if level(chunk) >= SPEECH_RMS:
            self._tally.voiced(time.monotonic())
        await session.send_audio(chunk)
