"""Firestore document shapes for the session store: records <-> documents, and the input checks
only Firestore needs (the port's own are in improv/store/validation.py).

Pure functions (no I/O) so the sync and async adapters share them. Layout:
  users/{user_id}                 small profile, written on a user's first scene
  sessions/{random id}            a scene (the guide calls it a session)
  sessions/{id}/turns/{00000001}  its turns; the id is the zero-padded index
  audio_sessions/{random id}      one voice socket's record; its scene is `session_id`
Every document a scene owns carries `expires_at` (the TTL field, TTL_DAYS after the scene
starts), so Firestore's TTL policy removes a scene, its turns and audio records together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from django.utils import timezone
from google.api_core import exceptions as gexc
from google.cloud.firestore import Increment

from improv.store.base import (
    AUDIO_ACTIVE,
    AUDIO_COUNTERS,
    OPEN_STATUSES,
    SCENE_STATUSES,
    TTL_DAYS,
    AudioSessionRecord,
    NewTurn,
    SceneRecord,
    StoreError,
    TurnRecord,
)
from improv.store.validation import check_new_scene, check_scene_fields

USERS = "users"
SCENES = "sessions"
TURNS = "turns"
AUDIO = "audio_sessions"

OPEN_LIST = [s for s in SCENE_STATUSES if s in OPEN_STATUSES]  # stable order for `in` filters
SCENE_TIMES = ("created_at", "updated_at", "last_activity_at", "ended_at", "expires_at")
AUDIO_TIMES = ("created_at", "updated_at", "ended_at", "expires_at")
# How often an optimistic commit is retried before we give up (contention on one scene).
MAX_ATTEMPTS = 200


def now() -> dt.datetime:
    return timezone.now()


def expiry(start: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(days=TTL_DAYS)


def turn_doc_id(index: int) -> str:
    # Zero-padded so that document-name order is index order.
    return f"{index:08d}"


def write_id() -> str:
    return uuid.uuid4().hex


def plain_time(value: Any) -> dt.datetime | None:
    return _plain(value)


def backoff(attempt: int) -> float:
    """Seconds to wait before retrying a conflicted commit (full jitter, capped)."""
    return random.uniform(0, min(0.1, 0.002 * 2 ** min(attempt, 10)))


def _plain(value: Any) -> Any:
    # The SDK returns DatetimeWithNanoseconds; records carry plain aware datetimes.
    if isinstance(value, dt.datetime):
        return dt.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=dt.UTC,
        )
    return value


def check_time(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise StoreError(f"{name} must be a datetime, not {type(value).__name__}")
    if timezone.is_naive(value):
        raise StoreError(f"{name} must be timezone-aware")
    return value


# --- validation ------------------------------------------------------------------------
def check_user_id(user_id: Any) -> int:
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise StoreError(f"user_id must be an int, not {type(user_id).__name__}")
    return user_id


def scene_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The port's checks, and Firestore's: times must be aware (stored as UTC instants)."""
    check_scene_fields(changes)
    for name in SCENE_TIMES:
        if changes.get(name) is not None:
            check_time(changes[name], name)
    return dict(changes)


# --- scenes ----------------------------------------------------------------------------
def scene_new_doc(
    *, user_id: int, status: str, game_slug: str, mode: str, state: dict[str, Any] | None, at: dt.datetime
) -> dict[str, Any]:
    check_user_id(user_id)
    check_new_scene(status=status, game_slug=game_slug, mode=mode, state=state)
    return {
        "user_id": user_id,
        "status": status,
        "game_slug": game_slug,
        "suggestion": "",
        "mode": mode,
        "turn_count": 0,
        "turn_seq": 0,
        "state": dict(state or {}),
        "created_at": at,
        "updated_at": at,
        "last_activity_at": at,
        "ended_at": None,
        "expires_at": expiry(at),
    }


def scene_record(scene_id: str, doc: dict[str, Any]) -> SceneRecord:
    return SceneRecord(
        id=scene_id,
        user_id=doc["user_id"],
        status=doc["status"],
        game_slug=doc.get("game_slug", ""),
        suggestion=doc.get("suggestion", ""),
        mode=doc.get("mode", "text"),
        turn_count=doc.get("turn_count", 0),
        state=dict(doc.get("state") or {}),
        **{name: _plain(doc.get(name)) for name in SCENE_TIMES},
    )


def user_doc(user_id: int, at: dt.datetime) -> dict[str, Any]:
    return {"user_id": user_id, "created_at": at}


# --- turns -----------------------------------------------------------------------------
def turns_plan(
    scene: dict[str, Any], turns: Sequence[NewTurn], *, at: dt.datetime, write_id: str
) -> tuple[list[int], list[dict[str, Any]], dict[str, Any]]:
    """Given the scene as read, the turns' indexes, their documents and the scene's changes.
    `write_id` marks the turns as this call's, in case the SDK retried a commit that had landed."""
    first = scene.get("turn_seq", 0) + 1
    indexes = list(range(first, first + len(turns)))
    expires_at = scene.get("expires_at") or expiry(at)
    planned = [
        {
            "index": index,
            "write_id": write_id,
            "speaker": turn.speaker,
            "text": turn.text,
            "mode": turn.mode,
            "meta": dict(turn.meta or {}),
            "created_at": at,
            "expires_at": expires_at,
        }
        for index, turn in zip(indexes, turns, strict=True)
    ]
    changes: dict[str, Any] = {"turn_seq": indexes[-1], "last_activity_at": at, "updated_at": at}
    users = sum(turn.speaker == "user" for turn in turns)
    if users:
        changes["turn_count"] = scene.get("turn_count", 0) + users
    return indexes, planned, changes


def turn_record(scene_id: str, doc: dict[str, Any]) -> TurnRecord:
    return TurnRecord(
        scene_id=scene_id,
        index=doc["index"],
        speaker=doc["speaker"],
        text=doc["text"],
        mode=doc.get("mode", "text"),
        meta=dict(doc.get("meta") or {}),
        created_at=_plain(doc.get("created_at")),
    )


# --- audio sessions --------------------------------------------------------------------
def audio_new_doc(*, user_id: int, scene_id: str, instance: str, at: dt.datetime) -> dict[str, Any]:
    check_user_id(user_id)
    return {
        "user_id": user_id,
        "session_id": scene_id,
        "status": AUDIO_ACTIVE,
        "instance": instance,
        "close_reason": "",
        "resumable": False,
        "resume_handle": "",
        **dict.fromkeys(AUDIO_COUNTERS, 0),
        "created_at": at,
        "updated_at": at,
        "ended_at": None,
        "expires_at": expiry(at),
    }


def audio_finish_changes(
    doc: dict[str, Any],
    *,
    status: str,
    close_reason: str,
    resumable: bool,
    increments: dict[str, int],
    at: dt.datetime,
) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "status": status,
        "close_reason": close_reason,
        "resumable": bool(resumable),
        "ended_at": at,
        "updated_at": at,
    }
    for name, value in increments.items():
        changes[name] = doc.get(name, 0) + value
    return changes


def audio_doc(snap: Any, session_id: str) -> dict[str, Any]:
    """The audio session a snapshot holds (to_dict() is None only for a missing document)."""
    doc = snap.to_dict() if snap.exists else None
    if doc is None:
        raise StoreError(f"no audio session {session_id!r}")
    return doc


def finished_by(doc: dict[str, Any], tried: set[dt.datetime]) -> bool:
    """Whether a finished audio session's outcome is one of our own attempts (identified by their
    ended_at): the SDK retried a commit of ours that had landed."""
    ended = plain_time(doc.get("ended_at"))
    return ended is not None and ended in tried


def late_counts(increments: dict[str, int]) -> dict[str, Any]:
    """Changes for counters that arrive after an audio session finished."""
    return {**{name: Increment(value) for name, value in increments.items()}, "updated_at": now()}


def audio_record(session_id: str, doc: dict[str, Any]) -> AudioSessionRecord:
    return AudioSessionRecord(
        id=session_id,
        user_id=doc["user_id"],
        scene_id=doc["session_id"],
        status=doc["status"],
        instance=doc.get("instance", ""),
        close_reason=doc.get("close_reason", ""),
        resumable=bool(doc.get("resumable", False)),
        resume_handle=doc.get("resume_handle", ""),
        **{name: doc.get(name, 0) for name in AUDIO_COUNTERS},
        **{name: _plain(doc.get(name)) for name in AUDIO_TIMES},
    )


def sort_audio(records: list[AudioSessionRecord]) -> list[AudioSessionRecord]:
    """Oldest first: the order a scene's voice connections happened in."""
    return sorted(records, key=lambda r: (r.created_at, r.id))


# A commit that lost a race: re-read and try again.
CONFLICTS = (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.Aborted)


@contextlib.contextmanager
def backend_errors() -> Iterator[None]:
    """Turn SDK and encoding failures into StoreError (callers handle one exception type)."""
    try:
        yield
    except StoreError:
        raise
    except gexc.GoogleAPICallError as exc:
        raise StoreError(f"Firestore: {exc.code} {exc.message}") from exc
    except gexc.RetryError as exc:
        raise StoreError(f"Firestore unavailable: {exc}") from exc
    except (TypeError, ValueError) as exc:  # a value Firestore cannot store
        raise StoreError(f"Firestore cannot store this value: {exc}") from exc


def valid_id(doc_id: Any) -> bool:
    # Anything else would address another path (or, if empty, mint a new random id).
    return (
        isinstance(doc_id, str)
        and 0 < len(doc_id) <= 1500
        and "/" not in doc_id
        and doc_id not in (".", "..")
        and not (doc_id.startswith("__") and doc_id.endswith("__"))
    )


def first_count(result: Any) -> int:
    return int(result[0][0].value)
