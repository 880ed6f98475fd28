"""`python -m bench.stamped_emulator`: the Gemini emulator, with a send stamp in every audio chunk.

Same arguments as `python -m emulator`. The emulator is a test double; the stamp (bench/stamp.py)
replaces the first 12 bytes of each 24 kHz chunk just before it is written to the socket, so the
load generator can tell when the emulator sent what it receives. Nothing of the app is touched.
"""

from __future__ import annotations

import time
from typing import Any

from bench import stamp
from emulator import __main__ as emulator_main
from emulator import live

_original_send = live.LiveSession._send


async def _stamped_send(session: live.LiveSession, message: dict[str, Any]) -> None:
    parts = message.get("serverContent", {}).get("modelTurn", {}).get("parts")
    if parts:
        blob = parts[0].get("inlineData")
        if blob is not None and len(blob["data"]) >= stamp.B64_SIZE:
            seq = getattr(session, "_bench_seq", 0)
            session._bench_seq = seq + 1  # type: ignore[attr-defined]
            blob["data"] = stamp.encode_b64(seq, time.monotonic()) + blob["data"][stamp.B64_SIZE :]
    await _original_send(session, message)


def main() -> None:
    # mypy binds self twice when a method is patched on the class.
    live.LiveSession._send = _stamped_send  # type: ignore[method-assign, assignment]
    emulator_main.main()


if __name__ == "__main__":
    main()
