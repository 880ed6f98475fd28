"""Reads of the voice feature: may this user open voice on this scene, and can it resume?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from audio.budget import abudget_state
from audio.protocol import CloseCode
from flags.rollout import aaudio_v2_enabled
from improv.store import SceneRecord, StoreError, get_store


@dataclass
class Rejection(Exception):
    """Why a voice socket is refused: the close code, and the `error` message the browser gets."""

    code: CloseCode
    error_code: str
    message: str


async def voice_scene_for(*, user: Any, scene_id: str) -> SceneRecord:
    """The scene if `user` may talk in it now; raise Rejection otherwise."""
    if user is None or not user.is_authenticated:
        raise Rejection(CloseCode.UNAUTHENTICATED, "unauthenticated", "Sign in to use voice mode.")
    try:
        scene = await get_store().ascene_get(scene_id)
    except StoreError:
        raise Rejection(CloseCode.SCENE_UNAVAILABLE, "scene_not_found", "There is no such scene.") from None
    if scene.user_id != user.pk:
        raise Rejection(CloseCode.FORBIDDEN, "not_your_scene", "This scene belongs to someone else.")
    if not scene.is_open:
        raise Rejection(
            CloseCode.SCENE_UNAVAILABLE,
            "scene_closed",
            "This scene has ended; start a new one to talk again.",
        )
    if not await aaudio_v2_enabled(user):
        raise Rejection(
            CloseCode.FORBIDDEN,
            "voice_not_enabled",
            "Voice mode is not available for your account yet; carry on in text mode.",
        )
    budget = await abudget_state()
    if budget.tripped:
        raise Rejection(
            CloseCode.BUDGET_REACHED,
            "voice_budget_reached",
            "Voice is paused for today: the daily voice budget is used up. Carry on in text mode; "
            "voice comes back tomorrow.",
        )
    return scene


async def resume_handle_for(*, user_id: int, scene_id: str, token: str) -> str | None:
    """The Live resumption handle behind a `reconnect.resume_token`, if it is this user's, for
    this scene, and was left resumable; anything else starts a fresh Live session."""
    if not token or len(token) > 100:
        return None
    try:
        record = await sync_to_async(get_store().audio_session_get)(token)
    except StoreError:
        return None
    if (
        record is None
        or record.user_id != user_id
        or record.scene_id != scene_id
        or not record.resumable
        or not record.resume_handle
    ):
        return None
    return record.resume_handle
