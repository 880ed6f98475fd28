"""Reads: the rollout's state and plan, and the live audio sessions (through a settings seam)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from flags.models import Flag, RolloutChange
from flags.plan import Stage, current_stage, next_stage, plan_for, stage_due
from flags.rollout import AUDIO_V2

# flags imports no other app of ours: the numbers and sessions come through callables
# named in settings (defaults: improv.store.audio_stats_since / audio_sessions_active).
DEFAULT_STATS = "improv.store.audio_stats_since"
DEFAULT_LIVE_SESSIONS = "improv.store.audio_sessions_active"


@dataclass(frozen=True)
class PlanRow:
    stage: Stage
    due: dt.datetime | None
    status: str  # done | current | next | planned


@dataclass(frozen=True)
class RolloutStatus:
    flag: Flag
    stage: Stage | None
    next: Stage | None
    next_due: dt.datetime | None
    rows: list[PlanRow]
    last_change: RolloutChange | None


def rollout_status(*, flag_name: str = AUDIO_V2) -> RolloutStatus:
    flag = Flag.objects.filter(name=flag_name).first() or Flag(name=flag_name)
    plan = plan_for(flag_name)
    percent = flag.effective_percent if flag.pk else Decimal(0)
    stage, upcoming = current_stage(plan, percent), next_stage(plan, percent)
    started = flag.rollout_started_at
    rows = []
    for row in plan:
        if row.percent <= percent:
            status = "current" if row == stage else "done"
        else:
            status = "next" if row == upcoming else "planned"
        rows.append(PlanRow(stage=row, due=stage_due(started, row) if started else None, status=status))
    return RolloutStatus(
        flag=flag,
        stage=stage,
        next=upcoming,
        next_due=stage_due(started, upcoming) if (started and upcoming) else None,
        rows=rows,
        last_change=RolloutChange.objects.filter(flag_name=flag_name).first(),
    )


def setting_callable(name: str, default: str) -> Callable[..., Any]:
    path = getattr(settings, name, default) or default
    return import_string(path) if isinstance(path, str) else path


@dataclass(frozen=True)
class LiveSession:
    id: str
    user_id: int
    user_label: str
    scene_id: str
    since: dt.datetime | None
    state: str
    instance: str


def live_audio_sessions(*, limit: int = 200) -> list[LiveSession]:
    """Active audio sessions from the session store, with user names for the admin page."""
    records = list(setting_callable("ROLLOUT_LIVE_SESSIONS", DEFAULT_LIVE_SESSIONS)(limit=limit))
    users = get_user_model().objects.in_bulk({r.user_id for r in records})
    return [
        LiveSession(
            id=str(r.id),
            user_id=r.user_id,
            user_label=users[r.user_id].get_username() if r.user_id in users else f"user {r.user_id}",
            scene_id=str(r.scene_id),
            since=r.created_at,
            state=r.status,
            instance=getattr(r, "instance", ""),
        )
        for r in records
    ]
