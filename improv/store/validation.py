"""The port's input checks, shared by every adapter: bad input is a StoreError, raised before
anything is written, with the same message whichever store is configured.

Adapters may check more where their backend needs it (Firestore: user ids, aware datetimes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from improv.store.base import (
    AUDIO_COUNTERS,
    FINISHED_AUDIO,
    MODES,
    SCENE_STATUSES,
    SPEAKERS,
    NewTurn,
    SceneRecord,
    StoreError,
)

# Scene fields a caller may set; the turn counter belongs to turns_append.
SCENE_SETTABLE = frozenset(f.name for f in fields(SceneRecord)) - {"id", "user_id", "created_at"}
_SCENE_STRINGS = ("game_slug", "suggestion")


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise StoreError(f"{name} must be one of {list(choices)}, not {value!r}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_page(limit: int, offset: int = 0) -> None:
    if limit < 0 or offset < 0:
        raise StoreError("limit and offset must not be negative")


def check_scene_fields(changes: dict[str, Any]) -> None:
    """For scene_update: only settable fields, each of the right kind."""
    unknown = sorted(set(changes) - SCENE_SETTABLE)
    if unknown:
        raise StoreError(f"cannot set scene fields {unknown}")
    if "status" in changes:
        check_choice("status", changes["status"], SCENE_STATUSES)
    if "mode" in changes:
        check_choice("mode", changes["mode"], MODES)
    if "state" in changes and not isinstance(changes["state"], dict):
        raise StoreError("state must be a dict")
    if "turn_count" in changes and not _is_count(changes["turn_count"]):
        raise StoreError("turn_count must be a non-negative int")
    for name in _SCENE_STRINGS:
        if name in changes and not isinstance(changes[name], str):
            raise StoreError(f"{name} must be a string")


def check_new_scene(*, status: str, game_slug: str, mode: str, state: dict[str, Any] | None) -> None:
    """For scene_create (no state means an empty one)."""
    given: dict[str, Any] = {"status": status, "game_slug": game_slug, "mode": mode}
    check_scene_fields(given if state is None else {**given, "state": state})


def check_turn(*, speaker: str, text: str, mode: str, meta: dict[str, Any] | None) -> None:
    check_choice("speaker", speaker, SPEAKERS)
    check_choice("mode", mode, MODES)
    if not isinstance(text, str):
        raise StoreError("text must be a string")
    if meta is not None and not isinstance(meta, dict):
        raise StoreError("meta must be a dict")


def check_new_turns(turns: Sequence[NewTurn], scene_fields: dict[str, Any] | None) -> dict[str, Any]:
    """For turns_append: at least one good line, and settable scene fields; returns the fields."""
    if not turns:
        raise StoreError("turns_append needs at least one turn")
    for turn in turns:
        check_turn(speaker=turn.speaker, text=turn.text, mode=turn.mode, meta=turn.meta)
    changes = dict(scene_fields or {})
    if "turn_count" in changes:
        raise StoreError("turns_append counts the user turns itself: cannot set turn_count")
    check_scene_fields(changes)
    return changes


def check_increments(increments: dict[str, Any]) -> dict[str, int]:
    """Known audio counters, each a non-negative int; returns the ones that add something."""
    unknown = sorted(set(increments) - set(AUDIO_COUNTERS))
    if unknown:
        raise StoreError(f"unknown audio counters {unknown}; allowed: {list(AUDIO_COUNTERS)}")
    for name, value in increments.items():
        if not _is_count(value):
            raise StoreError(f"{name} must be a non-negative int, not {value!r}")
    return {k: v for k, v in increments.items() if v}


def check_finish(status: str, close_reason: str) -> None:
    check_choice("status", status, FINISHED_AUDIO)
    if not isinstance(close_reason, str):
        raise StoreError("close_reason must be a string")
