"""Gemini's side of the telemetry: errors by kind (text and Live) and spans around model calls.

Instruments come from the OpenTelemetry API (ai4joy/telemetry.py installs the SDK); recording
is a no-op until then. The voice path (audio/metrics.py) reports its Gemini errors here too, so
there is one `ai4joy.gemini.errors` metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace

tracer = trace.get_tracer("ai4joy.improv")
_meter = metrics.get_meter("ai4joy.gemini")
GEMINI_ERRORS = _meter.create_counter(
    "ai4joy.gemini.errors",
    unit="{error}",
    description="Failed Gemini calls: api=text|live, kind (quota, fatal, transient, bad_reply), status",
)


def gemini_error(*, api: str, kind: str, status: Any) -> None:
    GEMINI_ERRORS.add(1, {"api": api, "kind": str(kind), "status": str(status)})


@contextmanager
def generate_span(*, purpose: str, model: str) -> Iterator[trace.Span]:
    """A client span around one generateContent call (the SDK's retries happen inside it)."""
    with tracer.start_as_current_span(
        "gemini.generate_content",
        kind=trace.SpanKind.CLIENT,
        attributes={"gen_ai.system": "gemini", "gen_ai.request.model": model, "ai4joy.purpose": purpose},
    ) as span:
        yield span


def record_usage(span: trace.Span, response: Any) -> None:
    usage = getattr(response, "usage_metadata", None)
    if usage is None:
        return
    span.set_attribute("gen_ai.usage.input_tokens", int(getattr(usage, "prompt_token_count", None) or 0))
    span.set_attribute("gen_ai.usage.output_tokens", int(getattr(usage, "candidates_token_count", None) or 0))


def store_span(operation: str) -> Any:
    """A span around one session-store write (ORM or Firestore)."""
    return tracer.start_as_current_span(f"store.{operation}", attributes={"db.operation.name": operation})
