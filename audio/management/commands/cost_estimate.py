"""`manage.py cost_estimate`: the guide's monthly table, then cost per session-hour from the
voice sessions the store recorded (their real Live token usage, priced from settings)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audio import cost_model
from improv.store import get_store


class Command(BaseCommand):
    help = "The guide's monthly cost table, and cost per session-hour from recorded voice sessions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="recorded sessions of the last N days (30)")
        parser.add_argument(
            "--concurrent", type=int, default=cost_model.GUIDE_CONCURRENT, help="sessions for the projection"
        )

    def handle(self, *args: object, days: int, concurrent: int, **options: object) -> None:
        if days < 1 or concurrent < 1:
            raise CommandError("--days and --concurrent must be at least 1")
        self._guide()
        self._recorded(days=days, concurrent=concurrent)

    def _guide(self) -> None:
        out = self.stdout
        out.write(f"The guide's monthly cost for {cost_model.GUIDE_CONCURRENT:,} concurrent sessions (peak)")
        width = max(len(line.component) for line in cost_model.guide_lines())
        for line in cost_model.guide_lines():
            out.write(f"  {line.component:<{width}}  ${line.monthly_usd:>9,.0f}   ({line.source})")
            if line.implies:
                out.write(f"  {'':<{width}}              = {line.implies}")
        total = cost_model.guide_total()
        out.write(f"  {'Total':<{width}}  ${total:>9,.0f}")
        if round(total) != cost_model.GUIDE_TOTAL_USD:
            raise CommandError(f"the line items add up to ${total:,.0f}, not the guide's $10,530")
        per_hour = total / (cost_model.GUIDE_CONCURRENT * cost_model.HOURS_PER_MONTH)
        out.write(
            f"  That is ${per_hour:.4f} per session-hour if {cost_model.GUIDE_CONCURRENT:,} sessions ran all "
            f"{cost_model.HOURS_PER_MONTH} hours; the guide's ${cost_model.GUIDE_COST_PER_SESSION_HOUR}/hour "
            f"implies ~{total / cost_model.GUIDE_COST_PER_SESSION_HOUR / cost_model.HOURS_PER_MONTH:,.0f} "
            "concurrent on average."
        )

    def _recorded(self, *, days: int, concurrent: int) -> None:
        out = self.stdout
        pricing = settings.VOICE_PRICING
        table: dict[str, float] = pricing["usd_per_million_tokens"]
        since = timezone.now() - dt.timedelta(days=days)
        records = get_store().audio_sessions_since(since, limit=100_000)
        got = cost_model.recorded_cost(records)
        out.write("")
        out.write(
            f"Recorded voice sessions, last {days} days: {got.sessions} sessions, {got.session_hours:.2f} h"
        )
        out.write(
            f"  Live prices ({pricing['model']}, USD per 1M tokens, as of {pricing['as_of']}): "
            f"text in {table['in_text']}, audio in {table['in_audio']}, "
            f"text out {table['out_text']}, audio out {table['out_audio']}"
        )
        out.write(f"  Source: {pricing['source']}")
        u = got.usage
        out.write(
            f"  Tokens: text in {u.in_text:,}, audio in {u.in_audio:,}, text out {u.out_text:,}, "
            f"audio out {u.out_audio:,}"
        )
        if not got.session_hours:
            out.write("  No recorded session time yet: run a voice scene, then ask again.")
            return
        out.write(
            f"  Live cost: ${got.priced_usd:.4f} at these prices"
            f" (the records' own estimate: ${got.recorded_usd:.4f})"
        )
        out.write(f"  Cost per session-hour: ${got.per_session_hour:.4f}")
        out.write(
            f"  At {concurrent:,} concurrent sessions all month: ${got.monthly_at(concurrent):,.0f}/month of "
            "Vertex AI Live (the guide's line: $8,275)"
        )
