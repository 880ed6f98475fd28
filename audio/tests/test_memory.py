"""A finished voice session gives its memory back when its socket closes, not at some later
full collection.

CPython frees an object the moment its last reference goes, unless it sits in a reference
cycle: then it waits for the cycle collector, whose full passes are rare in a server holding
a few hundred thousand long-lived objects. A session in a cycle keeps its buffers (upstream TLS
reads, queued audio, ~270 KB a session in the soak) until then, and the allocator cannot give
back the arenas they are scattered over: the soak saw RSS climb ~15 % over ten minutes (README,
"Reliability"). So here the collector is off while a real session runs through the consumer,
the SDK and the emulator, and its parts must be gone by the time the socket is.
"""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import Iterator

import pytest

from audio.protocol import CloseCode
from audio.relay import LiveRelay
from audio.tests.conftest import communicator, is_type, receive_until, speak_turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("voice_settings")]


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def session_parts(monkeypatch) -> dict[str, weakref.ref]:
    """Weak references to the relay of the next voice session and to the parts it is made of."""
    parts: dict[str, weakref.ref] = {}
    start = LiveRelay.start

    def watched(relay: LiveRelay) -> None:
        parts.update(
            relay=weakref.ref(relay),
            upstream=weakref.ref(relay._upstream),
            uplink=weakref.ref(relay._uplink),
            downlink=weakref.ref(relay._downlink),
            writer=weakref.ref(relay._writer),
            browser=weakref.ref(relay._browser),
        )
        start(relay)

    monkeypatch.setattr(LiveRelay, "start", watched)
    return parts


@pytest.mark.parametrize("ending", ["end", "browser_gone"])
async def test_a_finished_session_is_freed_without_the_cycle_collector(
    collector_off, session_parts, scene, voice_cookie, speech_16k, ending
):
    comm = communicator(scene.id, voice_cookie)
    assert (await comm.connect(timeout=5))[0]
    await receive_until(comm, is_type("ready"), timeout=10)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "Grandma built a time machine"}))
    assert (await receive_until(comm, is_type("turn_complete"), timeout=30)).close_code is None
    await speak_turn(comm, speech_16k)  # a spoken turn: uplink, downlink and a saved turn
    assert (await receive_until(comm, is_type("turn_complete"), timeout=30)).close_code is None
    if ending == "end":
        await comm.send_to(text_data=json.dumps({"type": "end"}))
        assert (await receive_until(comm, lambda m: False, timeout=10)).close_code == CloseCode.NORMAL
    await comm.disconnect(timeout=5)  # the browser is gone (for "end": after the close)
    del comm
    await asyncio.sleep(0.5)  # the relay's own shutdown task finishes

    assert session_parts, "no voice session started"
    alive = sorted(name for name, ref in session_parts.items() if ref() is not None)
    assert alive == [], f"still held after the socket closed (a reference cycle): {alive}"
    gc.collect()  # the check itself can fail: a cycle would have been freed only here
    assert all(ref() is None for ref in session_parts.values())
