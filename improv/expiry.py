"""Idle scenes expire: lazily whenever a scene is read or a new one started, and in bulk by the
`expire_scenes` command. A leaf module, so that reads (selectors) and writes (services) both
use it without depending on each other.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from improv import lifecycle
from improv.store import SceneRecord, get_store

log = logging.getLogger(__name__)


def idle_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(minutes=int(settings.IMPROV_IDLE_EXPIRY_MINUTES))


def scene_is_stale(scene: SceneRecord, now: dt.datetime | None = None) -> bool:
    return scene.is_open and scene.last_activity_at is not None and scene.last_activity_at < idle_cutoff(now)


def scene_expire(*, scene: SceneRecord) -> SceneRecord:
    if not scene.is_open:
        return scene
    log.info("scene expired", extra={"event": "scene_expired", "scene_id": scene.id})
    return get_store().scene_update(scene.id, status=lifecycle.EXPIRED, ended_at=timezone.now())


def scene_fresh(scene: SceneRecord) -> SceneRecord:
    """`scene` as it should be seen now: expired first if it sat idle too long."""
    return scene_expire(scene=scene) if scene_is_stale(scene) else scene


def scenes_expire_stale(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Expire every open scene idle for longer than IMPROV_IDLE_EXPIRY_MINUTES."""
    stale = get_store().scenes_stale(idle_cutoff(now), limit=limit)
    for scene in stale:
        scene_expire(scene=scene)
    return len(stale)
