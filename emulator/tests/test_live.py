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
    arm,
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
