"""In-memory bookkeeping of one voice session: the turn in progress and counters.

Nothing here touches the database or the log; the relay flushes `take_counters()` once per turn
and writes the finished `CompletedTurn`, so the per-frame path stays a few integer additions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from audio.cost import TokenUsage, cost_micro_usd, usage_from_metadata
from audio.protocol import IN_RATE


@dataclass(frozen=True)
class CompletedTurn:
    user_text: str
    partner_text: str
    typed: bool  # the user's line came as a `text` message, not speech
    interrupted: bool
    latency_ms: int | None
    started_at: float  # wall-clock seconds (time.time) when the user started
    ended_at: float
    relay_ms: float | None = None  # time the relay added to the first audio chunk (metrics only)

    def meta(self, role: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"started_at": round(self.started_at, 3), "ended_at": round(self.ended_at, 3)}
        if role == "user":
            meta["typed"] = self.typed
        else:
            meta["interrupted"] = self.interrupted
            if self.latency_ms is not None:
                meta["latency_ms"] = self.latency_ms
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
        self._reset_turn()

    def _reset_turn(self) -> None:
        self.user_text = ""
        self.partner_text = ""
        self.typed_text = ""
        self.interrupted = False
        self.speech_end_at: float | None = None  # monotonic: activity_end or last voiced batch
        self.first_audio_at: float | None = None
        self.relay_ms: float | None = None  # what the relay added to the turn's first audio chunk
        self.turn_started_wall: float | None = None

    # --- the user's side ---------------------------------------------------------------------
    def voiced(self, now: float) -> None:
        if self.first_audio_at is None:  # speech after the partner started is barge-in, not this turn
            self.speech_end_at = now
            if self.turn_started_wall is None:
                self.turn_started_wall = time.time()

    def typed(self, text: str, now: float) -> None:
        self.typed_text = f"{self.typed_text} {text}".strip()
        self.speech_end_at = now
        if self.turn_started_wall is None:
            self.turn_started_wall = time.time()

    # --- the model's side --------------------------------------------------------------------
    def partner_audio(self, nbytes: int, now: float) -> None:
        self.bytes_out += nbytes
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

    def complete_turn(self) -> CompletedTurn:
        now = time.time()
        turn = CompletedTurn(
            user_text=(self.user_text or self.typed_text).strip(),
            partner_text=self.partner_text.strip(),
            typed=not self.user_text and bool(self.typed_text),
            interrupted=self.interrupted,
            latency_ms=self.latency_ms(),
            started_at=self.turn_started_wall or now,
            ended_at=now,
            relay_ms=self.relay_ms,
        )
        if turn.user_text or turn.partner_text:
            self.turns += 1
        self._reset_turn()
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
