"""The voice socket /ws/audio/<scene_id>: checks the handshake, then hands frames to LiveRelay.

Channel-layer groups joined (event type -> handler):
- `audio.user.<id>` (audio/groups.py): `audio.supersede` (a newer socket of the same user: close
  4009) and the admin's `audio.end` (close 1000);
- `rollout.audio_v2`: `rollout.changed` (re-check audio_v2; close 4014 if the user is out);
- `audio.drain.<host>.<pid>` (audio/drain.py): `audio.drain` (server restarting: `reconnect`
  with a resume token, then close 4012).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from audio import protocol, selectors, services
from audio.drain import process_group_name
from audio.groups import SUPERSEDE_EVENT, user_group
from audio.live import system_instruction_for
from audio.metrics import parent_from_headers
from audio.protocol import CloseReason
from audio.relay import LiveRelay
from flags.rollout import ROLLOUT_GROUP, aaudio_v2_enabled

log = logging.getLogger(__name__)
MAX_BAD_MESSAGES = 5  # consecutive malformed messages before 4000
# Why the socket went, by the close code Daphne reports: the browser left (1000/1001), or the
# WebSocket layer refused a frame over its size cap (1009, ai4joy/serve.py); anything else is the network.
_DISCONNECT_REASONS = {
    1000: CloseReason.CLIENT_CLOSE,
    1001: CloseReason.CLIENT_CLOSE,
    1009: CloseReason.TOO_BIG,
}


class AudioConsumer(AsyncWebsocketConsumer):
    relay: LiveRelay | None = None
    _joined: tuple[str, ...] = ()
    _bad_messages = 0

    # --- dispatch ----------------------------------------------------------------------------------
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # AsyncConsumer.__call__ (channels 4.3), but with `dispatch_in_order` in place of
        # channels.utils.await_many_dispatch, which makes a task and an asyncio.wait for every
        # message: ~10 us of a 40 ms audio frame's cost (make bench).
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        try:
            with contextlib.suppress(StopConsumer):
                await dispatch_in_order(sources, self.dispatch)
        finally:
            self.relay = None  # it points back at us (its Browser): no cycle left behind

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels awaits aclose_old_connections() before every handler: a hop onto the one
        # thread that runs all thread-sensitive sync work, database writes included, so at 25
        # audio frames a second per socket the frames queue behind every turn being saved. The
        # frame handler touches no database (what it starts that does goes through
        # database_sync_to_async, which closes stale connections itself); every other message
        # keeps Channels' hygiene.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    # --- handshake -------------------------------------------------------------------------------
    async def connect(self) -> None:
        user = self.scope.get("user")
        scene_id = self.scope["url_route"]["kwargs"]["scene_id"]
        try:
            scene = await selectors.voice_scene_for(user=user, scene_id=scene_id)
        except selectors.Rejection as rejection:
            return await self._reject(rejection)
        mine = user_group(user.pk)
        # Tell an older socket of this user to leave before joining, so it is not told about us twice.
        await self.channel_layer.group_send(mine, {"type": SUPERSEDE_EVENT, "channel": self.channel_name})
        self._joined = (mine, ROLLOUT_GROUP, process_group_name())
        for group in self._joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        token = _query(self.scope, "resume")
        handle = await selectors.resume_handle_for(user_id=user.pk, scene_id=scene.id, token=token)
        record = await services.audio_session_open(
            user_id=user.pk, scene_id=scene.id, resumed_from=token if handle else ""
        )
        instruction = await database_sync_to_async(system_instruction_for)(scene)
        self.relay = LiveRelay(
            browser=self,
            scene_id=scene.id,
            user_id=user.pk,
            record_id=record.id,
            system_instruction=instruction,
            resume_handle=handle,
            push_to_talk=_query(self.scope, "ptt") in ("1", "true"),
            trace_parent=parent_from_headers(self.scope.get("headers")),  # telemetry
        )
        self.relay.start()

    async def _reject(self, rejection: selectors.Rejection) -> None:
        # Accept first: a browser reads neither a close code nor a message from a refused handshake.
        log.info(
            "voice socket rejected",
            extra={"event": "ws_rejected", "code": int(rejection.code), "reason": rejection.error_code},
        )
        await self.accept()
        await self.send_json(protocol.error(rejection.error_code, rejection.message))
        await self.close(code=int(rejection.code))

    async def disconnect(self, code: int) -> None:
        if self.relay is not None:
            reason = _DISCONNECT_REASONS.get(code, CloseReason.NETWORK_ERROR)
            await self.relay.stop(reason, browser_gone=True)
        for group in self._joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- frames from the browser --------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        relay = self.relay
        if relay is None or relay.stopping:
            return
        if bytes_data is not None:
            if len(bytes_data) > protocol.MAX_FRAME_BYTES:
                return await self._too_big()
            if len(bytes_data) & 1:
                return await self._bad(protocol.ProtocolError("PCM16 frames must have an even byte count"))
            self._bad_messages = 0  # a good frame ends a run of bad ones (the limit is consecutive)
            relay.feed_audio(bytes_data)
            return
        if text_data is None:
            return
        if len(text_data) > protocol.MAX_FRAME_BYTES:
            return await self._too_big()
        try:
            message = protocol.parse_client_message(text_data)
        except protocol.ProtocolError as exc:
            return await self._bad(exc)
        self._bad_messages = 0
        await self._dispatch(relay, message)

    async def _dispatch(self, relay: LiveRelay, message: protocol.ClientMessage) -> None:
        if isinstance(message, protocol.Audio):
            relay.feed_audio(message.pcm)
        elif isinstance(message, protocol.Pong):
            relay.alive()
        elif isinstance(message, protocol.Ping):
            relay.alive()
            await self.send_json(protocol.pong(t=message.t))
        elif isinstance(message, protocol.Text):
            relay.control("text", message.text)
        elif isinstance(message, protocol.ActivityStart):
            relay.control("activity_start")
        elif isinstance(message, protocol.ActivityEnd):
            relay.control("activity_end")
        elif isinstance(message, protocol.End):
            await relay.stop(CloseReason.CLIENT_CLOSE)

    async def _bad(self, exc: protocol.ProtocolError) -> None:
        assert self.relay is not None
        self._bad_messages += 1
        if self._bad_messages >= MAX_BAD_MESSAGES:
            reason = CloseReason.PROTOCOL_ERROR
            await self.relay.stop(reason, notice=protocol.closing(reason, exc))
        else:
            await self.send_json(protocol.error(exc.code, str(exc)))

    async def _too_big(self) -> None:
        assert self.relay is not None
        reason = CloseReason.TOO_BIG
        await self.relay.stop(reason, notice=protocol.closing(reason, protocol.MAX_FRAME_BYTES))

    # --- channel-layer events -------------------------------------------------------------------------
    async def audio_supersede(self, event: dict[str, Any]) -> None:
        if self.relay is not None and event.get("channel") != self.channel_name:
            reason = CloseReason.SUPERSEDED
            await self.relay.stop(reason, notice=protocol.closing(reason))

    async def audio_end(self, event: dict[str, Any]) -> None:
        if self.relay is not None:
            await self.relay.stop(CloseReason.ADMIN, notice=protocol.closing(CloseReason.ADMIN))

    async def rollout_changed(self, event: dict[str, Any]) -> None:
        if self.relay is None or self.relay.stopping:
            return
        if not await aaudio_v2_enabled(self.scope["user"]):
            await self.relay.stop(CloseReason.ROLLBACK, notice=protocol.closing(CloseReason.ROLLBACK))

    async def audio_drain(self, event: dict[str, Any]) -> None:
        if self.relay is not None:
            await self.relay.stop(
                CloseReason.SERVER_RESTART,
                notice=protocol.reconnect(
                    reason=CloseReason.SERVER_RESTART.value,
                    resume_token=self.relay.record_id,
                    retry_after_ms=random.randint(250, 1500),
                ),
            )  # spread the herd over other instances

    # --- BrowserPort for the relay -----------------------------------------------------------------
    async def send_json(self, message: protocol.ServerMessage) -> None:
        await self.send(text_data=json.dumps(message))

    async def send_bytes(self, data: bytes) -> None:
        await self.send(bytes_data=data)


PUMP_STOP_S = 0.5
_stopping_pumps: set[asyncio.Future[None]] = set()


async def dispatch_in_order(
    sources: Sequence[Callable[[], Awaitable[dict[str, Any]]]],
    dispatch: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Hand every message of `sources` (the client's receive, the channel layer's) to `dispatch`,
    one at a time, in the order they arrive, until dispatch raises (StopConsumer at disconnect).
    One long-lived task per source feeds a queue; a source that fails ends the loop with its error."""
    inbox: asyncio.Queue[tuple[dict[str, Any] | None, BaseException | None]] = asyncio.Queue()

    async def pump(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        try:
            while True:
                inbox.put_nowait((await receive(), None))
        except Exception as exc:  # handed to the loop, which raises it
            inbox.put_nowait((None, exc))

    pumps = [asyncio.ensure_future(pump(source)) for source in sources]
    try:
        while True:
            message, error = await inbox.get()
            if error is not None:
                raise error
            assert message is not None
            await dispatch(message)
    finally:
        for task in pumps:
            task.cancel()
        # A cancelled channels_redis receive that holds its process-wide receive lock stays in its
        # blocking Redis read until that times out (BZPOPMIN, 5 s), so waiting for it here kept a
        # closed socket's consumer alive that long (and a drain waiting on it). It ends by itself;
        # it is only kept referenced until then.
        _, late = await asyncio.wait(pumps, timeout=PUMP_STOP_S)
        for task in late:
            _stopping_pumps.add(task)
            task.add_done_callback(_stopping_pumps.discard)


def _query(scope: dict[str, Any], name: str) -> str:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else ""
