"""TurnWriter: saves a voice session's finished turns and counters, in order, and rides out a
store outage (Cloud SQL failing over, Firestore unavailable) without losing a turn.

A turn that cannot be saved because the store is unreachable stays queued in memory (at most
MAX_PENDING turns: the relay waits beyond that, which is minutes of talk) and is retried with
backoff; later turns wait behind it so the transcript keeps its order. A save that failed
half-way is finished without writing a line twice (services.voice_turn_save_again). The player
hears nothing of a short outage; one that lasts VOICE_SAVE_NOTICE_S gets a `saving`
{delayed: true} message, and `saving` {delayed: false} once everything is written. Any other
failure (a bug, a scene that is gone) is logged and that turn skipped, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from django.conf import settings

from audio import protocol, services
from audio.browser import Browser
from audio.metrics import VoiceObserver
from audio.turns import CompletedTurn

log = logging.getLogger(__name__)
MAX_PENDING = 64
RETRY_S = (0.25, 0.5, 1.0, 2.0)  # then every 2 s while the store stays down

Job = tuple[CompletedTurn, dict[str, int]]


class TurnWriter:
    def __init__(
        self,
        *,
        scene_id: str,
        user_id: int,
        session_id: str,
        browser: Browser,
        resume_handle: Callable[[], str | None],
        observer: VoiceObserver,
    ) -> None:
        self._observer = observer
        self._scene_id = scene_id
        self._user_id = user_id
        self._session_id = session_id
        self._browser = browser
        self._resume_handle = resume_handle
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue(MAX_PENDING)
        self._in_flight = 0
        self._delayed_since: float | None = None
        self._told = False
        self._finishing = False

    @property
    def pending(self) -> int:
        """Turns not written yet (queued, or being written)."""
        return self._queue.qsize() + self._in_flight

    async def put(self, turn: CompletedTurn, counters: dict[str, int]) -> None:
        await self._queue.put((turn, counters))

    def finish(self, partial: CompletedTurn | None) -> None:
        """No more turns after `partial` (a turn cut short by the end of the session)."""
        self._finishing = True
        if partial is not None:
            try:
                self._queue.put_nowait((partial, {}))
            except asyncio.QueueFull:  # a long outage filled the queue: say so, never crash the close
                log.error(
                    "voice turn not queued: the queue is full",
                    extra={"event": "voice_turns_lost", "session_id": self._session_id, "turns": 1},
                )
        if self._queue.empty():
            self._queue.put_nowait(None)  # wakes run(); otherwise it stops after the last queued turn

    async def run(self) -> None:
        while (job := await self._queue.get()) is not None:
            self._in_flight = 1
            try:
                await self._write(*job)
            finally:
                self._in_flight = 0
            if self._finishing and self._queue.empty():
                return

    def log_lost(self) -> None:
        """Called when the session ends before everything could be written."""
        if self.pending:
            log.error(
                "voice turns not saved before the session ended",
                extra={"event": "voice_turns_lost", "session_id": self._session_id, "turns": self.pending},
            )

    async def _write(self, turn: CompletedTurn, counters: dict[str, int]) -> None:
        saved, attempt = False, 0
        messages: list[protocol.RoomMessage | protocol.CoachMessage] = []
        while True:
            try:
                with self._observer.store_write("voice_turn_save"):  # telemetry: a span per attempt
                    if not saved:
                        save = services.voice_turn_save_again if attempt else services.voice_turn_save
                        messages = await save(scene_id=self._scene_id, user_id=self._user_id, turn=turn)
                        saved = True
                    await services.audio_session_flush(
                        session_id=self._session_id, counters=counters, resume_handle=self._resume_handle()
                    )
                break
            except Exception as exc:
                if not services.is_store_outage(exc):
                    log.exception(
                        "voice turn not saved",
                        extra={"event": "voice_turn_save_failed", "session_id": self._session_id},
                    )
                    return
                await self._wait_out(exc, attempt)
                attempt += 1
        if self._delayed_since is not None and self._queue.qsize() == 0:
            await self._recovered()
        for message in messages:
            await self._browser.send_json(message)

    async def _wait_out(self, exc: BaseException, attempt: int) -> None:
        now = time.monotonic()
        if self._delayed_since is None:
            self._delayed_since = now
            log.warning(
                "voice turns not saved yet: the store is unavailable",
                extra={
                    "event": "voice_turn_save_delayed",
                    "session_id": self._session_id,
                    "error": type(exc).__name__,
                },
            )
        if not self._told and now - self._delayed_since >= float(settings.VOICE_SAVE_NOTICE_S):
            self._told = True
            await self._browser.send_json(protocol.saving(delayed=True, pending=self.pending))
        await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])

    async def _recovered(self) -> None:
        assert self._delayed_since is not None
        log.info(
            "voice turns saved after a store outage",
            extra={
                "event": "voice_turn_save_recovered",
                "session_id": self._session_id,
                "outage_s": round(time.monotonic() - self._delayed_since, 3),
            },
        )
        if self._told:
            await self._browser.send_json(protocol.saving(delayed=False, pending=0))
        self._delayed_since, self._told = None, False
