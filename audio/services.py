"""Writes of the voice feature: audio-session records, each finished voice turn handed to improv,
and the admin's "end this user's voice session".

The store is synchronous; every call crosses into it through `improv.store.store_call`, which is
`channels.db.database_sync_to_async`
(it closes stale database connections around the call, which plain `sync_to_async` does not).
"""

from __future__ import annotations

import dataclasses
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from audio import protocol
from audio.drain import instance_name
from audio.groups import END_EVENT, user_group
from audio.protocol import CloseReason
from audio.turns import CompletedTurn
from improv.errors import ImprovError
from improv.store import AUDIO_ENDED, AUDIO_FAILED, AudioSessionRecord, get_store, store_call
from improv.voice_turns import avoice_turn_record

log = logging.getLogger(__name__)


async def audio_session_open(*, user_id: int, scene_id: str, resumed_from: str = "") -> AudioSessionRecord:
    record = await store_call(get_store().audio_session_start)(
        user_id=user_id, scene_id=scene_id, instance=instance_name()
    )
    log.info(
        "audio session started",
        extra={
            "event": "audio_session_started",
            "session_id": record.id,
            "scene_id": scene_id,
            "user_id": user_id,
            "resumed_from": resumed_from,
        },
    )
    return record


async def audio_session_flush(
    *, session_id: str, counters: dict[str, int], resume_handle: str | None
) -> None:
    if counters or resume_handle:
        await store_call(get_store().audio_session_update)(
            session_id, resume_handle=resume_handle, **counters
        )


def _finish(
    session_id: str, *, reason: CloseReason, counters: dict[str, int], resume_handle: str | None
) -> None:
    store = get_store()
    if resume_handle:  # the next socket (maybe on another instance) resumes from this handle
        store.audio_session_update(session_id, resume_handle=resume_handle)
    store.audio_session_finish(
        session_id,
        status=AUDIO_FAILED if reason.failed else AUDIO_ENDED,
        close_reason=reason.value,
        resumable=reason.resumable and bool(resume_handle),
        **counters,
    )


async def audio_session_close(
    *,
    session_id: str,
    user_id: int,
    scene_id: str,
    reason: CloseReason,
    counters: dict[str, int],
    resume_handle: str | None,
    duration_s: float,
    dropped_ms: int,
) -> None:
    try:
        await store_call(_finish)(
            session_id, reason=reason, counters=counters, resume_handle=resume_handle
        )
    except Exception:
        log.exception(
            "audio session record not finished",
            extra={"event": "audio_session_finish_failed", "session_id": session_id},
        )
    log.info(
        "audio session ended",
        extra={
            "event": "audio_session_ended",
            "session_id": session_id,
            "scene_id": scene_id,
            "user_id": user_id,
            "reason": reason.value,
            "status": "error" if reason.failed else "ok",
            "duration_s": round(duration_s, 3),
            "dropped_audio_ms": dropped_ms,
        },
    )


async def voice_turn_save(
    *, scene_id: str, user_id: int, turn: CompletedTurn
) -> list[protocol.RoomMessage | protocol.CoachMessage]:
    """Hand one finished voice turn to improv (it saves the lines and advances the scene) and
    return the `room`/`coach` messages for the browser."""
    if not (turn.user_text or turn.partner_text):
        return []
    try:
        outcome = await avoice_turn_record(scene_id=scene_id, user_id=user_id, **turn.record_fields())
    except ImprovError as exc:  # e.g. the scene left the stage mid-call: the lines are saved anyway
        log.info(
            "voice turn not counted",
            extra={"event": "voice_turn_not_counted", "scene_id": scene_id, "why": type(exc).__name__},
        )
        return []
    messages: list[protocol.RoomMessage | protocol.CoachMessage] = []
    if outcome.room:
        messages.append(protocol.room(outcome.room))
    if outcome.coach:
        messages.append(protocol.coach(outcome.coach))
    return messages


def audio_session_end(*, user_id: int, reason: str = CloseReason.ADMIN.value) -> bool:
    """Ask the user's live voice socket (on whichever instance holds it) to end; False if the
    channel layer could not be reached (nothing ended)."""
    layer = get_channel_layer()
    group = user_group(user_id)
    if layer is None:
        log.error("no channel layer configured", extra={"event": "audio_end_failed", "group": group})
        return False
    try:
        async_to_sync(layer.group_send)(group, {"type": END_EVENT, "reason": reason})
    except Exception:
        log.exception("channel layer send failed", extra={"event": "audio_end_failed", "group": group})
        return False
    return True


# --- a store outage in the middle of a scene --------------------------------------------------
def is_store_outage(exc: BaseException) -> bool:
    """Whether `exc` means the store is unreachable for now (worth retrying), not a bad request."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError)):
        return True
    try:
        from google.api_core import exceptions as gcp
    except ImportError:  # pragma: no cover - google-cloud-firestore brings it
        return False
    return isinstance(exc, (gcp.ServiceUnavailable, gcp.DeadlineExceeded, gcp.InternalServerError))


async def voice_turn_save_again(
    *, scene_id: str, user_id: int, turn: CompletedTurn
) -> list[protocol.RoomMessage | protocol.CoachMessage]:
    """Save a turn whose earlier save failed mid-way, without saving any line twice: an outage
    between the user's line and the partner's leaves the user's stored (with its start time)."""
    if turn.user_text:
        started = turn.meta("user").get("started_at")
        stored = await store_call(get_store().turns_list)(scene_id)
        if any(
            t.speaker == "user"
            and t.mode == "voice"
            and t.text == turn.user_text
            and t.meta.get("started_at") == started
            for t in stored
        ):
            turn = dataclasses.replace(turn, user_text="")  # only the partner's line is left
    return await voice_turn_save(scene_id=scene_id, user_id=user_id, turn=turn)
