"""The session-store contract (improv/store/base.py), run against every adapter: the Django ORM
and Firestore (the official emulator; skipped loudly where it is not installed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection

from improv.store import (
    AudioStats,
    NewTurn,
    SceneNotFound,
    SessionStore,
    StoreError,
    get_store,
    reset_store_cache,
)
from improv.store.base import OPEN_STATUSES, SCENE_STATUSES, TTL_DAYS

pytestmark = pytest.mark.django_db
US = dt.timedelta(microseconds=1)
_users = itertools.count(1)


@pytest.fixture(params=["django", pytest.param("firestore", marks=pytest.mark.firestore)])
def store(request, settings) -> Iterator[SessionStore]:
    if request.param == "firestore":
        yield request.getfixturevalue("firestore_store")
        return
    settings.SESSION_STORE = "django"
    reset_store_cache()
    yield get_store()
    reset_store_cache()


def _new_user_id() -> int:
    # No password: hashing one costs more than the test itself.
    n = next(_users)
    return get_user_model().objects.create(username=f"contract{n}", email=f"contract{n}@example.com").id


@pytest.fixture
def uid() -> int:
    return _new_user_id()


@pytest.fixture
def other_uid() -> int:
    return _new_user_id()


# --- scenes ----------------------------------------------------------------------------
def test_scene_create_defaults_and_get(store, uid):
    scene = store.scene_create(user_id=uid)
    assert scene.user_id == uid and scene.status == "mc_welcome" and scene.mode == "text"
    assert scene.turn_count == 0 and scene.state == {} and scene.game_slug == "" and scene.suggestion == ""
    assert scene.created_at == scene.updated_at == scene.last_activity_at
    assert scene.ended_at is None
    assert scene.expires_at == scene.created_at + dt.timedelta(days=TTL_DAYS)
    assert scene.is_open
    assert store.scene_get(scene.id) == scene


def test_scene_ids_are_random_strings(store, uid):
    ids = [store.scene_create(user_id=uid).id for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(isinstance(i, str) and len(i) >= 16 for i in ids)
    assert ids != sorted(ids) or ids != sorted(ids, reverse=True)  # not a rising key sequence


def test_scene_create_keeps_game_mode_and_nested_state(store, uid):
    state = {
        "phase": "supportive",
        "vibe": {"energy": 7, "mood": "électrique ✨"},
        "notes": [1, 2.5, True, None],
    }
    scene = store.scene_create(
        user_id=uid, status="active", game_slug="expert-interview", mode="voice", state=state
    )
    again = store.scene_get(scene.id)
    assert (again.status, again.game_slug, again.mode, again.state) == (
        "active",
        "expert-interview",
        "voice",
        state,
    )


def test_scene_create_rejects_unknown_status_and_writes_nothing(store, uid):
    with pytest.raises(StoreError):
        store.scene_create(user_id=uid, status="dancing")
    assert store.scenes_for_user(uid) == []


@pytest.mark.parametrize("scene_id", ["nope", "", "a/b", "..", "x" * 40])
def test_scene_get_missing_raises_scene_not_found(store, scene_id):
    with pytest.raises(SceneNotFound):
        store.scene_get(scene_id)


def test_scene_update_sets_fields_and_bumps_updated_at(store, uid):
    scene = store.scene_create(user_id=uid, state={"a": 1, "b": 2})
    ended = scene.created_at + dt.timedelta(minutes=5)
    updated = store.scene_update(
        scene.id, status="closed", suggestion="a lighthouse", state={"c": 3}, ended_at=ended
    )
    assert updated.status == "closed" and updated.suggestion == "a lighthouse" and updated.ended_at == ended
    assert updated.state == {"c": 3}  # replaced, not merged
    assert updated.updated_at > scene.updated_at
    assert (updated.created_at, updated.user_id) == (scene.created_at, scene.user_id)
    assert not updated.is_open
    assert store.scene_get(scene.id) == updated


@pytest.mark.parametrize(
    "changes", [{"id": "x"}, {"user_id": 99}, {"created_at": None}, {"colour": "red"}, {"status": "dancing"}]
)
def test_scene_update_rejects_bad_fields_and_changes_nothing(store, uid, changes):
    scene = store.scene_create(user_id=uid)
    with pytest.raises(StoreError):
        store.scene_update(scene.id, **changes)
    assert store.scene_get(scene.id) == scene


def test_scene_update_missing_scene(store):
    with pytest.raises(SceneNotFound):
        store.scene_update("missing-scene", status="closed")


def test_scenes_for_user_newest_first_with_limit_and_offset(store, uid, other_uid):
    made = [store.scene_create(user_id=uid, game_slug=f"g{n}") for n in range(5)]
    store.scene_create(user_id=other_uid)
    newest_first = [s.id for s in reversed(made)]
    assert [s.id for s in store.scenes_for_user(uid)] == newest_first
    assert [s.id for s in store.scenes_for_user(uid, limit=2)] == newest_first[:2]
    assert [s.id for s in store.scenes_for_user(uid, limit=2, offset=2)] == newest_first[2:4]
    assert [s.id for s in store.scenes_for_user(uid, limit=10, offset=4)] == newest_first[4:]
    assert store.scenes_for_user(uid, offset=5) == []
    assert store.scenes_for_user(uid, limit=0) == []
    assert store.scenes_for_user(uid)[0] == store.scene_get(made[-1].id)


def test_scenes_started_since_window_edges(store, uid, other_uid):
    first, second, third = (store.scene_create(user_id=uid) for _ in range(3))
    store.scene_create(user_id=other_uid)
    assert store.scenes_started_since(uid, first.created_at - dt.timedelta(days=1)) == 3
    assert store.scenes_started_since(uid, second.created_at) == 2  # inclusive
    assert store.scenes_started_since(uid, second.created_at + US) == 1
    assert store.scenes_started_since(uid, third.created_at + US) == 0


def test_scenes_open_count_counts_only_open_statuses(store, uid, other_uid):
    for status in SCENE_STATUSES:
        store.scene_create(user_id=uid, status=status)
    store.scene_create(user_id=other_uid)
    assert store.scenes_open_count(uid) == len(OPEN_STATUSES) == 6
    scene = store.scenes_for_user(uid, limit=1)[0]
    store.scene_update(scene.id, status="closed")
    assert store.scenes_open_count(uid) == len(OPEN_STATUSES) - (scene.status in OPEN_STATUSES)


def test_scenes_stale_open_and_idle_before_oldest_first(store, uid):
    base = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    old = store.scene_update(store.scene_create(user_id=uid, status="active").id, last_activity_at=base)
    older = store.scene_update(
        store.scene_create(user_id=uid).id, last_activity_at=base - dt.timedelta(hours=1)
    )
    closed = store.scene_create(user_id=uid, status="closed")
    store.scene_update(closed.id, last_activity_at=base - dt.timedelta(hours=2))
    store.scene_create(user_id=uid, status="active")  # recent activity

    assert [s.id for s in store.scenes_stale(base)] == [older.id]  # strictly before
    assert [s.id for s in store.scenes_stale(base + US)] == [older.id, old.id]
    assert [s.id for s in store.scenes_stale(base + US, limit=1)] == [older.id]
    assert store.scenes_stale(base + US, limit=0) == []


# Bad input gets a clear StoreError and loses nothing (house rule; the port's validation).
def test_non_dict_state_is_refused_and_loses_nothing(store, uid):
    scene = store.scene_create(user_id=uid, state={"keep": True})
    with pytest.raises(StoreError):
        store.scene_update(scene.id, state="not a dict")
    with pytest.raises(StoreError):
        store.scene_create(user_id=uid, state=[1, 2])
    assert store.scene_get(scene.id) == scene
    assert [s.id for s in store.scenes_for_user(uid)] == [scene.id]


def test_unknown_mode_is_refused(store, uid):
    scene = store.scene_create(user_id=uid)
    for bad in (
        lambda: store.scene_create(user_id=uid, mode="telepathy"),
        lambda: store.scene_update(scene.id, mode="telepathy"),
        lambda: store.turn_append(scene.id, speaker="user", text="hi", mode="telepathy"),
    ):
        with pytest.raises(StoreError):
            bad()
    assert store.scene_get(scene.id) == scene and store.turns_list(scene.id) == []


def test_negative_limit_or_offset_is_a_store_error(store, uid):
    with pytest.raises(StoreError):
        store.scenes_for_user(uid, limit=-1)
    with pytest.raises(StoreError):
        store.scenes_for_user(uid, offset=-1)


def test_negative_limit_of_any_list_is_a_store_error(store, uid):
    for bad in (
        lambda: store.scenes_stale(dt.datetime.now(dt.UTC), limit=-1),
        lambda: store.audio_sessions_active(limit=-1),
        lambda: store.audio_sessions_for_user(uid, limit=-1),
    ):
        with pytest.raises(StoreError):
            bad()


def test_negative_or_boolean_turn_count_is_refused(store, uid):
    scene = store.scene_create(user_id=uid)
    for bad in (-1, True):
        with pytest.raises(StoreError):
            store.scene_update(scene.id, turn_count=bad)
    assert store.scene_get(scene.id) == scene


def test_new_scene_game_slug_must_be_a_string_and_state_a_dict(store, uid):
    bad_inputs: list[dict[str, Any]] = [{"game_slug": 7}, {"state": []}]
    for bad in bad_inputs:
        with pytest.raises(StoreError):
            store.scene_create(user_id=uid, **bad)
    assert store.scenes_for_user(uid) == []


def test_turn_text_must_be_a_string(store, uid):
    scene = store.scene_create(user_id=uid)
    with pytest.raises(StoreError):
        store.turn_append(scene.id, speaker="user", text=None)
    assert store.turns_list(scene.id) == [] and store.scene_get(scene.id).turn_count == 0


# --- turns -----------------------------------------------------------------------------
def test_turn_append_numbers_turns_and_counts_user_turns(store, uid):
    scene = store.scene_create(user_id=uid, status="active")
    t1 = store.turn_append(scene.id, speaker="mc", text="Welcome!")
    t2 = store.turn_append(scene.id, speaker="user", text="Hello there", meta={"started_ms": 5})
    t3 = store.turn_append(scene.id, speaker="partner", text="Hi!", mode="voice", meta={"latency_ms": 420})
    assert [t.index for t in (t1, t2, t3)] == [1, 2, 3]
    assert (t3.speaker, t3.mode, t3.meta, t3.scene_id) == ("partner", "voice", {"latency_ms": 420}, scene.id)
    after = store.scene_get(scene.id)
    assert after.turn_count == 1  # only the user's turns count
    assert after.last_activity_at == t3.created_at
    assert after.updated_at >= t3.created_at
    assert store.turns_list(scene.id) == [t1, t2, t3]


def test_turns_append_writes_lines_and_scene_fields_at_once(store, uid):
    scene = store.scene_create(user_id=uid, status="active", state={"phase": "supportive"})
    store.turn_append(scene.id, speaker="mc", text="Lights up!")
    written = store.turns_append(
        scene.id,
        [
            NewTurn("user", "Captain, the penguins!", "voice", {"started_at": 1.5}),
            NewTurn("partner", "Yes, and they steer!", "voice", {"latency_ms": 380}),
            NewTurn("coach", "Make it specific."),
            NewTurn("user", "Then I dance.", "voice"),
        ],
        scene_fields={"status": "scene_complete", "mode": "voice", "state": {"phase": "fallible", "n": [1]}},
    )
    turns = written.turns
    assert [(t.index, t.speaker, t.mode) for t in turns] == [
        (2, "user", "voice"), (3, "partner", "voice"), (4, "coach", "text"), (5, "user", "voice"),
    ]
    assert turns[0].meta == {"started_at": 1.5} and turns[2].meta == {} and turns[0].scene_id == scene.id
    after = store.scene_get(scene.id)
    assert written.scene == after  # the scene as written: no read needed after the write
    assert after.turn_count == 2  # the two user lines
    assert (after.status, after.mode) == ("scene_complete", "voice")
    assert after.state == {"phase": "fallible", "n": [1]}
    assert after.last_activity_at == turns[-1].created_at and after.updated_at >= turns[-1].created_at
    assert store.turns_list(scene.id)[1:] == turns
    assert store.turn_append(scene.id, speaker="mc", text="Bows.").index == 6


def test_turns_append_refuses_bad_input_and_writes_nothing(store, uid):
    scene = store.scene_create(user_id=uid, status="active")
    good = NewTurn("user", "fine")
    for turns, fields in (
        ([], None),
        ([good, NewTurn("narrator", "Meanwhile...")], None),
        ([good, NewTurn("partner", "x", mode="telepathy")], None),
        ([good], {"turn_count": 9}),
        ([good], {"user_id": 999}),
        ([good], {"status": "dancing"}),
    ):
        with pytest.raises(StoreError):
            store.turns_append(scene.id, turns, scene_fields=fields)
    assert store.turns_list(scene.id) == [] and store.scene_get(scene.id) == scene
    with pytest.raises(SceneNotFound):
        store.turns_append("missing-scene", [good])


def at_once(work: Callable[[int], None], count: int) -> list[BaseException]:
    """Run work(0..count-1) in as many threads, released together; what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count, timeout=30)

    def run(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as exc:  # returned to the test, which asserts on it
            errors.append(exc)
        finally:
            connection.close()  # each thread's own DB connection (ORM)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_multi_line_appends_keep_each_write_together(store, uid):
    scene = store.scene_create(user_id=uid, status="active")

    def append(n: int) -> None:
        store.turns_append(
            scene.id,
            [NewTurn("user", f"user {n}"), NewTurn("partner", f"partner {n}")],
            scene_fields={"state": {"last": n}},
        )

    assert at_once(append, 10) == []
    turns = store.turns_list(scene.id)
    assert [t.index for t in turns] == list(range(1, 21))  # gap-free, no duplicates
    pairs = [(turns[i].text, turns[i + 1].text) for i in range(0, 20, 2)]
    assert sorted(pairs) == sorted((f"user {n}", f"partner {n}") for n in range(10))  # each write whole
    after = store.scene_get(scene.id)
    assert after.turn_count == 10
    assert after.state == {"last": int(pairs[-1][0].split()[1])}  # the last write's fields stand


def test_turns_list_in_index_order_past_nine(store, uid):
    scene = store.scene_create(user_id=uid)
    for n in range(1, 13):
        store.turn_append(scene.id, speaker="user" if n % 2 else "partner", text=f"line {n}")
    turns = store.turns_list(scene.id)
    assert [t.index for t in turns] == list(range(1, 13))
    assert [t.text for t in turns] == [f"line {n}" for n in range(1, 13)]
    assert store.scene_get(scene.id).turn_count == 6


def test_turns_are_per_scene(store, uid):
    a, b = store.scene_create(user_id=uid), store.scene_create(user_id=uid)
    store.turn_append(a.id, speaker="user", text="in a")
    assert store.turn_append(b.id, speaker="user", text="in b").index == 1
    assert [t.text for t in store.turns_list(a.id)] == ["in a"]
    assert store.turns_list("missing-scene") == []


def test_turn_append_to_missing_scene(store):
    with pytest.raises(SceneNotFound):
        store.turn_append("missing-scene", speaker="user", text="hello?")


def test_turn_append_rejects_unknown_speaker_and_loses_nothing(store, uid):
    scene = store.scene_create(user_id=uid)
    with pytest.raises(StoreError):
        store.turn_append(scene.id, speaker="narrator", text="Meanwhile...")
    assert store.turns_list(scene.id) == []
    assert store.turn_append(scene.id, speaker="user", text="first").index == 1
    assert store.scene_get(scene.id).turn_count == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_appends_land_gap_free_threads(store, uid):
    scene = store.scene_create(user_id=uid, status="active")

    def append(n: int) -> None:
        store.turn_append(scene.id, speaker="user", text=f"thread {n}")

    assert at_once(append, 20) == []
    turns = store.turns_list(scene.id)
    assert [t.index for t in turns] == list(range(1, 21))
    assert sorted(t.text for t in turns) == sorted(f"thread {n}" for n in range(20))
    assert store.scene_get(scene.id).turn_count == 20


@pytest.mark.django_db(transaction=True)
async def test_twenty_concurrent_appends_land_gap_free_asyncio(store, uid):
    scene = await database_sync_to_async(store.scene_create)(user_id=uid, status="active")
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                database_sync_to_async(store.turn_append)(scene.id, speaker="user", text=f"task {n}")
                for n in range(20)
            )
        ),
        timeout=60,
    )
    assert sorted(t.index for t in results) == list(range(1, 21))
    turns = await database_sync_to_async(store.turns_list)(scene.id)
    assert [t.index for t in turns] == list(range(1, 21))
    assert sorted(t.text for t in turns) == sorted(f"task {n}" for n in range(20))
    assert (await database_sync_to_async(store.scene_get)(scene.id)).turn_count == 20


@pytest.mark.django_db(transaction=True)
async def test_async_forms_match_the_sync_contract(store, uid):
    scene = await database_sync_to_async(store.scene_create)(user_id=uid)
    assert await database_sync_to_async(store.scene_get)(scene.id) == scene
    updated = await database_sync_to_async(store.scene_update)(scene.id, status="active", mode="voice")
    assert (updated.status, updated.mode) == ("active", "voice")
    turn = await database_sync_to_async(store.turn_append)(
        scene.id, speaker="partner", text="Yes, and...", mode="voice"
    )
    assert turn.index == 1 and await database_sync_to_async(store.turns_list)(scene.id) == [turn]
    with pytest.raises(SceneNotFound):
        await database_sync_to_async(store.scene_get)("missing-scene")
    with pytest.raises(SceneNotFound):
        await database_sync_to_async(store.scene_update)("missing-scene", status="closed")
    with pytest.raises(SceneNotFound):
        await database_sync_to_async(store.turn_append)("missing-scene", speaker="user", text="x")

    audio = await database_sync_to_async(store.audio_session_start)(
        user_id=uid, scene_id=scene.id, instance="host:1"
    )
    await database_sync_to_async(store.audio_session_update)(audio.id, bytes_in=3200, resume_handle="h1")
    done = await database_sync_to_async(store.audio_session_finish)(
        audio.id, status="ended", close_reason="client_close", turns=1
    )
    assert (done.status, done.bytes_in, done.turns, done.resume_handle) == ("ended", 3200, 1, "h1")
    assert await database_sync_to_async(store.audio_session_get)(audio.id) == done
    with pytest.raises(SceneNotFound):
        await database_sync_to_async(store.audio_session_start)(
            user_id=uid, scene_id="missing-scene", instance="host:1"
        )


# --- audio sessions --------------------------------------------------------------------
@pytest.fixture
def scene(store, uid):
    return store.scene_create(user_id=uid, status="active", mode="voice")


def test_audio_session_start_and_get(store, uid, scene):
    audio = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="audio-1:42")
    assert (audio.user_id, audio.scene_id, audio.status, audio.instance) == (
        uid,
        scene.id,
        "active",
        "audio-1:42",
    )
    assert (audio.bytes_in, audio.bytes_out, audio.turns, audio.tokens_total) == (0, 0, 0, 0)
    assert audio.close_reason == "" and audio.resume_handle == "" and not audio.resumable
    assert audio.ended_at is None and audio.created_at == audio.updated_at
    assert audio.expires_at == audio.created_at + dt.timedelta(days=TTL_DAYS)
    assert store.audio_session_get(audio.id) == audio
    assert store.audio_session_get("missing-session") is None


def test_audio_session_start_for_missing_scene(store, uid):
    with pytest.raises(SceneNotFound):
        store.audio_session_start(user_id=uid, scene_id="missing-scene", instance="audio-1:42")


def test_audio_session_update_adds_counters_and_keeps_handle(store, uid, scene):
    audio = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    store.audio_session_update(audio.id, bytes_in=3200, bytes_out=4800, resume_handle="h1")
    store.audio_session_update(audio.id, bytes_in=800, turns=1, tokens_in=10, tokens_out=20, tokens_total=30)
    got = store.audio_session_get(audio.id)
    assert (got.bytes_in, got.bytes_out, got.turns) == (4000, 4800, 1)
    assert (got.tokens_in, got.tokens_out, got.tokens_total) == (10, 20, 30)
    assert got.resume_handle == "h1"  # None leaves it alone
    assert got.updated_at > audio.updated_at and got.status == "active"


@pytest.mark.parametrize("bad", [{"bogus": 1}, {"bytes_in": -5}, {"turns": "3"}])
def test_audio_session_update_rejects_bad_counters(store, uid, scene, bad):
    audio = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    with pytest.raises(StoreError):
        store.audio_session_update(audio.id, **bad)
    assert store.audio_session_get(audio.id) == audio


def test_audio_session_update_of_missing_session_is_a_no_op(store):
    store.audio_session_update("missing-session", bytes_in=10)
    assert store.audio_session_get("missing-session") is None


def test_audio_session_finish_once_first_outcome_wins(store, uid, scene):
    audio = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    store.audio_session_update(audio.id, bytes_in=100)
    done = store.audio_session_finish(
        audio.id, status="ended", close_reason="idle_timeout", resumable=True, bytes_in=50, turns=2
    )
    assert (done.status, done.close_reason, done.resumable) == ("ended", "idle_timeout", True)
    assert (done.bytes_in, done.turns) == (150, 2)
    assert done.ended_at is not None and done.ended_at >= audio.created_at
    assert store.audio_session_get(audio.id) == done

    again = store.audio_session_finish(audio.id, status="failed", close_reason="upstream_error", bytes_out=7)
    assert (again.status, again.close_reason, again.resumable, again.ended_at) == (
        "ended",
        "idle_timeout",
        True,
        done.ended_at,
    )
    assert again.bytes_out == 7  # late counters still add up
    assert store.audio_session_get(audio.id) == again


@pytest.mark.parametrize("status", ["active", "exploded"])
def test_audio_session_finish_rejects_bad_status(store, uid, scene, status):
    audio = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    with pytest.raises(StoreError):
        store.audio_session_finish(audio.id, status=status, close_reason="client_close")
    assert store.audio_session_get(audio.id) == audio


def test_audio_session_finish_missing_session(store):
    with pytest.raises(StoreError):
        store.audio_session_finish("missing-session", status="ended", close_reason="client_close")


def test_audio_sessions_active_newest_first(store, uid, scene):
    a, b, c = (store.audio_session_start(user_id=uid, scene_id=scene.id, instance=f"i{n}") for n in range(3))
    store.audio_session_finish(b.id, status="ended", close_reason="client_close")
    assert [s.id for s in store.audio_sessions_active()] == [c.id, a.id]
    assert [s.id for s in store.audio_sessions_active(limit=1)] == [c.id]
    assert store.audio_sessions_active(limit=0) == []


def test_audio_sessions_for_user_newest_first(store, uid, other_uid, scene):
    mine = [store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i") for _ in range(3)]
    theirs_scene = store.scene_create(user_id=other_uid)
    store.audio_session_start(user_id=other_uid, scene_id=theirs_scene.id, instance="i")
    assert [s.id for s in store.audio_sessions_for_user(uid)] == [s.id for s in reversed(mine)]
    assert [s.id for s in store.audio_sessions_for_user(uid, limit=2)] == [mine[2].id, mine[1].id]
    assert store.audio_sessions_for_user(uid, limit=0) == []


def test_audio_sessions_for_scene_oldest_first_by_status(store, uid, scene):
    other = store.scene_create(user_id=uid)
    first, second, third = (
        store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i") for _ in range(3)
    )
    store.audio_session_start(user_id=uid, scene_id=other.id, instance="i")
    store.audio_session_finish(first.id, status="failed", close_reason="network_error")
    store.audio_session_finish(second.id, status="ended", close_reason="client_close")
    assert [s.id for s in store.audio_sessions_for_scene(scene.id)] == [first.id, second.id, third.id]
    assert [s.id for s in store.audio_sessions_for_scene(scene.id, status="active")] == [third.id]
    assert [s.id for s in store.audio_sessions_for_scene(scene.id, status="failed")] == [first.id]
    assert store.audio_sessions_for_scene("missing-scene") == []


def test_audio_stats_since_window_edges(store, uid, scene):
    ok = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    bad = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")  # still active: never counted
    ok = store.audio_session_finish(ok.id, status="ended", close_reason="client_close")
    bad = store.audio_session_finish(bad.id, status="failed", close_reason="upstream_error")
    assert ok.ended_at < bad.ended_at
    assert store.audio_stats_since(ok.created_at - dt.timedelta(hours=1)) == AudioStats(total=2, failed=1)
    assert store.audio_stats_since(ok.ended_at) == AudioStats(total=2, failed=1)  # inclusive
    assert store.audio_stats_since(ok.ended_at + US) == AudioStats(total=1, failed=1)
    assert store.audio_stats_since(bad.ended_at + US) == AudioStats(total=0, failed=0)
    stats = store.audio_stats_since(ok.ended_at)
    assert stats.error_rate == 0.5
    assert AudioStats(total=0, failed=0).error_rate == 0.0


def test_close_reason_must_be_a_string(store, uid, scene):
    audio = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    with pytest.raises(StoreError):
        store.audio_session_finish(audio.id, status="ended", close_reason=None)
    assert store.audio_session_get(audio.id) == audio


def test_audio_sessions_since_newest_first_with_cost_and_quality_counters(store, uid, scene):
    old = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    new = store.audio_session_start(user_id=uid, scene_id=scene.id, instance="i")
    store.audio_session_update(
        new.id, bytes_in=32_000, dropped_bytes=1_600, reconnects=1, tokens_in_audio=40, cost_micro_usd=1_250
    )
    store.audio_session_finish(new.id, status="ended", close_reason="client_close", cost_micro_usd=250)
    assert [s.id for s in store.audio_sessions_since(old.created_at)] == [new.id, old.id]
    assert [s.id for s in store.audio_sessions_since(old.created_at + US)] == [new.id]
    assert [s.id for s in store.audio_sessions_since(old.created_at, limit=1)] == [new.id]
    assert store.audio_sessions_since(old.created_at, limit=0) == []
    got = store.audio_session_get(new.id)
    assert (got.cost_micro_usd, got.reconnects, got.tokens_in_audio) == (1_500, 1, 40)
    assert got.cost_usd == 0.0015
    assert got.dropped_share == 0.05
