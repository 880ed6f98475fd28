"""`manage.py rollout ...`: what an operator types and reads, and the errors for bad input."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from flags.models import Flag, RolloutChange
from flags.rollout import AUDIO_V2


def rollout(*args: str) -> str:
    out = io.StringIO()
    call_command("rollout", *args, stdout=out)
    return out.getvalue()


def test_status_plan_advance_set_rollback(audio_v2, make_user):
    operator = make_user(email="ops@example.com")
    assert rollout("status").startswith("audio_v2: 0%\n")
    assert "not started" in rollout("plan")

    assert rollout("advance", "--by", "ops@example.com").strip() == "audio_v2: 0% -> 1%"
    plan = rollout("plan")
    dates = re.findall(r"day (\d+)\s+(\d{4}-\d\d-\d\d)\s+(\d+)%\s+(\w+)", plan)
    assert [(d, p, s) for d, _, p, s in dates] == [
        ("1", "1", "current"),
        ("3", "10", "next"),
        ("7", "50", "planned"),
        ("14", "100", "planned"),
    ]
    status = rollout("status")
    assert "stage: day 1 (1%)" in status and "next: 10% (day 3), due" in status
    assert "by ops@example.com (cli:" in status

    with pytest.raises(CommandError, match=r"is due \d{4}-.*force it \(--force\)"):
        rollout("advance")
    assert "1% -> 10%" in rollout("advance", "--force", "--reason", "internal team happy")
    assert "10% -> 25%" in rollout("set", "25")
    assert "25% -> off (rolled back)" in rollout("rollback", "--reason", "error spike")
    assert Flag.objects.get(name=AUDIO_V2).everyone is False

    rows = list(RolloutChange.objects.order_by("id"))
    assert [(r.action, r.from_state, r.to_state) for r in rows] == [
        ("advance", "0%", "1%"),
        ("advance", "1%", "10%"),
        ("set", "10%", "25%"),
        ("rollback", "25%", "off (rolled back)"),
    ]
    assert rows[0].actor == operator
    assert rows[1].reason == "internal team happy" and rows[3].reason == "error spike"
    assert rows[2].actor is None and rows[2].actor_label.startswith("cli:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "150"), "from 0 to 100, not 150"),
        (("set", "abc"), "a number from 0 to 100, not 'abc'"),
        (("rollback",), "the following arguments are required: --reason"),
        (("rollback", "--reason", ""), "needs a reason"),
        (("set",), "required: percent"),
        (("frobnicate",), "invalid choice"),
        (("advance", "--by", "nobody@example.com"), "no such user"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(audio_v2, args, message):
    with pytest.raises(CommandError, match=message):
        rollout(*args)
    assert Flag.objects.get(name=AUDIO_V2).state_label == "0%"
    assert not RolloutChange.objects.exists()


def test_advance_past_100_percent_is_refused(audio_v2):
    rollout("set", "100")
    with pytest.raises(CommandError, match="already at 100% \\(everyone\\), the last stage"):
        rollout("advance", "--force")
    assert RolloutChange.objects.count() == 1
