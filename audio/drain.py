"""The process-unique channel-layer group every voice consumer joins, so that a draining
server (ai4joy/serve.py) can tell exactly its own sockets to reconnect elsewhere.

A fixed group name on a shared Redis would drain every instance's clients, hence hostname + pid.
"""

from __future__ import annotations

import os
import re
import socket

_INVALID = re.compile(r"[^a-zA-Z0-9\-_.]")


def process_group_name() -> str:
    """`audio.drain.<host>.<pid>`, limited to channel-layer group rules (ASCII, < 100 chars)."""
    host = _INVALID.sub("-", socket.gethostname())[:60] or "host"
    return f"audio.drain.{host}.{os.getpid()}"
