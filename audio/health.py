"""What the Voice health admin page shows, read from the session store (ORM or Firestore) and
the rollout tables, so it works anywhere the app runs, metrics backend or not. Reads only.

Windows: the last 10 minutes (the rollout guard's window), the last hour, and today (midnight in
VOICE_BUDGET_TIME_ZONE, as for the budget). Session figures count sessions started in the window;
the failure rate counts sessions that ended in it (the guard's own input). First-audio latency
comes from the voice turns saved in that window, from at most HEALTH_MAX_SCENES recent scenes.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.utils import timezone

from audio.budget import BudgetState, budget_state, day_bounds
from audio.metrics import QUALITY_MAX_DROPPED
from flags.guard import guard_settings
from flags.models import RolloutChange
from flags.rollout import AUDIO_V2
from flags.selectors import RolloutStatus, rollout_status
from improv.store import AudioSessionRecord, get_store

HEALTH_MAX_SCENES = 200


def percentile(values: list[int], q: float) -> int | None:
    """Nearest-rank percentile (q in 0..100) of the values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Window:
    label: str
    since: dt.datetime
    sessions: int = 0
    ended: int = 0
    failed: int = 0
    latencies: list[int] = field(default_factory=list)
    reconnects: int = 0
    bytes_in: int = 0
    dropped_bytes: int = 0
    good_sessions: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.ended if self.ended else None

    @property
    def dropped_share(self) -> float | None:
        return self.dropped_bytes / self.bytes_in if self.bytes_in else None

    @property
    def quality_sli(self) -> float | None:
        """Share of sessions with less than 5% of their audio dropped (the guide's quality SLI)."""
        return self.good_sessions / self.sessions if self.sessions else None

    def p(self, q: float) -> int | None:
        return percentile(self.latencies, q)

    @property
    def p50(self) -> int | None:
        return self.p(50)

    @property
    def p95(self) -> int | None:
        return self.p(95)

    @property
    def p99(self) -> int | None:
        return self.p(99)


@dataclass(frozen=True)
class GuardState:
    on: bool  # the flag is on for someone, so the guard is watching
    window_minutes: int
    threshold: float
    min_sessions: int
    ended: int
    failed: int
    last_trip: RolloutChange | None

    @property
    def verdict(self) -> str:
        if not self.on:
            return "off: audio_v2 is rolled back (off for everyone), nothing to guard"
        numbers = f"{self.failed}/{self.ended} failed in {self.window_minutes} min"
        if self.ended < self.min_sessions:
            return f"watching: too few sessions to judge ({numbers}; needs {self.min_sessions})"
        if self.failed / self.ended > self.threshold:
            return f"would trip: {numbers}, above {self.threshold:.0%}"
        return f"ok: {numbers}, at most {self.threshold:.0%} allowed"


@dataclass(frozen=True)
class VoiceHealth:
    now: dt.datetime
    live: list[AudioSessionRecord]
    windows: list[Window]
    budget: BudgetState
    rollout: RolloutStatus
    guard: GuardState

    @property
    def live_by_instance(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.live:
            counts[record.instance or "?"] = counts.get(record.instance or "?", 0) + 1
        return dict(sorted(counts.items()))


def _latencies(records: list[AudioSessionRecord], since: dt.datetime) -> list[int]:
    store = get_store()
    out: list[int] = []
    seen: set[str] = set()
    for record in records:
        if record.scene_id in seen or len(seen) >= HEALTH_MAX_SCENES:
            continue
        seen.add(record.scene_id)
        for turn in store.turns_list(record.scene_id):
            latency = turn.meta.get("latency_ms")
            if turn.mode == "voice" and turn.speaker == "partner" and isinstance(latency, int):
                if turn.created_at is not None and turn.created_at >= since:
                    out.append(latency)
    return out


def _window(label: str, since: dt.datetime, records: list[AudioSessionRecord]) -> Window:
    started = [r for r in records if r.created_at is not None and r.created_at >= since]
    stats = get_store().audio_stats_since(since)
    return Window(
        label=label,
        since=since,
        sessions=len(started),
        ended=stats.total,
        failed=stats.failed,
        latencies=_latencies(records, since),
        reconnects=sum(r.reconnects for r in started),
        bytes_in=sum(r.bytes_in for r in started),
        dropped_bytes=sum(r.dropped_bytes for r in started),
        good_sessions=sum(1 for r in started if r.dropped_share < QUALITY_MAX_DROPPED),
        tokens_in=sum(r.tokens_in for r in started),
        tokens_out=sum(r.tokens_out for r in started),
        cost_usd=sum(r.cost_micro_usd for r in started) / 1_000_000,
    )


def voice_health(*, now: dt.datetime | None = None) -> VoiceHealth:
    now = now or timezone.now()
    store = get_store()
    day_start, _ = day_bounds(now)
    hour_ago = now - dt.timedelta(hours=1)
    window, threshold, min_sessions = guard_settings()
    guard_since = now - dt.timedelta(minutes=window)
    # Sessions since the earliest window start; the live ones too (a long session may predate it).
    records = store.audio_sessions_since(min(day_start, hour_ago), limit=100_000)
    recent = records + [r for r in store.audio_sessions_active() if r.id not in {x.id for x in records}]
    windows = [
        _window(f"last {window} min", guard_since, recent),
        _window("last hour", hour_ago, recent),
        _window("today", day_start, recent),
    ]
    status = rollout_status(flag_name=AUDIO_V2)
    guard_window = windows[0]
    flag = status.flag
    guard = GuardState(
        on=bool(flag.pk) and flag.everyone is not False,  # as flags/guard.py decides
        window_minutes=window,
        threshold=threshold,
        min_sessions=min_sessions,
        ended=guard_window.ended,
        failed=guard_window.failed,
        last_trip=RolloutChange.objects.filter(flag_name=AUDIO_V2, action="guard").first(),
    )
    return VoiceHealth(
        now=now,
        live=store.audio_sessions_active(),
        windows=windows,
        budget=budget_state(now=now, fresh=True),
        rollout=status,
        guard=guard,
    )
