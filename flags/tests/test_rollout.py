"""One answer everywhere: /api/v1/me, waffle's request check, and an async consumer agree."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory
from waffle import flag_is_active

from flags.models import Flag, bucket
from flags.rollout import AUDIO_V2, aaudio_v2_enabled, audio_v2_enabled
from flags.services import rollout_set


class WhoAmIConsumer(AsyncWebsocketConsumer):
    """Reports what the voice consumer would decide for the socket's user."""

    async def connect(self):
        await self.accept()
        await self.send(json.dumps({"audio_v2": await aaudio_v2_enabled(self.scope["user"])}))


def me(client: Client) -> bool:
    response = client.get("/api/v1/me")
    assert response.status_code == 200, response.content
    return response.json()["audio_v2"]


def test_api_me_matches_the_bucket_and_waffle_on_every_device(audio_v2, make_user):
    rollout_set(percent=50, actor_label="test")
    users = [make_user() for _ in range(30)]
    answers = {}
    for user in users:
        phone, laptop = Client(), Client()  # two devices, two cookie jars
        phone.force_login(user)
        laptop.force_login(user)
        expected = bucket(AUDIO_V2, user.pk) < 5000
        assert me(phone) is expected
        assert me(laptop) is expected
        request = RequestFactory().get("/")
        request.user = user
        assert flag_is_active(request, AUDIO_V2) is expected  # templates' {% flag %} agree
        assert audio_v2_enabled(user) is expected
        answers[user.pk] = expected
        # No per-browser dice roll is stored anywhere.
        assert "dwf_audio_v2" not in phone.cookies
    assert set(answers.values()) == {True, False}  # the sample covers both sides


def test_signed_out_api_gets_401_and_is_never_in(audio_v2, client):
    rollout_set(percent=100, actor_label="test")
    assert client.get("/api/v1/me").status_code == 401
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert flag_is_active(request, AUDIO_V2) is False


@pytest.mark.django_db(transaction=True)
async def test_consumer_context_gives_the_same_answer_as_the_api(make_user):
    await database_sync_to_async(Flag.objects.get_or_create)(name=AUDIO_V2, defaults={"superusers": False})
    await database_sync_to_async(rollout_set)(percent=50, actor_label="test")
    users = [await database_sync_to_async(make_user)() for _ in range(12)]
    seen = set()
    for user in users:
        client = Client()
        await database_sync_to_async(client.force_login)(user)
        over_http = await database_sync_to_async(me)(client)
        communicator = WebsocketCommunicator(WhoAmIConsumer.as_asgi(), "/ws/audio/scene")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        over_ws = (await communicator.receive_json_from(timeout=5))["audio_v2"]
        await communicator.disconnect()
        assert over_ws is over_http is (bucket(AUDIO_V2, user.pk) < 5000)
        seen.add(over_ws)
    assert seen == {True, False}
