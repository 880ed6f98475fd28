#!/usr/bin/env python3
"""Anonymous WebSocket check for `infra/ops.sh ENV smoke` (uses the `websockets` package).

Usage: smoke_ws.py WS_URL ORIGIN. Prints one line. Exit 0 when the audio route refused the
anonymous socket the way the app should: HTTP 401/403 at the handshake, or accepted and then
closed by the server with a 4xxx (policy) close code. Anything else (404, 5xx, timeout, a
socket left open) exits 1. The guide's ping -> pong exchange needs a signed-in session and
is not attempted.
"""

from __future__ import annotations

import asyncio
import sys

import websockets
from websockets.typing import Origin


async def check(url: str, origin: str) -> tuple[bool, str]:
    try:
        async with websockets.connect(url, origin=Origin(origin), open_timeout=10, close_timeout=5) as ws:
            try:
                await asyncio.wait_for(ws.recv(), timeout=5)
                await asyncio.wait_for(ws.wait_closed(), timeout=5)
            except websockets.ConnectionClosed:
                pass
            except TimeoutError:
                return False, "accepted an anonymous socket and left it open"
            code = ws.close_code
            if code is not None and 4000 <= code <= 4999:
                return True, f"anonymous socket accepted then closed with policy code {code} (as expected)"
            return False, f"anonymous socket closed with code {code} (want 4xxx)"
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            return True, f"anonymous upgrade refused with HTTP {status} (as expected)"
        return False, f"upgrade answered HTTP {status} (want 403)"
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return False, f"connection failed: {type(exc).__name__}: {exc}"


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: smoke_ws.py WS_URL ORIGIN")
        return 2
    ok, message = asyncio.run(check(sys.argv[1], sys.argv[2]))
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
