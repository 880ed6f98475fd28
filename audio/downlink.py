"""The Live -> browser half of LiveRelay, and the upstream connection it owns.

Receives from Gemini Live forever (`session.receive()` ends at every turn_complete), forwards
24 kHz audio, transcripts and interruptions, closes turns; connects, resumes after goAway or a
resumable close with the newest handle, retries transient failures with backoff, and turns
quota or hard failures into an `error` + 4011. A mixin only to keep modules small: it is part of
LiveRelay and uses its state.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from typing import Any

from django.conf import settings

from audio import protocol
from audio.live import FATAL, QUOTA, LiveConnection, classify
from audio.metrics import VoiceObserver
from audio.turns import CompletedTurn, SessionTally

log = logging.getLogger("audio.relay")
CONNECT_TIMEOUT_S = 10.0
RETRY_BACKOFF_S = (0.2, 0.5, 1.0)  # one sleep per failed attempt; then give up with 4011


class DownlinkMixin:
    # LiveRelay's state this half uses (set in LiveRelay.__init__).
    record_id: str
    _browser: Any
    _browser_open: bool
    _conn: LiveConnection
    _handle: str | None
    _resumed: bool
    _session: Any
    _session_changed: asyncio.Event
    _ready: asyncio.Event
    _go_away: bool
    _tally: SessionTally
    _totals: dict[str, int]
    _persist_q: asyncio.Queue[tuple[CompletedTurn, dict[str, int]] | None]
    _control: collections.deque[tuple[str, str]]
    _wake: asyncio.Event
    _obs: VoiceObserver

    async def _send_json(self, message: protocol.ServerMessage) -> None:
        raise NotImplementedError  # LiveRelay's

    def _begin_stop(self, reason: str, notice: protocol.ServerMessage | None) -> asyncio.Future[None]:
        raise NotImplementedError  # LiveRelay's

    async def _downlink(self) -> None:
        why, unanswered = "start", ""
        while True:
            session = await self._connect(why)
            if session is None:
                return
            if unanswered and not any(kind == "text" for kind, _ in self._control):
                # The lost connection heard the user's turn but never answered it: ask again here
                # (as text: the audio is gone), so the turn is answered and saved once, not lost.
                self._control.appendleft(("text", unanswered))
                self._wake.set()
            unanswered = ""
            try:
                await self._pump(session)
                why = "go_away"
            except Exception as exc:
                failure = classify(exc)
                _log_gemini_error(failure.status, failure.kind)
                self._obs.gemini_error(kind=failure.kind, status=failure.status)  # telemetry
                if failure.kind in (QUOTA, FATAL):
                    return await self._fail(failure.kind)
                why = f"closed_{failure.status}"
                if self._tally.partner_text or self._tally.first_audio_at is not None:
                    # Cut off mid-reply: end the turn here, as an interruption, so the browser
                    # stops waiting and what was said is kept.
                    self._tally.interrupted = True
                    await self._send_json({"type": "interrupted"})
                    await self._turn_complete()
                else:
                    unanswered = self._tally.user_text.strip() or self._tally.typed_text
            self._ready.clear()
            self._session = None
            self._session_changed.set()
            await self._conn.close()

    async def _connect(self, why: str) -> Any:
        for attempt, backoff in enumerate(RETRY_BACKOFF_S):
            try:
                with self._obs.upstream_connect(resume=self._handle is not None):  # telemetry
                    session = await self._conn.open(
                        resume_handle=self._handle, open_timeout=CONNECT_TIMEOUT_S
                    )
            except Exception as exc:
                failure = classify(exc)
                _log_gemini_error(failure.status, failure.kind)
                self._obs.gemini_error(kind=failure.kind, status=failure.status)  # telemetry
                if failure.kind == QUOTA:
                    return await self._fail(QUOTA)
                if failure.kind == FATAL and not self._handle:
                    return await self._fail(FATAL)
                if failure.kind == FATAL:
                    self._handle = None  # a stale handle: start the conversation afresh
                    continue
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                continue
            self._session = session
            self._session_changed.set()
            self._go_away = False
            self._ready.set()
            if why == "start":
                await self._send_json(
                    protocol.ready(
                        session_id=self.record_id,
                        resumed=self._resumed,
                        ping_interval_s=settings.WEBSOCKET_PING_INTERVAL,
                        max_duration_s=settings.WEBSOCKET_TIMEOUT,
                    )
                )
            else:
                self._tally.reconnects += 1
                self._obs.reconnected(why=why)  # telemetry
                log.info(
                    "upstream reconnected",
                    extra={
                        "event": "gemini_live_reconnect",
                        "why": why,
                        "attempt": attempt + 1,
                        "resumed": self._handle is not None,
                        "session_id": self.record_id,
                    },
                )
            return session
        return await self._fail("retries")

    async def _fail(self, kind: str) -> None:
        if kind == QUOTA:
            notice = protocol.error(
                "upstream_quota", "The voice partner is over capacity right now. Carry on in text mode."
            )
        else:
            notice = protocol.error(
                "upstream_unavailable", "The voice partner is unavailable right now. Carry on in text mode."
            )
        self._begin_stop("upstream_error", notice)
        return None

    async def _pump(self, session: Any) -> None:
        while True:  # receive() ends at every turn_complete
            async with contextlib.aclosing(session.receive()) as messages:
                async for msg in messages:
                    await self._on_message(msg)
                    if self._go_away and not self._turn_open():
                        return  # between turns: move to a new connection now
            if self._go_away:
                return

    def _turn_open(self) -> bool:
        # A turn is open from the user's first heard or typed word until its turn_complete: the
        # connection that heard it owes the reply, so a goAway waits for that.
        tally = self._tally
        heard = tally.user_text or tally.typed_text or tally.partner_text
        return bool(heard) or tally.first_audio_at is not None

    async def _on_message(self, msg: Any) -> None:
        tally, now = self._tally, time.monotonic()
        update = msg.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self._handle = update.new_handle
        if msg.go_away is not None:
            self._go_away = True
        if msg.usage_metadata is not None:
            tally.usage(msg.usage_metadata)
        sc = msg.server_content
        if sc is None:
            return
        if sc.interrupted:
            tally.interrupted = True
            await self._send_json({"type": "interrupted"})
        if sc.input_transcription is not None and sc.input_transcription.text:
            tally.user_text += sc.input_transcription.text
            await self._send_json(protocol.transcript("user", tally.user_text.strip(), final=False))
        if sc.model_turn is not None and sc.model_turn.parts:
            for part in sc.model_turn.parts:
                blob = part.inline_data
                if blob is not None and blob.data:
                    first = tally.first_audio_at is None
                    tally.partner_audio(len(blob.data), now)
                    if self._browser_open:
                        await self._browser.send_bytes(blob.data)
                    if first:  # telemetry: what the relay added to the turn's first audio
                        tally.relay_ms = (time.monotonic() - now) * 1000
        if sc.output_transcription is not None and sc.output_transcription.text:
            tally.partner_text += sc.output_transcription.text
            await self._send_json(protocol.transcript("partner", tally.partner_text.strip(), final=False))
        if sc.turn_complete:
            await self._turn_complete()

    async def _turn_complete(self) -> None:
        usage = self._tally.split  # this turn's tokens, before take_counters() zeroes them
        turn = self._tally.complete_turn()
        self._obs.turn(turn=turn, usage=usage, relay_ms=turn.relay_ms)  # telemetry
        if turn.user_text:
            await self._send_json(protocol.transcript("user", turn.user_text, final=True))
        if turn.partner_text:
            await self._send_json(protocol.transcript("partner", turn.partner_text, final=True))
        await self._send_json(protocol.turn_complete(latency_ms=turn.latency_ms))
        counters = self._tally.take_counters()
        for key, value in counters.items():
            self._totals[key] = self._totals.get(key, 0) + value
        await self._send_json({"type": "usage", **self._totals, "dropped_audio_ms": self._tally.dropped_ms()})
        await self._persist_q.put((turn, counters))


def _log_gemini_error(status: str, kind: str) -> None:
    log.warning(
        "gemini live error", extra={"event": "gemini_error", "kind": "live", "status": status, "action": kind}
    )
