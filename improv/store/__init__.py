"""The session store port: where scenes, turns and audio-session records live.

Callers use `get_store()`; SESSION_STORE picks the adapter (django | firestore), and
nothing else in the app changes. Accounts, allauth and waffle stay in the Django
database in every setup.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from improv.store.base import (
    AUDIO_ACTIVE,
    AUDIO_ENDED,
    AUDIO_FAILED,
    AudioSessionRecord,
    AudioStats,
    SceneNotFound,
    SceneRecord,
    SessionStore,
    StoreError,
    TurnRecord,
)

ADAPTERS = {
    "django": "improv.store.orm.DjangoSessionStore",
    "firestore": "improv.store.firestore.FirestoreSessionStore",
}


@cache
def _store_for(name: str) -> SessionStore:
    try:
        path = ADAPTERS[name]
    except KeyError:
        raise StoreError(f"SESSION_STORE must be one of {sorted(ADAPTERS)}, not {name!r}") from None
    return import_string(path)()


def get_store() -> SessionStore:
    return _store_for(settings.SESSION_STORE)


def audio_stats_since(since: dt.datetime) -> AudioStats:
    """For the rollout guard (settings.ROLLOUT_GUARD_STATS names this function)."""
    return get_store().audio_stats_since(since)


def audio_sessions_active(*, limit: int = 200) -> list[AudioSessionRecord]:
    """For the admin's live-sessions page (settings.ROLLOUT_LIVE_SESSIONS names this function)."""
    return get_store().audio_sessions_active(limit=limit)


def reset_store_cache() -> None:
    """Forget adapter instances (tests switch SESSION_STORE)."""
    _store_for.cache_clear()


__all__ = [
    "AUDIO_ACTIVE",
    "AUDIO_ENDED",
    "AUDIO_FAILED",
    "AudioSessionRecord",
    "AudioStats",
    "SceneNotFound",
    "SceneRecord",
    "SessionStore",
    "StoreError",
    "TurnRecord",
    "audio_sessions_active",
    "audio_stats_since",
    "get_store",
    "reset_store_cache",
]
