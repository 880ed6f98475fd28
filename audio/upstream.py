"""The relay's upstream: one Gemini Live conversation across however many connections it takes.

Owns the current connection (audio/live.py's LiveConnection), the newest session-resumption
handle and whether the service asked us to move (goAway). `connect()` opens a connection,
resuming with the handle when there is one, and retries transient failures with backoff; when
retrying cannot help it raises `UpstreamLost`, which carries the classification. The uplink
waits on `session()`; the downlink reads a connection until it ends, then `drop()`s it and
connects again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from audio.live import FATAL, QUOTA, Failure, LiveConnection, classify
from audio.metrics import VoiceObserver
from audio.wire import LiveWire

log = logging.getLogger("audio.relay")
CONNECT_TIMEOUT_S = 10.0
RETRY_BACKOFF_S = (0.2, 0.5, 1.0)  # one sleep per failed attempt; then give up with 4011
RETRIES = "retries"  # UpstreamLost.failure.kind when every attempt failed transiently


class UpstreamLost(Exception):
    """The Live conversation is over and cannot be continued: out of quota, refused, or retries
    used up. `failure.kind` is QUOTA, FATAL or RETRIES."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"gemini live lost: {failure.kind} ({failure.status})")
        self.failure = failure

    @property
    def quota(self) -> bool:
        return self.failure.kind == QUOTA


class Upstream:
    def __init__(
        self,
        *,
        system_instruction: str,
        push_to_talk: bool,
        resume_handle: str | None,
        session_id: str,
        observer: VoiceObserver,
    ) -> None:
        self._obs = observer
        self._conn = LiveConnection(system_instruction=system_instruction, push_to_talk=push_to_talk)
        self._session_id = session_id
        self.handle = resume_handle
        self.resumed = resume_handle is not None  # this socket continues an earlier conversation
        self.go_away = False
        self._session: LiveWire | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()

    # --- for the uplink ------------------------------------------------------------------------
    async def session(self) -> LiveWire:
        """The connected session, once there is one."""
        while self._session is None:
            await self._ready.wait()
        return self._session

    async def replaced(self, session: LiveWire) -> None:
        """Return once `session` is no longer the current one (a send on it failed)."""
        while self._session is session:
            self._changed.clear()
            await self._changed.wait()

    # --- for the downlink ----------------------------------------------------------------------
    async def connect(self, why: str) -> LiveWire:
        """A new connection (resumed with the newest handle); raises UpstreamLost."""
        for attempt, backoff in enumerate(RETRY_BACKOFF_S):
            try:
                with self._obs.upstream_connect(resume=self.handle is not None):  # telemetry: a span
                    session = await self._conn.open(resume_handle=self.handle, open_timeout=CONNECT_TIMEOUT_S)
            except Exception as exc:
                failure = self.failure(exc)
                if failure.kind == QUOTA or (failure.kind == FATAL and not self.handle):
                    raise UpstreamLost(failure) from exc
                if failure.kind == FATAL:
                    self.handle = None  # a stale handle: start the conversation afresh
                    continue
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                continue
            self._session = wire = LiveWire(session)
            self._changed.set()
            self.go_away = False
            self._ready.set()
            if why != "start":
                log.info(
                    "upstream reconnected",
                    extra={
                        "event": "gemini_live_reconnect",
                        "why": why,
                        "attempt": attempt + 1,
                        "resumed": self.handle is not None,
                        "session_id": self._session_id,
                    },
                )
            return wire
        raise UpstreamLost(Failure(RETRIES, RETRIES))

    def failure(self, exc: BaseException) -> Failure:
        """Classify (and log) why a connection failed."""
        failure = classify(exc)
        self._obs.gemini_error(kind=failure.kind, status=failure.status)  # telemetry
        log.warning(
            "gemini live error",
            extra={"event": "gemini_error", "kind": "live", "status": failure.status, "action": failure.kind},
        )
        return failure

    def observe(self, msg: Any) -> None:
        """Keep the newest resumption handle and note a goAway, from any server message."""
        update = msg.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self.handle = update.new_handle
        if msg.go_away is not None:
            self.go_away = True

    async def drop(self) -> None:
        """The current connection is finished: the uplink waits for the next one."""
        self._ready.clear()
        self._session = None
        self._changed.set()
        await self._conn.close()

    async def close(self) -> None:
        await self._conn.close()
