"""The text app end to end with SESSION_STORE=firestore: the REST API, the real google-genai SDK
against the Gemini emulator, and scenes, turns and users in the official Firestore emulator.
Nothing but the setting changes (the `firestore_store` fixture sets it)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from google.cloud import firestore

from improv.models import Scene, Turn
from improv.tests.conftest import play_to_active

pytestmark = [pytest.mark.firestore, pytest.mark.django_db]


@pytest.fixture
def raw(firestore_store) -> firestore.Client:
    return firestore.Client(project=firestore_store.project, database=firestore_store.database)


def test_full_text_scene_lives_in_firestore(firestore_store, raw, api, user, gemini, settings):
    scene = api.post("/scenes", {}).json()
    sid = scene["id"]
    assert scene["status"] == "game_selection" and scene["turns"][0]["speaker"] == "mc"
    assert api.post(f"/scenes/{sid}/game", {"game": "expert-interview"}).json()["status"] == "suggestion"
    active = api.post(f"/scenes/{sid}/suggestion").json()
    assert active["status"] == "active" and active["suggestion"]

    for n in range(1, settings.IMPROV_SCENE_TURNS + 1):
        r = api.post(f"/scenes/{sid}/turns", {"text": f"Turn {n}: the lighthouse keeper lost the light!"})
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["turn_number"] == n and body["partner"]["text"]
    assert body["scene_complete"]
    closed = api.post(f"/scenes/{sid}/end").json()
    assert closed["status"] == "closed" and closed["review"]["overall_feedback"]

    # The API's view of the scene is Firestore's.
    doc = raw.collection("sessions").document(sid).get()
    assert doc.exists and doc.get("user_id") == user.id and doc.get("status") == "closed"
    assert doc.get("turn_count") == settings.IMPROV_SCENE_TURNS
    turns = [t.to_dict() for t in raw.collection("sessions").document(sid).collection("turns").stream()]
    assert [t["index"] for t in turns] == list(range(1, len(turns) + 1))
    user_lines = [t["text"] for t in turns if t["speaker"] == "user"]
    assert user_lines == [
        f"Turn {n}: the lighthouse keeper lost the light!" for n in range(1, settings.IMPROV_SCENE_TURNS + 1)
    ]
    shown = api.get(f"/scenes/{sid}").json()
    assert [t["text"] for t in shown["turns"]] == [t["text"] for t in turns if t["speaker"] != "coach"]
    assert len(shown["coach_notes"]) == sum(t["speaker"] == "coach" for t in turns) > 0
    assert raw.collection("users").document(str(user.id)).get().exists
    assert api.get("/scenes").json()[0]["id"] == sid
    # ... and the Django database holds no scene data at all.
    assert Scene.objects.count() == 0 and Turn.objects.count() == 0


def test_gemini_failure_keeps_the_line_in_firestore(firestore_store, api, gemini):
    sid = play_to_active(api)["id"]
    gemini.arm({"type": "http_status", "status": 500, "count": 10})
    r = api.post(f"/scenes/{sid}/turns", {"text": "Who moved my lighthouse?"})
    assert r.status_code == 503
    turns = firestore_store.turns_list(sid)
    assert (turns[-1].speaker, turns[-1].text) == ("user", "Who moved my lighthouse?")
    gemini.clear()
    assert api.post(f"/scenes/{sid}/turns/retry").status_code == 200
    assert [t.speaker for t in firestore_store.turns_list(sid)[-2:]] == ["user", "partner"]


def test_other_users_and_open_scene_limit_on_firestore(firestore_store, api, other_api, gemini, settings):
    sid = play_to_active(api)["id"]
    assert other_api.get(f"/scenes/{sid}").status_code == 404
    assert other_api.get("/scenes").json() == []
    settings.IMPROV_MAX_OPEN_SCENES = 2
    assert api.post("/scenes", {}).status_code == 201
    refused = api.post("/scenes", {})
    assert refused.status_code == 429 and refused.json()["limit"] == "open_scenes"


def test_expire_command_closes_stale_firestore_scenes(firestore_store, api, gemini):
    sid = play_to_active(api)["id"]
    record = firestore_store.scene_get(sid)
    firestore_store.scene_update(sid, last_activity_at=record.last_activity_at.replace(year=2020))
    call_command("expire_scenes")
    assert firestore_store.scene_get(sid).status == "expired"


def test_admin_live_sessions_page_and_rollout_guard_read_firestore(
    firestore_store, client, make_user, settings
):
    from flags.guard import rollout_guard
    from flags.services import rollout_set

    player = make_user()
    scene = firestore_store.scene_create(user_id=player.pk, status="active", mode="voice")
    live = firestore_store.audio_session_start(user_id=player.pk, scene_id=scene.id, instance="audio-3:77")
    for _ in range(2):
        failed = firestore_store.audio_session_start(
            user_id=player.pk, scene_id=scene.id, instance="audio-3:77"
        )
        firestore_store.audio_session_finish(failed.id, status="failed", close_reason="upstream_error")

    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = client.get("/admin/audio/live-sessions/")
    assert page.status_code == 200
    assert scene.id in page.content.decode() and "audio-3:77" in page.content.decode()
    assert [s.id for s in firestore_store.audio_sessions_active()] == [live.id]

    rollout_set(percent=100, actor_label="tests", reason="firestore guard test")
    settings.ROLLOUT_GUARD_MIN_SESSIONS = 2
    report = rollout_guard()
    assert (report.total, report.failed, report.tripped) == (2, 2, True)
