"""The Live API through the real google-genai SDK: audio and text turns, barge-in, resumption."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from google import genai
from google.genai import errors, types

from emulator import EmulatorServer
from emulator.tests.support import (
    TURN_TIMEOUT_S,
    Turn,
    arm,
    control,
    live_config,
    make_client,
    receive_turn,
    rms,
    send_audio,
    silence,
)

MODEL = "gemini-live-2.5-flash-native-audio"


async def test_spoken_turn_round_trip(client: genai.Client, speech_16k: bytes) -> None:
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await send_audio(session, silence(0.3) + speech_16k + silence(1.0))
            turn = await receive_turn(session)
    assert "s of speech" in turn.input_text  # an honest placeholder, not ASR
    assert turn.output_text.strip(), "no output transcription"
    assert turn.mime_types == {"audio/pcm;rate=24000"}
    assert len(turn.audio) > 24000 * 2 // 2  # at least half a second of speech
    assert rms(turn.audio) > 300, "reply audio is silent"
    assert turn.generation_complete and not turn.interrupted
    assert turn.usage is not None and turn.usage.total_token_count
    assert turn.usage.prompt_token_count and turn.usage.response_token_count
    assert turn.handles, "setup asked for session resumption"


async def test_text_turn_reacts_to_the_words(client: genai.Client) -> None:
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="The volcano is selling ice cream")
            first = await receive_turn(session)
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="Our giraffe wants a refund")]),
                turn_complete=True,
            )
            second = await receive_turn(session)
    assert "volcano" in first.output_text or "ice" in first.output_text
    assert "giraffe" in second.output_text or "refund" in second.output_text
    assert first.audio and second.audio
    assert first.input_text == ""  # typed text is not "transcribed"


async def test_text_modality_replies_with_text_parts(emulator: EmulatorServer) -> None:
    client = make_client(emulator, vertex=False)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model="gemini-2.0-flash-live-001", config=config) as session:
            await session.send_realtime_input(text="a haunted bicycle shop")
            texts = [m.text async for m in session.receive() if m.text]
    assert "bicycle" in "".join(texts) or "haunted" in "".join(texts)


async def test_barge_in_interrupts_the_reply(client: genai.Client, speech_16k: bytes) -> None:
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="Tell me the whole history of the lighthouse")
            interrupted = False
            audio_before = 0
            async for msg in session.receive():
                sc = msg.server_content
                if msg.data and audio_before == 0:
                    audio_before = len(msg.data)
                    await send_audio(session, speech_16k)  # the user talks over the partner
                if sc and sc.interrupted:
                    interrupted = True
            assert interrupted
            # The conversation goes on: the spoken turn gets its own reply.
            await send_audio(session, silence(1.0))
            after = await receive_turn(session)
    assert audio_before > 0
    assert after.audio and not after.interrupted


async def test_explicit_activity_signals(emulator: EmulatorServer, speech_16k: bytes) -> None:
    client = make_client(emulator)
    config = live_config(
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        )
    )
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            # Audio outside an activity window is ignored, as by the real service.
            await send_audio(session, speech_16k + silence(1.0))
            await session.send_realtime_input(activity_start=types.ActivityStart())
            await send_audio(session, speech_16k)
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            turn = await receive_turn(session)
    assert turn.input_text.startswith("[")
    assert turn.audio and turn.usage is not None
    assert emulator.state.stats.live_turns == 1


async def test_go_away_then_resume_keeps_the_scene(emulator: EmulatorServer) -> None:
    client = make_client(emulator)
    await arm(emulator, {"type": "live_lifetime", "seconds": 4.0})
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="The dragon stole my bicycle")
            seen = await receive_turn(session)
            with pytest.raises(errors.APIError) as closed:
                while True:  # as a relay does: keep receiving until the server ends it
                    await receive_turn(session, seen)
        assert seen.go_away is not None and seen.go_away.time_left is not None
        handles = seen.handles
        assert closed.value.code == 1011
        config = live_config(session_resumption=types.SessionResumptionConfig(handle=handles[-1]))
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            await session.send_realtime_input(text="Okay, and then?")
            resumed = await receive_turn(session)
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="Okay, and then?")
            fresh = await receive_turn(session)
    assert "dragon" in resumed.output_text or "bicycle" in resumed.output_text
    assert "dragon" not in fresh.output_text and "bicycle" not in fresh.output_text
    assert emulator.state.stats.live_resumed == 1


async def test_unknown_resumption_handle_is_refused(emulator: EmulatorServer) -> None:
    config = live_config(session_resumption=types.SessionResumptionConfig(handle="nope"))
    with pytest.raises(errors.APIError) as caught:
        async with make_client(emulator).aio.live.connect(model=MODEL, config=config):
            pass
    assert caught.value.code == 1007


@pytest.mark.parametrize(
    ("code", "status_word"), [(1011, "Internal"), (1007, "invalid"), (1008, "RESOURCE_EXHAUSTED")]
)
async def test_close_at_setup_surfaces_from_connect(
    emulator: EmulatorServer, code: int, status_word: str
) -> None:
    await arm(emulator, {"type": "live_close", "code": code, "when": "setup"})
    with pytest.raises(errors.APIError) as caught:
        async with make_client(emulator).aio.live.connect(model=MODEL, config=live_config()):
            pass
    assert caught.value.code == code
    assert status_word in str(caught.value)


async def test_close_mid_reply_surfaces_from_receive(emulator: EmulatorServer) -> None:
    await arm(emulator, {"type": "live_close", "code": 1011, "when": "reply"})
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with make_client(emulator).aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="a tiny opera")
            with pytest.raises(errors.APIError) as caught:
                await receive_turn(session)
    assert caught.value.code == 1011


@pytest.mark.parametrize("when", ["setup", "ready", "turn", "reply"])
async def test_dropped_connection_is_abnormal_closure(emulator: EmulatorServer, when: str) -> None:
    await arm(emulator, {"type": "live_drop", "when": when})
    # receive() and connect() wrap the closure in APIError; send() raises websockets' own error.
    with pytest.raises((errors.APIError, websockets.ConnectionClosed)) as caught:
        async with asyncio.timeout(TURN_TIMEOUT_S):
            async with make_client(emulator).aio.live.connect(model=MODEL, config=live_config()) as session:
                await session.send_realtime_input(text="hello?")
                await receive_turn(session)
    error = caught.value
    if isinstance(error, errors.APIError):
        assert error.code == 1006
    else:
        assert isinstance(error, websockets.ConnectionClosed)
        assert error.rcvd is None  # no close frame came from the server
    assert emulator.state.stats.faults_fired == 1


async def test_slow_pongs_trip_a_tight_client_keepalive(emulator: EmulatorServer) -> None:
    await arm(emulator, {"type": "slow_pong", "ms": 5000})
    tight = make_client(emulator, keepalive={"ping_interval": 0.2, "ping_timeout": 0.4})
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with tight.aio.live.connect(model=MODEL, config=live_config()) as session:
            with pytest.raises(errors.APIError) as caught:
                while True:
                    await receive_turn(session)
        # websockets gives up on its own (no close frame came back): the SDK reports 1006.
        assert caught.value.code == 1006
        # Control: with timely pongs the same tight keepalive survives an idle spell.
        async with tight.aio.live.connect(model=MODEL, config=live_config()) as session:
            await asyncio.sleep(1.5)
            await session.send_realtime_input(text="still there, moon?")
            turn = await receive_turn(session)
    assert turn.audio


async def test_live_latency_fault_still_replies(emulator: EmulatorServer) -> None:
    await arm(emulator, {"type": "latency", "scope": "live", "ms": 100})
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with make_client(emulator).aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="a slow snail race")
            turn = await receive_turn(session)
    assert turn.audio
    assert emulator.state.faults.describe() == []


async def test_oversized_frame_is_rejected(emulator: EmulatorServer) -> None:
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with make_client(emulator).aio.live.connect(model=MODEL, config=live_config()) as session:
            huge = silence(40.0)  # 1.28 MB of PCM, ~1.7 MB as base64: over the 1 MiB frame limit
            await session.send_realtime_input(audio=types.Blob(data=huge, mime_type="audio/pcm;rate=16000"))
            with pytest.raises(errors.APIError) as caught:
                await receive_turn(session)
    assert caught.value.code == 1009


# --- the record of what each conversation heard and said (GET /emulator/conversations) ---------
def _events(record: list[dict], *keys: str) -> list[tuple]:
    return [tuple(entry.get(k) for k in keys) for entry in record]


async def test_the_record_lists_each_connections_turns_go_away_and_fault(emulator: EmulatorServer) -> None:
    client = make_client(emulator)
    await arm(emulator, {"type": "live_lifetime", "seconds": 4.0})
    first, second, third = Turn(), Turn(), Turn()
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="The dragon stole my bicycle")
            await receive_turn(session, first)
            with pytest.raises(errors.APIError):
                while True:  # until the deadline close that follows goAway
                    await receive_turn(session, first)
        await arm(emulator, {"type": "live_close", "code": 1011, "when": "turn"})
        config = live_config(session_resumption=types.SessionResumptionConfig(handle=first.handles[-1]))
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            await session.send_realtime_input(text="Okay, and then?")
            with pytest.raises(errors.APIError):
                await receive_turn(session, second)
        config = live_config(session_resumption=types.SessionResumptionConfig(handle=second.handles[-1]))
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            await session.send_realtime_input(text="Okay, and then?")
            await receive_turn(session, third)

    status, body = await control(emulator, "GET", "/emulator/conversations")
    assert status == 200
    [conv] = body["conversations"]
    assert conv["connections"] == 3 and conv["record_dropped"] == 0
    assert _events(conv["record"], "event", "connection") == [
        ("connected", 1), ("heard", 1), ("said", 1), ("go_away", 1), ("closed", 1),
        ("connected", 2), ("heard", 2), ("fault", 2), ("closed", 2),
        ("connected", 3), ("heard", 3), ("said", 3), ("closed", 3),
    ]
    by_kind = {(e["event"], e["connection"]): e for e in conv["record"]}
    assert [by_kind[("connected", n)]["resumed"] for n in (1, 2, 3)] == [False, True, True]
    assert by_kind[("heard", 1)]["text"] == "The dragon stole my bicycle"
    assert by_kind[("heard", 1)]["source"] == "text"
    for n, turn in ((1, first), (3, third)):
        said = by_kind[("said", n)]
        assert said["text"] == turn.output_text.strip() and said["ended"] == "complete"
        assert turn.usage is not None and said["total_tokens"] == turn.usage.total_token_count
    assert by_kind[("fault", 2)] | {"t": 0} == {
        "event": "fault", "connection": 2, "kind": "live_close", "when": "turn", "code": 1011, "t": 0
    }
    closes = [(by_kind[("closed", n)]["by"], by_kind[("closed", n)]["code"]) for n in (1, 2, 3)]
    assert closes == [("deadline", 1011), ("fault", 1011), ("client", 1000)]


async def test_a_reply_the_connection_loses_midway_is_recorded_as_cut(
    emulator: EmulatorServer, speech_16k: bytes
) -> None:
    client = make_client(emulator)
    heard_words = ""
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await send_audio(session, speech_16k + silence(1.0))
            async for msg in session.receive():
                sc = msg.server_content
                if sc and sc.output_transcription and sc.output_transcription.text:
                    heard_words += sc.output_transcription.text
                if sc and sc.model_turn:
                    break  # the first audio chunk: leave mid-reply
    for _ in range(50):  # the emulator notices the close on its own schedule
        _, body = await control(emulator, "GET", "/emulator/conversations")
        record = body["conversations"][0]["record"]
        if record[-1]["event"] == "closed":
            break
        await asyncio.sleep(0.05)
    assert _events(record, "event") == [("connected",), ("heard",), ("said",), ("closed",)]
    heard, said, closed = record[1:]
    assert heard["source"] == "audio" and heard["text"].startswith("[") and heard["heard_s"] > 0.5
    assert said["ended"] == "cut" and said["total_tokens"] is None
    assert said["text"].startswith(heard_words.strip()) and said["text"]
    assert closed["by"] == "client"
