"""The session store port: where scenes, turns and audio-session records live.

Callers use `get_store()`; SESSION_STORE picks the adapter (django | firestore), and
nothing else in the app changes. The contract is synchronous; async code (the voice path)
crosses into it with `store_call`. Accounts, allauth and waffle stay in the Django
database in every setup.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import cache
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

from improv.store.base import (
    AUDIO_ACTIVE,
    AUDIO_ENDED,
    AUDIO_FAILED,
    Appended,
    AudioSessionRecord,
    AudioStats,
    NewTurn,
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


P = ParamSpec("P")
R = TypeVar("R")


def store_call(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`func` (store calls, possibly with other ORM reads) as a coroutine function: the one bridge
    of the async voice path into the sync store. It is channels' `database_sync_to_async` (which
    closes stale database connections around the call); on Django's one sync thread for the ORM
    adapter, side by side in the thread pool for an adapter with `concurrent_calls`."""
    return database_sync_to_async(func, thread_sensitive=not get_store().concurrent_calls)


def reset_store_cache() -> None:
    """Forget adapter instances (tests switch SESSION_STORE)."""
    _store_for.cache_clear()


__all__ = [
    "AUDIO_ACTIVE",
    "AUDIO_ENDED",
    "AUDIO_FAILED",
    "Appended",
    "AudioSessionRecord",
    "AudioStats",
    "NewTurn",
    "SceneNotFound",
    "SceneRecord",
    "SessionStore",
    "StoreError",
    "TurnRecord",
    "get_store",
    "reset_store_cache",
    "store_call",
]
