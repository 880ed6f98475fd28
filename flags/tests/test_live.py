"""Live voice sessions hear of rollout changes through the channel layer (in-memory and Redis).

The real voice consumer is written elsewhere; TinyVoiceConsumer below follows the same
documented contract (flags.rollout docstring): join ROLLOUT_GROUP and the per-user group,
re-check eligibility on "rollout.changed", close with 4014 when voice is off for the user,
end on "audio.end".
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from types import SimpleNamespace

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.test import Client

from flags.models import Flag
from flags.rollout import AUDIO_V2, ROLLOUT_GROUP, aaudio_v2_enabled, user_group
from flags.services import rollout_set

VOICE_OFF = 4014


class TinyVoiceConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        if not await aaudio_v2_enabled(self.user):
            await self.close(code=4003)
            return
        self.groups_joined = [ROLLOUT_GROUP, user_group(self.user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send(json.dumps({"type": "ready"}))

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


async def connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(TinyVoiceConsumer.as_asgi(), f"/ws/audio/scene-{user.pk}")
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


LIVE: list[SimpleNamespace] = []


def live_sessions(*, limit: int = 200) -> list[SimpleNamespace]:
    """The ROLLOUT_LIVE_SESSIONS seam: the records the session store would return."""
    return LIVE[:limit]


@pytest.mark.django_db(transaction=True)
async def test_admin_lists_live_sessions_and_ends_one_through_the_channel_layer(
    layer, settings, user_in_bucket, make_user
):
    settings.ROLLOUT_LIVE_SESSIONS = "flags.tests.test_live.live_sessions"
    await setup_flag(100)
    player = await database_sync_to_async(user_in_bucket)(0, 10_000)
    bystander = await database_sync_to_async(user_in_bucket)(0, 10_000)
    LIVE[:] = [
        SimpleNamespace(
            id="as-1",
            user_id=player.pk,
            scene_id="scene-9",
            status="active",
            instance="audio-1:7",
            created_at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
        ),
    ]
    playing, watching = await connect(player), await connect(bystander)
    admin = await database_sync_to_async(make_user)(is_staff=True, is_superuser=True)
    client = Client()
    await database_sync_to_async(client.force_login)(admin)

    page = await sync_to_async(client.get)("/admin/flags/flag/live-sessions/")
    assert page.status_code == 200
    html = page.content.decode()
    assert player.get_username() in html and "scene-9" in html and "2026-03-02 09:00:00" in html
    assert "End session" in html

    response = await sync_to_async(client.post)(
        "/admin/flags/flag/live-sessions/end/", {"user_id": player.pk}
    )
    assert response.status_code == 302
    assert await playing.receive_json_from(timeout=5) == {
        "type": "error",
        "code": "ended",
        "message": "admin",
    }
    assert await playing.receive_output(timeout=5) == {"type": "websocket.close", "code": 1000}
    assert await watching.receive_nothing(timeout=0.2)  # only that user's session
    await watching.disconnect()
    await playing.disconnect()
    LIVE.clear()
