"""The voice path's metrics and spans: one small facade the relay calls per session and per turn.

Nothing here runs per audio frame. A `VoiceObserver` lives as long as one browser socket; the
relay calls it when the session starts, around each upstream connect, once per finished turn,
on a reconnect, and when the session ends. Instruments are OpenTelemetry API objects (no-ops
until ai4joy/telemetry.py installs the SDK), exported as `workload.googleapis.com/<name>`:

- ai4joy.voice.sockets.open          UpDownCounter  open voice sockets, by instance (sum = total)
- ai4joy.voice.sessions.started      Counter        by resumed
- ai4joy.voice.sessions.ended        Counter        by reason, status (ok|error), audio (good|poor)
- ai4joy.voice.first_audio_latency   Histogram ms   user stops speaking -> first partner audio
- ai4joy.voice.relay_latency         Histogram ms   Live message in -> handed to the browser socket
- ai4joy.voice.dropped_audio_ratio   Histogram      per session: stale input audio dropped / received
- ai4joy.voice.upstream.reconnects   Counter        by why (go_away, closed_<status>)
- ai4joy.voice.tokens                Counter        per turn, by direction (in|out) and modality
- ai4joy.voice.cost                  Counter USD    estimated from the tokens (audio/cost.py)
- ai4joy.gemini.errors               Counter        (improv/telemetry.py) api=live, kind, status

The quality SLI (98% of sessions with < 5% packet loss) is sessions.ended{audio="good"} over
all sessions.ended: a session is "good" when under QUALITY_MAX_DROPPED of its audio was dropped.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace

from audio.cost import TokenUsage, cost_micro_usd
from audio.drain import instance_name
from audio.turns import CompletedTurn
from improv.telemetry import gemini_error

QUALITY_MAX_DROPPED = 0.05
LATENCY_BUCKETS_MS = (100, 200, 300, 400, 500, 600, 800, 1000, 1500, 2000, 3000, 5000, 10000)
RELAY_BUCKETS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 250)
RATIO_BUCKETS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

tracer = trace.get_tracer("ai4joy.audio")
_meter = metrics.get_meter("ai4joy.voice")
SOCKETS_OPEN = _meter.create_up_down_counter(
    "ai4joy.voice.sockets.open", unit="{socket}", description="Open voice sockets (live relays)"
)
SESSIONS_STARTED = _meter.create_counter("ai4joy.voice.sessions.started", unit="{session}")
SESSIONS_ENDED = _meter.create_counter(
    "ai4joy.voice.sessions.ended",
    unit="{session}",
    description="Voice sessions ended, by close reason, status and audio quality (good: < 5% dropped)",
)
FIRST_AUDIO = _meter.create_histogram(
    "ai4joy.voice.first_audio_latency",
    unit="ms",
    description="Per turn: end of the user's speech (or typed line) to the partner's first audio",
    explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_MS,
)
RELAY_LATENCY = _meter.create_histogram(
    "ai4joy.voice.relay_latency",
    unit="ms",
    description="Per turn: time the relay adds to the first audio chunk (Live in -> browser socket)",
    explicit_bucket_boundaries_advisory=RELAY_BUCKETS_MS,
)
DROPPED_RATIO = _meter.create_histogram(
    "ai4joy.voice.dropped_audio_ratio",
    unit="1",
    description="Per session: share of the user's audio dropped as stale",
    explicit_bucket_boundaries_advisory=RATIO_BUCKETS,
)
RECONNECTS = _meter.create_counter("ai4joy.voice.upstream.reconnects", unit="{reconnect}")
TOKENS = _meter.create_counter("ai4joy.voice.tokens", unit="{token}", description="Live tokens per turn")
COST = _meter.create_counter("ai4joy.voice.cost", unit="USD", description="Estimated Live cost")


def parent_from_headers(headers: list[tuple[bytes, bytes]] | None) -> otel_context.Context:
    """The caller's trace (W3C traceparent or X-Cloud-Trace-Context) from ASGI scope headers."""
    carrier = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers or ()}
    return propagate.extract(carrier)


class VoiceObserver:
    """Metrics and the trace of one voice session."""

    def __init__(
        self, *, record_id: str, scene_id: str, resumed: bool, parent: otel_context.Context | None = None
    ) -> None:
        self._instance = {"instance": instance_name()}
        self._span = tracer.start_span(
            "voice.session",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={
                "ai4joy.audio_session_id": record_id,
                "ai4joy.scene_id": scene_id,
                "ai4joy.resumed": resumed,
            },
        )
        self.context = trace.set_span_in_context(self._span, parent)
        self._ended = False
        SOCKETS_OPEN.add(1, self._instance)
        SESSIONS_STARTED.add(1, {"resumed": str(resumed).lower()})

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Make the session span current: tasks created inside inherit it (and log its trace id)."""
        token = otel_context.attach(self.context)
        try:
            yield
        finally:
            otel_context.detach(token)

    @contextlib.contextmanager
    def upstream_connect(self, *, resume: bool) -> Iterator[trace.Span]:
        name = "live.resume" if resume else "live.connect"
        with tracer.start_as_current_span(name, context=self.context, kind=trace.SpanKind.CLIENT) as span:
            yield span

    def store_write(self, operation: str) -> Any:
        return tracer.start_as_current_span(f"store.{operation}", context=self.context)

    def reconnected(self, *, why: str) -> None:
        RECONNECTS.add(1, {"why": why})
        self._span.add_event("upstream_reconnected", {"why": why})

    def gemini_error(self, *, kind: str, status: str) -> None:
        gemini_error(api="live", kind=kind, status=status)

    def turn(self, *, turn: CompletedTurn, usage: TokenUsage, relay_ms: float | None) -> None:
        """Once per finished turn: latency, tokens and cost, and the turn's span (from the player's
        first word to the turn_complete, made afterwards so nothing is held open while they talk)."""
        mode = {"typed": str(turn.typed).lower()}
        if turn.latency_ms is not None:
            FIRST_AUDIO.record(turn.latency_ms, mode)
        if relay_ms is not None:
            RELAY_LATENCY.record(relay_ms)
        for direction, modality, count in (
            ("in", "text", usage.in_text),
            ("in", "audio", usage.in_audio),
            ("out", "text", usage.out_text),
            ("out", "audio", usage.out_audio),
        ):
            if count:
                TOKENS.add(count, {"direction": direction, "modality": modality})
        micro = cost_micro_usd(usage) if usage else 0
        if micro:
            COST.add(micro / 1_000_000)
        attributes: dict[str, Any] = {
            "ai4joy.typed": turn.typed,
            "ai4joy.interrupted": turn.interrupted,
            "gen_ai.usage.input_tokens": usage.tokens_in,
            "gen_ai.usage.output_tokens": usage.tokens_out,
        }
        if turn.latency_ms is not None:
            attributes["ai4joy.first_audio_latency_ms"] = turn.latency_ms
        now = time.time()
        started = turn.user_started_at or turn.partner_started_at or now
        ended = max(started, now)  # the turn_complete, when this is called
        span = tracer.start_span(
            "voice.turn", context=self.context, start_time=int(started * 1e9), attributes=attributes
        )
        span.end(end_time=int(ended * 1e9))

    def ended(self, *, reason: str, failed: bool, bytes_in: int, dropped_bytes: int) -> None:
        """Once, when the session closes (later calls are ignored)."""
        if self._ended:
            return
        self._ended = True
        ratio = dropped_bytes / bytes_in if bytes_in else 0.0
        good = ratio < QUALITY_MAX_DROPPED
        SOCKETS_OPEN.add(-1, self._instance)
        SESSIONS_ENDED.add(
            1,
            {"reason": reason, "status": "error" if failed else "ok", "audio": "good" if good else "poor"},
        )
        DROPPED_RATIO.record(ratio)
        self._span.set_attributes(
            {"ai4joy.close_reason": reason, "ai4joy.dropped_audio_ratio": round(ratio, 4)}
        )
        if failed:
            self._span.set_status(trace.StatusCode.ERROR, reason)
        self._span.end()
