"""Writes of the voice feature: audio-session records and voice turns, through the store port."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from asgiref.sync import sync_to_async

from audio.drain import instance_name
from audio.turns import CompletedTurn
from improv.store import AudioSessionRecord, get_store

log = logging.getLogger(__name__)


async def audio_session_open(*, user_id: int, scene_id: str, resumed_from: str = "") -> AudioSessionRecord:
    record = await get_store().aaudio_session_start(user_id=user_id, scene_id=scene_id, instance=instance_name())
    log.info("audio session started", extra={
        "event": "audio_session_started", "session_id": record.id, "scene_id": scene_id,
        "user_id": user_id, "resumed_from": resumed_from})
    return record


async def audio_session_flush(*, session_id: str, counters: dict[str, int], resume_handle: str | None) -> None:
    if counters or resume_handle:
        await get_store().aaudio_session_update(session_id, resume_handle=resume_handle, **counters)


async def audio_session_close(
    *, session_id: str, user_id: int, scene_id: str, reason: str, failed: bool, resumable: bool,
    counters: dict[str, int], resume_handle: str | None, duration_s: float, dropped_ms: int,
) -> None:
    store = get_store()
    try:
        if resume_handle:  # the next socket (maybe on another instance) resumes from this handle
            await store.aaudio_session_update(session_id, resume_handle=resume_handle)
        await store.aaudio_session_finish(session_id, status="failed" if failed else "ended",
                                          close_reason=reason, resumable=resumable, **counters)
    except Exception:
        log.exception("audio session record not finished", extra={
            "event": "audio_session_finish_failed", "session_id": session_id})
    log.info("audio session ended", extra={
        "event": "audio_session_ended", "session_id": session_id, "scene_id": scene_id,
        "user_id": user_id, "reason": reason, "status": "error" if failed else "ok",
        "duration_s": round(duration_s, 3), "dropped_audio_ms": dropped_ms})


async def voice_turn_save(*, scene_id: str, user_id: int, turn: CompletedTurn) -> list[dict[str, Any]]:
    """Save one finished voice turn (user line, partner line), let improv advance the scene,
    and return the `room`/`coach` messages for the browser."""
    store = get_store()
    if turn.user_text:
        await store.aturn_append(scene_id, speaker="user", text=turn.user_text, mode="voice",
                                 meta=turn.meta("user"))
    if turn.partner_text:
        await store.aturn_append(scene_id, speaker="partner", text=turn.partner_text, mode="voice",
                                 meta=turn.meta("partner"))
    if not (turn.user_text or turn.partner_text):
        return []
    return await _advance_scene(scene_id=scene_id, user_id=user_id, turn=turn)


async def _advance_scene(*, scene_id: str, user_id: int, turn: CompletedTurn) -> list[dict[str, Any]]:
    try:
        from improv import services as improv_services
    except ImportError:
        return []
    record = getattr(improv_services, "voice_turn_record", None)
    if record is None:
        return []
    kwargs: dict[str, Any] = {"scene_id": scene_id, "user_id": user_id, "user_text": turn.user_text,
                              "partner_text": turn.partner_text, "latency_ms": turn.latency_ms,
                              "interrupted": turn.interrupted}
    accepted = inspect.signature(record).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    result = await record(**kwargs) if inspect.iscoroutinefunction(record) else \
        await sync_to_async(record)(**kwargs)
    return room_and_coach_messages(result)


def room_and_coach_messages(result: Any) -> list[dict[str, Any]]:
    """`room` {energy, engagement, mood} and `coach` {text} from improv's answer, if it has them."""
    if result is None:
        return []
    data = result if isinstance(result, dict) else getattr(result, "__dict__", {})
    messages: list[dict[str, Any]] = []
    room = data.get("room")
    if room is not None:
        room = room if isinstance(room, dict) else getattr(room, "__dict__", {})
        messages.append({"type": "room", **{k: room.get(k) for k in ("energy", "engagement", "mood")}})
    coach = data.get("coach") or data.get("coach_text")
    if isinstance(coach, str) and coach:
        messages.append({"type": "coach", "text": coach})
    return messages
