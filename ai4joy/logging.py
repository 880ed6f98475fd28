"""JSON log lines for Cloud Logging, with request trace correlation.

Cloud Logging reads `severity`, `message` and
`logging.googleapis.com/trace` from each JSON line on stdout. The trace id comes from
the `X-Cloud-Trace-Context` header that Google's front end adds to every request, so
every line logged while serving that request is grouped under it in the console.
When an OpenTelemetry span is current (a request, a voice session and its tasks, a text
turn), its trace and span ids are used instead, so log lines open from the span in Cloud
Trace; the middleware starts that span per request, continuing a W3C `traceparent` or the
`X-Cloud-Trace-Context` of the caller (ai4joy/telemetry.py sets up both propagators).
Extra fields passed with `logger.info("...", extra={"event": ..., ...})` become
`jsonPayload` fields, which the log-based metrics in infra/ count.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from opentelemetry import propagate, trace

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)

# Attributes every LogRecord has; anything else was passed through `extra`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "trace",
    "span_id",
    "trace_sampled",
}


def trace_from_header(header: str | None) -> str | None:
    """`TRACE_ID/SPAN_ID;o=1` -> `projects/<project>/traces/TRACE_ID`."""
    if not header:
        return None
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id.isalnum() or len(trace_id) > 64:
        return None
    project = getattr(settings, "GCP_PROJECT_ID", "") or "local"
    return f"projects/{project}/traces/{trace_id}"


def bind_trace(header: str | None) -> contextvars.Token[str | None]:
    return _trace.set(trace_from_header(header))


def trace_name(trace_id: int) -> str:
    project = getattr(settings, "GCP_PROJECT_ID", "") or "local"
    return f"projects/{project}/traces/{trace_id:032x}"


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace = trace_name(span.trace_id)
            record.span_id = f"{span.span_id:016x}"
            record.trace_sampled = span.trace_flags.sampled
        else:
            record.trace = _trace.get()
        return True


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
        }
        trace = getattr(record, "trace", None)
        if trace:
            payload["logging.googleapis.com/trace"] = trace
        span_id = getattr(record, "span_id", None)
        if span_id:
            payload["logging.googleapis.com/spanId"] = span_id
            payload["logging.googleapis.com/trace_sampled"] = bool(getattr(record, "trace_sampled", False))
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


_tracer = trace.get_tracer("ai4joy.http")


class RequestContextMiddleware:
    """A span per request (child of the caller's trace, if any), and its trace id bound for every
    log line written while serving it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = bind_trace(request.headers.get("X-Cloud-Trace-Context"))
        parent = propagate.extract(request.headers)
        try:
            with _tracer.start_as_current_span(
                f"{request.method}", context=parent, kind=trace.SpanKind.SERVER
            ) as span:
                response = self.get_response(request)
                match = getattr(request, "resolver_match", None)
                if match is not None:  # the route, not the path: ids would make every name unique
                    span.update_name(f"{request.method} /{match.route}")
                span.set_attribute("http.response.status_code", response.status_code)
                return response
        finally:
            _trace.reset(token)
