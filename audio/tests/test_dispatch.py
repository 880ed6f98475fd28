"""AudioConsumer.dispatch: audio frames skip Channels' per-message database hygiene, nothing else does.

Channels awaits `aclose_old_connections()` (a hop onto the thread that runs all thread-sensitive
sync work) before every handler. These count those hops with the real consumer.
"""

from __future__ import annotations

import pytest
from channels import consumer as channels_consumer

from audio.consumers import AudioConsumer


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
