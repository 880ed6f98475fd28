"""Every query the Firestore adapter runs, in one place.

Each function takes the client (sync or async; both build queries the same way) and returns a
query; the adapter adds count() or streams it. improv/tests/test_firestore_indexes.py checks
each of these against improv/firestore/indexes.json, so a query that would need a missing
composite index (FAILED_PRECONDITION in production, silently fine in the emulator) fails a test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from improv.store._firestore_docs import AUDIO, OPEN_LIST, SCENES
from improv.store.base import AUDIO_ACTIVE, AUDIO_FAILED, AUDIO_STATUSES, FINISHED_AUDIO

DESC = "DESCENDING"
ASC = "ASCENDING"


def scenes_for_user(client: Any, user_id: int) -> Any:
    """Index sessions(user_id ASC, created_at DESC)."""
    return (
        client.collection(SCENES)
        .where(filter=FieldFilter("user_id", "==", user_id))
        .order_by("created_at", direction=DESC)
    )


def scenes_started_since(client: Any, user_id: int, since: dt.datetime) -> Any:
    # Ordered like scenes_for_user so that one index serves both.
    return scenes_for_user(client, user_id).where(filter=FieldFilter("created_at", ">=", since))


def scenes_open(client: Any, user_id: int) -> Any:
    """Index sessions(user_id, status)."""
    return (
        client.collection(SCENES)
        .where(filter=FieldFilter("user_id", "==", user_id))
        .where(filter=FieldFilter("status", "in", OPEN_LIST))
    )


def scenes_stale(client: Any, idle_before: dt.datetime) -> Any:
    """Index sessions(status, last_activity_at): oldest activity first."""
    return (
        client.collection(SCENES)
        .where(filter=FieldFilter("status", "in", OPEN_LIST))
        .where(filter=FieldFilter("last_activity_at", "<", idle_before))
        .order_by("last_activity_at", direction=ASC)
    )


def audio_by_status(client: Any, status: str) -> Any:
    """Index audio_sessions(status, created_at): newest first."""
    return (
        client.collection(AUDIO)
        .where(filter=FieldFilter("status", "==", status))
        .order_by("created_at", direction=DESC)
    )


def audio_for_user(client: Any, user_id: int) -> Any:
    """The guide's index audio_sessions(user_id, created_at), newest first."""
    return (
        client.collection(AUDIO)
        .where(filter=FieldFilter("user_id", "==", user_id))
        .order_by("created_at", direction=DESC)
    )


def audio_for_scene(client: Any, scene_id: str, status: str | None = None) -> Any:
    """The guide's index audio_sessions(session_id, status). Unordered: a scene has a handful
    of audio sessions, so the adapter sorts them instead of needing a third index field."""
    query = client.collection(AUDIO).where(filter=FieldFilter("session_id", "==", scene_id))
    if status is not None:
        query = query.where(filter=FieldFilter("status", "==", status))
    return query


def audio_created_since(client: Any, since: dt.datetime) -> Any:
    """Index audio_sessions(status, created_at): created_at alone is exempt from single-field
    indexing, so every status is named to use the composite index."""
    return (
        client.collection(AUDIO)
        .where(filter=FieldFilter("status", "in", list(AUDIO_STATUSES)))
        .where(filter=FieldFilter("created_at", ">=", since))
        .order_by("created_at", direction=DESC)
    )


def audio_finished_since(client: Any, since: dt.datetime, status: str | None = None) -> Any:
    """Index audio_sessions(status, ended_at): all finished ones, or only one status."""
    statuses = list(FINISHED_AUDIO) if status is None else [status]
    return (
        client.collection(AUDIO)
        .where(filter=FieldFilter("status", "in", statuses))
        .where(filter=FieldFilter("ended_at", ">=", since))
    )


# (name, builder, example arguments): what the index test runs through.
ALL = (
    ("scenes_for_user", scenes_for_user, (1,)),
    ("scenes_started_since", scenes_started_since, (1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))),
    ("scenes_open", scenes_open, (1,)),
    ("scenes_stale", scenes_stale, (dt.datetime(2026, 1, 1, tzinfo=dt.UTC),)),
    ("audio_by_status", audio_by_status, (AUDIO_ACTIVE,)),
    ("audio_for_user", audio_for_user, (1,)),
    ("audio_for_scene", audio_for_scene, ("s",)),
    ("audio_for_scene_status", audio_for_scene, ("s", AUDIO_ACTIVE)),
    ("audio_created_since", audio_created_since, (dt.datetime(2026, 1, 1, tzinfo=dt.UTC),)),
    ("audio_finished_since", audio_finished_since, (dt.datetime(2026, 1, 1, tzinfo=dt.UTC),)),
    ("audio_failed_since", audio_finished_since, (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), AUDIO_FAILED)),
)
