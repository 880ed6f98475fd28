"""Writes of the voice feature: audio-session records and voice turns, through the store port."""

from __future__ import annotations

import logging
from typing import Any

from audio.drain import instance_name
from audio.turns import CompletedTurn
from improv.errors import ImprovError
from improv.services import avoice_turn_record
from improv.store import AudioSessionRecord, get_store

log = logging.getLogger(__name__)


async def audio_session_open(*, user_id: int, scene_id: str, resumed_from: str = "") -> AudioSessionRecord:
    record = await get_store().aaudio_session_start(
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
        await get_store().aaudio_session_update(session_id, resume_handle=resume_handle, **counters)


async def audio_session_close(
    *,
    session_id: str,
    user_id: int,
    scene_id: str,
    reason: str,
    failed: bool,
    resumable: bool,
    counters: dict[str, int],
    resume_handle: str | None,
    duration_s: float,
    dropped_ms: int,
) -> None:
    store = get_store()
    try:
        if resume_handle:  # the next socket (maybe on another instance) resumes from this handle
            await store.aaudio_session_update(session_id, resume_handle=resume_handle)
        await store.aaudio_session_finish(
            session_id,
            status="failed" if failed else "ended",
            close_reason=reason,
            resumable=resumable,
            **counters,
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
            "reason": reason,
            "status": "error" if failed else "ok",
            "duration_s": round(duration_s, 3),
            "dropped_audio_ms": dropped_ms,
        },
    )


async def voice_turn_save(*, scene_id: str, user_id: int, turn: CompletedTurn) -> list[dict[str, Any]]:
    """Save one finished voice turn (user line, partner line), let improv advance the scene,
    and return the `room`/`coach` messages for the browser."""
    store = get_store()
    if turn.user_text:
        await store.aturn_append(
            scene_id, speaker="user", text=turn.user_text, mode="voice", meta=turn.meta("user")
        )
    if turn.partner_text:
        await store.aturn_append(
            scene_id, speaker="partner", text=turn.partner_text, mode="voice", meta=turn.meta("partner")
        )
    if not (turn.user_text or turn.partner_text):
        return []
    return await _advance_scene(scene_id=scene_id, user_id=user_id, turn=turn)


async def _advance_scene(*, scene_id: str, user_id: int, turn: CompletedTurn) -> list[dict[str, Any]]:
    try:
        outcome = await avoice_turn_record(
            scene_id=scene_id,
            user_id=user_id,
            user_text=turn.user_text,
            partner_text=turn.partner_text,
            latency_ms=turn.latency_ms,
            interrupted=turn.interrupted,
        )
    except ImprovError as exc:  # e.g. the scene left the stage mid-call: the turns are saved anyway
        log.info(
            "voice turn not counted",
            extra={"event": "voice_turn_not_counted", "scene_id": scene_id, "why": type(exc).__name__},
        )
        return []
    return room_and_coach_messages(room=outcome.room, coach=outcome.coach)


def room_and_coach_messages(*, room: dict[str, Any] | None, coach: str) -> list[dict[str, Any]]:
    """`room` {energy, engagement, mood} and `coach` {text} for the browser."""
    messages: list[dict[str, Any]] = []
    if room:
        messages.append({"type": "room", **{k: room.get(k) for k in ("energy", "engagement", "mood")}})
    if coach:
        messages.append({"type": "coach", "text": coach})
    return messages
