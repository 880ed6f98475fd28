"""The daily voice budget breaker: once today's estimated voice spend reaches
VOICE_DAILY_BUDGET_USD, new voice sockets are refused (the page carries on in text mode); live
sessions finish. "Today" starts at midnight in VOICE_BUDGET_TIME_ZONE, so it resets by itself.

Spend is the sum of the audio-session records' estimated cost (audio/cost.py, flushed per turn)
for sessions started today, read from the store; each process caches it for
VOICE_BUDGET_CACHE_S so a burst of connects costs one query, not one each.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from improv.store import get_store

_lock = threading.Lock()
_cache: dict[str, tuple[float, dt.datetime, float]] = {}  # "spend" -> (read at, day start, usd)


def usd(amount: float) -> str:
    """Dollars as people read them: cents for real amounts, four places for tiny ones."""
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"


@dataclass(frozen=True)
class BudgetState:
    budget_usd: float  # 0: the breaker is off
    spent_usd: float
    day_start: dt.datetime
    resets_at: dt.datetime

    @property
    def enabled(self) -> bool:
        return self.budget_usd > 0

    @property
    def tripped(self) -> bool:
        return self.enabled and self.spent_usd >= self.budget_usd

    @property
    def spent_label(self) -> str:
        return usd(self.spent_usd)

    @property
    def budget_label(self) -> str:
        return usd(self.budget_usd)


def day_bounds(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """Today's midnight and the next one, in the budget's time zone."""
    zone = ZoneInfo(settings.VOICE_BUDGET_TIME_ZONE)
    local = (now or timezone.now()).astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Midnight of the next calendar day (not start + 24 h: DST days are 23 or 25 hours long).
    tomorrow = (start + dt.timedelta(days=1, hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, tomorrow


def spend_since_usd(since: dt.datetime) -> float:
    records = get_store().audio_sessions_since(since, limit=100_000)
    return sum(r.cost_micro_usd for r in records) / 1_000_000


def budget_state(*, now: dt.datetime | None = None, fresh: bool = False) -> BudgetState:
    start, resets_at = day_bounds(now)
    budget = float(settings.VOICE_DAILY_BUDGET_USD)
    if budget <= 0:
        return BudgetState(budget_usd=0.0, spent_usd=0.0, day_start=start, resets_at=resets_at)
    with _lock:
        cached = _cache.get("spend")
    max_age = settings.VOICE_BUDGET_CACHE_S
    stale = cached is None or cached[1] != start or time.monotonic() - cached[0] > max_age
    if fresh or stale:
        spent = spend_since_usd(start)
        with _lock:
            _cache["spend"] = (time.monotonic(), start, spent)
    else:
        assert cached is not None
        spent = cached[2]
    return BudgetState(budget_usd=budget, spent_usd=spent, day_start=start, resets_at=resets_at)


async def abudget_state() -> BudgetState:
    return await sync_to_async(budget_state)()


def forget_cache() -> None:
    with _lock:
        _cache.clear()
