"""Reads: the rollout's state and plan."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from flags.models import Flag, RolloutChange
from flags.plan import Stage, current_stage, next_stage, plan_for, stage_due
from flags.rollout import AUDIO_V2


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
