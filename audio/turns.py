"""In-memory bookkeeping of one voice session: the turn in progress and counters.

Nothing here touches the database or the log; the relay flushes `take_counters()` once per turn
and writes the finished `CompletedTurn`, so the per-frame path stays a few integer additions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from audio.cost import TokenUsage, cost_micro_usd, usage_from_metadata
from audio.protocol import IN_RATE, OUT_RATE


@dataclass(frozen=True)
class CompletedTurn:
    """One exchange, with the timing the scene review draws (improv/timeline.py): wall-clock
    seconds (time.time) for each line's start and end, None where nothing was measured."""

    user_text: str
    partner_text: str
    typed: bool  # the user's line came as a `text` message, not speech
    interrupted: bool
    latency_ms: int | None
    user_started_at: float | None  # first speech heard (or the line typed)
    user_ended_at: float | None  # last speech heard; None for a typed line (its length is its words)
    partner_started_at: float | None  # the partner's first audio
    partner_ended_at: float | None  # the end of its audio, or where it was cut off
    relay_ms: float | None = None  # time the relay added to the first audio chunk (metrics only)

    def record_fields(self) -> dict[str, Any]:
        """The turn as improv.voice_turns.voice_turn_record takes it (with scene_id and user_id)."""
        return {
            "user_text": self.user_text,
            "partner_text": self.partner_text,
            "user_meta": self.meta("user"),
            "partner_meta": self.meta("partner"),
            "latency_ms": self.latency_ms,
            "interrupted": self.interrupted,
        }

    def meta(self, role: str) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if role == "user":
            start, end = self.user_started_at, self.user_ended_at
            meta["typed"] = self.typed
        else:
            start, end = self.partner_started_at, self.partner_ended_at
            meta["interrupted"] = self.interrupted
            if self.latency_ms is not None:
                meta["latency_ms"] = self.latency_ms
        if start is not None:
            meta["started_at"] = round(start, 3)
        if end is not None:
            meta["ended_at"] = round(end, 3)
        return meta


class SessionTally:
    """Counters since the last flush plus the state of the current turn."""

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_total = 0
        self.turns = 0
        self.dropped_bytes = 0  # whole session: stale input audio dropped (usage message, end log)
        self.split = TokenUsage()  # tokens by modality since the last flush (cost, metrics)
        self.reconnects = 0
        self.talking = False  # push-to-talk: an activity started and not yet ended
        self._wall_offset = time.time() - time.monotonic()  # monotonic -> wall clock, for saved times
        self._reset_turn()

    def _reset_turn(self, *, barge_in_at: float | None = None) -> None:
        self.user_text = ""
        self.partner_text = ""
        self.typed_text = ""
        self.interrupted = False
        # Monotonic times of the turn in progress.
        self.speech_start_at: float | None = barge_in_at  # first voiced batch (or typed line)
        self.speech_end_at: float | None = None  # activity_end or last voiced batch
        self.first_audio_at: float | None = None
        self.last_audio_at: float | None = None
        self.partner_audio_bytes = 0
        self.barge_in_at: float | None = None  # the user started again while the partner spoke
        self.relay_ms: float | None = None  # what the relay added to the turn's first audio chunk

    def _wall(self, monotonic: float | None) -> float | None:
        return None if monotonic is None else monotonic + self._wall_offset

    # --- the user's side ---------------------------------------------------------------------
    def voiced(self, now: float) -> None:
        if self.first_audio_at is None:
            self.speech_end_at = now
            if self.speech_start_at is None:
                self.speech_start_at = now
        elif self.barge_in_at is None:  # speech over the partner: it starts the next turn's line
            self.barge_in_at = now

    def typed(self, text: str, now: float) -> None:
        self.typed_text = f"{self.typed_text} {text}".strip()
        self.speech_end_at = now
        if self.speech_start_at is None:
            self.speech_start_at = now

    # --- the model's side --------------------------------------------------------------------
    def partner_audio(self, nbytes: int, now: float) -> None:
        self.bytes_out += nbytes
        self.partner_audio_bytes += nbytes
        self.last_audio_at = now
        if self.first_audio_at is None:
            self.first_audio_at = now

    def usage(self, meta: Any) -> None:
        self.tokens_in += int(getattr(meta, "prompt_token_count", None) or 0)
        self.tokens_out += int(getattr(meta, "response_token_count", None) or 0)
        self.tokens_total += int(getattr(meta, "total_token_count", None) or 0)
        self.split = self.split + usage_from_metadata(meta)

    def latency_ms(self) -> int | None:
        if self.speech_end_at is None or self.first_audio_at is None:
            return None
        return max(0, round((self.first_audio_at - self.speech_end_at) * 1000))

    def _partner_end(self) -> float | None:
        if self.first_audio_at is None or self.last_audio_at is None:
            return None
        if self.interrupted:  # playback stopped with the last audio that arrived
            return self.last_audio_at
        # Audio may arrive faster than it plays: it ends when its last sample has played.
        played = self.first_audio_at + self.partner_audio_bytes / (2 * OUT_RATE)
        return max(self.last_audio_at, played)

    def complete_turn(self) -> CompletedTurn:
        typed = not self.user_text and bool(self.typed_text)
        turn = CompletedTurn(
            user_text=(self.user_text or self.typed_text).strip(),
            partner_text=self.partner_text.strip(),
            typed=typed,
            interrupted=self.interrupted,
            latency_ms=self.latency_ms(),
            user_started_at=self._wall(self.speech_start_at),
            user_ended_at=None if typed else self._wall(self.speech_end_at),
            partner_started_at=self._wall(self.first_audio_at),
            partner_ended_at=self._wall(self._partner_end()),
            relay_ms=self.relay_ms,
        )
        if turn.user_text or turn.partner_text:
            self.turns += 1
        barge_in = self.barge_in_at
        if self.interrupted and self.last_audio_at is not None:
            # Being interrupted means the player was speaking by then, even where echo
            # cancellation kept their voice under our loudness threshold until the partner stopped.
            barge_in = self.last_audio_at if barge_in is None else min(barge_in, self.last_audio_at)
        self._reset_turn(barge_in_at=barge_in)
        return turn

    # --- flushing ------------------------------------------------------------------------------
    def take_counters(self) -> dict[str, int]:
        """Counters to add to the audio-session record, then zeroed."""
        out = {
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "turns": self.turns,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_total": self.tokens_total,
            "tokens_in_audio": self.split.in_audio,
            "tokens_out_audio": self.split.out_audio,
            "cost_micro_usd": cost_micro_usd(self.split) if self.split else 0,
            "reconnects": self.reconnects,
        }
        self.bytes_in = self.bytes_out = self.turns = self.reconnects = 0
        self.tokens_in = self.tokens_out = self.tokens_total = 0
        self.split = TokenUsage()
        return {k: v for k, v in out.items() if v}

    def dropped_ms(self) -> int:
        return self.dropped_bytes * 1000 // (2 * IN_RATE)
