"""Rollout changes: the plan with its dates, clear errors that change nothing, an audit row each time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from flags.models import Flag, RolloutChange
from flags.plan import stage_due
from flags.rollout import AUDIO_V2
from flags.selectors import rollout_status
from flags.services import RolloutError, parse_percent, rollout_advance, rollout_rollback, rollout_set

DAY1 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def at_day(day: int, hours: int = 0) -> dt.datetime:
    return DAY1 + dt.timedelta(days=day - 1, hours=hours)


def test_advance_walks_the_plan_on_its_dates(audio_v2, user):
    first = rollout_advance(actor=user, now=DAY1)
    assert (first.from_state, first.to_state) == ("0%", "1%")
    assert Flag.objects.get(name=AUDIO_V2).rollout_started_at == DAY1

    status = rollout_status()
    assert [(r.stage.percent, r.due, r.status) for r in status.rows] == [
        (Decimal(1), at_day(1), "current"),
        (Decimal(10), at_day(3), "next"),
        (Decimal(50), at_day(7), "planned"),
        (Decimal(100), at_day(14), "planned"),
    ]

    with pytest.raises(RolloutError, match=r"10% on day 3, is due 2026-03-04 09:00"):
        rollout_advance(actor=user, now=at_day(3, hours=-1))
    assert rollout_advance(actor=user, now=at_day(3)).to_state == "10%"
    with pytest.raises(RolloutError, match="day 7"):
        rollout_advance(actor=user, now=at_day(5))
    assert rollout_advance(actor=user, now=at_day(5), force=True, reason="looks great").to_state == "50%"
    assert rollout_advance(actor=user, now=at_day(14)).to_state == "100% (everyone)"
    with pytest.raises(RolloutError, match=r"already at 100% .*last stage"):
        rollout_advance(actor=user, now=at_day(20))

    rows = list(RolloutChange.objects.order_by("at", "id"))
    assert [(r.action, r.from_state, r.to_state) for r in rows] == [
        ("advance", "0%", "1%"),
        ("advance", "1%", "10%"),
        ("advance", "10%", "50%"),
        ("advance", "50%", "100% (everyone)"),
    ]
    assert all(r.actor == user and r.actor_label == user.get_username() for r in rows)
    assert rows[2].reason == "looks great" and rows[2].at == at_day(5)


def test_setting_a_later_stage_directly_anchors_day_one_back(audio_v2):
    rollout_set(percent=10, actor_label="ops", now=DAY1)
    flag = Flag.objects.get(name=AUDIO_V2)
    assert flag.rollout_started_at == DAY1 - dt.timedelta(days=2)  # 10% is day 3
    next_stage = rollout_status().next
    assert next_stage is not None
    assert stage_due(flag.rollout_started_at, next_stage) == DAY1 + dt.timedelta(days=4)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("150", "from 0 to 100, not 150"),
        ("-1", "from 0 to 100"),
        ("abc", "a number from 0 to 100, not 'abc'"),
        ("", "a number"),
        ("NaN", "from 0 to 100"),
        ("1.234", "two decimals"),
    ],
)
def test_bad_percentages_are_refused_and_change_nothing(audio_v2, value, message):
    rollout_set(percent=10, actor_label="ops")
    with pytest.raises(RolloutError, match=message):
        rollout_set(percent=value, actor_label="ops", reason="x")
    assert Flag.objects.get(name=AUDIO_V2).percent == Decimal(10)
    assert RolloutChange.objects.count() == 1


def test_parse_percent_accepts_plain_numbers():
    assert parse_percent("12.5") == Decimal("12.50")
    assert parse_percent("10%") == Decimal(10)
    assert parse_percent(0) == Decimal(0)


def test_lowering_needs_a_reason_and_rollback_always_does(audio_v2):
    rollout_set(percent=50, actor_label="ops")
    with pytest.raises(RolloutError, match="give a reason"):
        rollout_set(percent=10, actor_label="ops")
    with pytest.raises(RolloutError, match="needs a reason"):
        rollout_rollback(reason="  ", actor_label="ops")
    assert Flag.objects.get(name=AUDIO_V2).effective_percent == 50
    result = rollout_set(percent=10, actor_label="ops", reason="latency")
    assert (result.from_state, result.to_state) == ("50%", "10%")


def test_rollback_is_one_step_idempotent_and_audited(audio_v2):
    rollout_set(percent=50, actor_label="ops")
    result = rollout_rollback(reason="error spike", actor_label="cli:alice")
    flag = Flag.objects.get(name=AUDIO_V2)
    assert (flag.everyone, flag.effective_percent, flag.rollout_started_at) == (False, 0, None)
    assert result.change is not None
    assert result.change.reason == "error spike" and result.change.action == "rollback"
    again = rollout_rollback(reason="again", actor_label="cli:alice")
    assert not again.changed and "already off" in again.describe()
    assert RolloutChange.objects.filter(action="rollback").count() == 1
    # Starting over is day 1 again.
    restart = rollout_advance(actor_label="ops", now=timezone.now())
    assert (restart.from_state, restart.to_state) == ("off (rolled back)", "1%")


def test_no_op_set_writes_no_audit_row(audio_v2):
    rollout_set(percent=10, actor_label="ops")
    assert not rollout_set(percent="10.00", actor_label="ops").changed
    assert RolloutChange.objects.count() == 1
