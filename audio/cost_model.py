"""The deployment guide's monthly cost model (1,000 concurrent sessions), and the same question
answered from what recorded voice sessions really used.

The guide (Cost Analysis; Appendix C) states each component's monthly total and the unit prices
of its formula, but not the quantities behind them; so its line items are the inputs here, and
the command shows what quantities those totals imply at the guide's unit prices. The second
half prices recorded Live token usage with settings.VOICE_PRICING (audio/cost.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from audio.cost import TokenUsage, cost_micro_usd, prices
from improv.store import AudioSessionRecord

HOURS_PER_MONTH = 730  # the guide's month (and Google's pricing calculator's)
GUIDE_CONCURRENT = 1000
GUIDE_TOTAL_USD = 10_530
GUIDE_COST_PER_SESSION_HOUR = 0.35  # as the guide states it

# Appendix C's unit prices.
GUIDE_UNIT_PRICES = {
    "cloud_run_vcpu_second": 0.000024,
    "cloud_run_gib_second": 0.0000025,
    "lb_ingress_gb": 0.008,
    "vertex_input_per_million": 0.10,
    "vertex_output_per_million": 0.30,
    "logging_gb": 0.50,
}


@dataclass(frozen=True)
class LineItem:
    component: str
    monthly_usd: float
    source: str  # where in the guide the number is
    implies: str = ""  # what the guide's unit prices make of it


def guide_lines() -> list[LineItem]:
    p = GUIDE_UNIT_PRICES
    cpu_usd, run_usd = 1_680.0, 1_770.0
    vcpu_hours = cpu_usd / (p["cloud_run_vcpu_second"] * 3600)
    gib_hours = (run_usd - cpu_usd) / (p["cloud_run_gib_second"] * 3600)
    return [
        LineItem(
            "Cloud Run - Audio Service",
            run_usd,
            "table; CPU $1,680 of it (CUD section)",
            f"{vcpu_hours:,.0f} vCPU-h ({vcpu_hours / HOURS_PER_MONTH / 2:.1f} two-vCPU instances always on)"
            f" + {gib_hours:,.0f} GiB-h of memory",
        ),
        LineItem("Load Balancer", 58.0, "table", f"{58 / p['lb_ingress_gb']:,.0f} GB at $0.008/GB"),
        LineItem(
            "Vertex AI - ADK API",
            8_275.0,
            "table",
            f"{8_275 / p['vertex_output_per_million']:,.0f}M output tokens at $0.30/1M, or "
            f"{8_275 / p['vertex_input_per_million']:,.0f}M input tokens at $0.10/1M",
        ),
        LineItem("Firestore", 48.0, "table"),
        LineItem("Cloud Logging", 250.0, "table", f"{250 / p['logging_gb']:,.0f} GB at $0.50/GB"),
        LineItem("Cloud Monitoring", 129.0, "table"),
    ]


def guide_total() -> float:
    return sum(line.monthly_usd for line in guide_lines())


@dataclass(frozen=True)
class RecordedCost:
    sessions: int
    session_hours: float
    usage: TokenUsage
    priced_usd: float  # the tokens priced with today's VOICE_PRICING
    recorded_usd: float  # the sum of the records' own estimate (prices when they ran)

    @property
    def per_session_hour(self) -> float:
        return self.priced_usd / self.session_hours if self.session_hours else 0.0

    def monthly_at(self, concurrent: int) -> float:
        return self.per_session_hour * concurrent * HOURS_PER_MONTH


def _hours(record: AudioSessionRecord, now: dt.datetime) -> float:
    if record.created_at is None:
        return 0.0
    end = record.ended_at or now
    return max(0.0, (end - record.created_at).total_seconds() / 3600)


def recorded_cost(records: list[AudioSessionRecord], *, now: dt.datetime | None = None) -> RecordedCost:
    now = now or timezone.now()
    usage = TokenUsage()
    for r in records:
        usage = usage + TokenUsage(
            in_text=max(0, r.tokens_in - r.tokens_in_audio),
            in_audio=r.tokens_in_audio,
            out_text=max(0, r.tokens_out - r.tokens_out_audio),
            out_audio=r.tokens_out_audio,
        )
    return RecordedCost(
        sessions=len(records),
        session_hours=sum(_hours(r, now) for r in records),
        usage=usage,
        priced_usd=cost_micro_usd(usage, prices()) / 1_000_000,
        recorded_usd=sum(r.cost_micro_usd for r in records) / 1_000_000,
    )
