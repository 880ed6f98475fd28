"""The one place that answers "is audio_v2 on for this user?" (pages, API, consumer)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

AUDIO_V2 = "audio_v2"


def audio_v2_enabled(user: Any) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    from waffle import get_waffle_flag_model

    flag = get_waffle_flag_model().get(AUDIO_V2)
    if flag.pk is None:
        return False
    return bool(flag.everyone) or bool(flag.is_active_for_user(user))


async def aaudio_v2_enabled(user: Any) -> bool:
    return await sync_to_async(audio_v2_enabled)(user)
