"""WebSockets to a path no route knows (a scanner, a stale link, a mangled scene id).

URLRouter raises for an unmatched path, which Daphne turns into an HTTP 500 and an ERROR
traceback: noise that feeds the "High error rate" alert. This catch-all, routed last, refuses
such a socket the way the voice consumer refuses an unknown scene: accept, one `error`
message, close 4004, one INFO log line (`ws_rejected`).
"""

from __future__ import annotations

import json
import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import URLPattern, re_path

from audio.protocol import CloseCode, error

log = logging.getLogger(__name__)
_MAX_LOGGED_PATH = 120


class UnknownRouteConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        log.info(
            "websocket to an unknown path",
            extra={
                "event": "ws_rejected",
                "code": int(CloseCode.SCENE_UNAVAILABLE),
                "reason": "unknown_path",
                "path": str(self.scope.get("path", ""))[:_MAX_LOGGED_PATH],
            },
        )
        await self.accept()
        await self.send(text_data=json.dumps(error("not_found", "There is no WebSocket at this address.")))
        await self.close(code=int(CloseCode.SCENE_UNAVAILABLE))


def with_fallback(routes: list[URLPattern]) -> list[URLPattern]:
    """`routes`, then the catch-all (an empty pattern matches every path)."""
    return [*routes, re_path(r"", UnknownRouteConsumer.as_asgi())]
