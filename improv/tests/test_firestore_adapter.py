"""What only the Firestore adapter promises: the guide's document layout, the users profile, TTL
fields, random ids, and behaviour across instances and event loops. Runs on the official emulator;
the shared contract lives in test_store_contract.py."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from google.cloud import firestore

from improv.store import StoreError
from improv.store.firestore import FirestoreSessionStore

pytestmark = [pytest.mark.firestore, pytest.mark.django_db]


@pytest.fixture
def raw(firestore_store) -> firestore.Client:
    """A plain client on the same emulator, to look at documents as Firestore stores them."""
    return firestore.Client(project=firestore_store.project, database=firestore_store.database)


def test_documents_follow_the_guides_layout(firestore_store, raw):
    store = firestore_store
    scene = store.scene_create(user_id=41, game_slug="questions-only")
    turn = store.turn_append(scene.id, speaker="user", text="Why is the moon so loud?")
    audio = store.audio_session_start(user_id=41, scene_id=scene.id, instance="audio-7:1")

    doc = raw.collection("sessions").document(scene.id).get().to_dict()
    assert doc["user_id"] == 41 and doc["turn_seq"] == 1 and doc["turn_count"] == 1
    assert doc["expires_at"] == scene.expires_at
    turns = list(raw.collection("sessions").document(scene.id).collection("turns").stream())
    assert [t.id for t in turns] == ["00000001"]
    assert turns[0].to_dict()["text"] == turn.text
    assert turns[0].to_dict()["expires_at"] == scene.expires_at  # expires with its scene

    adoc = raw.collection("audio_sessions").document(audio.id).get().to_dict()
    assert adoc["session_id"] == scene.id and "scene_id" not in adoc  # the guide's field name
    assert adoc["expires_at"] == audio.expires_at
    # Firestore auto-ids: 20 random characters, never a rising key.
    assert len(scene.id) == 20 and len(audio.id) == 20


def test_users_profile_is_written_on_the_first_scene_only(firestore_store, raw):
    first = firestore_store.scene_create(user_id=5)
    profile = raw.collection("users").document("5").get()
    assert profile.exists and profile.to_dict() == {"user_id": 5, "created_at": first.created_at}
    firestore_store.scene_create(user_id=5)
    assert raw.collection("users").document("5").get().to_dict()["created_at"] == first.created_at
    assert len(list(raw.collection("users").stream())) == 1


def test_a_value_firestore_cannot_store_is_a_store_error_and_writes_nothing(firestore_store, raw):
    with pytest.raises(StoreError):
        firestore_store.scene_create(user_id=6, state={"tags": object()})
    assert list(raw.collection("sessions").stream()) == []
    scene = firestore_store.scene_create(user_id=6)
    with pytest.raises(StoreError):
        firestore_store.turn_append(scene.id, speaker="user", text="hi", meta={"when": object()})
    assert firestore_store.turns_list(scene.id) == []


def test_two_instances_appending_at_once_stay_gap_free(firestore_store):
    # Two adapters with their own clients: like two Cloud Run instances serving one scene.
    other = FirestoreSessionStore()
    scene = firestore_store.scene_create(user_id=8, status="active")
    errors: list[BaseException] = []

    def append(store: FirestoreSessionStore, n: int) -> None:
        try:
            store.turn_append(scene.id, speaker="partner" if n % 2 else "user", text=f"line {n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=((firestore_store, other)[n % 2], n)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert [t.index for t in firestore_store.turns_list(scene.id)] == list(range(1, 17))
    assert firestore_store.scene_get(scene.id).turn_count == 8


def test_the_voice_paths_bridge_works_from_each_event_loop(firestore_store):
    # The voice path calls the sync store through database_sync_to_async, from any event loop.
    scene = firestore_store.scene_create(user_id=9)
    first = asyncio.run(
        database_sync_to_async(firestore_store.turn_append)(scene.id, speaker="user", text="one")
    )
    second = asyncio.run(
        database_sync_to_async(firestore_store.turn_append)(scene.id, speaker="user", text="two")
    )
    assert (first.index, second.index) == (1, 2)


def test_project_is_required(settings):
    settings.GCP_PROJECT_ID = ""
    with pytest.raises(StoreError, match="GCP_PROJECT_ID"):
        FirestoreSessionStore()


class LostAcks(FirestoreSessionStore):
    """The first commits land but their answers are lost, as when the SDK retries a commit after
    UNAVAILABLE and the retry then fails as a conflict."""

    def __init__(self, lost: int = 1) -> None:
        super().__init__()
        self.lost = lost

    def _commit(self, batch) -> bool:
        landed = super()._commit(batch)
        if landed and self.lost:
            self.lost -= 1
            return False
        return landed


def test_a_landed_commit_reported_as_a_conflict_is_not_repeated(firestore_store):
    store = LostAcks(lost=3)
    scene = store.scene_create(user_id=12)
    assert [s.id for s in firestore_store.scenes_for_user(12)] == [scene.id]
    turn = store.turn_append(scene.id, speaker="user", text="only once")
    assert turn.index == 1
    assert [t.text for t in firestore_store.turns_list(scene.id)] == ["only once"]
    assert firestore_store.scene_get(scene.id).turn_count == 1
    audio = firestore_store.audio_session_start(user_id=12, scene_id=scene.id, instance="i")
    done = store.audio_session_finish(audio.id, status="ended", close_reason="client_close", bytes_in=10)
    assert done.bytes_in == 10 and firestore_store.audio_session_get(audio.id).bytes_in == 10  # not twice


def test_a_landed_commit_reported_as_a_conflict_is_not_repeated_through_the_voice_bridge(firestore_store):
    store = LostAcks(lost=2)
    scene = firestore_store.scene_create(user_id=13)
    audio = firestore_store.audio_session_start(user_id=13, scene_id=scene.id, instance="i")

    async def play():
        turn = await database_sync_to_async(store.turn_append)(
            scene.id, speaker="partner", text="once", mode="voice"
        )
        done = await database_sync_to_async(store.audio_session_finish)(
            audio.id, status="failed", close_reason="upstream_error", turns=1
        )
        return turn, done

    turn, done = asyncio.run(play())
    assert turn.index == 1 and [t.text for t in firestore_store.turns_list(scene.id)] == ["once"]
    assert (done.status, done.turns) == ("failed", 1)
    assert firestore_store.audio_session_get(audio.id).turns == 1
