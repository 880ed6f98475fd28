"""The relay's downlink: Live -> browser, one connection after another.

Receives forever (audio/wire.py: model audio as PCM chunks, any other message as the SDK's
LiveServerMessage), forwards 24 kHz audio, transcripts and interruptions, and closes each
turn: final transcripts, `turn_complete`,
`usage`, then hands the finished turn to the relay for saving. Owns the session totals sent
in `usage`. When a connection ends it asks the upstream for the next one (resumed with the
newest handle); a turn the lost connection heard but never answered goes back to the uplink.
Raises UpstreamLost when the conversation cannot go on.

A goAway is acted on between turns only. Live transcribes a spoken line once it has heard its
end, so a line still being spoken has no transcript yet: the user talking (voiced audio in the
last USER_PAUSE_S, or a push-to-talk activity held) counts as a turn in progress too, or the
move would leave the line's beginning with the old connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from audio import protocol
from audio.browser import Browser
from audio.live import FATAL, QUOTA
from audio.metrics import VoiceObserver
from audio.turns import CompletedTurn, SessionTally
from audio.uplink import Uplink
from audio.upstream import Upstream, UpstreamLost
from audio.wire import AudioChunks, LiveWire

TurnSink = Callable[[CompletedTurn, dict[str, int]], Awaitable[None]]
# After the user's last voiced audio, how long a goAway waits before taking the line as ended
# with nothing for Live to answer: its end-of-speech silence (~0.6 s) and the transcript's way back.
USER_PAUSE_S = 2.0


class Downlink:
    def __init__(
        self,
        *,
        browser: Browser,
        upstream: Upstream,
        uplink: Uplink,
        tally: SessionTally,
        session_id: str,
        on_turn: TurnSink,
        observer: VoiceObserver,
    ) -> None:
        self._obs = observer
        self._browser = browser
        self._upstream = upstream
        self._uplink = uplink
        self._tally = tally
        self._session_id = session_id
        self._on_turn = on_turn
        self._totals: dict[str, int] = {}

    @property
    def totals(self) -> dict[str, int]:
        """The session's counters flushed so far (what `usage` reports)."""
        return self._totals

    async def run(self) -> None:
        upstream, why, unanswered = self._upstream, "start", ""
        while True:
            session = await upstream.connect(why)
            if why != "start":
                self._tally.reconnects += 1
                self._obs.reconnected(why=why)  # telemetry
            if why == "start":
                await self._browser.send_json(
                    protocol.ready(
                        session_id=self._session_id,
                        resumed=upstream.resumed,
                        ping_interval_s=settings.WEBSOCKET_PING_INTERVAL,
                        max_duration_s=settings.WEBSOCKET_TIMEOUT,
                    )
                )
            self._uplink.requeue_unanswered(unanswered)
            unanswered = ""
            try:
                await self._pump(session)
                why = "go_away"
            except Exception as exc:
                failure = upstream.failure(exc)
                if failure.kind in (QUOTA, FATAL):
                    raise UpstreamLost(failure) from exc
                why = f"closed_{failure.status}"
                if self._tally.partner_text or self._tally.first_audio_at is not None:
                    # Cut off mid-reply: end the turn here, as an interruption, so the browser
                    # stops waiting and what was said is kept.
                    self._tally.interrupted = True
                    await self._browser.send_json(protocol.interrupted())
                    await self._turn_complete()
                else:
                    unanswered = self._tally.user_text.strip() or self._tally.typed_text
            await upstream.drop()

    async def _pump(self, session: LiveWire) -> None:
        while (wait := self._move_in()) != 0:
            try:
                # Only the wait for the next message is ever timed out (after a goAway, while the
                # player may be mid-line), and cancelling a websockets recv() loses nothing.
                msg = await asyncio.wait_for(session.recv(), wait)
            except TimeoutError:
                continue
            if type(msg) is tuple:  # model audio and nothing else: the hot path
                await self._on_audio(msg)
            else:
                await self._on_message(msg)
        # between turns after a goAway: move to a new connection now

    def _move_in(self) -> float | None:
        """0 to move to a new connection now; else how long to wait for the next message before
        asking again (None: as long as it takes)."""
        if not self._upstream.go_away:
            return None
        tally = self._tally
        # A turn is open from the user's first heard or typed word until its turn_complete: the
        # connection that heard it owes the reply.
        if tally.user_text or tally.typed_text or tally.partner_text or tally.first_audio_at is not None:
            return None
        if tally.talking:  # push-to-talk held: the line is still coming
            return None
        if tally.speech_end_at is not None:  # the user spoke since the last turn: maybe mid-line
            left = tally.speech_end_at + USER_PAUSE_S - time.monotonic()
            if left > 0:
                return left
        return 0

    async def _on_message(self, msg: Any) -> None:
        tally, browser, now = self._tally, self._browser, time.monotonic()
        self._upstream.observe(msg)
        if msg.usage_metadata is not None:
            tally.usage(msg.usage_metadata)
        sc = msg.server_content
        if sc is None:
            return
        if sc.interrupted:
            tally.interrupted = True
            await browser.send_json(protocol.interrupted())
        if sc.input_transcription is not None and sc.input_transcription.text:
            tally.user_text += sc.input_transcription.text
            await browser.send_json(protocol.transcript("user", tally.user_text.strip(), final=False))
        if sc.model_turn is not None and sc.model_turn.parts:
            blobs = (part.inline_data for part in sc.model_turn.parts)
            await self._on_audio(tuple(blob.data for blob in blobs if blob and blob.data), now)
        if sc.output_transcription is not None and sc.output_transcription.text:
            tally.partner_text += sc.output_transcription.text
            await browser.send_json(protocol.transcript("partner", tally.partner_text.strip(), final=False))
        if sc.turn_complete:
            await self._turn_complete()

    async def _on_audio(self, chunks: AudioChunks, now: float | None = None) -> None:
        tally, browser = self._tally, self._browser
        now = time.monotonic() if now is None else now
        for pcm in chunks:
            if not pcm:
                continue
            first = tally.first_audio_at is None
            tally.partner_audio(len(pcm), now)
            await browser.send_bytes(pcm)
            if first:  # telemetry: what the relay added to the turn's first audio
                tally.relay_ms = (time.monotonic() - now) * 1000

    async def _turn_complete(self) -> None:
        browser = self._browser
        usage = self._tally.split  # this turn's tokens, before take_counters() zeroes them
        turn = self._tally.complete_turn()
        self._obs.turn(turn=turn, usage=usage, relay_ms=turn.relay_ms)  # telemetry
        if turn.user_text:
            await browser.send_json(protocol.transcript("user", turn.user_text, final=True))
        if turn.partner_text:
            await browser.send_json(protocol.transcript("partner", turn.partner_text, final=True))
        await browser.send_json(protocol.turn_complete(latency_ms=turn.latency_ms))
        counters = self._tally.take_counters()
        for key, value in counters.items():
            self._totals[key] = self._totals.get(key, 0) + value
        dropped = self._tally.dropped_ms()
        await browser.send_json(protocol.usage(totals=self._totals, dropped_audio_ms=dropped))
        await self._on_turn(turn, counters)
