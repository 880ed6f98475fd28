"""Turn detection on incoming PCM16 with webrtcvad (30 ms frames), bounded in memory."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import webrtcvad

FRAME_MS = 30
_START_WINDOW = 5  # frames looked at to decide speech has started
_START_VOICED = 3  # voiced frames within the window: ~90 ms of speech, ignores clicks
MIN_TURN_S = 0.2


@dataclass(frozen=True)
class SpeechStarted:
    pass


@dataclass(frozen=True)
class SpeechEnded:
    seconds: float


VadEvent = SpeechStarted | SpeechEnded


class Segmenter:
    """Feeds audio in any chunk size; reports when speech starts and ends.

    Holds at most one partial frame of audio: the emulator never needs the speech itself,
    only its timing (see `emulator/live.py` on transcription).
    """

    def __init__(self, *, rate: int = 16000, silence_ms: int = 600, aggressiveness: int = 2) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self.rate = rate
        self._frame_bytes = rate * FRAME_MS // 1000 * 2
        self._pending = bytearray()
        self._window: deque[bool] = deque(maxlen=_START_WINDOW)
        self._silence_frames_to_end = max(1, silence_ms // FRAME_MS)
        self._in_speech = False
        self._speech_frames = 0
        self._trailing_silence = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, pcm: bytes, rate: int) -> list[VadEvent]:
        if rate != self.rate:
            # A rate change mid-stream: start framing afresh at the new rate.
            self.rate = rate
            self._frame_bytes = rate * FRAME_MS // 1000 * 2
            self._pending.clear()
        events: list[VadEvent] = []
        self._pending += pcm
        size = self._frame_bytes
        offset = 0
        while len(self._pending) - offset >= size:
            frame = bytes(self._pending[offset : offset + size])
            offset += size
            event = self._frame(self._vad.is_speech(frame, self.rate))
            if event is not None:
                events.append(event)
        del self._pending[:offset]
        return events

    def _frame(self, voiced: bool) -> VadEvent | None:
        self._window.append(voiced)
        if not self._in_speech:
            if sum(self._window) >= _START_VOICED:
                self._in_speech = True
                self._speech_frames = sum(self._window)
                self._trailing_silence = 0
                return SpeechStarted()
            return None
        if voiced:
            self._speech_frames += 1 + self._trailing_silence
            self._trailing_silence = 0
            return None
        self._trailing_silence += 1
        if self._trailing_silence >= self._silence_frames_to_end:
            return self._end()
        return None

    def _end(self) -> SpeechEnded:
        seconds = self._speech_frames * FRAME_MS / 1000
        self._in_speech = False
        self._speech_frames = 0
        self._trailing_silence = 0
        self._window.clear()
        return SpeechEnded(seconds)

    def flush(self) -> list[VadEvent]:
        """The client said the stream ended (audioStreamEnd): close any open turn now."""
        self._pending.clear()
        return [self._end()] if self._in_speech else []
