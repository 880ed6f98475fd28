"""The browser <-> server voice protocol on /ws/audio/<scene_id>, in one place.

Frames:
- client -> server binary: PCM16 little-endian mono 16 kHz, 20-100 ms per frame;
- server -> client binary: PCM16 little-endian mono 24 kHz from the model;
- JSON text frames with a "type" for everything else (messages below).

Rejections at the handshake: the consumer *accepts* the socket, sends an `error` message and
closes with one of the codes below. A browser only sees a close code (and can only read a
message) once the handshake has completed; a socket refused before `accept` shows up as 1006
with no reason. The one exception is a bad Origin: AllowedHostsOriginValidator refuses it
before any app code runs (HTTP 403), which is right for a cross-site hijacking attempt.

Daphne lets the application send only 1000 and 3000-4999, hence the 4000s.

Query parameters: `?resume=<resume_token>` (from a `reconnect` message: continue the same Live
conversation, possibly on another instance) and `?ptt=1` (push-to-talk: the server's voice
detection is off and `activity_start`/`activity_end` mark each turn; without it they only
mark the end of speech for the latency figure).

Server -> client messages (JSON):
- `ready` {session_id, resumed, in_rate, out_rate, ping_interval_s, max_duration_s, max_frame_bytes}:
  the upstream is connected; start streaming;
- `ping` {t} (answer with `pong` {t}); `pong` {t} (answer to the client's `ping`);
- `transcript` {role: user|partner, text, final}: `text` is the whole line so far (replace, do
  not append); `final` once the turn is complete;
- `interrupted`: the user spoke over the partner: empty the playback buffer now;
- `turn_complete` {latency_ms?}: end of user speech to first partner audio, in ms;
- `usage` {bytes_in, bytes_out, turns, tokens_in, tokens_out, tokens_total, dropped_audio_ms}:
  session totals so far (dropped_audio_ms: stale input the server discarded);
- `room` {energy, engagement, mood} and `coach` {text}: after a turn is saved;
- `warning` {reason: duration_cap, seconds_left}; `error` {code, message};
- `reconnect` {reason: server_restart, resume_token, retry_after_ms}: followed by close 4012.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal, TypedDict

IN_RATE = 16_000
OUT_RATE = 24_000
IN_MIME = f"audio/pcm;rate={IN_RATE}"
# 64 KiB is about 2 s of 16 kHz PCM16: far above any sane frame, far below Daphne's 1 MiB cap.
MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CHARS = 2000


class CloseCode(IntEnum):
    """Close codes the voice socket ends with (documented for the browser and for operators)."""

    NORMAL = 1000  # the session ended normally (client `end`, or ended by an admin)
    PROTOCOL_ERROR = 4000  # repeated malformed messages
    UNAUTHENTICATED = 4001  # no signed-in user on the session cookie
    FORBIDDEN = 4003  # not the scene's owner, or not in the audio_v2 rollout
    SCENE_UNAVAILABLE = 4004  # unknown or closed scene
    IDLE_TIMEOUT = 4008  # pongs stopped (two pings missed)
    SUPERSEDED = 4009  # the same user opened a newer voice socket
    DURATION_CAP = 4010  # WEBSOCKET_TIMEOUT reached (a `warning` came a minute before)
    UPSTREAM_FAILURE = 4011  # Gemini Live failed or is out of quota: carry on in text mode
    SERVER_RESTART = 4012  # this server is restarting: reconnect now with the resume token
    TOO_BIG = 4013  # a frame over MAX_FRAME_BYTES
    ROLLED_BACK = 4014  # voice was turned off for this user by the rollout: carry on in text mode
    BUDGET_REACHED = 4015  # today's voice budget is spent (audio/budget.py): text mode until midnight
    LIMIT_EXCEEDED = 4029  # a rate or concurrency limit


# Why a session ended, as recorded (AudioSessionRecord.close_reason) and logged
# (audio_session_ended.reason), and the close code each one sends.
CLOSE_REASONS: dict[str, CloseCode] = {
    "client_close": CloseCode.NORMAL,
    "admin": CloseCode.NORMAL,
    "protocol_error": CloseCode.PROTOCOL_ERROR,
    "idle_timeout": CloseCode.IDLE_TIMEOUT,
    "superseded": CloseCode.SUPERSEDED,
    "duration_cap": CloseCode.DURATION_CAP,
    "upstream_error": CloseCode.UPSTREAM_FAILURE,
    "server_restart": CloseCode.SERVER_RESTART,
    "too_big": CloseCode.TOO_BIG,
    "rollback": CloseCode.ROLLED_BACK,
    "network_error": CloseCode.NORMAL,  # the browser vanished; nobody reads this code
}


class ProtocolError(ValueError):
    """An untrusted client message that cannot be used; `code` goes into the `error` message."""

    def __init__(self, message: str, code: str = "bad_message") -> None:
        super().__init__(message)
        self.code = code


# --- client -> server ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ping:
    t: Any = None  # echoed back in the pong


@dataclass(frozen=True, slots=True)
class Pong:
    t: Any = None


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class ActivityStart:
    pass


@dataclass(frozen=True, slots=True)
class ActivityEnd:
    pass


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Audio:
    """The deployment guide's `{"type": "audio", "data": <base64 PCM16>}` form."""

    pcm: bytes


ClientMessage = Ping | Pong | Text | ActivityStart | ActivityEnd | End | Audio

_SIMPLE: dict[str, ClientMessage] = {
    "activity_start": ActivityStart(),
    "activity_end": ActivityEnd(),
    "end": End(),
}


def parse_client_message(raw: str) -> ClientMessage:
    """Turn one untrusted text frame into a typed message, or raise ProtocolError saying why."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("text frames must be JSON objects with a 'type'") from None
    if not isinstance(data, dict):
        raise ProtocolError("text frames must be JSON objects with a 'type'")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("a message needs a string 'type'")
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "ping":
        return Ping(t=_scalar(data.get("t")))
    if kind == "pong":
        return Pong(t=_scalar(data.get("t")))
    if kind == "text":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("'text' needs a non-empty string 'text'")
        if len(text) > MAX_TEXT_CHARS:
            raise ProtocolError(f"'text' is limited to {MAX_TEXT_CHARS} characters", "too_long")
        return Text(text=text.strip())
    if kind == "audio":
        return Audio(pcm=decode_audio(data.get("data")))
    raise ProtocolError(f"unknown message type {kind[:40]!r}", "unknown_type")


def decode_audio(data: Any) -> bytes:
    if not isinstance(data, str) or not data:
        raise ProtocolError("'audio' needs base64 PCM16 in 'data'")
    # Standard or URL-safe alphabet (browsers use both), padding optional; anything else is refused.
    text = data.replace("-", "+").replace("_", "/")
    try:
        pcm = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("'audio' data is not valid base64") from None
    if len(pcm) % 2:
        raise ProtocolError("PCM16 audio must be whole 16-bit samples (an even byte count)")
    return pcm


def _scalar(value: Any) -> Any:
    # Echo only small scalars: a ping must not make us reflect arbitrary payloads.
    if isinstance(value, (int, float, str)) and not isinstance(value, bool) and len(str(value)) <= 64:
        return value
    return None


# --- server -> client ------------------------------------------------------------------------
# Any server -> client JSON message: the TypedDicts below and the plain dicts built here.
ServerMessage = Mapping[str, Any]


class TranscriptMessage(TypedDict):
    type: Literal["transcript"]
    role: Literal["user", "partner"]
    text: str
    final: bool


class ErrorMessage(TypedDict):
    type: Literal["error"]
    code: str
    message: str


class ReconnectMessage(TypedDict):
    type: Literal["reconnect"]
    reason: str
    resume_token: str
    retry_after_ms: int


def ready(*, session_id: str, resumed: bool, ping_interval_s: float, max_duration_s: float) -> dict[str, Any]:
    return {
        "type": "ready",
        "session_id": session_id,
        "resumed": resumed,
        "in_rate": IN_RATE,
        "out_rate": OUT_RATE,
        "ping_interval_s": ping_interval_s,
        "max_duration_s": max_duration_s,
        "max_frame_bytes": MAX_FRAME_BYTES,
    }


def transcript(role: Literal["user", "partner"], text: str, *, final: bool) -> TranscriptMessage:
    return {"type": "transcript", "role": role, "text": text, "final": final}


def error(code: str, message: str) -> ErrorMessage:
    return {"type": "error", "code": code, "message": message}


def reconnect(*, reason: str, resume_token: str, retry_after_ms: int) -> ReconnectMessage:
    return {
        "type": "reconnect",
        "reason": reason,
        "resume_token": resume_token,
        "retry_after_ms": retry_after_ms,
    }


def warning(*, reason: str, seconds_left: int) -> dict[str, Any]:
    return {"type": "warning", "reason": reason, "seconds_left": seconds_left}


def turn_complete(*, latency_ms: int | None) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "turn_complete"}
    if latency_ms is not None:
        msg["latency_ms"] = latency_ms
    return msg
