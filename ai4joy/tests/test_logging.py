import json
import logging

import pytest

from ai4joy.logging import CloudLoggingFormatter, RequestContextFilter, bind_trace, trace_from_header


def format_record(message: str, **extra) -> dict:
    record = logging.LogRecord("ai4joy.test", logging.WARNING, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    RequestContextFilter().filter(record)
    return json.loads(CloudLoggingFormatter().format(record))


def test_log_line_has_cloud_logging_fields_and_extras():
    line = format_record("scene started", event="scene_started", scene_id="abc")
    assert line["severity"] == "WARNING"
    assert line["message"] == "scene started"
    assert line["event"] == "scene_started"
    assert line["scene_id"] == "abc"
    assert "logging.googleapis.com/trace" not in line


def test_trace_header_is_correlated(settings):
    settings.GCP_PROJECT_ID = "improv-prod"
    token = bind_trace("105445aa7843bc8bf206b12000100000/1;o=1")
    try:
        line = format_record("hello")
    finally:
        from ai4joy.logging import _trace

        _trace.reset(token)
    assert (
        line["logging.googleapis.com/trace"] == "projects/improv-prod/traces/105445aa7843bc8bf206b12000100000"
    )


@pytest.mark.parametrize("header", [None, "", "not a trace!/1", "x" * 100])
def test_malformed_trace_headers_are_ignored(header):
    assert trace_from_header(header) is None


@pytest.mark.django_db
def test_request_binds_trace_for_its_log_lines(client, caplog, settings, otel):
    settings.GCP_PROJECT_ID = "p"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # makes the health view log a warning
    caplog.handler.addFilter(RequestContextFilter())  # as the console handler has
    with caplog.at_level(logging.WARNING, logger="ai4joy.health"):
        client.get("/health", HTTP_X_CLOUD_TRACE_CONTEXT="105445aa7843bc8bf206b12000100000/9;o=1")
        client.get("/health")
    traced, untraced = [r for r in caplog.records if getattr(r, "event", "") == "health_failed"]
    # The request's span continues the caller's trace, and the log line names that trace and span.
    assert traced.trace == "projects/p/traces/105445aa7843bc8bf206b12000100000"
    [span] = [s for s in otel.spans() if s.context.trace_id == int("105445aa7843bc8bf206b12000100000", 16)]
    assert traced.span_id == f"{span.context.span_id:016x}"
    # Without a caller's trace the request starts its own.
    assert untraced.trace.startswith("projects/p/traces/") and untraced.trace != traced.trace
