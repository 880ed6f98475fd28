"""The stamp the bench's emulator writes into the first bytes of every partner audio chunk.

12 bytes: a 2-byte magic, a 2-byte per-connection sequence number and the emulator's
CLOCK_MONOTONIC send time (a float64, seconds). CLOCK_MONOTONIC is one clock for every process
on a machine, so a load generator that reads it on receipt measures the latency the relay added
between two other processes. The relay forwards audio bytes verbatim, so the stamp needs no help
from production code. 12 bytes are exactly 16 base64 characters: the emulator swaps them into an
encoded chunk without decoding it.
"""

from __future__ import annotations

import base64
import struct

MAGIC = b"\xb7\x5e"
_FORMAT = "<2sHd"
SIZE = struct.calcsize(_FORMAT)  # 12
B64_SIZE = SIZE * 4 // 3  # 16


def encode_b64(seq: int, sent_at: float) -> str:
    return base64.b64encode(struct.pack(_FORMAT, MAGIC, seq & 0xFFFF, sent_at)).decode("ascii")


def decode(chunk: bytes) -> tuple[int, float] | None:
    """(sequence, send time) if `chunk` starts with a stamp, else None."""
    if len(chunk) < SIZE or chunk[:2] != MAGIC:
        return None
    _, seq, sent_at = struct.unpack_from(_FORMAT, chunk)
    return seq, sent_at
