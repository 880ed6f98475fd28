"""audio/wire.py against the SDK it stands in for: the same text on the wire, the same messages
read back, the same errors. These fail when a google-genai upgrade changes what LiveWire relies on.

The SDK's AsyncSession runs here on a socket that records what is sent and replays given frames:
that socket is the only stand-in, and both sides read and write through it alike."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import pytest
from google.genai import client as genai_client
from google.genai import errors, live, types
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from audio import protocol
from audio.wire import LiveWire, encode_audio

PCM = bytes(range(256)) * 8  # every byte value: url-safe base64 gets '-' and '_'


class Socket:
    """Records sent text; replays frames (bytes) or raises what it is given."""

    def __init__(self, frames: Sequence[bytes | BaseException] = ()) -> None:
        self.sent: list[str] = []
        self.frames = list(frames)

    async def send(self, message: str) -> None:
        self.sent.append(message)

    async def recv(self, decode: bool | None = None) -> bytes:
        item = self.frames.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def sdk_session(socket: Socket, *, vertex: bool) -> live.AsyncSession:
    api = (
        genai_client.BaseApiClient(vertexai=True, project="p", location="us-central1")
        if vertex
        else genai_client.BaseApiClient(api_key="k")
    )
    return live.AsyncSession(api_client=api, websocket=socket)  # type: ignore[arg-type]


def audio_message(*chunks: bytes, urlsafe: bool = False) -> dict[str, Any]:
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    parts = [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": enc(c).decode()}} for c in chunks]
    return {"serverContent": {"modelTurn": {"parts": parts}}}


MESSAGES: list[dict[str, Any]] = [
    {"setupComplete": {}},
    audio_message(PCM),
    audio_message(PCM[:100], PCM[100:300]),
    audio_message(PCM, urlsafe=True),
    {"serverContent": {"modelTurn": {"parts": [{"text": "yes, and"}]}}},
    {"serverContent": {**audio_message(PCM)["serverContent"], "turnComplete": True}},
    {"serverContent": {"inputTranscription": {"text": "a moon bakery"}}},
    {"serverContent": {"outputTranscription": {"text": "with flour"}}},
    {"serverContent": {"interrupted": True}},
    {"serverContent": {"generationComplete": True}},
    {"serverContent": {"turnComplete": True}},
    {
        "usageMetadata": {
            "promptTokenCount": 120,
            "responseTokenCount": 40,
            "candidatesTokenCount": 40,
            "totalTokenCount": 160,
            "promptTokensDetails": [
                {"modality": "AUDIO", "tokenCount": 100},
                {"modality": "TEXT", "tokenCount": 20},
            ],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 40}],
            "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 40}],
        }
    },
    {"goAway": {"timeLeft": "5s"}},
    {"sessionResumptionUpdate": {"newHandle": "handle-7", "resumable": True}},
    {"sessionResumptionUpdate": {"resumable": False}},
]


@pytest.mark.parametrize("vertex", [True, False], ids=["vertex", "developer"])
async def test_audio_goes_out_as_the_sdk_sends_it(vertex):
    ours, theirs = Socket(), Socket()
    wire = LiveWire(sdk_session(ours, vertex=vertex))
    sdk = sdk_session(theirs, vertex=vertex)
    for pcm in (PCM, PCM[:2], b""):
        await wire.send_audio(pcm)
        await sdk.send_realtime_input(audio=types.Blob(data=pcm, mime_type=protocol.IN_MIME))
    assert ours.sent == theirs.sent
    assert encode_audio(PCM) == theirs.sent[0]
    sent = json.loads(ours.sent[0])["realtime_input"]["audio"]
    assert sent == {"data": base64.urlsafe_b64encode(PCM).decode(), "mime_type": protocol.IN_MIME}


@pytest.mark.parametrize("vertex", [True, False], ids=["vertex", "developer"])
async def test_every_message_reads_back_as_the_sdk_reads_it(vertex):
    frames = [json.dumps(m).encode() for m in MESSAGES]
    wire = LiveWire(sdk_session(Socket(frames), vertex=vertex))
    sdk = sdk_session(Socket(frames), vertex=vertex)
    fast = 0
    for message in MESSAGES:
        got, want = await wire.recv(), await sdk._receive()
        if isinstance(got, tuple):  # model audio and nothing else
            assert (
                want.server_content
                and want.server_content.model_turn
                and want.server_content.model_turn.parts
            )
            fast += 1
            assert got == tuple(
                p.inline_data.data for p in want.server_content.model_turn.parts if p.inline_data
            )
            assert want.server_content.model_dump(exclude_none=True).keys() == {"model_turn"}
        else:
            assert got == want, message
    assert fast == 3  # the three audio-only messages; audio with turnComplete goes the SDK's way


@pytest.mark.parametrize("code", [1000, 1008, 1011])
async def test_a_closed_socket_raises_what_the_sdk_raises(code):
    closed = ConnectionClosed(Close(code, "bye"), None)
    wire = LiveWire(sdk_session(Socket([closed]), vertex=True))
    sdk = sdk_session(Socket([closed]), vertex=True)
    with pytest.raises(errors.APIError) as ours:
        await wire.recv()
    with pytest.raises(errors.APIError) as theirs:
        await sdk._receive()
    assert type(ours.value) is type(theirs.value)
    assert ours.value.code == theirs.value.code == code


async def test_an_error_payload_raises_as_in_the_sdk():
    frame = json.dumps({"code": 429, "message": "RESOURCE_EXHAUSTED"}).encode()
    with pytest.raises(errors.APIError) as ours:
        await LiveWire(sdk_session(Socket([frame]), vertex=True)).recv()
    with pytest.raises(errors.APIError) as theirs:
        await sdk_session(Socket([frame]), vertex=True)._receive()
    assert (ours.value.code, ours.value.status) == (theirs.value.code, theirs.value.status)
    assert ours.value.code == 429


async def test_text_and_turn_marks_still_go_through_the_sdk():
    socket = Socket()
    wire = LiveWire(sdk_session(socket, vertex=True))
    await wire.send_realtime_input(text="a moon bakery")
    await wire.send_realtime_input(activity_end=types.ActivityEnd())
    assert [json.loads(s) for s in socket.sent] == [
        {"realtime_input": {"text": "a moon bakery"}},
        {"realtime_input": {"activityEnd": {}}},
    ]
