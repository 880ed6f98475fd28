"""Upstream resilience and server-side events, through the real consumer and the emulator."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from audio.drain import drain_event, process_group_name
from audio.protocol import CloseCode
from audio.tests.conftest import Received, is_type, receive_until, speak_turn
from improv.store import get_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("voice_settings")]


async def _records(scene_id: str):
    return await sync_to_async(get_store().audio_sessions_for_scene)(scene_id)


async def test_go_away_resumes_upstream_while_the_browser_stays(
    open_voice, scene, voice_cookie, faults, speech_16k, caplog
):
    # The first Live connection lives 4 s: goAway at 2 s, then the emulator would close it.
    faults.arm({"type": "live_lifetime", "seconds": 4})
    before = faults.stats()
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "Grandma built a time machine"}))
    first = await receive_until(comm, is_type("turn_complete"), timeout=30)
    assert first.close_code is None

    # The relay moves to a new connection at goAway; the browser socket stays open meanwhile.
    await _until(lambda: faults.stats()["live_resumed"] > before["live_resumed"], timeout=10)
    # The emulator counts the resumption before the relay logs it: wait for the line, too.
    await _until(
        lambda: any(
            getattr(r, "event", "") == "gemini_live_reconnect" and r.why == "go_away" for r in caplog.records
        ),
        timeout=10,
    )

    await speak_turn(comm, speech_16k)
    second = await receive_until(comm, is_type("turn_complete"), timeout=30)
    assert second.close_code is None
    partner = next(m["text"] for m in second.of("transcript") if m["role"] == "partner" and m["final"])
    # The resumed conversation still knows the scene: the emulator builds on earlier turns.
    assert any(w in partner.lower() for w in ("grandma", "machine", "time", "built"))


async def test_connection_lost_mid_reply_ends_the_turn_and_resumes(
    open_voice, scene, voice_cookie, faults, caplog
):
    faults.arm({"type": "live_drop", "when": "reply"})  # dies after the first reply chunk
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "The lighthouse keeper sings opera"}))
    got = await receive_until(comm, is_type("turn_complete"), timeout=30)
    assert got.of("interrupted") and got.close_code is None
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "Encore!"}))
    got = await receive_until(comm, is_type("turn_complete"), timeout=30)
    assert any(m["role"] == "partner" and m["final"] for m in got.of("transcript"))
    assert any(getattr(r, "event", "") == "gemini_live_reconnect" for r in caplog.records)


async def _until(check, *, timeout: float) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await sync_to_async(check)():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_quota_close_tells_the_browser_and_closes_4011(open_voice, scene, voice_cookie, faults):
    faults.arm({"type": "live_close", "code": 1008, "when": "setup", "count": 3})
    comm = await open_voice(scene.id, voice_cookie)
    got = await receive_until(comm, lambda m: False, timeout=10)
    assert not got.of("ready")
    assert got.of("error")[0]["code"] == "upstream_quota"
    assert got.close_code == CloseCode.UPSTREAM_FAILURE
    record = (await _records(scene.id))[0]
    assert record.status == "failed" and record.close_reason == "upstream_error"


async def test_mid_session_quota_close_is_not_retried(open_voice, scene, voice_cookie, faults):
    faults.arm({"type": "live_close", "code": 1008, "when": "turn"})
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    before = faults.stats()["live_connections"]
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "Hello there"}))
    got = await receive_until(comm, lambda m: False, timeout=10)
    assert got.of("error")[-1]["code"] == "upstream_quota"
    assert got.close_code == CloseCode.UPSTREAM_FAILURE
    assert faults.stats()["live_connections"] == before


async def test_transient_upstream_failures_are_retried(open_voice, scene, voice_cookie, faults):
    faults.arm({"type": "live_close", "code": 1011, "when": "setup", "count": 2})
    comm = await open_voice(scene.id, voice_cookie)
    got = await receive_until(comm, is_type("ready"), timeout=15)
    assert got.close_code is None and not got.of("error")


async def test_stale_audio_is_dropped_while_the_upstream_is_slow(
    open_voice, scene, voice_cookie, faults, speech_16k
):
    # The upstream takes two failed attempts (~0.7 s of backoff) to come up; meanwhile the
    # browser pushes ~6 s of speech. Only the newest second may wait for it.
    faults.arm({"type": "live_close", "code": 1011, "when": "setup", "count": 2})
    comm = await open_voice(scene.id, voice_cookie)
    for i in range(0, len(speech_16k), 3200):
        await comm.send_to(bytes_data=speech_16k[i : i + 3200])
    got = await receive_until(comm, is_type("ready"), timeout=15)
    await speak_turn(comm, b"")  # then silence, so the emulator's VAD ends the turn
    got = await receive_until(comm, is_type("usage"), timeout=30, into=got)
    heard = next(m["text"] for m in got.of("transcript") if m["role"] == "user" and m["final"])
    seconds = float(heard.strip("[]").split()[0])
    assert seconds <= 1.2  # what was held: at most 1 s of input, not the 6 s sent
    dropped = got.of("usage")[-1]["dropped_audio_ms"]
    assert dropped >= len(speech_16k) * 1000 // 32000 - 1200


async def test_rollback_closes_4014_and_an_eligible_user_stays(open_voice, scene, voice_cookie):
    from flags.services import rollout_rollback

    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    # A change that keeps the user eligible leaves the socket alone.
    await get_channel_layer().group_send("rollout.audio_v2", {"type": "rollout.changed", "flag": "audio_v2"})
    await comm.send_to(text_data=json.dumps({"type": "ping", "t": 3}))
    got = await receive_until(comm, is_type("pong"), timeout=5)
    assert got.close_code is None

    await sync_to_async(rollout_rollback)(reason="voice failing in tests")
    got = await receive_until(comm, lambda m: False, timeout=10)
    assert got.of("error")[-1]["code"] == "voice_disabled"
    assert got.close_code == CloseCode.ROLLED_BACK
    assert (await _records(scene.id))[0].close_reason == "rollback"


async def test_admin_end_session(open_voice, scene, voice_cookie, voice_user):
    from audio.services import audio_session_end

    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    assert await sync_to_async(audio_session_end)(user_id=voice_user.pk)
    got = await receive_until(comm, lambda m: False, timeout=10)
    assert got.of("error")[-1]["code"] == "ended_by_admin"
    assert got.close_code == CloseCode.NORMAL
    assert (await _records(scene.id))[0].close_reason == "admin"


async def test_drain_sends_reconnect_and_the_next_socket_resumes(open_voice, scene, voice_cookie, faults):
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "The penguin lost its passport"}))
    await receive_until(comm, is_type("usage"), timeout=30)
    resumed_before = faults.stats()["live_resumed"]

    await get_channel_layer().group_send(process_group_name(), drain_event())
    got = await receive_until(comm, lambda m: False, timeout=10)
    notice = got.of("reconnect")[0]
    assert notice["reason"] == "server_restart" and notice["retry_after_ms"] > 0
    assert got.close_code == CloseCode.SERVER_RESTART
    record = (await _records(scene.id))[0]
    assert record.close_reason == "server_restart" and record.resumable and record.resume_handle

    again = await open_voice(scene.id, voice_cookie, query=f"resume={notice['resume_token']}")
    ready = (await receive_until(again, is_type("ready"), timeout=10)).of("ready")[0]
    assert ready["resumed"] is True
    assert faults.stats()["live_resumed"] == resumed_before + 1
    await again.send_to(text_data=json.dumps({"type": "text", "text": "Where did it go?"}))
    got = await receive_until(again, is_type("turn_complete"), timeout=30)
    partner = next(m["text"] for m in got.of("transcript") if m["role"] == "partner" and m["final"])
    assert any(w in partner.lower() for w in ("penguin", "passport"))


async def test_someone_elses_resume_token_starts_fresh(open_voice, scene, voice_cookie, make_user):
    other = await sync_to_async(make_user)()
    foreign = await sync_to_async(get_store().audio_session_start)(
        user_id=other.pk, scene_id=scene.id, instance="x"
    )
    comm = await open_voice(scene.id, voice_cookie, query=f"resume={foreign.id}")
    ready = (await receive_until(comm, is_type("ready"), timeout=10)).of("ready")[0]
    assert ready["resumed"] is False


async def test_room_and_coach_follow_voice_turns(open_voice, scene, voice_cookie):
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    got = Received()
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "The dragon opened a tea shop!"}))
    await receive_until(comm, is_type("room"), timeout=30, into=got)
    room = got.of("room")[0]
    assert set(room) == {"type", "energy", "engagement", "mood"} and room["mood"]
    scene_now = await database_sync_to_async(get_store().scene_get)(scene.id)
    assert scene_now.turn_count == 1
