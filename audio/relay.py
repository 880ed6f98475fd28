"""LiveRelay: one browser voice socket <-> one Gemini Live session, and every task between them.

Tasks, all owned here and cancelled in `stop()`:
- uplink: browser PCM (16 kHz) -> Live, batched to 40-100 ms; push-to-talk and typed text in order;
- downlink (audio/downlink.py): Live -> browser (24 kHz audio, transcripts, interruptions, turn
  ends); it also owns the upstream connection: connect, resume after goAway or a resumable
  close, bounded retries;
- keepalive: ping every WEBSOCKET_PING_INTERVAL, idle close after two unanswered pings, and the
  WEBSOCKET_TIMEOUT duration cap with a warning a minute before;
- persist: saves finished turns and flushes counters, so slow writes never stall the audio.

Per audio frame the relay only appends to a bounded buffer (stale audio is dropped, oldest first).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import warnings
from typing import Any, Protocol

from django.conf import settings
from google.genai import types

from audio import protocol, services
from audio.downlink import DownlinkMixin
from audio.live import LiveConnection
from audio.metrics import VoiceObserver
from audio.turns import CompletedTurn, SessionTally

with warnings.catch_warnings():  # audioop.rms is the cheapest loudness check in 3.11's stdlib
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

log = logging.getLogger(__name__)

BATCH_MIN = protocol.IN_RATE * 2 * 40 // 1000  # 40 ms of PCM16
BATCH_MAX = protocol.IN_RATE * 2 * 100 // 1000  # 100 ms
FLUSH_TAIL_S = 0.1  # send a short tail rather than hold it for the next frame
HOLD_BYTES = protocol.IN_RATE * 2  # at most 1 s of input waits for the upstream
SPEECH_RMS = 300  # a batch louder than this counts as the user speaking (latency measure)
PERSIST_TIMEOUT_S = 3.0
FAILED_REASONS = frozenset({"upstream_error"})
RESUMABLE_REASONS = frozenset({"server_restart", "network_error", "idle_timeout"})


class BrowserPort(Protocol):
    async def send_json(self, message: protocol.ServerMessage) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int, reason: str | None = None) -> None: ...


class LiveRelay(DownlinkMixin):
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
        self._browser = browser
        self._browser_open = True
        self._scene_id = scene_id
        self._user_id = user_id
        self._conn = LiveConnection(system_instruction=system_instruction, push_to_talk=push_to_talk)
        self._push_to_talk = push_to_talk
        self._handle = resume_handle
        self._resumed = resume_handle is not None
        self._session: Any = None
        self._ready = asyncio.Event()
        self._session_changed = asyncio.Event()
        self._buf = bytearray()
        self._wake = asyncio.Event()
        self._control: collections.deque[tuple[str, str]] = collections.deque(maxlen=64)
        self._tally = SessionTally()
        self._totals: dict[str, int] = {}
        self._go_away = False
        self._missed_pings = 0
        self._persist_q: asyncio.Queue[tuple[CompletedTurn, dict[str, int]] | None] = asyncio.Queue(64)
        self._tasks: list[asyncio.Task[None]] = []
        self._persist_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._started = time.monotonic()
        # telemetry: the session's metrics and trace (audio/metrics.py); nothing per frame
        self._obs = VoiceObserver(
            record_id=record_id, scene_id=scene_id, resumed=self._resumed, parent=trace_parent
        )

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        with self._obs.activated():  # telemetry: the tasks (and their log lines) join the session trace
            self._tasks = [
                asyncio.create_task(self._guard(coro))
                for coro in (self._downlink(), self._uplink(), self._keepalive())
            ]
            self._persist_task = asyncio.create_task(self._persist_loop())

    @property
    def stopping(self) -> bool:
        return self._stopping is not None

    async def stop(
        self, reason: str, *, notice: protocol.ServerMessage | None = None, browser_gone: bool = False
    ) -> None:
        """End the session once (the first reason wins); safe to call from any task."""
        if browser_gone:
            self._browser_open = False
        await asyncio.shield(self._begin_stop(reason, notice))

    def _begin_stop(self, reason: str, notice: protocol.ServerMessage | None) -> asyncio.Future[None]:
        # Shutdown runs as its own task: it cancels the relay's tasks, possibly the caller's.
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._shutdown(reason, notice))
        return self._stopping

    async def _shutdown(self, reason: str, notice: protocol.ServerMessage | None) -> None:
        if notice is not None:
            await self._send_json(notice)
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=2.0)
        if self._persist_task is not None:
            partial = self._tally.complete_turn()  # a turn cut short is still part of the scene
            if partial.user_text or partial.partner_text:
                self._persist_q.put_nowait((partial, {}))
            self._persist_q.put_nowait(None)
            done, _ = await asyncio.wait({self._persist_task}, timeout=PERSIST_TIMEOUT_S)
            if not done:
                self._persist_task.cancel()
        final = self._tally.take_counters()
        if self._tally.dropped_bytes:
            final["dropped_bytes"] = self._tally.dropped_bytes  # whole session, written once
        with self._obs.store_write("audio_session_close"):
            await services.audio_session_close(
                session_id=self.record_id,
                user_id=self._user_id,
                scene_id=self._scene_id,
                reason=reason,
                failed=reason in FAILED_REASONS,
                resumable=reason in RESUMABLE_REASONS and bool(self._handle),
                counters=final,
                resume_handle=self._handle,
                duration_s=time.monotonic() - self._started,
                dropped_ms=self._tally.dropped_ms(),
            )
        self._obs.ended(  # telemetry
            reason=reason,
            failed=reason in FAILED_REASONS,
            bytes_in=self._totals.get("bytes_in", 0) + final.get("bytes_in", 0),
            dropped_bytes=self._tally.dropped_bytes,
        )
        # Close upstream before the browser: it may resume the session at once elsewhere, and
        # Live refuses to resume a session whose old socket is still open.
        await self._conn.close()
        if self._browser_open:
            self._browser_open = False
            # A plain int: autobahn (under Daphne) refuses an IntEnum close code.
            code = int(protocol.CLOSE_REASONS.get(reason, protocol.CloseCode.NORMAL))
            try:
                # The reason name travels as the close reason too (the drain entry point forwards it).
                await self._browser.close(code, reason)
            except Exception:
                log.warning(
                    "could not close the browser socket",
                    exc_info=True,
                    extra={"event": "audio_close_failed", "session_id": self.record_id},
                )

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("voice relay task failed", extra={"event": "audio_relay_error"})
            self._begin_stop(
                "upstream_error",
                protocol.error(
                    "server_error", "Voice stopped because of a server error. Carry on in text mode."
                ),
            )

    # --- browser -> relay (called by the consumer) --------------------------------------------
    def feed_audio(self, pcm: bytes) -> None:
        buf = self._buf
        buf += pcm
        self._tally.bytes_in += len(pcm)
        over = len(buf) - HOLD_BYTES
        if over > 0:
            over += over & 1  # keep whole samples
            del buf[:over]
            self._tally.dropped_bytes += over
        if len(buf) >= BATCH_MIN:
            self._wake.set()

    def control(self, kind: str, text: str = "") -> None:
        now = time.monotonic()
        if kind == "activity_end":
            self._tally.speech_end_at = now
        elif kind == "text":
            self._tally.typed(text, now)
        if kind != "text" and not self._push_to_talk:
            return  # with voice detection on, the service finds turns itself (and refuses these)
        self._control.append((kind, text))
        self._wake.set()

    def alive(self) -> None:
        self._missed_pings = 0

    # --- uplink ------------------------------------------------------------------------------------
    async def _uplink(self) -> None:
        buf = self._buf
        while True:
            if not self._control and len(buf) < BATCH_MIN:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), FLUSH_TAIL_S if buf else None)
            await self._ready.wait()
            session = self._session
            try:
                if self._control:
                    while buf:
                        await self._send_audio(session)
                    kind, text = self._control.popleft()
                    if kind == "text":
                        await session.send_realtime_input(text=text)
                    elif kind == "activity_start":
                        await session.send_realtime_input(activity_start=types.ActivityStart())
                    else:
                        await session.send_realtime_input(activity_end=types.ActivityEnd())
                elif buf:
                    await self._send_audio(session)
            except Exception:  # the downlink sees the same failure and reconnects
                while self._session is session and not self.stopping:
                    self._session_changed.clear()
                    await self._session_changed.wait()

    async def _send_audio(self, session: Any) -> None:
        chunk = bytes(self._buf[:BATCH_MAX])
        del self._buf[: len(chunk)]
        if audioop.rms(chunk, 2) >= SPEECH_RMS:
            self._tally.voiced(time.monotonic())
        await session.send_realtime_input(audio=types.Blob(data=chunk, mime_type=protocol.IN_MIME))

    # --- persistence ---------------------------------------------------------------------------------
    async def _persist_loop(self) -> None:
        while (job := await self._persist_q.get()) is not None:
            turn, counters = job
            try:
                with self._obs.store_write("voice_turn_save"):
                    messages = await services.voice_turn_save(
                        scene_id=self._scene_id, user_id=self._user_id, turn=turn
                    )
                    await services.audio_session_flush(
                        session_id=self.record_id, counters=counters, resume_handle=self._handle
                    )
            except Exception:
                log.exception(
                    "voice turn not saved",
                    extra={"event": "voice_turn_save_failed", "session_id": self.record_id},
                )
                continue
            for message in messages:
                await self._send_json(message)

    # --- keepalive and the duration cap -----------------------------------------------------------
    async def _keepalive(self) -> None:
        interval = float(settings.WEBSOCKET_PING_INTERVAL)
        cap = float(settings.WEBSOCKET_TIMEOUT)
        lead = min(60.0, cap / 2)
        warn_at, next_ping, warned = self._started + cap - lead, self._started + interval, False
        while True:
            now = time.monotonic()
            if now >= self._started + cap:
                await self.stop(
                    "duration_cap",
                    notice=protocol.error("duration_cap", "This voice session reached its time limit."),
                )
                return
            if not warned and now >= warn_at:
                warned = True
                await self._send_json(protocol.warning(reason="duration_cap", seconds_left=round(lead)))
            if now >= next_ping:
                if self._missed_pings >= 2:
                    await self.stop(
                        "idle_timeout",
                        notice=protocol.error(
                            "idle_timeout", "No answer to pings; closing the voice session."
                        ),
                    )
                    return
                self._missed_pings += 1
                next_ping = now + interval
                await self._send_json({"type": "ping", "t": round(time.time() * 1000)})
            deadline = min(next_ping, self._started + cap, warn_at if not warned else next_ping)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    async def _send_json(self, message: protocol.ServerMessage) -> None:
        if self._browser_open:
            with contextlib.suppress(Exception):  # the browser may vanish mid-send
                await self._browser.send_json(message)
