"""`python manage.py rollout status|plan|advance|set PERCENT|rollback --reason ...|guard` for audio_v2."""

from __future__ import annotations

import getpass
import socket
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags.guard import GuardError, guard_settings, rollout_guard
from flags.models import format_percent
from flags.rollout import AUDIO_V2
from flags.selectors import rollout_status
from flags.services import RolloutError, RolloutResult, rollout_advance, rollout_rollback, rollout_set


class Command(BaseCommand):
    help = "Show, advance, set or roll back the audio_v2 rollout; `guard` rolls back on high error rates."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="verb", required=True, metavar="{status,plan,advance,set,rollback,guard}"
        )
        sub.add_parser("status", help="current percentage, stage, next step, last change")
        sub.add_parser("plan", help="the plan's stages with their dates")
        advance = sub.add_parser("advance", help="move to the plan's next stage")
        advance.add_argument("--force", action="store_true", help="advance even if the stage is not due yet")
        set_ = sub.add_parser("set", help="set the percentage (0-100; 100 = everyone)")
        set_.add_argument("percent", help="0 to 100, up to two decimals")
        rollback = sub.add_parser(
            "rollback", help="turn audio_v2 off for everyone and end live voice sessions"
        )
        rollback.add_argument("--reason", required=True, help="why (kept in the audit log)")
        sub.add_parser("guard", help="roll back if audio sessions fail too often (run every minute)")
        for p in (advance, set_):
            p.add_argument("--reason", default="", help="why (kept in the audit log)")
        for p in (advance, set_, rollback):
            p.add_argument("--by", default="", help="username of the operator, for the audit log")

    def handle(self, *args: Any, verb: str, **options: Any) -> None:
        try:
            getattr(self, f"do_{verb}")(**options)
        except (RolloutError, GuardError) as exc:
            raise CommandError(str(exc)) from exc

    # --- verbs -------------------------------------------------------------------------
    def do_status(self, **_: Any) -> None:
        status = rollout_status(flag_name=AUDIO_V2)
        flag = status.flag
        self.stdout.write(f"{AUDIO_V2}: {flag.state_label}")
        if status.stage:
            self.stdout.write(f"  stage: day {status.stage.day} ({format_percent(status.stage.percent)}%)")
        if flag.rollout_started_at:
            self.stdout.write(f"  started: {flag.rollout_started_at:%Y-%m-%d %H:%M} UTC (day 1)")
        if status.next:
            due = f", due {status.next_due:%Y-%m-%d %H:%M} UTC" if status.next_due else ""
            self.stdout.write(f"  next: {format_percent(status.next.percent)}% (day {status.next.day}){due}")
        else:
            self.stdout.write("  next: none (plan complete)")
        if status.last_change:
            c = status.last_change
            self.stdout.write(
                f"  last change: {c.at:%Y-%m-%d %H:%M} UTC {c.from_state} -> {c.to_state} "
                f"by {c.actor_label} ({c.get_action_display()}){': ' + c.reason if c.reason else ''}"
            )
        window, threshold, minimum = guard_settings()
        self.stdout.write(
            f"  guard: rolls back above {threshold:.0%} failed over {window} min, min {minimum} sessions"
        )

    def do_plan(self, **_: Any) -> None:
        status = rollout_status(flag_name=AUDIO_V2)
        started = status.flag.rollout_started_at
        self.stdout.write(
            f"{AUDIO_V2} rollout plan ({'day 1 = ' + f'{started:%Y-%m-%d}' if started else 'not started'}):"
        )
        for row in status.rows:
            when = f"{row.due:%Y-%m-%d}" if row.due else f"day {row.stage.day} after start"
            self.stdout.write(
                f"  day {row.stage.day:<3} {when:<20} {format_percent(row.stage.percent):>4}%  {row.status}"
            )

    def do_advance(self, *, force: bool, reason: str, by: str, **_: Any) -> None:
        actor, label = self._actor(by)
        result = rollout_advance(
            actor=actor, actor_label=label, reason=reason, force=force, flag_name=AUDIO_V2
        )
        self._report(result)

    def do_set(self, *, percent: str, reason: str, by: str, **_: Any) -> None:
        actor, label = self._actor(by)
        result = rollout_set(
            percent=percent, actor=actor, actor_label=label, reason=reason, flag_name=AUDIO_V2
        )
        self._report(result)

    def do_rollback(self, *, reason: str, by: str, **_: Any) -> None:
        actor, label = self._actor(by)
        result = rollout_rollback(reason=reason, actor=actor, actor_label=label, flag_name=AUDIO_V2)
        self._report(result)

    def do_guard(self, **_: Any) -> None:
        report = rollout_guard(flag_name=AUDIO_V2)
        self.stdout.write(report.message)
        if report.tripped:
            self._warn_if_process_local()

    def _report(self, result: RolloutResult) -> None:
        self.stdout.write(result.describe())
        if result.notified:
            self._warn_if_process_local()

    def _warn_if_process_local(self) -> None:
        # An in-memory channel layer lives inside one process: this command's message
        # cannot reach sessions held by the server process. Production uses Redis.
        if isinstance(get_channel_layer(), InMemoryChannelLayer):
            self.stderr.write(
                "note: in-memory channel layer (REDIS_URL unset): live sessions in other processes "
                "were not told; they keep voice until they reconnect"
            )

    def _actor(self, by: str) -> tuple[Any, str]:
        where = f"cli:{getpass.getuser()}@{socket.gethostname()}"
        if not by:
            return None, where
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: by}).first()
        if user is None:
            raise CommandError(f"--by {by!r}: no such user")
        return user, f"{user.get_username()} ({where})"
