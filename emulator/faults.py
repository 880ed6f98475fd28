"""Faults on demand: what the next N requests or Live connections will suffer.

Tests arm faults through the control API (`POST /emulator/faults`); each fault applies to the
next `count` matching requests (generateContent) or connections (Live), then disarms itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HTTP_STATUSES = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
CLOSE_REASONS = {
    1011: "Internal error encountered.",
    1007: "Request contains an invalid argument.",
    1008: "RESOURCE_EXHAUSTED: Quota exceeded for aiplatform.googleapis.com/bidi_generate_content.",
}
# When a Live close/drop fault fires: before setupComplete (connect() fails), right after it,
# at the end of the next user turn (instead of replying), or after the first reply audio chunk.
WHEN = ("setup", "ready", "turn", "reply")
KINDS = ("http_status", "latency", "live_close", "live_drop", "slow_pong", "live_lifetime")
_MAX_PENDING = 64
_MAX_COUNT = 10_000


class FaultError(ValueError):
    """A fault description that cannot be armed; reported as 400 by the control API."""


@dataclass
class Fault:
    kind: str
    count: int
    status: int = 0
    ms: int = 0
    scope: str = "http"
    code: int = 0
    reason: str = ""
    when: str = "turn"
    seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (0, "", 0.0) or k == "count"}


@dataclass(frozen=True)
class HttpFaults:
    latency_ms: int = 0
    status: int | None = None


@dataclass(frozen=True)
class LiveFaults:
    latency_ms: int = 0
    close: tuple[int, str, str] | None = None  # (code, reason, when)
    drop_when: str | None = None
    pong_delay_ms: int = 0
    lifetime_s: float | None = None


def parse_fault(raw: Any) -> Fault:
    if not isinstance(raw, dict):
        raise FaultError("each fault must be a JSON object")
    kind = raw.get("type", raw.get("kind"))
    if kind not in KINDS:
        raise FaultError(f"fault type must be one of {', '.join(KINDS)}")
    count = _int(raw, "count", 1, 1, _MAX_COUNT)
    fault = Fault(kind=kind, count=count)
    if kind == "http_status":
        fault.status = _int(raw, "status", 503, 400, 599)
        if fault.status not in HTTP_STATUSES:
            raise FaultError(f"status must be one of {sorted(HTTP_STATUSES)}")
    elif kind == "latency":
        fault.ms = _int(raw, "ms", 0, 0, 600_000)
        fault.scope = str(raw.get("scope", "http"))
        if fault.scope not in ("http", "live"):
            raise FaultError("latency scope must be 'http' or 'live'")
    elif kind == "live_close":
        fault.code = _int(raw, "code", 1011, 1000, 4999)
        fault.reason = str(raw.get("reason") or CLOSE_REASONS.get(fault.code, "closed by emulator"))
        if len(fault.reason.encode()) > 120:
            raise FaultError("close reason must fit in a close frame (120 bytes)")
        fault.when = _when(raw)
    elif kind == "live_drop":
        fault.when = _when(raw)
    elif kind == "slow_pong":
        fault.ms = _int(raw, "ms", 30_000, 0, 600_000)
    else:  # live_lifetime
        seconds = raw.get("seconds")
        if not isinstance(seconds, (int, float)) or not 0.1 <= seconds <= 86_400:
            raise FaultError("live_lifetime needs 'seconds' between 0.1 and 86400")
        fault.seconds = float(seconds)
    return fault


def _int(raw: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FaultError(f"{key!r} must be an integer between {low} and {high}")
    return value


def _when(raw: dict[str, Any]) -> str:
    when = str(raw.get("when", "turn"))
    if when not in WHEN:
        raise FaultError(f"'when' must be one of {', '.join(WHEN)}")
    return when


@dataclass
class FaultPlan:
    """Armed faults, consumed first-armed first within each kind."""

    pending: list[Fault] = field(default_factory=list)

    def arm(self, faults: list[Fault]) -> None:
        if len(self.pending) + len(faults) > _MAX_PENDING:
            raise FaultError(f"at most {_MAX_PENDING} faults may be pending")
        self.pending.extend(faults)

    def clear(self) -> None:
        self.pending.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.pending]

    def _take(self, kind: str, scope: str | None = None) -> Fault | None:
        for fault in self.pending:
            if fault.kind == kind and (scope is None or fault.scope == scope):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return None

    def take_http(self) -> HttpFaults:
        latency = self._take("latency", "http")
        status = self._take("http_status")
        return HttpFaults(latency_ms=latency.ms if latency else 0, status=status.status if status else None)

    def take_live(self) -> LiveFaults:
        latency = self._take("latency", "live")
        close = self._take("live_close")
        drop = self._take("live_drop")
        pong = self._take("slow_pong")
        lifetime = self._take("live_lifetime")
        return LiveFaults(
            latency_ms=latency.ms if latency else 0,
            close=(close.code, close.reason, close.when) if close else None,
            drop_when=drop.when if drop else None,
            pong_delay_ms=pong.ms if pong else 0,
            lifetime_s=lifetime.seconds if lifetime else None,
        )
