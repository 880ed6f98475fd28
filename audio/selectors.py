"""Reads of the voice feature: may this user open voice on this scene, can it resume, which
voice sessions are live (admin), and how many failed lately (the rollout guard).

Store reads cross through `improv.store.store_call` (channels' database_sync_to_async), like
every voice-path store call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from audio.budget import abudget_state
from audio.protocol import CloseCode
from flags.rollout import aaudio_v2_enabled
from improv.store import AudioStats, SceneRecord, StoreError, get_store, store_call


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
        scene = await store_call(get_store().scene_get)(scene_id)
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
        record = await store_call(get_store().audio_session_get)(token)
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


@dataclass(frozen=True)
class LiveSession:
    """One live voice socket, as the admin's Live audio sessions page shows it."""

    id: str
    user_id: int
    user_label: str
    scene_id: str
    since: dt.datetime | None
    state: str
    instance: str


def live_audio_sessions(*, limit: int = 200) -> list[LiveSession]:
    """Active audio sessions from the session store, with user names for the admin page."""
    records = get_store().audio_sessions_active(limit=limit)
    users = get_user_model().objects.in_bulk({r.user_id for r in records})
    return [
        LiveSession(
            id=str(r.id),
            user_id=r.user_id,
            user_label=users[r.user_id].get_username() if r.user_id in users else f"user {r.user_id}",
            scene_id=str(r.scene_id),
            since=r.created_at,
            state=r.status,
            instance=r.instance,
        )
        for r in records
    ]


def audio_stats_since(since: dt.datetime) -> AudioStats:
    """Voice sessions ended since `since` and how many failed: what the rollout guard judges by
    (registered with it in AudioConfig.ready)."""
    return get_store().audio_stats_since(since)
