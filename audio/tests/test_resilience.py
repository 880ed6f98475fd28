"""One voice scene held across three upstream goAways and one upstream 1011 close.

Faults are armed one connection ahead: once Live connection k is up, connection k+1's fault is
armed (a fault applies to the next connection opened). Connections 1-3 live LIFETIME_S each
(goAway at half of it, then the emulator's 1011 "Deadline expired"); connection 4 closes 1011
at the end of the next user turn, instead of replying. Through all of it the browser socket stays
open, every turn's lines are saved once and in order, and 24 kHz audio keeps coming.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from audio.protocol import CloseCode
from audio.tests.conftest import Received, is_type, receive_until, speak_turn
from improv.store import get_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("voice_settings")]

LIFETIME_S = 6  # long enough for a turn to finish before the close that follows the goAway


async def _stats(faults) -> dict:
    return await asyncio.to_thread(faults.stats)


async def _arm(faults, fault: dict) -> None:
    await asyncio.to_thread(faults.arm, fault)


async def _until_connections(faults, n: int, *, timeout: float = 15) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await _stats(faults))["live_connections"] < n:
        assert loop.time() < deadline, f"upstream connection {n} never opened"
        await asyncio.sleep(0.05)


async def _until_logged(caplog, event: str, *, timeout: float = 10) -> list:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (found := [r for r in caplog.records if getattr(r, "event", "") == event]):
        assert loop.time() < deadline, f"{event} never logged"
        await asyncio.sleep(0.05)
    return found


async def _turn(comm, *, text: str = "", speech: bytes = b"") -> Received:
    if text:
        await comm.send_to(text_data=json.dumps({"type": "text", "text": text}))
    else:
        await speak_turn(comm, speech)
    got = await receive_until(comm, is_type("usage"), timeout=40)  # usage follows turn_complete
    assert got.close_code is None, got.messages
    assert got.of("turn_complete")
    assert len(got.audio) >= 24000 * 2 // 5 and len(got.audio) % 2 == 0  # >= 0.2 s of 24 kHz PCM16
    return got


def _finals(got: Received) -> list[tuple[str, str]]:
    finals = {m["role"]: m["text"] for m in got.of("transcript") if m["final"]}
    assert set(finals) == {"user", "partner"}, got.messages
    return [("user", finals["user"]), ("partner", finals["partner"])]


async def test_scene_survives_three_go_aways_and_a_1011(open_voice, scene, voice_cookie, faults, speech_16k):
    base = (await _stats(faults))["live_connections"]
    await _arm(faults, {"type": "live_lifetime", "seconds": LIFETIME_S})
    comm = await open_voice(scene.id, voice_cookie)
    ready = await receive_until(comm, is_type("ready"), timeout=10)
    assert ready.of("ready")[0]["out_rate"] == 24000
    await _until_connections(faults, base + 1)

    expected: list[tuple[str, str]] = []
    turns = [
        {"text": "The submarine captain has lost the map"},
        {"speech": speech_16k},
        {"text": "A whale offers to guide the submarine home"},
    ]
    for k, turn in enumerate(turns, start=1):
        # Connection k+1 gets the next fault; connection k's goAway is still ahead.
        next_fault = (
            {"type": "live_lifetime", "seconds": LIFETIME_S}
            if k < 3
            else {"type": "live_close", "code": 1011, "when": "turn"}
        )
        await _arm(faults, next_fault)
        got = await _turn(comm, **turn)
        expected += _finals(got)
        await _until_connections(faults, base + k + 1)  # goAway k: the relay moved upstream

    # Connection 4 closes 1011 right after hearing the user's turn; the relay resumes on a
    # fifth connection and the turn is still answered, once.
    got = await _turn(comm, text="Suddenly the whale starts to sing")
    expected += _finals(got)
    await _until_connections(faults, base + 5)
    got = await _turn(comm, speech=speech_16k)  # and the scene carries on as usual
    expected += _finals(got)

    stats = await _stats(faults)
    assert stats["live_connections"] == base + 5
    await comm.send_to(text_data=json.dumps({"type": "end"}))
    end = await receive_until(comm, lambda m: False, timeout=10)
    assert end.close_code == CloseCode.NORMAL  # the first close the browser saw

    saved = [
        (t.speaker, t.text)
        for t in await database_sync_to_async(get_store().turns_list)(scene.id)
        if t.mode == "voice"
    ]
    assert saved == expected
    assert [s for s, _ in saved] == ["user", "partner"] * 5
    record = (await asyncio.to_thread(get_store().audio_sessions_for_scene, scene.id))[0]
    assert (record.status, record.close_reason, record.turns) == ("ended", "client_close", 5)


async def test_go_away_while_a_typed_turn_waits_for_its_reply(open_voice, scene, voice_cookie, faults):
    # The reply is slow (3.5 s) and the goAway comes first (at 3 s): the relay must not leave the
    # connection that owes the reply, or the turn is never answered.
    base = (await _stats(faults))["live_connections"]
    await _arm(faults, {"type": "live_lifetime", "seconds": LIFETIME_S})
    await _arm(faults, {"type": "latency", "scope": "live", "ms": 3500})
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    got = await _turn(comm, text="The lighthouse has run out of light bulbs")
    expected = _finals(got)
    await _until_connections(faults, base + 2)
    got = await _turn(comm, text="So we borrow the moon")
    expected += _finals(got)

    await comm.send_to(text_data=json.dumps({"type": "end"}))
    assert (await receive_until(comm, lambda m: False, timeout=10)).close_code == CloseCode.NORMAL
    saved = [
        (t.speaker, t.text)
        for t in await database_sync_to_async(get_store().turns_list)(scene.id)
        if t.mode == "voice"
    ]
    assert saved == expected


async def test_a_go_away_while_the_player_speaks_waits_for_the_end_of_the_line(
    open_voice, scene, voice_cookie, faults, caplog
):
    # Live only transcribes a spoken line once it has heard its end, so "no turn open" is not
    # "between turns": moving at a goAway that lands mid-line would leave the start of the line
    # with the old connection (the new one hears only the tail, or nothing). The relay must wait
    # for the line to end and be answered, then move.
    from emulator.tts import synthesize
    from emulator.vad import Segmenter, SpeechEnded

    line = synthesize("Grandma built a time machine in the garden shed", rate=16000)
    events = Segmenter().feed(line + silence_pcm(1.0), 16000)
    heard = [e.seconds for e in events if isinstance(e, SpeechEnded)]
    assert len(heard) == 1  # one line, as the emulator's own detector hears it whole
    lifetime = 10.0  # goAway at 5 s; the deadline close at 10 s is well after the reply
    base = (await _stats(faults))["live_connections"]
    await _arm(faults, {"type": "live_lifetime", "seconds": lifetime})
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Speak in real time (40 ms frames), starting a second before the goAway.
    frames = [line[i : i + 1280] for i in range(0, len(line), 1280)] + [bytes(1280)] * 25
    for k, frame in enumerate(frames):
        await asyncio.sleep(max(0.0, start + lifetime / 2 - 1.0 + 0.04 * k - loop.time()))
        await comm.send_to(bytes_data=frame)
    got = await receive_until(comm, is_type("usage"), timeout=30)
    assert got.close_code is None
    await _until_connections(faults, base + 2)  # then it moved, on the goAway
    user = [m["text"] for m in got.of("transcript") if m["role"] == "user" and m["final"]]
    assert user == [f"[{heard[0]:.1f} s of speech]"], "the line was cut by the move"
    # The emulator counts the new connection before the relay logs the move: wait for the line.
    moves = await _until_logged(caplog, "gemini_live_reconnect")
    assert [r.why for r in moves] == ["go_away"]
    await comm.send_to(text_data=json.dumps({"type": "end"}))
    assert (await receive_until(comm, lambda m: False, timeout=10)).close_code == CloseCode.NORMAL


def silence_pcm(seconds: float) -> bytes:
    return bytes(int(16000 * seconds) * 2)
