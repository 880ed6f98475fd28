"""The voice feature's admin page: Live audio sessions, and ending one through the channel layer.

Moved here from flags/tests (test_admin.py, test_live.py) when audio took the page over; the
assertions are the same. Live sessions come from the session store, whose
`audio_sessions_active` is stood in for where a test needs fixed records or a failing store.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission
from django.test import Client

from audio.groups import user_group
from flags.tests.test_live import TinyVoiceConsumer, connect, layer, setup_flag  # noqa: F401 (fixture)
from improv.store import get_store

LIVE = "/admin/audio/live-sessions/"
END = "/admin/audio/live-sessions/end/"


class EndableVoiceConsumer(TinyVoiceConsumer):
    """TinyVoiceConsumer that also joins the per-user voice group, as the real consumer does."""

    def more_groups(self) -> list[str]:
        return [user_group(self.user.pk)]


@pytest.fixture
def operator(make_user):
    """Staff with the flags permissions (not a superuser)."""
    user = make_user(email="ops@example.com", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="flags"))
    return user


@pytest.mark.django_db
def test_live_sessions_page_says_so_when_the_store_fails(client, operator, monkeypatch):
    def broken(*, limit: int = 200):
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(get_store(), "audio_sessions_active", broken)
    client.force_login(operator)
    page = client.get(LIVE)
    assert page.status_code == 200 and b"Could not read live audio sessions" in page.content


@pytest.mark.django_db
def test_end_session_with_a_bad_user_id_ends_nothing(client, operator):
    client.force_login(operator)
    response = client.post(END, {"user_id": "abc"}, follow=True)
    assert b"No valid user id" in response.content


@pytest.mark.django_db(transaction=True)
async def test_admin_lists_live_sessions_and_ends_one_through_the_channel_layer(
    layer,  # noqa: F811 (the fixture imported above)
    monkeypatch,
    make_user,
):
    await setup_flag(100)  # everyone is in: any user plays
    player = await database_sync_to_async(make_user)()
    bystander = await database_sync_to_async(make_user)()
    live = [
        SimpleNamespace(
            id="as-1",
            user_id=player.pk,
            scene_id="scene-9",
            status="active",
            instance="audio-1:7",
            created_at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
        ),
    ]
    monkeypatch.setattr(get_store(), "audio_sessions_active", lambda *, limit=200: live[:limit])
    playing = await connect(player, EndableVoiceConsumer)
    watching = await connect(bystander, EndableVoiceConsumer)
    admin = await database_sync_to_async(make_user)(is_staff=True, is_superuser=True)
    client = Client()
    await database_sync_to_async(client.force_login)(admin)

    page = await sync_to_async(client.get)(LIVE)
    assert page.status_code == 200
    html = page.content.decode()
    assert player.get_username() in html and "scene-9" in html and "2026-03-02 09:00:00" in html
    assert "End session" in html

    response = await sync_to_async(client.post)(END, {"user_id": player.pk})
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
