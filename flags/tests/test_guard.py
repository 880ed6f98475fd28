"""`manage.py rollout guard`: trips above 10% failed over 10 minutes, at least 20 sessions; edges tested."""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import dataclass

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from flags.guard import register_audio_stats, rollout_guard
from flags.models import Flag, RolloutChange
from flags.rollout import AUDIO_V2
from flags.services import rollout_set


@dataclass(frozen=True)
class Stats:
    total: int
    failed: int


# Ended audio sessions as (ended_at, failed); stats_since stands in for the provider the audio
# app registers (register_audio_stats), answering like the session store's audio_stats_since.
ENDED: list[tuple[dt.datetime, bool]] = []


def stats_since(since: dt.datetime) -> Stats:
    recent = [failed for ended_at, failed in ENDED if ended_at >= since]
    return Stats(total=len(recent), failed=sum(recent))


def broken_stats(since: dt.datetime) -> Stats:
    raise ConnectionError("store unreachable")


@pytest.fixture
def provider():
    """Registers stand-in stats providers for a test, then puts the app's own one back."""
    original = register_audio_stats(stats_since)
    yield register_audio_stats
    register_audio_stats(original)


@pytest.fixture
def guarded(audio_v2, settings, provider):
    provider(stats_since)
    settings.ROLLOUT_GUARD_MIN_SESSIONS = 20
    settings.ROLLOUT_GUARD_WINDOW_MINUTES = 10
    settings.ROLLOUT_GUARD_ERROR_RATE = 0.10
    rollout_set(percent=10, actor_label="ops")
    ENDED.clear()
    yield
    ENDED.clear()


def sessions(total: int, failed: int, minutes_ago: float = 1) -> None:
    at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    ENDED.extend([(at, True)] * failed + [(at, False)] * (total - failed))


def guard() -> str:
    out = io.StringIO()
    call_command("rollout", "guard", stdout=out)
    return out.getvalue()


def is_on() -> bool:
    return Flag.objects.get(name=AUDIO_V2).everyone is not False


@pytest.mark.parametrize(
    ("total", "failed", "trips"),
    [
        (20, 2, False),  # exactly 10%: not above
        (100, 10, False),  # exactly 10% again, larger sample
        (29, 3, True),  # 10.3%: just above
        (1000, 101, True),  # 10.1%
        (20, 3, True),  # 15% at exactly the minimum number of sessions
        (19, 19, False),  # all failed, but below the minimum: too few to judge
        (40, 0, False),
    ],
)
def test_guard_edges(guarded, caplog, total, failed, trips):
    sessions(total, failed)
    with caplog.at_level(logging.INFO, logger="flags"):
        line = guard()
    assert is_on() is not trips
    tripped_logs = [r for r in caplog.records if getattr(r, "event", "") == "rollout_guard_tripped"]
    if trips:
        assert line.startswith("rollout guard: TRIPPED, rolled back audio_v2: 10% -> off (rolled back)")
        assert f"{failed}/{total} audio sessions failed in the last 10 min" in line
        assert len(tripped_logs) == 1 and (tripped_logs[0].total, tripped_logs[0].failed) == (total, failed)
        change = RolloutChange.objects.get(action="guard")
        assert change.actor_label == "guard" and change.from_state == "10%"
        assert change.reason.startswith(f"guard: {failed}/{total} audio sessions failed")
    else:
        assert line.startswith("rollout guard: ok")
        assert not tripped_logs
        assert not RolloutChange.objects.filter(action="guard").exists()


def test_failures_outside_the_window_do_not_count(guarded):
    sessions(50, 50, minutes_ago=11)  # an old incident
    sessions(30, 2, minutes_ago=9)
    assert guard().startswith("rollout guard: ok: 2/30")
    assert is_on()
    sessions(1, 1, minutes_ago=0.5)  # 3/31 inside the window: 9.7%
    assert is_on() and guard().startswith("rollout guard: ok")
    sessions(1, 1, minutes_ago=0.5)  # 4/32: 12.5%
    assert guard().startswith("rollout guard: TRIPPED")
    assert not is_on()


def test_guard_is_safe_to_run_again_after_tripping(guarded):
    sessions(20, 20)
    assert "TRIPPED" in guard()
    assert guard() == "rollout guard: audio_v2 is off; nothing to guard\n"
    assert RolloutChange.objects.filter(action="guard").count() == 1


def test_guard_that_cannot_read_stats_changes_nothing(guarded, provider):
    provider(broken_stats)
    with pytest.raises(
        CommandError, match=r"could not read audio session stats .*store unreachable.*nothing changed"
    ):
        guard()
    assert is_on()


def test_guard_window_is_measured_back_from_now(guarded):
    sessions(20, 20, minutes_ago=5)
    later = timezone.now() + dt.timedelta(minutes=6)  # those failures are now 11 minutes old
    report = rollout_guard(now=later)
    assert not report.tripped and report.total == 0
    assert is_on()


def test_the_registered_provider_reads_the_session_store(audio_v2):
    # No stand-in: the provider the audio app registered at start-up.
    rollout_set(percent=10, actor_label="ops")
    assert guard().startswith("rollout guard: ok, too few sessions to judge: 0/0")
