"""Hostile and broken client frames on the voice socket: each gets a clear `error`, the socket
policy in audio/protocol.py (most stay open; oversize closes 4013; five malformed in a row close
4000), nothing reaches the model or the scene, and the audio-session record says why it ended.

Binary frames are PCM16 by definition, so an even-length frame of random bytes is (noisy) audio,
not garbage the server could recognise; random bytes of odd length cannot be PCM16 and are refused.
"""

from __future__ import annotations

import base64
import json
import random

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from audio.protocol import MAX_FRAME_BYTES, MAX_TEXT_CHARS, CloseCode
from audio.tests.conftest import is_type, receive_until
from improv.store import get_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("voice_settings")]

_noise = random.Random(20261127)
GARBAGE = bytes(_noise.getrandbits(8) for _ in range(1001))  # odd length: cannot be PCM16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# (frame, expected error code); a frame is bytes (binary) or str (text).
REFUSED: dict[str, tuple[bytes | str, str]] = {
    "odd 3-byte frame": (b"\x01\x02\x03", "bad_message"),
    "odd 641-byte frame": (b"\x00" * 641, "bad_message"),
    "random garbage": (GARBAGE, "bad_message"),
    "malformed JSON": ("{not json", "bad_message"),
    "JSON that is not an object": ("[1, 2, 3]", "bad_message"),
    "deeply nested JSON": ("[" * 30000, "bad_message"),
    "no type": (json.dumps({"text": "hello"}), "bad_message"),
    "type not a string": (json.dumps({"type": 7}), "bad_message"),
    "unknown type": (json.dumps({"type": "dance"}), "unknown_type"),
    "text not a string": (json.dumps({"type": "text", "text": 12}), "bad_message"),
    "text too long": (json.dumps({"type": "text", "text": "x" * (MAX_TEXT_CHARS + 1)}), "too_long"),
    "audio data not a string": (json.dumps({"type": "audio", "data": [1, 2]}), "bad_message"),
    "audio data not base64": (json.dumps({"type": "audio", "data": "!!not*base64!!"}), "bad_message"),
    "audio with half a sample": (json.dumps({"type": "audio", "data": _b64(b"\x01\x02\x03")}), "bad_message"),
}


async def _send(comm, frame: bytes | str) -> None:
    if isinstance(frame, bytes):
        await comm.send_to(bytes_data=frame)
    else:
        await comm.send_to(text_data=frame)


async def _record(scene_id: str):
    return (await sync_to_async(get_store().audio_sessions_for_scene)(scene_id))[0]


async def _still_open(comm, t: int) -> None:
    await comm.send_to(text_data=json.dumps({"type": "ping", "t": t}))
    got = await receive_until(comm, lambda m: m.get("type") == "pong" and m.get("t") == t, timeout=5)
    assert got.close_code is None


async def _end_and_check(comm, scene_id: str, *, bytes_in: int) -> None:
    await comm.send_to(text_data=json.dumps({"type": "end"}))
    got = await receive_until(comm, lambda m: False, timeout=10)
    assert got.close_code == CloseCode.NORMAL
    assert await database_sync_to_async(get_store().turns_list)(scene_id) == []  # no turn from garbage
    record = await _record(scene_id)
    assert (record.status, record.close_reason) == ("ended", "client_close")
    assert record.bytes_in == bytes_in and record.turns == 0  # nothing refused went upstream


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_bad_frame_gets_a_clear_error_and_the_socket_stays(open_voice, scene, voice_cookie, case):
    frame, code = REFUSED[case]
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)

    await _send(comm, frame)
    got = await receive_until(comm, is_type("error"), timeout=5)
    error = got.of("error")[0]
    assert error["code"] == code and error["message"].strip()
    assert got.close_code is None and not got.audio
    await _still_open(comm, 1)
    await _end_and_check(comm, scene.id, bytes_in=0)


async def test_odd_frames_are_refused_whole_and_even_frames_still_flow(open_voice, scene, voice_cookie):
    # PCM16 must be whole samples: a stray byte would shift every later sample into noise,
    # so the frame is refused rather than trimmed or forwarded.
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    good = b"\x00\x00" * 320  # 20 ms of silence
    for frame in (good, b"\x00" * 641, good, b"\x01"):
        await comm.send_to(bytes_data=frame)
    got = await receive_until(comm, is_type("error"), timeout=5)
    got = await receive_until(comm, is_type("error"), timeout=5, into=got)
    assert [e["code"] for e in got.of("error")] == ["bad_message", "bad_message"]
    await _still_open(comm, 2)
    await _end_and_check(comm, scene.id, bytes_in=2 * len(good))


async def test_a_good_frame_breaks_a_run_of_bad_ones(open_voice, scene, voice_cookie):
    # Only *consecutive* malformed messages close 4000; a valid audio frame in between resets
    # the count, whether it came as binary or as a guide-style base64 `audio` message.
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    good = b"\x00\x00" * 320
    for separator in (good, json.dumps({"type": "audio", "data": _b64(good)})):
        for _ in range(4):
            await comm.send_to(bytes_data=b"\x01\x02\x03")
        await _send(comm, separator)
    for _ in range(4):
        await comm.send_to(bytes_data=b"\x01\x02\x03")
    await _still_open(comm, 3)
    await _end_and_check(comm, scene.id, bytes_in=2 * len(good))


async def test_five_malformed_in_a_row_close_4000(open_voice, scene, voice_cookie):
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    for frame in (b"\x01", "{", json.dumps({"type": "dance"}), GARBAGE, json.dumps({"type": 1})):
        await _send(comm, frame)
    got = await receive_until(comm, lambda m: False, timeout=10)
    codes = [e["code"] for e in got.of("error")]
    assert codes == ["bad_message", "bad_message", "unknown_type", "bad_message", "protocol_error"]
    assert got.close_code == CloseCode.PROTOCOL_ERROR
    assert await database_sync_to_async(get_store().turns_list)(scene.id) == []
    record = await _record(scene.id)
    assert (record.status, record.close_reason, record.bytes_in) == ("ended", "protocol_error", 0)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"\x00\x00" * (MAX_FRAME_BYTES // 2 + 1), id="binary over the cap"),
        pytest.param(
            json.dumps({"type": "audio", "data": _b64(b"\x00\x00" * 200_000)}), id="huge base64 audio"
        ),
        pytest.param(json.dumps({"type": "text", "text": "y" * MAX_FRAME_BYTES}), id="huge text message"),
    ],
)
async def test_an_oversize_frame_closes_4013(open_voice, scene, voice_cookie, frame):
    comm = await open_voice(scene.id, voice_cookie)
    await receive_until(comm, is_type("ready"), timeout=10)
    await _send(comm, frame)
    got = await receive_until(comm, lambda m: False, timeout=10)
    error = got.of("error")[-1]
    assert error["code"] == "too_big" and str(MAX_FRAME_BYTES) in error["message"]
    assert got.close_code == CloseCode.TOO_BIG
    assert await database_sync_to_async(get_store().turns_list)(scene.id) == []
    record = await _record(scene.id)
    assert (record.status, record.close_reason, record.bytes_in) == ("ended", "too_big", 0)
