"""The session store on the Django ORM (SQLite locally, Postgres in CI and production)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from improv.models import AudioSession, Scene, Turn
from improv.store.base import (
    AUDIO_ACTIVE,
    AUDIO_FAILED,
    MC_WELCOME,
    OPEN_STATUSES,
    TTL_DAYS,
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
from improv.store.validation import (
    check_finish,
    check_increments,
    check_new_scene,
    check_new_turns,
    check_page,
    check_scene_fields,
)

# SQLite has one writer at a time anyway; queueing this process's appends on a lock avoids
# "database is locked" failures between threads (other processes wait on SQLite's busy timeout).
_SQLITE_WRITES = threading.Lock()


def _scene(row: Scene) -> SceneRecord:
    return SceneRecord(
        id=row.id,
        user_id=row.user_id,
        status=row.status,
        game_slug=row.game_slug,
        suggestion=row.suggestion,
        mode=row.mode,
        turn_count=row.turn_count,
        state=dict(row.state or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_activity_at=row.last_activity_at,
        ended_at=row.ended_at,
        expires_at=row.expires_at,
    )


def _turn(row: Turn) -> TurnRecord:
    return TurnRecord(
        scene_id=row.scene_id,
        index=row.index,
        speaker=row.speaker,
        text=row.text,
        mode=row.mode,
        meta=dict(row.meta or {}),
        created_at=row.created_at,
    )


def _audio(row: AudioSession) -> AudioSessionRecord:
    return AudioSessionRecord(
        id=row.id,
        user_id=row.user_id,
        scene_id=row.scene_id,
        status=row.status,
        instance=row.instance,
        close_reason=row.close_reason,
        resumable=row.resumable,
        resume_handle=row.resume_handle,
        bytes_in=row.bytes_in,
        bytes_out=row.bytes_out,
        turns=row.turns,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        tokens_total=row.tokens_total,
        tokens_in_audio=row.tokens_in_audio,
        tokens_out_audio=row.tokens_out_audio,
        dropped_bytes=row.dropped_bytes,
        reconnects=row.reconnects,
        cost_micro_usd=row.cost_micro_usd,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        expires_at=row.expires_at,
    )


class DjangoSessionStore(SessionStore):
    # --- scenes ---------------------------------------------------------------------
    def scene_create(
        self,
        *,
        user_id: int,
        status: str = MC_WELCOME,
        game_slug: str = "",
        mode: str = "text",
        state: dict[str, Any] | None = None,
    ) -> SceneRecord:
        check_new_scene(status=status, game_slug=game_slug, mode=mode, state=state)
        now = timezone.now()
        row = Scene.objects.create(
            user_id=user_id,
            status=status,
            game_slug=game_slug,
            mode=mode,
            state=state or {},
            created_at=now,
            updated_at=now,
            last_activity_at=now,
            expires_at=now + dt.timedelta(days=TTL_DAYS),
        )
        return _scene(row)

    def scene_get(self, scene_id: str) -> SceneRecord:
        try:
            return _scene(Scene.objects.get(pk=scene_id))
        except Scene.DoesNotExist:
            raise SceneNotFound(scene_id) from None

    def scene_update(self, scene_id: str, **fields: Any) -> SceneRecord:
        check_scene_fields(fields)
        fields.setdefault("updated_at", timezone.now())
        if not Scene.objects.filter(pk=scene_id).update(**fields):
            raise SceneNotFound(scene_id)
        return self.scene_get(scene_id)

    def scenes_for_user(self, user_id: int, *, limit: int = 20, offset: int = 0) -> list[SceneRecord]:
        check_page(limit, offset)
        rows = Scene.objects.filter(user_id=user_id).order_by("-created_at", "-pk")[offset : offset + limit]
        return [_scene(r) for r in rows]

    def scenes_started_since(self, user_id: int, since: dt.datetime) -> int:
        return Scene.objects.filter(user_id=user_id, created_at__gte=since).count()

    def scenes_open_count(self, user_id: int) -> int:
        return Scene.objects.filter(user_id=user_id, status__in=OPEN_STATUSES).count()

    def scenes_stale(self, idle_before: dt.datetime, *, limit: int = 500) -> list[SceneRecord]:
        check_page(limit)
        rows = Scene.objects.filter(status__in=OPEN_STATUSES, last_activity_at__lt=idle_before).order_by(
            "last_activity_at"
        )[:limit]
        return [_scene(r) for r in rows]

    # --- turns ----------------------------------------------------------------------
    def turns_append(
        self, scene_id: str, turns: Sequence[NewTurn], *, scene_fields: dict[str, Any] | None = None
    ) -> Appended:
        fields = check_new_turns(turns, scene_fields)
        now = timezone.now()
        users = sum(t.speaker == "user" for t in turns)
        bump: dict[str, Any] = {
            "turn_seq": F("turn_seq") + len(turns),
            "last_activity_at": now,
            "updated_at": now,
            **fields,
        }
        if users:
            bump["turn_count"] = F("turn_count") + users
        serialise = _SQLITE_WRITES if connection.vendor == "sqlite" else contextlib.nullcontext()
        with serialise, transaction.atomic():
            # The UPDATE comes first on purpose: it takes the row lock on Postgres (like
            # select_for_update) and SQLite's write lock at once, so concurrent appends queue
            # here instead of reading the same counter and colliding on insert. The scene read
            # after it is the caller's too (no second read after the write).
            if not Scene.objects.filter(pk=scene_id).update(**bump):
                raise SceneNotFound(scene_id)
            scene = Scene.objects.get(pk=scene_id)
            first = scene.turn_seq - len(turns) + 1
            rows = Turn.objects.bulk_create(
                Turn(
                    scene_id=scene_id,
                    index=first + n,
                    speaker=t.speaker,
                    text=t.text,
                    mode=t.mode,
                    meta=t.meta or {},
                    created_at=now,
                )
                for n, t in enumerate(turns)
            )
        return Appended(scene=_scene(scene), turns=[_turn(r) for r in rows])

    def turns_list(self, scene_id: str) -> list[TurnRecord]:
        return [_turn(r) for r in Turn.objects.filter(scene_id=scene_id).order_by("index")]

    # --- audio sessions -------------------------------------------------------------
    def audio_session_start(self, *, user_id: int, scene_id: str, instance: str) -> AudioSessionRecord:
        if not Scene.objects.filter(pk=scene_id).exists():
            raise SceneNotFound(scene_id)
        now = timezone.now()
        row = AudioSession.objects.create(
            user_id=user_id,
            scene_id=scene_id,
            instance=instance,
            status=AUDIO_ACTIVE,
            created_at=now,
            updated_at=now,
            expires_at=now + dt.timedelta(days=TTL_DAYS),
        )
        return _audio(row)

    def audio_session_get(self, session_id: str) -> AudioSessionRecord | None:
        row = AudioSession.objects.filter(pk=session_id).first()
        return _audio(row) if row else None

    def audio_session_update(
        self, session_id: str, *, resume_handle: str | None = None, **increments: int
    ) -> None:
        fields: dict[str, Any] = {k: F(k) + v for k, v in check_increments(increments).items()}
        if resume_handle is not None:
            fields["resume_handle"] = resume_handle
        fields["updated_at"] = timezone.now()
        AudioSession.objects.filter(pk=session_id).update(**fields)

    def audio_session_finish(
        self,
        session_id: str,
        *,
        status: str,
        close_reason: str,
        resumable: bool = False,
        **increments: int,
    ) -> AudioSessionRecord:
        check_finish(status, close_reason)
        counts = check_increments(increments)
        now = timezone.now()
        with transaction.atomic():
            fields: dict[str, Any] = {k: F(k) + v for k, v in counts.items()}
            fields["updated_at"] = now
            # Only the first finish sets the outcome; counters still add up afterwards.
            first = AudioSession.objects.filter(pk=session_id, status=AUDIO_ACTIVE).update(
                status=status, close_reason=close_reason, resumable=resumable, ended_at=now, **fields
            )
            if not first:
                AudioSession.objects.filter(pk=session_id).update(**fields)
            row = AudioSession.objects.filter(pk=session_id).first()
        if row is None:
            raise StoreError(f"no audio session {session_id!r}")
        return _audio(row)

    def audio_sessions_active(self, *, limit: int = 200) -> list[AudioSessionRecord]:
        check_page(limit)
        rows = AudioSession.objects.filter(status=AUDIO_ACTIVE).order_by("-created_at")[:limit]
        return [_audio(r) for r in rows]

    def audio_sessions_for_user(self, user_id: int, *, limit: int = 20) -> list[AudioSessionRecord]:
        check_page(limit)
        rows = AudioSession.objects.filter(user_id=user_id).order_by("-created_at", "-pk")[:limit]
        return [_audio(r) for r in rows]

    def audio_sessions_for_scene(
        self, scene_id: str, *, status: str | None = None
    ) -> list[AudioSessionRecord]:
        rows = AudioSession.objects.filter(scene_id=scene_id)
        if status is not None:
            rows = rows.filter(status=status)
        return [_audio(r) for r in rows.order_by("created_at")]

    def audio_sessions_since(self, since: dt.datetime, *, limit: int = 1000) -> list[AudioSessionRecord]:
        check_page(limit)
        rows = AudioSession.objects.filter(created_at__gte=since).order_by("-created_at", "-pk")[:limit]
        return [_audio(r) for r in rows]

    def audio_stats_since(self, since: dt.datetime) -> AudioStats:
        ended = AudioSession.objects.filter(ended_at__gte=since).exclude(status=AUDIO_ACTIVE)
        return AudioStats(total=ended.count(), failed=ended.filter(status=AUDIO_FAILED).count())
