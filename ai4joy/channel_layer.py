"""The Redis channel layer, made to ride out a Redis outage (a Memorystore failover or restart).

Stock channels_redis raises from `receive()` when Redis goes away, and Channels lets that
exception end the consumer: every live voice socket of the process closed 1011 at once
(audio/tests/test_faults.py showed it). Here instead:

- `receive()` waits the outage out, with backoff, and carries on when Redis is back;
- `send`, `group_send`, `group_add` and `group_discard` during an outage log and return (a
  message sent then is lost, as it would be to a socket that is not there: a supersede or a
  rollout notice during the outage is skipped, never a crash);
- a Redis that comes back empty (restarted, or failed over without replication) has lost every
  group membership, so the layer remembers the memberships of this process's channels and adds
  them again once Redis answers; supersede, rollback, admin end and drain reach old sockets again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis import exceptions as redis_errors

log = logging.getLogger(__name__)
OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
BACKOFF_S = (0.25, 0.5, 1.0, 2.0)  # then every 2 s until Redis answers


class ResilientRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._memberships: defaultdict[str, set[str]] = defaultdict(set)
        self._down = False
        self._rejoin_lock: asyncio.Lock | None = None

    async def receive(self, channel: str) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return await super().receive(channel)
            except OUTAGE as exc:
                self._outage("receive", exc)
            # Wait until Redis answers again, then take up receiving where we left off.
            while True:
                await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
                if await self._rejoin():
                    break

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self._tolerant("send", partial(super().send, channel, message))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self._tolerant("group_send", partial(super().group_send, group, message))

    async def group_add(self, group: str, channel: str) -> None:
        self._memberships[group].add(channel)  # kept even if Redis is down now: added on recovery
        await self._tolerant("group_add", partial(super().group_add, group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        members = self._memberships.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._memberships[group]
        await self._tolerant("group_discard", partial(super().group_discard, group, channel))

    async def _tolerant(self, operation: str, call: Callable[[], Awaitable[None]]) -> None:
        # Twice: the first use of a pooled connection that died with the old Redis fails even
        # when Redis is back; the pool drops it and the second try connects afresh.
        for attempt in range(2):
            try:
                await call()
                return
            except OUTAGE as exc:
                if attempt:
                    self._outage(operation, exc)

    def _outage(self, operation: str, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "channel layer unavailable",
                extra={
                    "event": "channel_layer_unavailable",
                    "operation": operation,
                    "error": type(exc).__name__,
                },
            )

    async def _rejoin(self) -> bool:
        """Once Redis answers: add this process's memberships again. False while it is still down."""
        if self._rejoin_lock is None:
            self._rejoin_lock = asyncio.Lock()
        async with self._rejoin_lock:
            if not self._down:
                return True  # another receiver already did it
            try:
                for group, channels in list(self._memberships.items()):
                    for channel in list(channels):
                        await super().group_add(group, channel)
            except OUTAGE:
                return False
            self._down = False
            log.info(
                "channel layer recovered",
                extra={"event": "channel_layer_recovered", "groups": len(self._memberships)},
            )
            return True
