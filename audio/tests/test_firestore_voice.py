"""A voice turn with SESSION_STORE=firestore: the real consumer and SDK against the Gemini
emulator, with scenes, turns and audio-session records in the official Firestore emulator
(the consumer calls the sync adapter through database_sync_to_async)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from google.cloud import firestore

from audio.protocol import CloseCode
from audio.tests.conftest import is_type, receive_until, speak_turn
from improv.models import AudioSession, Scene

pytestmark = [
    pytest.mark.firestore,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("voice_settings"),
]


@pytest.fixture
def fs_scene(firestore_store, voice_user):
    return firestore_store.scene_create(user_id=voice_user.pk, status="active", game_slug="freeze-tag")


async def test_voice_turn_round_trip_on_firestore(
    firestore_store, open_voice, fs_scene, voice_cookie, speech_16k
):
    comm = await open_voice(fs_scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    await speak_turn(comm, speech_16k)
    got = await receive_until(comm, is_type("turn_complete"), timeout=30)
    finals = {m["role"]: m["text"] for m in got.of("transcript") if m["final"]}
    assert finals["partner"] and len(got.audio) > 0
    await comm.send_to(text_data=json.dumps({"type": "end"}))
    got = await receive_until(comm, lambda m: False, timeout=5)
    assert got.close_code == CloseCode.NORMAL

    turns = await database_sync_to_async(firestore_store.turns_list)(fs_scene.id)
    assert [t.index for t in turns] == list(range(1, len(turns) + 1))
    partner = [t for t in turns if t.speaker == "partner" and t.mode == "voice"]
    assert partner and partner[0].text == finals["partner"] and "latency_ms" in partner[0].meta
    assert any(t.speaker == "user" and t.mode == "voice" for t in turns)

    records = await sync_to_async(firestore_store.audio_sessions_for_scene)(fs_scene.id)
    assert len(records) == 1
    record = records[0]
    assert (record.status, record.close_reason, record.turns) == ("ended", "client_close", 1)
    assert record.bytes_in >= len(speech_16k) and record.bytes_out > 0 and record.tokens_total > 0

    raw = firestore.AsyncClient(project=firestore_store.project, database=firestore_store.database)
    doc = (await raw.collection("audio_sessions").document(record.id).get()).to_dict()
    assert doc is not None
    assert doc["session_id"] == fs_scene.id and doc["status"] == "ended"
    # Nothing went to the Django database.
    assert await AudioSession.objects.acount() == 0 and await Scene.objects.acount() == 0


@pytest.mark.parametrize("case", ["unknown_scene", "closed_scene"])
async def test_unknown_or_closed_scene_is_refused_on_firestore(firestore_store, fs_scene, voice_cookie, case):
    from audio.tests.conftest import communicator

    scene_id = "no-such-scene"
    if case == "closed_scene":
        scene_id = (
            await database_sync_to_async(firestore_store.scene_update)(fs_scene.id, status="closed")
        ).id
    comm = communicator(scene_id, voice_cookie)
    connected, _ = await comm.connect(timeout=5)
    assert connected  # accepted, so the browser can read the reason and the code
    got = await receive_until(comm, lambda m: False, timeout=5)
    assert (
        got.of("error")[0]["code"]
        == {"unknown_scene": "scene_not_found", "closed_scene": "scene_closed"}[case]
    )
    assert got.close_code == CloseCode.SCENE_UNAVAILABLE
    await comm.wait(timeout=2)
    assert await sync_to_async(firestore_store.audio_sessions_for_scene)(fs_scene.id) == []
