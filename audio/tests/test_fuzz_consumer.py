"""Fuzz the live voice consumer: generated frame sequences through the real ASGI app.

Each hypothesis example opens a voice socket (real app: Origin check, session cookie, consumer,
relay, the real SDK to the Gemini emulator), waits for `ready`, and sends a generated sequence
of text and binary frames (fuzz_frames.py). After every frame the test waits for the answer the
protocol documents (an `error` with its code, a `pong`, or the close with its code) and checks
it; after silent frames it syncs with a ping of its own. Across the run: no exception out of the
app, no log record at ERROR or with a traceback, no `server_error`, every `error` code in
protocol.ERROR_CODES, every text frame strict JSON. `make soak` runs it with FUZZ_SCALE=10.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from audio import protocol
from audio.consumers import MAX_BAD_MESSAGES
from audio.tests.conftest import communicator
from audio.tests.fuzz_frames import SCALE, Expected, expected_for, frames

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("voice_settings")]

EXAMPLES = 50 * SCALE
_sync = itertools.count(1)
COUNTS = {"frames": 0, "sockets": 0, "errors": 0, "closes": 0}  # across the run, for the summary


class Collector(logging.Handler):
    """Keeps every log record at WARNING and above, from any logger, for the run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records():
    handler = Collector()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.records
    root.removeHandler(handler)


def _strict(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"server sent {constant}, which JSON.parse refuses: {text[:200]}")

    message = json.loads(text, parse_constant=refuse)
    assert isinstance(message, dict) and isinstance(message.get("type"), str), text[:200]
    return message


class Socket:
    """One fuzzed voice socket: sends frames, reads until the answer it expects."""

    def __init__(self, comm) -> None:
        self.comm = comm
        self.closed: int | None = None
        self.errors: list[str] = []
        self.pongs: list[Any] = []
        self.last: str | bytes = b""

    async def read_until(self, done) -> None:
        while self.closed is None:
            out = await self._next()
            if out["type"] == "websocket.close":
                self.closed = out.get("code", 1000)
                return
            if out.get("text") is None:
                continue  # 24 kHz partner audio
            message = _strict(out["text"])
            if message["type"] == "error":
                assert message["code"] in protocol.ERROR_CODES, message
                assert message["code"] != "server_error", message
                assert message["message"], message
                self.errors.append(message["code"])
            elif message["type"] == "pong":
                self.pongs.append(message.get("t"))
            if done(message):
                return

    async def _next(self) -> dict[str, Any]:
        # Not receive_output(): that notices a crashed app only when its timeout runs out.
        get = asyncio.ensure_future(self.comm.output_queue.get())
        await asyncio.wait({get, self.comm.future}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if get.done():
            return get.result()
        get.cancel()
        if self.comm.future.done():
            crash = self.comm.future.exception()
            raise AssertionError(f"the consumer died on the frame {self.last!r:.300}") from crash
        raise AssertionError("no answer from the consumer within 30 s")

    async def send(self, frame: str | bytes) -> None:
        # The ASGI message itself: send_to() refuses empty frames, which a client can send.
        self.last = frame
        key = "bytes" if isinstance(frame, bytes) else "text"
        await self.comm.send_input({"type": "websocket.receive", key: frame})

    async def check(self, frame: str | bytes, expected: Expected) -> None:
        await self.send(frame)
        if expected.close is not None:
            await self.read_until(lambda m: False)
            assert self.closed == expected.close, (frame[:80], self.closed)
            if expected.error:
                assert self.errors[-1] == expected.error
        elif expected.error:
            before = len(self.errors)
            await self.read_until(lambda m: m["type"] == "error")
            assert self.errors[before:] == [expected.error], (frame[:80], self.errors[before:])
        elif expected.is_ping:
            await self.read_until(lambda m: m["type"] == "pong")
            assert self.pongs[-1] == expected.pong
        else:
            await self.sync()

    async def sync(self) -> None:
        """A ping of our own: its pong proves every earlier frame was handled, silently."""
        mark = next(_sync)
        before = len(self.errors)
        await self.comm.send_to(text_data=json.dumps({"type": "ping", "t": mark}))
        await self.read_until(lambda m: m["type"] == "pong" and m.get("t") == mark)
        assert self.closed is None and self.errors[before:] == [], self.errors[before:]


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: each try replays sockets and the upstream, so shrinking would take many
    # minutes; the failure names the frame that broke it instead.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one player and scene for the whole run, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(sequence=st.lists(frames, min_size=20, max_size=80))
async def test_fuzzed_frames_get_documented_answers_and_nothing_breaks(
    sequence, scene, voice_cookie, log_records
):
    remaining = list(sequence)
    while remaining:  # a frame that closes the socket: carry on with the rest on a new one
        remaining = await _play(remaining, scene.id, voice_cookie)
    broken = [r for r in log_records if r.levelno >= logging.ERROR or r.exc_info]
    assert not broken, [(r.name, r.getMessage(), r.exc_info) for r in broken]


async def _play(sequence: list[str | bytes], scene_id: str, cookie: bytes) -> list[str | bytes]:
    """Send frames on one socket until it closes; return the frames not sent."""
    comm = communicator(scene_id, cookie)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    COUNTS["sockets"] += 1
    sock = Socket(comm)
    try:
        await sock.read_until(lambda m: m["type"] == "ready")
        assert sock.closed is None, sock.errors
        bad_run = 0
        for sent, frame in enumerate(sequence, start=1):
            expected = expected_for(frame, bad_run=bad_run, max_bad=MAX_BAD_MESSAGES)
            bad_run = bad_run + 1 if expected.bad else 0
            await sock.check(frame, expected)
            COUNTS["frames"] += 1
            COUNTS["errors"] += expected.error is not None
            if sock.closed is not None:
                COUNTS["closes"] += 1
                return sequence[sent:]
        await sock.sync()
        return []
    finally:
        await comm.disconnect(timeout=5)


def test_zz_report_fuzzed_frames(capsys) -> None:
    # Runs after the fuzz in file order: the frame count the README's reliability table quotes.
    with capsys.disabled():
        print(
            f"\nconsumer fuzz: {COUNTS['frames']} generated frames over {COUNTS['sockets']} sockets "
            f"({COUNTS['errors']} refused with a documented code, {COUNTS['closes']} closes as documented), "
            f"{EXAMPLES} examples, 0 failures"
        )
    assert COUNTS["frames"] >= 20 * EXAMPLES
