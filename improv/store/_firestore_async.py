"""Native async forms of the Firestore adapter (the voice consumer awaits these), on
`firestore.AsyncClient`. Same documents and the same optimistic commits as the sync methods in
improv/store/firestore.py; see its docstring for why commits are optimistic.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import weakref
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from improv.store import _firestore_docs as docs
from improv.store._firestore_docs import CONFLICTS, backend_errors, valid_id
from improv.store.base import AudioSessionRecord, SceneNotFound, SceneRecord, StoreError, TurnRecord
from improv.store.validation import check_finish, check_increments, check_turn


class AsyncFirestoreMixin:
    project: str
    database: str

    def __init__(self) -> None:
        # gRPC aio channels are bound to the loop that created them: one client per loop.
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, firestore.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _adb(self) -> firestore.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = firestore.AsyncClient(project=self.project, database=self.database)
            self._aclients[loop] = client
        return client

    def _ascene_ref(self, scene_id: str) -> Any:
        if not valid_id(scene_id):
            raise SceneNotFound(f"no scene {scene_id!r}")
        return self._adb().collection(docs.SCENES).document(scene_id)

    async def _acommit(self, batch: Any) -> bool:
        try:
            with backend_errors():
                await batch.commit()
        except StoreError as exc:
            if isinstance(exc.__cause__, CONFLICTS):
                return False
            raise
        return True

    async def _ais_mine(self, ref: Any, write_id: str) -> bool:
        """See FirestoreSessionStore._is_mine."""
        with backend_errors():
            snap = await ref.get()
        return snap.exists and (snap.to_dict() or {}).get("write_id") == write_id

    async def ascene_get(self, scene_id: str) -> SceneRecord:
        with backend_errors():
            snap = await self._ascene_ref(scene_id).get()
        if not snap.exists:
            raise SceneNotFound(f"no scene {scene_id!r}")
        return docs.scene_record(snap.id, snap.to_dict())

    async def ascene_update(self, scene_id: str, **fields: Any) -> SceneRecord:
        changes = docs.scene_changes(fields)
        changes.setdefault("updated_at", docs.now())
        ref = self._ascene_ref(scene_id)
        try:
            with backend_errors():
                await ref.update(changes)
        except StoreError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                raise SceneNotFound(f"no scene {scene_id!r}") from None
            raise
        return await self.ascene_get(scene_id)

    async def aturn_append(
        self,
        scene_id: str,
        *,
        speaker: str,
        text: str,
        mode: str = "text",
        meta: dict[str, Any] | None = None,
    ) -> TurnRecord:
        check_turn(speaker=speaker, text=text, mode=mode, meta=meta)
        db = self._adb()
        ref = self._ascene_ref(scene_id)
        mine = docs.write_id()
        for attempt in range(docs.MAX_ATTEMPTS):
            with backend_errors():
                snap = await ref.get()
            if not snap.exists:
                raise SceneNotFound(f"no scene {scene_id!r}")
            index, turn, changes = docs.turn_plan(
                snap.to_dict(), speaker=speaker, text=text, mode=mode, meta=meta, at=docs.now(), write_id=mine
            )
            with backend_errors():  # values are encoded here
                batch = db.batch()
                batch.create(ref.collection(docs.TURNS).document(docs.turn_doc_id(index)), turn)
                batch.update(ref, changes, option=db.write_option(last_update_time=snap.update_time))
            turn_ref = ref.collection(docs.TURNS).document(docs.turn_doc_id(index))
            if await self._acommit(batch) or await self._ais_mine(turn_ref, mine):
                return docs.turn_record(scene_id, turn)
            await asyncio.sleep(docs.backoff(attempt))
        raise StoreError(f"could not append a turn to scene {scene_id}: too much contention")

    async def aturns_list(self, scene_id: str) -> list[TurnRecord]:
        if not valid_id(scene_id):
            return []
        ref = self._ascene_ref(scene_id)
        with backend_errors():
            snaps = [s async for s in ref.collection(docs.TURNS).order_by("__name__").stream()]
        return [docs.turn_record(scene_id, s.to_dict()) for s in snaps]

    async def aaudio_session_start(self, *, user_id: int, scene_id: str, instance: str) -> AudioSessionRecord:
        doc = docs.audio_new_doc(user_id=user_id, scene_id=scene_id, instance=instance, at=docs.now())
        await self.ascene_get(scene_id)
        ref = self._adb().collection(docs.AUDIO).document()
        with backend_errors():
            await ref.create(doc)
        return docs.audio_record(ref.id, doc)

    async def aaudio_session_update(
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
                await self._adb().collection(docs.AUDIO).document(session_id).update(changes)
        except StoreError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                return  # gone (TTL) or never was: counters for it have nowhere to go
            raise

    async def aaudio_session_finish(
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
        db = self._adb()
        ref = db.collection(docs.AUDIO).document(session_id)
        tried: set[dt.datetime] = set()
        for attempt in range(docs.MAX_ATTEMPTS):
            with backend_errors():
                snap = await ref.get()
            doc = docs.audio_doc(snap, session_id)
            if doc["status"] != "active":  # the first outcome stands; late counters add up
                if docs.finished_by(doc, tried):
                    return docs.audio_record(session_id, doc)  # our own commit, retried by the SDK
                with backend_errors():
                    await ref.update(docs.late_counts(counts))
                    snap = await ref.get()
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
            if await self._acommit(batch):
                return docs.audio_record(session_id, {**doc, **changes})
            await asyncio.sleep(docs.backoff(attempt))
        raise StoreError(f"could not finish audio session {session_id}: too much contention")
