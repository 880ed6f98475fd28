"""A client for the emulator's control API (`/emulator/faults`, `/emulator/stats`,
`/emulator/conversations`), for tests."""

from __future__ import annotations

import json
import ssl
import urllib.request
from typing import Any


class EmulatorControl:
    """Arm faults for the next requests or Live connections, clear them, read counters."""

    def __init__(self, url: str, ca_file: str) -> None:
        self._url = url
        self._ctx = ssl.create_default_context(cafile=ca_file)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - our own https URL
            f"{self._url}{path}", data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, context=self._ctx, timeout=5) as resp:  # noqa: S310
            return json.loads(resp.read())

    def arm(self, *faults: dict[str, Any]) -> None:
        self._call("POST", "/emulator/faults", {"faults": list(faults)})

    def clear(self) -> None:
        self._call("DELETE", "/emulator/faults")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/emulator/stats")

    def conversations(self) -> list[dict[str, Any]]:
        """Each recent Live conversation: id, turns, connections and its record (emulator/state.py)."""
        return self._call("GET", "/emulator/conversations")["conversations"]
