"""The one place that answers "is audio_v2 on for this user?" (pages, API, consumer).

    audio_v2_enabled(user) -> bool           sync: views, API, templates
    await aaudio_v2_enabled(user) -> bool    async: the voice consumer

Both read the same flag (flags.models.Flag, cached in the "flags" cache for a few seconds
and flushed on every change) and the same per-user bucket, so a user gets one answer
everywhere, on every device. Anonymous users are never in.

Live notifications (the voice consumer subscribes; flags imports no other app):

- ROLLOUT_GROUP = "rollout.audio_v2": after any change that lowers who is eligible
  (rollback, the guard, a lower percentage) flags sends
  `{"type": "rollout.changed", "flag": "audio_v2"}` to this group, once the change is
  committed and the flag cache is flushed. A consumer that joined the group handles it
  in `rollout_changed(self, event)`: it re-checks `await aaudio_v2_enabled(user)` and,
  when that is now False, tells the browser and closes with 4014 (voice turned off by
  the rollout; the scene carries on in text mode).

(The per-user voice group and the admin's "end session" are the voice feature's: audio/groups.py.)
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

AUDIO_V2 = "audio_v2"

ROLLOUT_GROUP = "rollout.audio_v2"
ROLLOUT_CHANGED = "rollout.changed"
def rollout_group(flag_name: str = AUDIO_V2) -> str:
    return f"rollout.{flag_name}"


def flag_enabled(flag_name: str, user: Any) -> bool:
    """Any flag of ours, per user, with the deterministic bucket."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    from waffle import get_waffle_flag_model

    return bool(get_waffle_flag_model().get(flag_name).is_active_for_user(user))


def audio_v2_enabled(user: Any) -> bool:
    return flag_enabled(AUDIO_V2, user)


async def aaudio_v2_enabled(user: Any) -> bool:
    # database_sync_to_async: the lazy scope user, the flag and its M2M may touch the DB,
    # and it closes stale connections around the call in long-lived consumers.
    return await database_sync_to_async(audio_v2_enabled)(user)
