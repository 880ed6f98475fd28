"""Live voice sessions hear of rollout changes through the channel layer (in-memory and Redis).

The real voice consumer is written elsewhere; TinyVoiceConsumer below follows the same
documented contract (flags.rollout docstring): join ROLLOUT_GROUP, re-check eligibility on
"rollout.changed", close with 4014 when voice is off for the user. (audio/tests/test_admin.py
subclasses it to also join the voice feature's per-user group and end on "audio.end".)
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.management import call_command

from flags.models import Flag
from flags.rollout import AUDIO_V2, ROLLOUT_GROUP, aaudio_v2_enabled
from flags.services import rollout_set

VOICE_OFF = 4014


class TinyVoiceConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        if not await aaudio_v2_enabled(self.user):
            await self.close(code=4003)
            return
        self.groups_joined = [ROLLOUT_GROUP, *self.more_groups()]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send(json.dumps({"type": "ready"}))

    def more_groups(self) -> list[str]:
        return []

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def rollout_changed(self, event):
        if await aaudio_v2_enabled(self.user):
            await self.send(json.dumps({"type": "voice_still_on"}))  # test-only ack
            return
        await self.send(
            json.dumps({"type": "error", "code": "voice_off", "message": "Carry on in text mode."})
        )
        await self.close(code=VOICE_OFF)

    async def audio_end(self, event):
        await self.send(json.dumps({"type": "error", "code": "ended", "message": event["reason"]}))
        await self.close(code=1000)


@pytest.fixture(params=["in-memory", "redis"])
async def layer(request, settings):
    if request.param == "redis":
        try:
            redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            pytest.skip(f"SKIPPED LOUDLY: Redis not reachable at 127.0.0.1:6379 ({exc})")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": ["redis://127.0.0.1:6379/0"],
                    "prefix": f"flagstest{uuid.uuid4().hex[:8]}",
                },
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layer = get_channel_layer()
    yield channel_layer
    if request.param == "redis":
        await channel_layer.flush()
        await channel_layer.close_pools()


async def connect(user, consumer: type[TinyVoiceConsumer] = TinyVoiceConsumer) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(consumer.as_asgi(), f"/ws/audio/scene-{user.pk}")
    communicator.scope["user"] = user
    connected, code = await communicator.connect(timeout=5)
    assert connected, code
    assert await communicator.receive_json_from(timeout=5) == {"type": "ready"}
    return communicator


async def expect_voice_off(communicator: WebsocketCommunicator) -> None:
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "error" and message["code"] == "voice_off"
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": VOICE_OFF}


async def setup_flag(percent: int) -> None:
    await database_sync_to_async(Flag.objects.get_or_create)(name=AUDIO_V2, defaults={"superusers": False})
    await database_sync_to_async(rollout_set)(percent=percent, actor_label="ops")


@pytest.mark.django_db(transaction=True)
async def test_lowering_ends_only_users_no_longer_in_and_rollback_ends_the_rest(layer, user_in_bucket):
    await setup_flag(50)
    stays = await database_sync_to_async(user_in_bucket)(0, 1000)  # in from 10%
    drops = await database_sync_to_async(user_in_bucket)(1000, 5000)  # in only from 50%
    staying, dropping = await connect(stays), await connect(drops)

    result = await database_sync_to_async(rollout_set)(percent=10, reason="latency", actor_label="ops")
    assert result.notified is True
    await expect_voice_off(dropping)
    assert await staying.receive_json_from(timeout=5) == {"type": "voice_still_on"}

    # The operator's one-step rollback, exactly as typed on the command line.
    out = io.StringIO()
    await database_sync_to_async(call_command)("rollout", "rollback", "--reason", "error spike", stdout=out)
    assert "live audio sessions told to re-check" in out.getvalue()
    await expect_voice_off(staying)
    for communicator in (staying, dropping):
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_raising_the_percentage_ends_nobody(layer, user_in_bucket):
    await setup_flag(10)
    communicator = await connect(await database_sync_to_async(user_in_bucket)(0, 1000))
    result = await database_sync_to_async(rollout_set)(percent=50, actor_label="ops")
    assert result.notified is None  # not lowered: no broadcast at all
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()
