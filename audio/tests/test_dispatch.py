"""AudioConsumer.dispatch: audio frames skip Channels' per-message database hygiene, nothing else does;
and its message loop, dispatch_in_order.

Channels awaits `aclose_old_connections()` (a hop onto the thread that runs all thread-sensitive
sync work) before every handler. These count those hops with the real consumer.
"""

from __future__ import annotations

import asyncio

import pytest
from channels import consumer as channels_consumer
from channels.exceptions import StopConsumer

from audio.consumers import AudioConsumer, dispatch_in_order


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    seen: list[str] = []

    async def counted() -> None:
        seen.append("hop")

    monkeypatch.setattr(channels_consumer, "aclose_old_connections", counted)
    return seen


class FakeRelay:
    stopping = False

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def feed_audio(self, pcm: bytes) -> None:
        self.frames.append(pcm)


async def test_an_audio_frame_reaches_the_relay_without_a_thread_hop(hops):
    consumer = AudioConsumer()
    relay = FakeRelay()
    consumer.relay = relay  # type: ignore[assignment]
    for _ in range(3):
        await consumer.dispatch({"type": "websocket.receive", "bytes": b"\x01\x00" * 640})
    assert len(relay.frames) == 3
    assert hops == []


async def test_every_other_message_keeps_channels_connection_hygiene(hops):
    consumer = AudioConsumer()  # no relay: the handlers below return at once
    await consumer.dispatch({"type": "audio.end"})
    await consumer.dispatch({"type": "rollout.changed"})
    assert hops == ["hop", "hop"]


async def test_an_unknown_message_type_is_still_an_error(hops):
    with pytest.raises(ValueError, match="No handler"):
        await AudioConsumer().dispatch({"type": "audio.nonsense"})


# --- dispatch_in_order: the consumer's message loop -------------------------------------------------
async def test_messages_are_dispatched_one_at_a_time_in_arrival_order():
    client, layer = asyncio.Queue(), asyncio.Queue()  # type: ignore[var-annotated]
    seen: list[str] = []
    busy = False

    async def dispatch(message: dict) -> None:
        nonlocal busy
        assert not busy  # never two handlers at once
        busy = True
        await asyncio.sleep(0)
        seen.append(message["n"])
        busy = False
        if message["n"] == "stop":
            raise StopConsumer

    for n in ("c1", "c2", "c3"):
        client.put_nowait({"n": n})
    layer.put_nowait({"n": "l1"})
    loop = asyncio.create_task(dispatch_in_order([client.get, layer.get], dispatch))
    await asyncio.sleep(0.05)
    client.put_nowait({"n": "stop"})
    with pytest.raises(StopConsumer):
        await asyncio.wait_for(loop, 5)
    assert [n for n in seen if n.startswith("c")] == ["c1", "c2", "c3"]
    assert sorted(seen) == ["c1", "c2", "c3", "l1", "stop"]


async def test_a_failing_source_ends_the_loop_with_its_error_and_stops_the_others():
    stopped = asyncio.Event()

    async def broken() -> dict:
        raise ConnectionError("channel layer down for good")

    async def forever() -> dict:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        raise AssertionError("unreachable")

    async def dispatch(message: dict) -> None:
        raise AssertionError("nothing to dispatch")

    with pytest.raises(ConnectionError, match="down for good"):
        await asyncio.wait_for(dispatch_in_order([forever, broken], dispatch), 5)
    assert stopped.is_set()
