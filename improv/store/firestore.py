"""The Firestore adapter of the session store (SESSION_STORE=firestore): the guide's production
data layer. Document layout and TTL: improv/store/_firestore_docs.py; queries and the indexes
they need: _firestore_queries.py and improv/firestore/indexes.json.

Read-modify-write operations (turn numbering, finishing an audio session, the user profile on a
first scene) are optimistic transactions: read the document, then one atomic commit that holds
only if the document is unchanged since that read (a `last_update_time` precondition; a new turn
is also `create`d, which fails if its index is taken); on conflict, re-read and retry with
jittered backoff. We do not use the SDK's read-write transactions here because their reads take
locks: under contention on one scene the Firestore emulator resolves each conflict by a ~2 s
lock timeout (20 concurrent appends: 2 landed in 100 s), whereas this commits all 20 in well under
a second and is equally atomic in production.

All methods use one `firestore.Client` (the store contract is synchronous; the voice path calls
it through `channels.db.database_sync_to_async`).
Ids are Firestore auto-ids (random, so no hot-spotting on rising keys).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from google.api_core import exceptions as gexc
from google.cloud import firestore

from improv.store import _firestore_docs as docs
from improv.store import _firestore_queries as queries
from improv.store._firestore_docs import CONFLICTS, backend_errors, first_count, valid_id
from improv.store.base import (
    AUDIO_ACTIVE,
    AUDIO_FAILED,
    AUDIO_STATUSES,
    MC_WELCOME,
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
from improv.store.validation import check_choice, check_finish, check_increments, check_new_turns, check_page


class FirestoreSessionStore(SessionStore):
    concurrent_calls = True  # one thread-safe Client; every write is an optimistic commit

    def __init__(self) -> None:
        self.project = settings.GCP_PROJECT_ID
        self.database = settings.FIRESTORE_DATABASE or "(default)"
        if not self.project:
            raise StoreError("SESSION_STORE=firestore needs GCP_PROJECT_ID")
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()

    def _db(self) -> firestore.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = firestore.Client(project=self.project, database=self.database)
        return self._client

    def _scene_ref(self, scene_id: str) -> Any:
        if not valid_id(scene_id):
            raise SceneNotFound(f"no scene {scene_id!r}")
        return self._db().collection(docs.SCENES).document(scene_id)

    def _audio_ref(self, session_id: str) -> Any:
        return self._db().collection(docs.AUDIO).document(session_id)

    def _commit(self, batch: Any) -> bool:
        """True if committed, False if it lost a race."""
        try:
            with backend_errors():
                batch.commit()
        except StoreError as exc:
            if isinstance(exc.__cause__, CONFLICTS):
                return False
            raise
        return True

    def _exists(self, ref: Any) -> bool:
        with backend_errors():
            return bool(ref.get().exists)

    def _is_mine(self, ref: Any, write_id: str) -> bool:
        """After a lost race: did our write land anyway? (The SDK retries a commit on UNAVAILABLE,
        and a retry of one that had landed fails as a conflict; this keeps it from repeating.)"""
        with backend_errors():
            snap = ref.get()
        return snap.exists and (snap.to_dict() or {}).get("write_id") == write_id

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
        at = docs.now()
        doc = docs.scene_new_doc(
            user_id=user_id, status=status, game_slug=game_slug, mode=mode, state=state, at=at
        )
        db = self._db()
        ref = db.collection(docs.SCENES).document()
        user_ref = db.collection(docs.USERS).document(str(user_id))
        for attempt in range(docs.MAX_ATTEMPTS):
            with backend_errors():
                known = user_ref.get().exists
            with backend_errors():  # values are encoded here
                batch = db.batch()
                if not known:  # the profile is written once, on the user's first scene
                    batch.create(user_ref, docs.user_doc(user_id, at))
                batch.create(ref, doc)
            if self._commit(batch) or self._exists(ref):  # the id is ours alone: if it exists, we made it
                return docs.scene_record(ref.id, doc)
            time.sleep(docs.backoff(attempt))
        raise StoreError("could not create the scene: too much contention")

    def scene_get(self, scene_id: str) -> SceneRecord:
        with backend_errors():
            snap = self._scene_ref(scene_id).get()
        if not snap.exists:
            raise SceneNotFound(f"no scene {scene_id!r}")
        return docs.scene_record(snap.id, snap.to_dict())

    def scene_update(self, scene_id: str, **fields: Any) -> SceneRecord:
        changes = docs.scene_changes(fields)
        changes.setdefault("updated_at", docs.now())
        ref = self._scene_ref(scene_id)
        try:
            with backend_errors():
                ref.update(changes)  # fails on a missing document: it never creates one
        except StoreError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                raise SceneNotFound(f"no scene {scene_id!r}") from None
            raise
        return self.scene_get(scene_id)

    def scenes_for_user(self, user_id: int, *, limit: int = 20, offset: int = 0) -> list[SceneRecord]:
        check_page(limit, offset)
        if limit == 0:
            return []
        query = queries.scenes_for_user(self._db(), docs.check_user_id(user_id))
        with backend_errors():
            snaps = list(query.offset(offset).limit(limit).stream())
        return [docs.scene_record(s.id, s.to_dict()) for s in snaps]

    def scenes_started_since(self, user_id: int, since: dt.datetime) -> int:
        query = queries.scenes_started_since(
            self._db(), docs.check_user_id(user_id), docs.check_time(since, "since")
        )
        with backend_errors():
            return first_count(query.count().get())

    def scenes_open_count(self, user_id: int) -> int:
        query = queries.scenes_open(self._db(), docs.check_user_id(user_id))
        with backend_errors():
            return first_count(query.count().get())

    def scenes_stale(self, idle_before: dt.datetime, *, limit: int = 500) -> list[SceneRecord]:
        check_page(limit)
        if limit == 0:
            return []
        query = queries.scenes_stale(self._db(), docs.check_time(idle_before, "idle_before"))
        with backend_errors():
            snaps = list(query.limit(limit).stream())
        return [docs.scene_record(s.id, s.to_dict()) for s in snaps]

    # --- turns ----------------------------------------------------------------------
    def turns_append(
        self, scene_id: str, turns: Sequence[NewTurn], *, scene_fields: dict[str, Any] | None = None
    ) -> Appended:
        fields = docs.scene_changes(check_new_turns(turns, scene_fields))
        db = self._db()
        ref = self._scene_ref(scene_id)
        mine = docs.write_id()
        for attempt in range(docs.MAX_ATTEMPTS):
            with backend_errors():
                snap = ref.get()
            if not snap.exists:
                raise SceneNotFound(f"no scene {scene_id!r}")
            scene = snap.to_dict()
            indexes, planned, changes = docs.turns_plan(scene, turns, at=docs.now(), write_id=mine)
            changes.update(fields)
            with backend_errors():  # values are encoded here
                batch = db.batch()
                for index, turn in zip(indexes, planned, strict=True):
                    batch.create(ref.collection(docs.TURNS).document(docs.turn_doc_id(index)), turn)
                batch.update(ref, changes, option=db.write_option(last_update_time=snap.update_time))
            first_ref = ref.collection(docs.TURNS).document(docs.turn_doc_id(indexes[0]))
            if self._commit(batch) or self._is_mine(first_ref, mine):
                return Appended(
                    scene=docs.scene_record(scene_id, {**scene, **changes}),
                    turns=[docs.turn_record(scene_id, turn) for turn in planned],
                )
            time.sleep(docs.backoff(attempt))
        raise StoreError(f"could not append to scene {scene_id}: too much contention")

    def turns_list(self, scene_id: str) -> list[TurnRecord]:
        if not valid_id(scene_id):
            return []
        ref = self._scene_ref(scene_id)
        with backend_errors():
            snaps = list(ref.collection(docs.TURNS).order_by("__name__").stream())
        return [docs.turn_record(scene_id, s.to_dict()) for s in snaps]

    # --- audio sessions -------------------------------------------------------------
    def audio_session_start(self, *, user_id: int, scene_id: str, instance: str) -> AudioSessionRecord:
        doc = docs.audio_new_doc(user_id=user_id, scene_id=scene_id, instance=instance, at=docs.now())
        self.scene_get(scene_id)  # an audio session belongs to a real scene
        ref = self._db().collection(docs.AUDIO).document()
        with backend_errors():
            ref.create(doc)
        return docs.audio_record(ref.id, doc)

    def audio_session_get(self, session_id: str) -> AudioSessionRecord | None:
        if not valid_id(session_id):
            return None
        with backend_errors():
            snap = self._audio_ref(session_id).get()
        return docs.audio_record(snap.id, snap.to_dict()) if snap.exists else None

    def audio_session_update(
        self, session_id: str, *, resume_handle: str | None = None, **increments: int
    ) -> None:
        changes: dict[str, Any] = {
            name: firestore.Increment(value) for name, value in check_increments(increments).items()
        }
        if resume_handle is not None:
            changes["resume_handle"] = str(resume_handle)
        changes["updated_at"] = docs.now()
        if not valid_id(session_id):
            return
        try:
            with backend_errors():
                self._audio_ref(session_id).update(changes)
        except StoreError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                return  # gone (TTL) or never was: counters for it have nowhere to go
            raise

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
        if not valid_id(session_id):
            raise StoreError(f"no audio session {session_id!r}")
        db = self._db()
        ref = self._audio_ref(session_id)
        tried: set[dt.datetime] = set()  # our ended_at values, to recognise our own landed commit
        for attempt in range(docs.MAX_ATTEMPTS):
            with backend_errors():
                snap = ref.get()
            doc = docs.audio_doc(snap, session_id)
            if doc["status"] != AUDIO_ACTIVE:  # finished already: the first outcome stands,
                if docs.finished_by(doc, tried):
                    return docs.audio_record(session_id, doc)  # ...and it was ours (a retried commit)
                with backend_errors():  # but late counters still add up
                    ref.update(docs.late_counts(counts))
                    snap = ref.get()
                return docs.audio_record(session_id, docs.audio_doc(snap, session_id))
            at = docs.now()
            tried.add(at)
            changes = docs.audio_finish_changes(
                doc,
                status=status,
                close_reason=close_reason,
                resumable=resumable,
                increments=counts,
                at=at,
            )
            with backend_errors():  # values are encoded here
                batch = db.batch()
                batch.update(ref, changes, option=db.write_option(last_update_time=snap.update_time))
            if self._commit(batch):
                return docs.audio_record(session_id, {**doc, **changes})
            time.sleep(docs.backoff(attempt))
        raise StoreError(f"could not finish audio session {session_id}: too much contention")

    def audio_sessions_active(self, *, limit: int = 200) -> list[AudioSessionRecord]:
        check_page(limit)
        if limit == 0:
            return []
        with backend_errors():
            snaps = list(queries.audio_by_status(self._db(), AUDIO_ACTIVE).limit(limit).stream())
        return [docs.audio_record(s.id, s.to_dict()) for s in snaps]

    def audio_sessions_for_user(self, user_id: int, *, limit: int = 20) -> list[AudioSessionRecord]:
        check_page(limit)
        if limit == 0:
            return []
        query = queries.audio_for_user(self._db(), docs.check_user_id(user_id)).limit(limit)
        with backend_errors():
            snaps = list(query.stream())
        return [docs.audio_record(s.id, s.to_dict()) for s in snaps]

    def audio_sessions_for_scene(
        self, scene_id: str, *, status: str | None = None
    ) -> list[AudioSessionRecord]:
        if status is not None:
            check_choice("status", status, AUDIO_STATUSES)
        if not valid_id(scene_id):
            return []
        with backend_errors():
            snaps = list(queries.audio_for_scene(self._db(), scene_id, status).stream())
        return docs.sort_audio([docs.audio_record(s.id, s.to_dict()) for s in snaps])

    def audio_sessions_since(self, since: dt.datetime, *, limit: int = 1000) -> list[AudioSessionRecord]:
        check_page(limit)
        since = docs.check_time(since, "since")
        if limit == 0:
            return []
        query = queries.audio_created_since(self._db(), since).limit(limit)
        with backend_errors():
            snaps = list(query.stream())
        return [docs.audio_record(s.id, s.to_dict()) for s in snaps]

    def audio_stats_since(self, since: dt.datetime) -> AudioStats:
        since = docs.check_time(since, "since")
        db = self._db()
        with backend_errors():
            total = first_count(queries.audio_finished_since(db, since).count().get())
            failed = first_count(queries.audio_finished_since(db, since, AUDIO_FAILED).count().get())
        return AudioStats(total=total, failed=failed)
