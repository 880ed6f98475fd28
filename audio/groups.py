"""The channel-layer groups and events of voice sockets that other parts of the app address.

- `user_group(user_id)` = "audio.user.<id>": every voice socket of that user joins it.
  `{"type": SUPERSEDE_EVENT, "channel": <new socket's channel>}` tells older sockets to leave
  (close 4009); `{"type": END_EVENT, "reason": "admin"}` is the admin's "End session" (close 1000).
- The rollout group (flags.rollout.ROLLOUT_GROUP, `rollout.changed`) belongs to flags; the drain
  group (audio/drain.py) to the server entry point.
"""

from __future__ import annotations

USER_GROUP_PREFIX = "audio.user."
SUPERSEDE_EVENT = "audio.supersede"  # the consumer's `audio_supersede`
END_EVENT = "audio.end"  # the consumer's `audio_end`


def user_group(user_id: int | str) -> str:
    return f"{USER_GROUP_PREFIX}{user_id}"
