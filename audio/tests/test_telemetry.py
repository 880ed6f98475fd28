"""The voice path's metrics and traces, read back through OpenTelemetry's in-memory reader and
exporter while real voice sessions run (real consumer, real SDK, the emulator as Gemini)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from ai4joy.asgi import application
from audio.tests.conftest import ORIGIN, is_type, receive_until, speak_turn
from improv.store import get_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("voice_settings")]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def _points(data: dict, name: str, **attrs: str) -> list:
    return [p for p in data.get(name, []) if all(p.attributes.get(k) == v for k, v in attrs.items())]


def _total(data: dict, name: str, **attrs: str) -> float:
    return sum(p.value for p in _points(data, name, **attrs))


async def _record(scene_id: str):
    records = await sync_to_async(get_store().audio_sessions_for_scene)(scene_id)
    assert len(records) == 1
    return records[0]


async def _connect(
    scene_id: str, cookie: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/audio/{scene_id}/", headers=[(b"origin", ORIGIN), (b"cookie", cookie), *headers]
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def test_a_voice_session_emits_turn_latency_tokens_quality_and_its_trace(
    scene, voice_cookie, speech_16k, otel
):
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
    comm = await _connect(scene.id, voice_cookie, ((b"traceparent", traceparent.encode()),))
    got = await receive_until(comm, is_type("ready"), timeout=10)
    for line in ("The submarine is full of penguins", "Captain, they want a pay rise"):
        await comm.send_to(text_data=json.dumps({"type": "text", "text": line}))
        got = await receive_until(comm, is_type("usage"), timeout=30, into=got)
    await speak_turn(comm, speech_16k)
    got = await receive_until(comm, is_type("usage"), timeout=30, into=got)
    await comm.send_to(text_data=json.dumps({"type": "end"}))
    got = await receive_until(comm, lambda m: False, timeout=10, into=got)
    assert got.close_code == 1000
    await comm.wait(timeout=3)

    record = await _record(scene.id)
    data = otel.metrics()
    turns = got.of("turn_complete")
    latencies = [t["latency_ms"] for t in turns if t.get("latency_ms") is not None]
    assert len(turns) == 3 == record.turns and len(latencies) == 3

    # First-audio latency: one histogram value per turn, the very values the browser was told.
    hist = data["ai4joy.voice.first_audio_latency"]
    assert sum(p.count for p in hist) == 3
    assert sum(p.sum for p in hist) == pytest.approx(sum(latencies))
    assert sum(p.count for p in _points(data, "ai4joy.voice.first_audio_latency", typed="true")) == 2
    assert sum(p.count for p in data["ai4joy.voice.relay_latency"]) == 3

    # Tokens by modality add up to the usageMetadata totals (the `usage` message and the record).
    usage = got.of("usage")[-1]
    tokens_in = _total(data, "ai4joy.voice.tokens", direction="in")
    tokens_out = _total(data, "ai4joy.voice.tokens", direction="out")
    assert tokens_in == usage["tokens_in"] == record.tokens_in > 0
    assert tokens_out == usage["tokens_out"] == record.tokens_out > 0
    audio_in = _total(data, "ai4joy.voice.tokens", direction="in", modality="audio")
    audio_out = _total(data, "ai4joy.voice.tokens", direction="out", modality="audio")
    assert audio_in == record.tokens_in_audio > 0
    assert audio_out == record.tokens_out_audio > 0
    # ...and the estimated cost the metric carries is the one stored on the record.
    assert record.cost_micro_usd > 0
    assert _total(data, "ai4joy.voice.cost") == pytest.approx(record.cost_usd)

    # One session: started, ended by the client, nothing dropped -> a "good" session for the SLI.
    assert _total(data, "ai4joy.voice.sessions.started", resumed="false") == 1
    assert _total(data, "ai4joy.voice.sessions.ended", reason="client_close", status="ok", audio="good") == 1
    [ratio] = data["ai4joy.voice.dropped_audio_ratio"]
    assert ratio.count == 1 and ratio.sum == record.dropped_share == 0
    assert sum(p.value for p in data["ai4joy.voice.sockets.open"]) == 0  # +1 at connect, -1 at close

    # The trace: the session continues the caller's traceparent; connect, turns and writes inside.
    [session] = otel.spans("voice.session")
    assert f"{session.context.trace_id:032x}" == TRACE_ID
    assert f"{session.parent.span_id:016x}" == PARENT_SPAN
    assert session.attributes["ai4joy.audio_session_id"] == record.id
    assert session.attributes["ai4joy.close_reason"] == "client_close"
    turn_spans = otel.spans("voice.turn")
    assert sorted(s.attributes["ai4joy.first_audio_latency_ms"] for s in turn_spans) == sorted(latencies)
    children = turn_spans + otel.spans("live.connect") + otel.spans("store.voice_turn_save")
    assert len(otel.spans("live.connect")) == 1 and len(otel.spans("store.voice_turn_save")) == 3
    assert {s.parent.span_id for s in children} == {session.context.span_id}
    assert {s.context.trace_id for s in children} == {session.context.trace_id}


async def test_dropped_audio_makes_a_poor_session_with_its_measured_share(
    scene, voice_cookie, speech_16k, faults, otel
):
    # As in test_relay: the upstream needs two tries, so most of 6 s of speech goes stale.
    faults.arm({"type": "live_close", "code": 1011, "when": "setup", "count": 2})
    comm = await _connect(scene.id, voice_cookie)
    for i in range(0, len(speech_16k), 3200):
        await comm.send_to(bytes_data=speech_16k[i : i + 3200])
    got = await receive_until(comm, is_type("ready"), timeout=15)
    await speak_turn(comm, b"")
    got = await receive_until(comm, is_type("usage"), timeout=30, into=got)
    await comm.send_to(text_data=json.dumps({"type": "end"}))
    await receive_until(comm, lambda m: False, timeout=10, into=got)
    await comm.wait(timeout=3)

    record = await _record(scene.id)
    data = otel.metrics()
    assert record.dropped_bytes > 0 and record.dropped_share > 0.05
    [ratio] = data["ai4joy.voice.dropped_audio_ratio"]
    assert ratio.count == 1
    assert ratio.sum == pytest.approx(record.dropped_share)
    assert _total(data, "ai4joy.voice.sessions.ended", audio="poor") == 1
    assert _total(data, "ai4joy.voice.sessions.ended", audio="good") == 0
    # The two refused connects are Gemini errors, the third attempt is the connect that worked.
    assert _total(data, "ai4joy.gemini.errors", api="live") == 2
    connects = otel.spans("live.connect")
    assert len(connects) == 3 and sum(s.status.is_ok for s in connects) == 1


async def test_go_away_counts_a_reconnect_and_traces_the_resume(scene, voice_cookie, faults, otel):
    faults.arm({"type": "live_lifetime", "seconds": 4})
    comm = await _connect(scene.id, voice_cookie)
    got = await receive_until(comm, is_type("ready"), timeout=10)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "Grandma built a time machine"}))
    got = await receive_until(comm, is_type("turn_complete"), timeout=30, into=got)
    for _ in range(100):  # the relay moves to a new connection at goAway, between turns
        if otel.spans("live.resume"):
            break
        await asyncio.sleep(0.1)
    await comm.send_to(text_data=json.dumps({"type": "end"}))
    await receive_until(comm, lambda m: False, timeout=10, into=got)
    await comm.wait(timeout=3)

    data = otel.metrics()
    assert _total(data, "ai4joy.voice.upstream.reconnects", why="go_away") == 1
    assert len(otel.spans("live.resume")) == 1
    assert (await _record(scene.id)).reconnects == 1
