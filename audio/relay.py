"""LiveRelay: one browser voice socket <-> one Gemini Live conversation, started and ended here.

Made of small parts that each own their state:
- `Upstream` (audio/upstream.py): the Live connection, the resumption handle, connect/resume/retry;
- `Uplink` (audio/uplink.py): browser audio and control messages -> Live;
- `Downlink` (audio/downlink.py): Live -> browser, turn ends;
- `Browser` (audio/browser.py): the browser socket, and whether it is still open;
- `SessionTally` (audio/turns.py): the turn in progress and the counters.

The relay itself owns the lifecycle (its tasks, started in `start()`, ended once in `stop()`),
the keepalive (pings, idle close, the WEBSOCKET_TIMEOUT duration cap with a warning a minute
before) and persistence (`TurnWriter`, audio/persist.py: finished turns and counters saved by
one task, so slow writes never stall the audio, and queued through a store outage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from django.conf import settings

from audio import protocol, services
from audio.browser import Browser, BrowserPort
from audio.downlink import Downlink
from audio.metrics import VoiceObserver
from audio.persist import TurnWriter
from audio.protocol import CloseReason
from audio.turns import SessionTally
from audio.uplink import Uplink
from audio.upstream import Upstream, UpstreamLost

log = logging.getLogger(__name__)
PERSIST_TIMEOUT_S = 3.0

__all__ = ["BrowserPort", "LiveRelay"]


class LiveRelay:
    def __init__(
        self,
        *,
        browser: BrowserPort,
        scene_id: str,
        user_id: int,
        record_id: str,
        system_instruction: str,
        resume_handle: str | None = None,
        push_to_talk: bool = False,
        trace_parent: Any = None,
    ) -> None:
        self.record_id = record_id
        # telemetry: the session's metrics and trace (audio/metrics.py); nothing per frame
        self._obs = VoiceObserver(
            record_id=record_id, scene_id=scene_id, resumed=resume_handle is not None, parent=trace_parent
        )
        self._scene_id = scene_id
        self._user_id = user_id
        self._browser = Browser(browser, session_id=record_id)
        self._tally = SessionTally()
        self._upstream = Upstream(
            system_instruction=system_instruction,
            push_to_talk=push_to_talk,
            resume_handle=resume_handle,
            session_id=record_id,
            observer=self._obs,
        )
        self._uplink = Uplink(tally=self._tally, push_to_talk=push_to_talk)
        # The parts get what they need, never the relay (no bound method, no closure over self):
        # a part that pointed back would make every session a reference cycle, freed only by a
        # full collection, long after its socket closed (test_memory.py).
        upstream = self._upstream
        self._writer = TurnWriter(
            scene_id=scene_id,
            user_id=user_id,
            session_id=record_id,
            browser=self._browser,
            resume_handle=lambda: upstream.handle,
            observer=self._obs,
        )
        self._downlink = Downlink(
            browser=self._browser,
            upstream=self._upstream,
            uplink=self._uplink,
            tally=self._tally,
            session_id=record_id,
            on_turn=self._writer.put,
            observer=self._obs,
        )
        self._missed_pings = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._persist_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._started = time.monotonic()

    # --- browser -> relay (called by the consumer, per frame or message) -------------------------
    def feed_audio(self, pcm: bytes) -> None:
        self._uplink.feed_audio(pcm)

    def control(self, kind: str, text: str = "") -> None:
        self._uplink.control(kind, text)

    def alive(self) -> None:
        self._missed_pings = 0

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        with self._obs.activated():  # telemetry: the tasks (and their log lines) join the session trace
            self._tasks = [
                asyncio.create_task(self._guard(coro))
                for coro in (self._run_downlink(), self._uplink.run(self._upstream), self._keepalive())
            ]
            self._persist_task = asyncio.create_task(self._writer.run())

    @property
    def stopping(self) -> bool:
        return self._stopping is not None

    async def stop(
        self,
        reason: CloseReason | str,
        *,
        notice: protocol.ServerMessage | None = None,
        browser_gone: bool = False,
    ) -> None:
        """End the session once (the first reason wins); safe to call from any task."""
        if browser_gone:
            self._browser.gone()
        await asyncio.shield(self._begin_stop(CloseReason(reason), notice))

    def _begin_stop(self, reason: CloseReason, notice: protocol.ServerMessage | None) -> asyncio.Future[None]:
        # Shutdown runs as its own task: it cancels the relay's tasks, possibly the caller's.
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._shutdown(reason, notice))
        return self._stopping

    async def _shutdown(self, reason: CloseReason, notice: protocol.ServerMessage | None) -> None:
        if notice is not None:
            await self._browser.send_json(notice)
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=2.0)
        # A cancelled task keeps its CancelledError, whose traceback holds the task's frames and
        # through them this relay: let go of the tasks, or the session is a cycle (test_memory.py).
        self._tasks = []
        if self._persist_task is not None:
            partial = self._tally.complete_turn()  # a turn cut short is still part of the scene
            self._writer.finish(partial if partial.user_text or partial.partner_text else None)
            done, _ = await asyncio.wait({self._persist_task}, timeout=PERSIST_TIMEOUT_S)
            if not done:
                self._writer.log_lost()
                self._persist_task.cancel()
            self._persist_task = None
        handle = self._upstream.handle
        final = self._tally.take_counters()
        if self._tally.dropped_bytes:
            final["dropped_bytes"] = self._tally.dropped_bytes  # whole session, written once
        with self._obs.store_write("audio_session_close"):
            await services.audio_session_close(
                session_id=self.record_id,
                user_id=self._user_id,
                scene_id=self._scene_id,
                reason=reason,
                counters=final,
                resume_handle=handle,
                duration_s=time.monotonic() - self._started,
                dropped_ms=self._tally.dropped_ms(),
            )
        self._obs.ended(  # telemetry
            reason=reason.value,
            failed=reason.failed,
            bytes_in=self._downlink.totals.get("bytes_in", 0) + final.get("bytes_in", 0),
            dropped_bytes=self._tally.dropped_bytes,
        )
        # Close upstream before the browser: it may resume the session at once elsewhere, and
        # Live refuses to resume a session whose old socket is still open.
        await self._upstream.close()
        await self._browser.close(reason)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("voice relay task failed", extra={"event": "audio_relay_error"})
            self._begin_stop(CloseReason.UPSTREAM_ERROR, protocol.server_error())

    async def _run_downlink(self) -> None:
        try:
            await self._downlink.run()
        except UpstreamLost as lost:
            notice = protocol.upstream_quota() if lost.quota else protocol.closing(CloseReason.UPSTREAM_ERROR)
            self._begin_stop(CloseReason.UPSTREAM_ERROR, notice)

    # --- keepalive and the duration cap -----------------------------------------------------------
    async def _keepalive(self) -> None:
        interval = float(settings.WEBSOCKET_PING_INTERVAL)
        cap = float(settings.WEBSOCKET_TIMEOUT)
        lead = min(60.0, cap / 2)
        warn_at, next_ping, warned = self._started + cap - lead, self._started + interval, False
        while True:
            now = time.monotonic()
            if now >= self._started + cap:
                await self.stop(CloseReason.DURATION_CAP, notice=protocol.closing(CloseReason.DURATION_CAP))
                return
            if not warned and now >= warn_at:
                warned = True
                await self._browser.send_json(
                    protocol.warning(reason=CloseReason.DURATION_CAP.value, seconds_left=round(lead))
                )
            if now >= next_ping:
                if self._missed_pings >= 2:
                    await self.stop(
                        CloseReason.IDLE_TIMEOUT, notice=protocol.closing(CloseReason.IDLE_TIMEOUT)
                    )
                    return
                self._missed_pings += 1
                next_ping = now + interval
                await self._browser.send_json(protocol.ping(t=round(time.time() * 1000)))
            deadline = min(next_ping, self._started + cap, warn_at if not warned else next_ping)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
