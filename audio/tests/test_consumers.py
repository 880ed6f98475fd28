"""The voice socket end to end: real ASGI app, real session cookie, real SDK, emulator upstream."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

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
    turns = await database_sync_to_async(store.turns_list)(scene.id)
    voice = [(t.speaker, t.mode) for t in turns if t.mode == "voice"]
    assert ("user", "voice") in voice and ("partner", "voice") in voice
    partner = next(t for t in turns if t.speaker == "partner" and t.mode == "voice")
    assert partner.text == finals["partner"] and "latency_ms" in partner.meta
    record = (await sync_to_async(store.audio_sessions_for_scene)(scene.id))[0]
    assert record.status == "ended" and record.close_reason == "client_close"
    assert record.turns == 1 and record.bytes_in >= len(speech_16k) and record.bytes_out > 0
    assert record.tokens_total > 0 and record.resume_handle.startswith("emu-")


async def test_guide_base64_audio_and_ping_pong(open_voice, scene, voice_cookie, speech_16k):
    comm = await open_voice(scene.id, voice_cookie)
    await _ready(comm)
    await comm.send_to(text_data=json.dumps({"type": "ping", "t": 42}))
    got = await receive_until(comm, is_type("pong"), timeout=5)
    assert got.of("pong")[0]["t"] == 42

    await speak_turn(comm, speech_16k, as_base64=True)
    got = await receive_until(comm, is_type("turn_complete"), timeout=30)
    assert any(m["role"] == "partner" and m["final"] for m in got.of("transcript"))
    assert len(got.audio) > 0


async def test_typed_text_and_push_to_talk_reach_the_model(open_voice, scene, voice_cookie, speech_16k):
    comm = await open_voice(scene.id, voice_cookie, query="ptt=1")
    await _ready(comm)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "Welcome to the submarine bakery"}))
    got = await receive_until(comm, is_type("turn_complete"), timeout=30)
    finals = {m["role"]: m["text"] for m in got.of("transcript") if m["final"]}
    assert finals["user"] == "Welcome to the submarine bakery"
    assert "submarine" in finals["partner"].lower() or "bakery" in finals["partner"].lower()

    await comm.send_to(text_data=json.dumps({"type": "activity_start"}))
    for i in range(0, 16000 * 2, 1280):
        await comm.send_to(bytes_data=speech_16k[i : i + 1280])
    await comm.send_to(text_data=json.dumps({"type": "activity_end"}))
    got = await receive_until(comm, is_type("turn_complete"), timeout=30)
    assert any(m["role"] == "user" and m["final"] for m in got.of("transcript"))
    assert got.of("turn_complete")[0]["latency_ms"] >= 0


@pytest.mark.parametrize(
    "case", ["anonymous", "other_users_scene", "closed_scene", "unknown_scene", "not_in_rollout"]
)
async def test_handshake_rejections_say_why_then_close(case, make_user, client, scene, voice_cookie):
    from audio.tests.conftest import communicator, cookie_for
    from flags.services import rollout_rollback

    store = get_store()
    scene_id, cookie, expected = scene.id, voice_cookie, None
    if case == "anonymous":
        cookie, expected = None, ("unauthenticated", CloseCode.UNAUTHENTICATED)
    elif case == "other_users_scene":
        other = await sync_to_async(make_user)()
        cookie = await sync_to_async(cookie_for)(client, other)
        expected = ("not_your_scene", CloseCode.FORBIDDEN)
    elif case == "closed_scene":
        await database_sync_to_async(store.scene_update)(scene.id, status="closed")
        expected = ("scene_closed", CloseCode.SCENE_UNAVAILABLE)
    elif case == "unknown_scene":
        scene_id, expected = "no-such-scene", ("scene_not_found", CloseCode.SCENE_UNAVAILABLE)
    else:
        await sync_to_async(rollout_rollback)(reason="test")
        expected = ("voice_not_enabled", CloseCode.FORBIDDEN)

    comm = communicator(scene_id, cookie)
    connected, _ = await comm.connect(timeout=5)
    assert connected  # accepted, so the browser can read the reason and the code
    got = await receive_until(comm, lambda m: False, timeout=5)
    assert got.of("error")[0]["code"] == expected[0]
    assert got.close_code == expected[1]
    await comm.wait(timeout=2)


async def test_bad_origin_is_refused_before_the_handshake(scene, voice_cookie):
    from audio.tests.conftest import communicator

    comm = communicator(scene.id, voice_cookie, origin=b"https://evil.example")
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_a_new_socket_supersedes_the_old_one(open_voice, scene, voice_cookie):
    first = await open_voice(scene.id, voice_cookie)
    await _ready(first)
    second = await open_voice(scene.id, voice_cookie)
    got = await receive_until(first, lambda m: False, timeout=10)
    assert got.of("error")[0]["code"] == "superseded"
    assert got.close_code == CloseCode.SUPERSEDED
    await _ready(second)
    await second.send_to(text_data=json.dumps({"type": "ping", "t": 1}))
    assert (await receive_until(second, is_type("pong"), timeout=5)).of("pong")
    reasons = {r.close_reason for r in await sync_to_async(get_store().audio_sessions_for_scene)(scene.id)}
    assert "superseded" in reasons


async def test_idle_socket_is_closed_after_two_missed_pongs(voice_settings, open_voice, scene, voice_cookie):
    voice_settings.WEBSOCKET_PING_INTERVAL = 0.3
    comm = await open_voice(scene.id, voice_cookie)
    got = await receive_until(comm, lambda m: False, timeout=10)  # never answer the pings
    assert len(got.of("ping")) == 2
    assert got.of("error")[-1]["code"] == "idle_timeout"
    assert got.close_code == CloseCode.IDLE_TIMEOUT
    record = (await sync_to_async(get_store().audio_sessions_for_scene)(scene.id))[0]
    assert record.close_reason == "idle_timeout" and record.status == "ended"


async def test_answered_pings_keep_the_socket_open(voice_settings, open_voice, scene, voice_cookie):
    voice_settings.WEBSOCKET_PING_INTERVAL = 0.2
    comm = await open_voice(scene.id, voice_cookie)
    got = Received()
    for _ in range(5):
        await receive_until(comm, is_type("ping"), timeout=5, into=got)
        await comm.send_to(text_data=json.dumps({"type": "pong", "t": got.messages[-1]["t"]}))
    assert got.close_code is None and not got.of("error")


async def test_duration_cap_warns_then_closes(voice_settings, open_voice, scene, voice_cookie):
    voice_settings.WEBSOCKET_TIMEOUT = 1.2
    comm = await open_voice(scene.id, voice_cookie)
    got = await receive_until(comm, lambda m: False, timeout=10)
    warning = got.of("warning")[0]
    assert warning["reason"] == "duration_cap" and warning["seconds_left"] == 1
    types = [m["type"] for m in got.messages]
    assert types.index("warning") < types.index("error")
    assert got.close_code == CloseCode.DURATION_CAP
    record = (await sync_to_async(get_store().audio_sessions_for_scene)(scene.id))[0]
    assert record.close_reason == "duration_cap"


async def test_oversized_frame_closes_4013(open_voice, scene, voice_cookie):
    comm = await open_voice(scene.id, voice_cookie)
    await _ready(comm)
    await comm.send_to(bytes_data=b"\x00" * (64 * 1024 + 2))
    got = await receive_until(comm, lambda m: False, timeout=5)
    assert got.of("error")[-1]["code"] == "too_big"
    assert got.close_code == CloseCode.TOO_BIG


async def test_bad_json_gets_a_clear_error_and_the_socket_stays(open_voice, scene, voice_cookie):
    comm = await open_voice(scene.id, voice_cookie)
    await _ready(comm)
    for bad in ("{not json", json.dumps({"type": "dance"}), json.dumps({"type": "text", "text": ""})):
        await comm.send_to(text_data=bad)
        err = (await receive_until(comm, is_type("error"), timeout=5)).of("error")[0]
        assert err["message"]
    await comm.send_to(text_data=json.dumps({"type": "ping", "t": 7}))
    assert (await receive_until(comm, is_type("pong"), timeout=5)).of("pong")[0]["t"] == 7
    for _ in range(5):  # repeated garbage is a broken client: close 4000
        await comm.send_to(text_data="[]")
    got = await receive_until(comm, lambda m: False, timeout=5)
    assert got.close_code == CloseCode.PROTOCOL_ERROR
