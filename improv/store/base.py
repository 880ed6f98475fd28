"""The port: records the app passes around, and the operations every adapter provides.

Records are plain frozen dataclasses so that callers never depend on the ORM or on
Firestore documents. The contract is synchronous, one way for every adapter; async callers
(the voice path) cross into it with `channels.db.database_sync_to_async`.
Ids are strings (random, never rising keys: no Firestore hot-spotting).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from improv.statuses import (
    ACTIVE,
    AUDIO_ACTIVE,
    AUDIO_ENDED,
    AUDIO_FAILED,
    CLOSED,
    COACHING,
    EXPIRED,
    GAME_SELECTION,
    MC_WELCOME,
    SCENE_COMPLETE,
    SUGGESTION,
)

SCENE_STATUSES = (MC_WELCOME, GAME_SELECTION, SUGGESTION, ACTIVE, SCENE_COMPLETE, COACHING, CLOSED, EXPIRED)
OPEN_STATUSES = frozenset({MC_WELCOME, GAME_SELECTION, SUGGESTION, ACTIVE, SCENE_COMPLETE, COACHING})
SPEAKERS = ("user", "partner", "mc", "coach", "audience")
MODES = ("text", "voice")  # what a scene or a turn is played in
AUDIO_STATUSES = (AUDIO_ACTIVE, AUDIO_ENDED, AUDIO_FAILED)
FINISHED_AUDIO = (AUDIO_ENDED, AUDIO_FAILED)  # what audio_session_finish may set

TTL_DAYS = 30


class StoreError(Exception):
    """The store could not do what was asked (bad input, or the backend failed)."""


class SceneNotFound(StoreError):
    pass


@dataclass(frozen=True)
class SceneRecord:
    id: str
    user_id: int
    status: str
    game_slug: str = ""
    suggestion: str = ""
    mode: str = "text"  # text | voice: what the scene is currently played in
    turn_count: int = 0
    # Domain state the store does not interpret (partner phase, room vibe, coach notes).
    state: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    last_activity_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class TurnRecord:
    scene_id: str
    index: int  # 1-based, assigned by the store, gap-free per scene
    speaker: str
    text: str
    mode: str = "text"
    # Timing: when the speaker started and finished, and e.g. latency_ms for the partner.
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class NewTurn:
    """A line to append (turns_append); the store gives it its index and time."""

    speaker: str
    text: str
    mode: str = "text"
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Appended:
    """What turns_append wrote: the scene as it is after the write, and the new turns in order."""

    scene: SceneRecord
    turns: list[TurnRecord]


@dataclass(frozen=True)
class AudioSessionRecord:
    id: str
    user_id: int
    scene_id: str
    status: str  # AUDIO_STATUSES
    instance: str = ""  # hostname:pid of the audio process that holds the socket
    close_reason: str = ""  # client_close | idle_timeout | server_restart | network_error | ...
    resumable: bool = False
    resume_handle: str = ""  # newest Live session-resumption handle
    bytes_in: int = 0
    bytes_out: int = 0
    turns: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_total: int = 0
    tokens_in_audio: int = 0  # the audio part of tokens_in / tokens_out (the rest is text)
    tokens_out_audio: int = 0
    dropped_bytes: int = 0  # stale input audio dropped before it reached Live (quality SLI)
    reconnects: int = 0  # upstream reconnects (goAway or a resumable close)
    cost_micro_usd: int = 0  # estimated Live cost of the tokens, in millionths of a dollar
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None

    @property
    def cost_usd(self) -> float:
        return self.cost_micro_usd / 1_000_000

    @property
    def dropped_share(self) -> float:
        """Share of the user's audio dropped as stale (bytes_in counts dropped bytes too)."""
        return self.dropped_bytes / self.bytes_in if self.bytes_in else 0.0


@dataclass(frozen=True)
class AudioStats:
    total: int
    failed: int

    @property
    def error_rate(self) -> float:
        return self.failed / self.total if self.total else 0.0


# Counter fields an audio session may add to while it runs.
AUDIO_COUNTERS = (
    "bytes_in",
    "bytes_out",
    "turns",
    "tokens_in",
    "tokens_out",
    "tokens_total",
    "tokens_in_audio",
    "tokens_out_audio",
    "dropped_bytes",
    "reconnects",
    "cost_micro_usd",
)


class SessionStore(abc.ABC):
    # True when the adapter may be called from many threads at once (Firestore's client is
    # thread-safe): the voice path then runs its calls side by side in the thread pool instead of
    # queueing them on Django's one sync thread, which the ORM adapter needs (see `store_call`).
    concurrent_calls: bool = False

    # --- scenes ---------------------------------------------------------------------
    @abc.abstractmethod
    def scene_create(
        self,
        *,
        user_id: int,
        status: str = MC_WELCOME,
        game_slug: str = "",
        mode: str = "text",
        state: dict[str, Any] | None = None,
    ) -> SceneRecord: ...

    @abc.abstractmethod
    def scene_get(self, scene_id: str) -> SceneRecord:
        """Raise SceneNotFound when there is no such scene."""

    @abc.abstractmethod
    def scene_update(self, scene_id: str, **fields: Any) -> SceneRecord:
        """Set fields of SceneRecord (not id/user_id/created_at); bumps updated_at."""

    @abc.abstractmethod
    def scenes_for_user(self, user_id: int, *, limit: int = 20, offset: int = 0) -> list[SceneRecord]:
        """Newest first."""

    @abc.abstractmethod
    def scenes_started_since(self, user_id: int, since: dt.datetime) -> int: ...

    @abc.abstractmethod
    def scenes_open_count(self, user_id: int) -> int: ...

    @abc.abstractmethod
    def scenes_stale(self, idle_before: dt.datetime, *, limit: int = 500) -> list[SceneRecord]:
        """Open scenes whose last activity is older than `idle_before` (for expiry)."""

    # --- turns ----------------------------------------------------------------------
    @abc.abstractmethod
    def turns_append(
        self, scene_id: str, turns: Sequence[NewTurn], *, scene_fields: dict[str, Any] | None = None
    ) -> Appended:
        """Append `turns` (at least one) in one atomic write, all or none: the next indexes in
        order, turn_count bumped by the user lines among them, last_activity_at and updated_at
        bumped, and `scene_fields` set as scene_update would (not turn_count). Concurrent appends
        lose nothing. Returns the scene as written, so a caller needs no read after it."""

    def turn_append(
        self,
        scene_id: str,
        *,
        speaker: str,
        text: str,
        mode: str = "text",
        meta: dict[str, Any] | None = None,
    ) -> TurnRecord:
        """One line: give it the next index and bump the scene's turn_count (only for user turns)
        and last_activity_at, atomically."""
        return self.turns_append(scene_id, [NewTurn(speaker, text, mode, meta)]).turns[0]

    @abc.abstractmethod
    def turns_list(self, scene_id: str) -> list[TurnRecord]:
        """In index order."""

    # --- audio sessions -------------------------------------------------------------
    @abc.abstractmethod
    def audio_session_start(self, *, user_id: int, scene_id: str, instance: str) -> AudioSessionRecord: ...

    @abc.abstractmethod
    def audio_session_get(self, session_id: str) -> AudioSessionRecord | None: ...

    @abc.abstractmethod
    def audio_session_update(
        self, session_id: str, *, resume_handle: str | None = None, **increments: int
    ) -> None:
        """Add `increments` (AUDIO_COUNTERS) to the counters; set resume_handle if given."""

    @abc.abstractmethod
    def audio_session_finish(
        self,
        session_id: str,
        *,
        status: str,
        close_reason: str,
        resumable: bool = False,
        **increments: int,
    ) -> AudioSessionRecord:
        """Mark ended/failed once; a second finish keeps the first outcome."""

    @abc.abstractmethod
    def audio_sessions_active(self, *, limit: int = 200) -> list[AudioSessionRecord]: ...

    @abc.abstractmethod
    def audio_sessions_for_user(self, user_id: int, *, limit: int = 20) -> list[AudioSessionRecord]:
        """Newest first (index: user_id, created_at)."""

    @abc.abstractmethod
    def audio_sessions_for_scene(
        self, scene_id: str, *, status: str | None = None
    ) -> list[AudioSessionRecord]:
        """(index: session_id, status)."""

    @abc.abstractmethod
    def audio_sessions_since(self, since: dt.datetime, *, limit: int = 1000) -> list[AudioSessionRecord]:
        """Sessions created at or after `since`, newest first (Voice health, the budget breaker)."""

    @abc.abstractmethod
    def audio_stats_since(self, since: dt.datetime) -> AudioStats:
        """Sessions ended since `since`, and how many of them failed (rollout guard)."""
