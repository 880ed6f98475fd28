"""What only the Firestore adapter promises: the guide's document layout, the users profile, TTL
fields, random ids, and behaviour across instances and event loops. Runs on the official emulator;
the shared contract lives in test_store_contract.py."""

from __future__ import annotations

import asyncio
import threading

import pytest
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


def test_async_client_follows_the_event_loop(firestore_store):
    # gRPC aio channels belong to one loop; each loop gets its own AsyncClient.
    scene = firestore_store.scene_create(user_id=9)
    first = asyncio.run(firestore_store.aturn_append(scene.id, speaker="user", text="one"))
    second = asyncio.run(firestore_store.aturn_append(scene.id, speaker="user", text="two"))
    assert (first.index, second.index) == (1, 2)


def test_project_is_required(settings):
    settings.GCP_PROJECT_ID = ""
    with pytest.raises(StoreError, match="GCP_PROJECT_ID"):
        FirestoreSessionStore()
