"""`expire_scenes` and the admin pages for the improv content and scenes."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from improv.models import Game
from improv.store import get_store

pytestmark = pytest.mark.django_db


def test_expire_scenes_command(make_user, settings):
    settings.IMPROV_IDLE_EXPIRY_MINUTES = 60
    store, user = get_store(), make_user()
    idle = store.scene_create(user_id=user.pk, status="active")
    busy = store.scene_create(user_id=user.pk, status="active")
    done = store.scene_create(user_id=user.pk, status="closed")
    for scene in (idle, done):
        store.scene_update(scene.id, last_activity_at=timezone.now() - dt.timedelta(minutes=61))
    out = StringIO()
    call_command("expire_scenes", "--limit", "1", stdout=out)
    assert "Expired 1 idle scene." in out.getvalue()
    assert store.scene_get(idle.id).status == "expired" and store.scene_get(idle.id).ended_at
    assert store.scene_get(busy.id).status == "active"
    assert store.scene_get(done.id).status == "closed"
    call_command("expire_scenes", stdout=out)
    assert "Expired 0 idle scenes." in out.getvalue()


def test_admin_edits_games_and_reads_scenes(client, make_user, content):
    admin = make_user(is_staff=True, is_superuser=True)
    client.force_login(admin)
    game = Game.objects.get(slug="gibberish-translator")
    assert client.get(f"/admin/improv/game/{game.pk}/change/").status_code == 200
    assert client.get("/admin/improv/principle/").status_code == 200
    assert client.get("/admin/improv/audiencearchetype/").status_code == 200
    scene = get_store().scene_create(user_id=admin.pk, status="active")
    get_store().turn_append(scene.id, speaker="user", text="Blorp fnarg!")
    page = client.get(f"/admin/improv/scene/{scene.id}/change/")
    assert page.status_code == 200 and "Blorp fnarg!" in page.content.decode()
    assert client.get("/admin/improv/scene/").status_code == 200
