"""A test-only ASGI app whose consumer keeps the drain contract of audio/drain.py.

It proves the entry point (ai4joy/serve.py) on its own, without Gemini or the store: the
consumer joins the process group, runs a background sender like the real relay, saves
"turns" and its final record to a JSON-lines file (RECORDS_FILE), and on `audio.drain` sends
`reconnect`, cancels its task, finalises, then closes with 4012.

Query options per socket: `id` (names the records), `slow` (seconds the finalising write
takes, to outlast DRAIN_TIMEOUT), `accept_delay` (seconds before accept, to be caught in the
handshake by a drain), `group=0` (never hears the drain event).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from urllib.parse import parse_qs

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ai4joy.settings")
django_asgi_app = get_asgi_application()

from asgiref.sync import sync_to_async  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from audio.drain import RETRY_AFTER_MS, instance_name, process_group_name  # noqa: E402
from audio.protocol import CloseReason  # noqa: E402

DRAIN_REASON = CloseReason.SERVER_RESTART.value

SERVER_RESTART = 4012


def _write(record: dict) -> None:
    with open(Path(os.environ["RECORDS_FILE"]), "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
        out.flush()
        os.fsync(out.fileno())


async def write(record: dict) -> None:
    # In a thread, like a real store write.
    await sync_to_async(_write, thread_sensitive=False)(record)


class ContractConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        query = parse_qs(self.scope["query_string"].decode())
        self.conn_id = query.get("id", ["?"])[0]
        self.slow = float(query.get("slow", ["0"])[0])
        self.finalised = False
        self.ticker: asyncio.Task | None = None
        # group=0: a consumer that never hears the drain event (missed it, or is stuck).
        self.group = process_group_name() if query.get("group", ["1"])[0] == "1" else "audio.elsewhere"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await asyncio.sleep(float(query.get("accept_delay", ["0"])[0]))
        await self.accept()
        self.ticker = asyncio.create_task(self._tick())
        await write({"event": "started", "id": self.conn_id, "instance": instance_name()})
        await self.send(json.dumps({"type": "ready", "group": self.group, "pid": os.getpid()}))

    async def _tick(self) -> None:
        try:
            while True:
                await asyncio.sleep(0.05)
                await self.send(json.dumps({"type": "ping"}))
        finally:
            await asyncio.shield(write({"event": "task_finally", "id": self.conn_id}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data or "{}")
        if message.get("type") == "close":  # any code: the protocol decides what may be sent
            await self.close(code=message["code"], reason=message.get("reason"))
        elif message.get("type") == "text":
            await write({"event": "turn", "id": self.conn_id, "text": message["text"]})
            await self.send(json.dumps({"type": "transcript", "role": "user", "text": message["text"],
                                        "final": True}))

    async def audio_drain(self, event: dict) -> None:
        await self.send(json.dumps({"type": "reconnect", "reason": DRAIN_REASON,
                                    "resume_token": f"token-{self.conn_id}",
                                    "retry_after_ms": RETRY_AFTER_MS}))
        await self._stop_ticker()
        await self._finalise(DRAIN_REASON)
        await self.close(code=SERVER_RESTART, reason="server restarting")

    async def disconnect(self, code: int) -> None:
        await write({"event": "disconnect", "id": self.conn_id, "code": code})
        await self._stop_ticker()
        await self._finalise("network_error")
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _stop_ticker(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
            self.ticker = None

    async def _finalise(self, reason: str) -> None:
        if self.finalised:
            return
        self.finalised = True
        try:
            await asyncio.sleep(self.slow)
            await write({"event": "finalised", "id": self.conn_id, "reason": reason})
        except asyncio.CancelledError:
            await asyncio.shield(write({"event": "cancelled", "id": self.conn_id}))
            raise


application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": URLRouter([path("ws/audio/<str:scene_id>", ContractConsumer.as_asgi())]),
})
