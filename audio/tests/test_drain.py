"""audio/drain.py: the process group and the drain event.

The end-to-end drain of the real voice consumer through a real Daphne process is in
test_drain_e2e.py; the entry point on its own is in ai4joy/tests/test_serve.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer

from audio import drain


def test_group_name_is_valid_for_the_channel_layer_and_stable():
    name = drain.process_group_name()
    assert InMemoryChannelLayer().require_valid_group_name(name)
    assert name.startswith("audio.drain.")
    assert drain.process_group_name() == name


@pytest.mark.parametrize("hostname", ["run-abc 123/ü", "x" * 300, "..", "localhost"])
def test_any_hostname_gives_a_valid_short_name(monkeypatch, hostname):
    monkeypatch.setattr(drain.socket, "gethostname", lambda: hostname)
    name = drain.process_group_name()
    assert InMemoryChannelLayer().require_valid_group_name(name)
    assert len(name) < 100


def test_two_processes_never_share_a_group_even_with_the_same_hostname():
    code = "from audio.drain import process_group_name; print(process_group_name())"
    names = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       timeout=60).stdout.strip()
        for _ in range(2)
    }
    assert len(names) == 2
    assert drain.process_group_name() not in names


def test_instance_name_is_host_and_pid():
    host, pid = drain.instance_name().rsplit(":", 1)
    assert host and int(pid) > 0


async def test_drain_broadcast_reaches_every_member_of_this_processs_group(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    members = [await layer.new_channel() for _ in range(3)]
    outsider = await layer.new_channel()
    for channel in members:
        await layer.group_add(drain.process_group_name(), channel)
    await layer.group_add("audio.drain.other-host.1.deadbeef", outsider)

    assert await drain.drain_broadcast() == drain.process_group_name()

    for channel in members:
        assert await asyncio.wait_for(layer.receive(channel), timeout=1) == {"type": "audio.drain"}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(outsider), timeout=0.2)


async def test_drain_broadcast_without_a_channel_layer_says_so(settings):
    settings.CHANNEL_LAYERS = {}
    with pytest.raises(RuntimeError, match="CHANNEL_LAYERS"):
        await drain.drain_broadcast()
