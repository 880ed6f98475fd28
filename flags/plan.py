"""The rollout plans, as data: the deployment guide's 1% day 1, 10% day 3, 50% day 7, 100% day 14.

Days count from day 1, the moment the flag first goes above 0 (Flag.rollout_started_at).
A stage is due at the start of its day; `advance` refuses an early step unless forced,
so a double click or a second operator cannot skip a stage by accident.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from flags.rollout import AUDIO_V2


@dataclass(frozen=True)
class Stage:
    day: int
    percent: Decimal


PLANS: dict[str, tuple[Stage, ...]] = {
    AUDIO_V2: (
        Stage(day=1, percent=Decimal(1)),
        Stage(day=3, percent=Decimal(10)),
        Stage(day=7, percent=Decimal(50)),
        Stage(day=14, percent=Decimal(100)),
    ),
}


def plan_for(flag_name: str) -> tuple[Stage, ...]:
    return PLANS.get(flag_name, ())


def current_stage(plan: tuple[Stage, ...], percent: Decimal) -> Stage | None:
    """The last stage at or below `percent` (None below the first stage)."""
    reached = [stage for stage in plan if stage.percent <= percent]
    return reached[-1] if reached and percent > 0 else None


def next_stage(plan: tuple[Stage, ...], percent: Decimal) -> Stage | None:
    return next((stage for stage in plan if stage.percent > percent), None)


def stage_due(started_at: dt.datetime, stage: Stage) -> dt.datetime:
    return started_at + dt.timedelta(days=stage.day - 1)


def anchor_for(plan: tuple[Stage, ...], percent: Decimal, now: dt.datetime) -> dt.datetime:
    """Day 1 for a rollout that starts now at `percent` (set straight to 10% = already day 3)."""
    stage = current_stage(plan, percent)
    return now - dt.timedelta(days=(stage.day - 1) if stage else 0)
