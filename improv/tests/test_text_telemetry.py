"""Text turns are traced and Gemini failures counted, read through OpenTelemetry's in-memory
exporter and reader; the request span continues a W3C traceparent or X-Cloud-Trace-Context."""

from __future__ import annotations

import json
import logging

from improv.tests.conftest import play_to_active

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def _turn(api, sid: str, text: str, **headers: str):
    return api.client.post(
        f"/api/v1/scenes/{sid}/turns",
        data=json.dumps({"text": text}),
        content_type="application/json",
        **headers,
    )


def test_a_text_turn_is_one_trace_with_its_store_write_and_generate_content(api, gemini, otel, caplog):
    sid = play_to_active(api)["id"]
    otel.reset()
    caplog.set_level(logging.INFO)
    r = _turn(
        api, sid, "The moon bakery opens at dawn", HTTP_TRACEPARENT=f"00-{TRACE_ID}-b7ad6b7169203331-01"
    )
    assert r.status_code == 200, r.content

    [request] = [s for s in otel.spans() if s.name.startswith("POST")]
    assert "turns" in request.name  # named by its route, not its path with the scene id
    assert sid not in request.name
    assert f"{request.context.trace_id:032x}" == TRACE_ID
    assert f"{request.parent.span_id:016x}" == "b7ad6b7169203331"
    assert request.attributes["http.response.status_code"] == 200
    [turn] = otel.spans("improv.text_turn")
    [write] = otel.spans("store.turn_append")
    calls = otel.spans("gemini.generate_content")
    assert calls and all(c.attributes["ai4joy.purpose"] == "partner" for c in calls)
    assert calls[-1].attributes["gen_ai.usage.input_tokens"] > 0
    assert turn.parent.span_id == request.context.span_id
    assert {write.parent.span_id, calls[-1].parent.span_id} == {turn.context.span_id}
    assert {s.context.trace_id for s in (turn, write, *calls)} == {request.context.trace_id}


def test_cloud_trace_header_is_honoured_too_and_gemini_errors_are_counted(api, gemini, otel):
    sid = play_to_active(api)["id"]
    otel.reset()
    gemini.arm({"type": "http_status", "status": 429, "count": 10})
    r = _turn(api, sid, "Who ate the moon cheese?", HTTP_X_CLOUD_TRACE_CONTEXT=f"{TRACE_ID}/1;o=1")
    assert r.status_code == 503
    [request] = [s for s in otel.spans() if s.name.startswith("POST")]
    assert f"{request.context.trace_id:032x}" == TRACE_ID
    errors = otel.metrics()["ai4joy.gemini.errors"]
    assert [(p.attributes["api"], p.attributes["kind"], p.attributes["status"], p.value) for p in errors] == [
        ("text", "quota", "429", 1)
    ]
    [call] = otel.spans("gemini.generate_content")
    assert not call.status.is_ok  # the failed call's span says so

