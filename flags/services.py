"""Writes: every rollout change goes through here, audited, cache-flushed and announced.

Each function changes the flag, writes a RolloutChange row, flushes waffle's cache, and,
when fewer users are eligible afterwards, tells live voice sessions through the channel
layer (see flags.rollout for the group and message), in that order, so no caller can
forget a step.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.utils import timezone

from flags.models import HUNDRED, Flag, RolloutChange, format_percent
from flags.plan import anchor_for, next_stage, plan_for, stage_due
from flags.rollout import AUDIO_V2, ROLLOUT_CHANGED, rollout_group

log = logging.getLogger(__name__)


class RolloutError(ValueError):
    """A rollout change that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class RolloutResult:
    flag: str
    from_state: str
    to_state: str
    from_percent: Decimal
    to_percent: Decimal
    change: RolloutChange | None  # None: nothing changed
    notified: bool | None  # True sent, False failed, None not needed (or deferred to commit)

    @property
    def changed(self) -> bool:
        return self.change is not None

    def describe(self) -> str:
        if not self.changed:
            text = f"{self.flag} is already {self.to_state}; nothing changed"
        else:
            text = f"{self.flag}: {self.from_state} -> {self.to_state}"
        if self.notified is False:
            text += " (WARNING: could not notify live audio sessions; they keep voice until they reconnect)"
        elif self.notified:
            text += " (live audio sessions told to re-check)"
        return text


def parse_percent(value: Any) -> Decimal:
    """'10', '12.5', 50 -> Decimal; anything else is a clear RolloutError."""
    try:
        percent = Decimal(str(value).strip().rstrip("%"))
    except (InvalidOperation, ValueError):
        raise RolloutError(f"percent must be a number from 0 to 100, not {value!r}") from None
    if not percent.is_finite() or percent < 0 or percent > HUNDRED:
        raise RolloutError(f"percent must be from 0 to 100, not {value}")
    if percent != percent.quantize(Decimal("0.01")):
        raise RolloutError(f"percent has at most two decimals (basis points), not {value}")
    return percent.quantize(Decimal("0.01"))


def rollout_set(
    *,
    percent: Any,
    actor: Any = None,
    actor_label: str = "",
    reason: str = "",
    flag_name: str = AUDIO_V2,
    now: dt.datetime | None = None,
) -> RolloutResult:
    """Set the percentage (100 = everyone). Lowering it needs a reason: it ends sessions."""
    target = parse_percent(percent)
    return _change(
        flag_name=flag_name,
        action="set",
        actor=actor,
        actor_label=actor_label,
        reason=reason,
        now=now,
        target=target,
    )


def rollout_advance(
    *,
    actor: Any = None,
    actor_label: str = "",
    reason: str = "",
    force: bool = False,
    flag_name: str = AUDIO_V2,
    now: dt.datetime | None = None,
) -> RolloutResult:
    """Move to the plan's next stage; refuse if it is not due yet, unless forced."""
    plan = plan_for(flag_name)
    if not plan:
        raise RolloutError(f"{flag_name} has no rollout plan")
    now = now or timezone.now()
    flag = _get_flag(flag_name)
    current = flag.effective_percent if flag.everyone is not False else Decimal(0)
    stage = next_stage(plan, current)
    if stage is None:
        raise RolloutError(f"{flag_name} is already at {flag.state_label}, the last stage of its plan")
    if current > 0 and flag.rollout_started_at and not force:
        due = stage_due(flag.rollout_started_at, stage)
        if now < due:
            raise RolloutError(
                f"the next stage, {format_percent(stage.percent)}% on day {stage.day}, is due "
                f"{due:%Y-%m-%d %H:%M} UTC; advance then, or force it (--force)"
            )
    return _change(
        flag_name=flag_name,
        action="advance",
        actor=actor,
        actor_label=actor_label,
        reason=reason,
        now=now,
        target=stage.percent,
    )


def rollout_rollback(
    *,
    reason: str,
    actor: Any = None,
    actor_label: str = "",
    flag_name: str = AUDIO_V2,
    action: str = "rollback",
    now: dt.datetime | None = None,
) -> RolloutResult:
    """Turn the flag off for everyone in one step and end live audio sessions (text carries on)."""
    if not (reason or "").strip():
        raise RolloutError("a rollback needs a reason (--reason)")
    return _change(
        flag_name=flag_name,
        action=action,
        actor=actor,
        actor_label=actor_label,
        reason=reason,
        now=now,
        target=None,
    )


def _get_flag(flag_name: str) -> Flag:
    flag = Flag.objects.filter(name=flag_name).first()
    return flag or Flag(name=flag_name, superusers=False)


def _change(
    *,
    flag_name: str,
    action: str,
    actor: Any,
    actor_label: str,
    reason: str,
    now: dt.datetime | None,
    target: Decimal | None,
) -> RolloutResult:
    """target None = roll back (everyone=No); 100 = everyone; else a percentage."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    actor = actor if getattr(actor, "pk", None) else None
    actor_label = actor_label or (actor.get_username() if actor else "unknown")
    with transaction.atomic():
        # Row lock: two guards or operators at once serialise, the second sees the first's result.
        flag, _ = Flag.objects.select_for_update().get_or_create(
            name=flag_name, defaults={"superusers": False, "percent": Decimal(0)}
        )
        before_state, before = flag.state_label, flag.effective_percent
        everyone: bool | None  # None = waffle's "Unknown": the percentage decides
        if target is None:
            everyone, percent = False, Decimal(0)
        else:
            everyone, percent = (True if target == HUNDRED else None), target
        new_bp = 0 if everyone is False else int(percent * 100)
        if target is not None and new_bp < flag.basis_points and not reason:
            raise RolloutError(
                f"lowering {flag_name} from {before_state} to {format_percent(percent)}% ends live "
                "audio sessions; give a reason (--reason)"
            )
        change = None
        if (flag.everyone, flag.percent or Decimal(0)) != (everyone, percent):
            if percent == 0 or everyone is False:
                flag.rollout_started_at = None
            elif before == 0 or flag.rollout_started_at is None:
                flag.rollout_started_at = anchor_for(plan_for(flag_name), percent, now)
            flag.everyone, flag.percent = everyone, percent
            flag.save()
            change = RolloutChange.objects.create(
                flag_name=flag_name,
                action=action,
                from_state=before_state,
                to_state=flag.state_label,
                from_percent=before,
                to_percent=flag.effective_percent,
                actor=actor,
                actor_label=actor_label,
                reason=reason,
                at=now,
            )
        # Same-transaction readers see the new value at once; waffle flushes again on commit.
        flag.flush()
    lowered = flag.effective_percent < before or (target is None)
    notified: bool | None = None
    if lowered:
        if connection.in_atomic_block:  # an outer transaction: announce only once it commits
            transaction.on_commit(lambda: _announce(flag_name))
        else:
            notified = _announce(flag_name)
    if change is not None:
        log.info(
            "rollout changed",
            extra={
                "event": "rollout_changed",
                "flag": flag_name,
                "action": action,
                "from": before_state,
                "to": change.to_state,
                "actor": actor_label,
                "reason": reason,
                "notified": notified,
            },
        )
    return RolloutResult(
        flag=flag_name,
        from_state=before_state,
        to_state=flag.state_label,
        from_percent=before,
        to_percent=flag.effective_percent,
        change=change,
        notified=notified,
    )


def _announce(flag_name: str) -> bool:
    return _broadcast(rollout_group(flag_name), {"type": ROLLOUT_CHANGED, "flag": flag_name})


def _broadcast(group: str, message: dict[str, Any]) -> bool:
    layer = get_channel_layer()
    if layer is None:
        log.error("no channel layer configured", extra={"event": "rollout_notify_failed", "group": group})
        return False
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # The flag change itself stands; say loudly that live sessions did not hear of it.
        log.exception("channel layer send failed", extra={"event": "rollout_notify_failed", "group": group})
        return False
    return True
