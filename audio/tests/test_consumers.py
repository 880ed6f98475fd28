"""The voice socket end to end: real ASGI app, real session cookie, real SDK, emulator upstream."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from audio.protocol import CloseCode
from audio.tests.conftest import Received, is_type, receive_until, speak_turn
from improv.store import get_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("voice_settings")]


async def _ready(comm) -> dict:
    got = await receive_until(comm, is_type("ready"), timeout=10)
    return got.of("ready")[0]


async def test_voice_turn_round_trip_saves_turns_and_counts(open_voice, scene, voice_cookie, speech_16k):
    comm = await open_voice(scene.id, voice_cookie)
    ready = await _ready(comm)
    assert ready["in_rate"] == 16000 and ready["out_rate"] == 24000 and ready["resumed"] is False

    await speak_turn(comm, speech_16k)
    got = await receive_until(comm, is_type("turn_complete"), timeout=30)

    finals = {m["role"]: m["text"] for m in got.of("transcript") if m["final"]}
    assert finals["user"].endswith("s of speech]")  # the emulator reports what it heard
    assert "Yes" in finals["partner"] or "yes" in finals["partner"]
    assert len(got.audio) > 24000 * 2 * 0.5 and len(got.audio) % 2 == 0  # >0.5 s of 24 kHz PCM16
    done = got.of("turn_complete")[0]
    assert isinstance(done["latency_ms"], int) and done["latency_ms"] >= 0

    got = await receive_until(comm, is_type("usage"), timeout=5)
    usage = got.of("usage")[0]
    assert usage["bytes_in"] >= len(speech_16k) and usage["bytes_out"] > 0
    assert usage["tokens_total"] > 0 and usage["dropped_audio_ms"] == 0

    await comm.send_to(text_data=json.dumps({"type": "end"}))
    got = await receive_until(comm, lambda m: False, timeout=5)
    assert got.close_code == CloseCode.NORMAL

    store = get_store()
    turns = await store.aturns_list(scene.id)
    voice = [(t.speaker, t.mode) for t in turns if t.mode == "voice"]
    assert ("user", "voice") in voice and ("partner", "voice") in voice
    partner = [t for t in turns if t.speaker == "partner" and t.mode == "voice"][0]
    assert partner.text == finals["partner"] and "latency_ms" in partner.meta
    record = (await sync_to_async(store.audio_sessions_for_scene)(scene.id))[0]
    assert record.status == "ended" and record.close_reason == "client_close"
    assert record.turns == 1 and record.bytes_in >= len(speech_16k) and record.bytes_out > 0
    assert record.tokens_total > 0 and record.resume_handle.startswith("emu-")
