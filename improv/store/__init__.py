"""The session store port: where scenes, turns and audio-session records live.

Callers use `get_store()`; SESSION_STORE picks the adapter (django | firestore), and
nothing else in the app changes. The contract is synchronous; async code (the voice path)
crosses into it with `store_call`. Accounts, allauth and waffle stay in the Django
database in every setup.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from functools import cache
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from channels.db import DatabaseSyncToAsync, database_sync_to_async
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
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
    adapter, side by side in the thread pool for an adapter with `concurrent_calls`.

    On the ORM adapter the database connection a call opens stays open for the calls after it
    (VOICE_DB_CONN_MAX_AGE seconds; see `_keep_voice_connection`)."""
    if get_store().concurrent_calls:
        return database_sync_to_async(func, thread_sensitive=False)
    return _KeepingSyncToAsync(func, thread_sensitive=True)


_voice_call = threading.local()


class _KeepingSyncToAsync(DatabaseSyncToAsync):
    """database_sync_to_async whose calls mark the connections they open as the voice path's."""

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        _voice_call.active = True
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            _voice_call.active = False


def _keep_voice_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Give a connection opened by a voice-path store call VOICE_DB_CONN_MAX_AGE instead of
    CONN_MAX_AGE (0: a new connection per call).

    Why only here: the ORM adapter's store calls all run on asgiref's one sync thread, which lives
    as long as the process, so its one connection is reused by every voice session's turns instead
    of being opened and closed (with SQLite's PRAGMAs, or Postgres' TCP and auth) 3 times a turn.
    A global CONN_MAX_AGE would also keep the connections of HTTP requests, which Django runs
    under ASGI each on a thread of its own that ends with the request, so they would never be
    reused, only left for the garbage collector (Django's "persistent connections under ASGI"
    caveat); and of the thread pool the Firestore adapter's calls run in. Everything else stays
    Django's: `close_old_connections` around every call still closes a connection that had errors
    and fails `is_usable()`, that was left in a transaction, or that outlived its age, and
    CONN_HEALTH_CHECKS (on by default, settings.py) tests a kept connection before its first
    query in each call, so one the database dropped (a restart, a failover) is replaced instead
    of failing the turn. `close_at` is the deadline Django's `connect()` has just set from
    CONN_MAX_AGE; only a longer one is set."""
    if not getattr(_voice_call, "active", False) or connection.close_at is None:
        return
    connection.close_at = max(connection.close_at, time.monotonic() + float(settings.VOICE_DB_CONN_MAX_AGE))


connection_created.connect(_keep_voice_connection, dispatch_uid="improv.store.keep_voice_connection")


async def store_connections_close() -> None:
    """Close the database connections of the thread the ORM adapter's store calls run on (tests:
    before the test database is dropped)."""
    await sync_to_async(connections.close_all, thread_sensitive=True)()


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
    "store_connections_close",
]
