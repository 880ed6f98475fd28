"""The automatic rollback: `python manage.py rollout guard`, run every minute by Cloud Scheduler.

Trigger (the deployment guide's rollback plan): audio sessions failing at more than 10%
over the last 10 minutes, counted only once at least ROLLOUT_GUARD_MIN_SESSIONS sessions
ended in that window (so 1 failure out of 3 does not pull the feature). Exactly the
threshold does not trip. Running it again after a trip does nothing: the flag is off.
Numbers come from the provider the voice feature registers (`register_audio_stats`, called in
audio's AppConfig.ready): `(since) -> .total, .failed`. flags imports no other app.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.utils import timezone

from flags.models import Flag
from flags.rollout import AUDIO_V2
from flags.services import RolloutResult, rollout_rollback

log = logging.getLogger(__name__)

# (since) -> an object with .total and .failed: audio sessions ended since then, and failed.
AudioStatsProvider = Callable[[dt.datetime], Any]
_audio_stats: AudioStatsProvider | None = None


def register_audio_stats(provider: AudioStatsProvider | None) -> AudioStatsProvider | None:
    """Tell the guard where the audio-session numbers come from (None: nowhere); returns the
    previous provider."""
    global _audio_stats
    previous, _audio_stats = _audio_stats, provider
    return previous


def _stats_since(since: dt.datetime) -> Any:
    if _audio_stats is None:
        raise LookupError("no audio stats provider registered (the audio app registers one)")
    return _audio_stats(since)


class GuardError(RuntimeError):
    """The guard could not read the numbers; it changed nothing."""


@dataclass(frozen=True)
class GuardReport:
    tripped: bool
    total: int
    failed: int
    window_minutes: int
    threshold: float
    min_sessions: int
    message: str
    result: RolloutResult | None = None


def guard_settings() -> tuple[int, float, int]:
    return (
        int(settings.ROLLOUT_GUARD_WINDOW_MINUTES),
        float(settings.ROLLOUT_GUARD_ERROR_RATE),
        int(settings.ROLLOUT_GUARD_MIN_SESSIONS),
    )


def rollout_guard(*, flag_name: str = AUDIO_V2, now: dt.datetime | None = None) -> GuardReport:
    window, threshold, min_sessions = guard_settings()
    now = now or timezone.now()
    flag = Flag.objects.filter(name=flag_name).first()

    def report(tripped: bool, total: int, failed: int, message: str, result=None) -> GuardReport:
        return GuardReport(tripped, total, failed, window, threshold, min_sessions, message, result)

    if flag is None or flag.everyone is False:
        return report(False, 0, 0, f"rollout guard: {flag_name} is off; nothing to guard")
    try:
        stats = _stats_since(now - dt.timedelta(minutes=window))
        total, failed = int(stats.total), int(stats.failed)
    except Exception as exc:
        log.exception("rollout guard could not read stats", extra={"event": "rollout_guard_error"})
        raise GuardError(
            f"rollout guard: could not read audio session stats ({exc}); nothing changed"
        ) from exc
    numbers = (
        f"{failed}/{total} audio sessions failed in the last {window} min "
        f"(trips above {threshold:.0%} with at least {min_sessions} sessions)"
    )
    if total < min_sessions:
        return report(False, total, failed, f"rollout guard: ok, too few sessions to judge: {numbers}")
    # Exact arithmetic: 2 of 20 is exactly 10% and must not trip.
    if Fraction(failed, total) <= Fraction(str(threshold)):
        return report(False, total, failed, f"rollout guard: ok: {numbers}")
    result = rollout_rollback(
        flag_name=flag_name,
        action="guard",
        actor_label="guard",
        now=now,
        reason=f"guard: {failed}/{total} audio sessions failed ({failed / total:.1%}) in {window} min",
    )
    log.warning(
        "rollout guard tripped",
        extra={
            "event": "rollout_guard_tripped",
            "flag": flag_name,
            "total": total,
            "failed": failed,
            "error_rate": round(failed / total, 4),
            "window_minutes": window,
            "from": result.from_state,
            "to": result.to_state,
        },
    )
    return report(
        True, total, failed, f"rollout guard: TRIPPED, rolled back {result.describe()}: {numbers}", result
    )
