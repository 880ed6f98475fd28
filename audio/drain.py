"""Draining this process's voice sockets when the server stops (SIGTERM on Cloud Run).

The contract between the server entry point (`ai4joy/serve.py`) and the voice consumer:

- on connect, before accepting, the consumer joins `process_group_name()` on the channel layer
  (and leaves it on disconnect);
- on SIGTERM the server stops listening and sends `{"type": DRAIN_EVENT}` to that group once
  (`drain_broadcast()`), so Channels calls the consumer's `audio_drain` handler;
- the handler sends `reconnect` (reason `CloseReason.SERVER_RESTART`, a resume token, retry_after_ms),
  cancels its background tasks, finalises the audio-session record (close_reason
  `server_restart`, resumable) and closes upstream, then closes the socket with
  `audio.protocol.CloseCode.SERVER_RESTART` (4012);
- whatever is still running after DRAIN_TIMEOUT seconds is cancelled, then the process exits.

The group is per *process*, never per service: a fixed name on a shared Redis would make one
instance's restart disconnect every instance's clients. Hostname and pid alone are not enough
(in a container the server is often pid 1 and hostnames can repeat), so a random token made
once per process is part of the name.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

# Channels dispatches {"type": "audio.drain"} to a consumer method named `audio_drain`.
DRAIN_EVENT = "audio.drain"
# How long a drained client should wait before it reconnects: long enough for the load
# balancer to stop routing to this instance, short enough that the scene barely pauses.
RETRY_AFTER_MS = 500

_GROUP_PREFIX = "audio.drain"
# Channel-layer group names: ASCII letters, digits, '-', '_', '.', shorter than 100 chars.
_INVALID = re.compile(r"[^A-Za-z0-9\-_.]+")
_MAX_GROUP_LEN = 99
_TOKEN = secrets.token_hex(4)


def _clean(part: str) -> str:
    return _INVALID.sub("-", part).strip("-.") or "host"


def process_group_name() -> str:
    """The channel-layer group every voice socket of *this process* joins.

    Stable for the life of the process; different in every other process, even one with the
    same hostname and pid on the same Redis.
    """
    tail = f".{os.getpid()}.{_TOKEN}"
    host = _clean(socket.gethostname())[: _MAX_GROUP_LEN - len(_GROUP_PREFIX) - 1 - len(tail)]
    return f"{_GROUP_PREFIX}.{host}{tail}"


def instance_name() -> str:
    """`hostname:pid` of this process, for AudioSessionRecord.instance and logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def drain_event() -> dict[str, str]:
    """The message the server sends to `process_group_name()` when it starts draining."""
    return {"type": DRAIN_EVENT}


async def drain_broadcast() -> str:
    """Tell every voice socket of this process to finish; returns the group name used.

    One group_send reaches all of them: Channels fans it out to each member's channel.
    Raises whatever the channel layer raises (the caller bounds it with a timeout).
    """
    layer = get_channel_layer()
    group = process_group_name()
    if layer is None:
        raise RuntimeError("no channel layer configured (CHANNEL_LAYERS); cannot drain voice sockets")
    await layer.group_send(group, drain_event())
    return group
