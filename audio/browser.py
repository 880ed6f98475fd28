"""The relay's side of the browser socket: what it needs from the consumer, and whether it is open.

Sends never raise (the browser may vanish mid-send; the consumer's disconnect tells the relay)
and stop once the socket is closed or gone, so the relay's tasks need not check.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from audio import protocol

log = logging.getLogger("audio.relay")


class BrowserPort(Protocol):
    """What the consumer offers the relay."""

    async def send_json(self, message: protocol.ServerMessage) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int, reason: str | None = None) -> None: ...


class Browser:
    def __init__(self, port: BrowserPort, *, session_id: str) -> None:
        self._port = port
        self._session_id = session_id
        self.open = True

    def gone(self) -> None:
        """The consumer saw the socket close: send nothing more."""
        self.open = False

    async def send_json(self, message: protocol.ServerMessage) -> None:
        if self.open:
            with contextlib.suppress(Exception):  # the browser may vanish mid-send
                await self._port.send_json(message)

    async def send_bytes(self, data: bytes) -> None:
        if self.open:
            await self._port.send_bytes(data)

    async def close(self, reason: protocol.CloseReason) -> None:
        if not self.open:
            return
        self.open = False
        try:
            # A plain int: autobahn (under Daphne) refuses an IntEnum close code. The reason name
            # travels as the close reason too (the drain entry point forwards it).
            await self._port.close(int(reason.code), reason.value)
        except Exception:
            log.warning(
                "could not close the browser socket",
                exc_info=True,
                extra={"event": "audio_close_failed", "session_id": self._session_id},
            )
