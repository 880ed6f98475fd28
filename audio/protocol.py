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

Daphne lets the application send only 1000 and 3000-4999, hence the 4000s. `CloseCode` is the
one list of codes (static/js/socket.js mirrors it; audio/tests/test_protocol.py checks they match);
`CloseReason` is the one list of why a session ends, each with its code and user message.

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
- `saving` {delayed, pending}: only when saving turns has failed for VOICE_SAVE_NOTICE_S
  (the store is down): `delayed: true` with the turns kept in memory, then `delayed: false`
  once they are all written;
- `warning` {reason: duration_cap, seconds_left}; `error` {code, message} (every code: ERROR_CODES);
- `reconnect` {reason: server_restart, resume_token, retry_after_ms}: followed by close 4012.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Literal, Required, TypedDict, cast

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


@dataclass(frozen=True, slots=True)
class Ending:
    """What a close reason means: its close code, whether it counts as a failed session (the
    rollout guard's error rate), whether the browser may resume it, and the `error` message
    (code, text; `{}` takes a detail) the browser gets before the close."""

    code: CloseCode
    error_code: str = ""
    message: str = ""
    failed: bool = False
    resumable: bool = False


class CloseReason(StrEnum):
    """Why a voice session ended, as recorded (AudioSessionRecord.close_reason), logged
    (audio_session_ended.reason) and sent as the WebSocket close reason."""

    ending: Ending

    def __new__(cls, value: str, ending: Ending | None = None) -> CloseReason:
        # Only called while the class is built (CloseReason("x") looks a member up by value).
        assert ending is not None
        member = str.__new__(cls, value)
        member._value_ = value
        member.ending = ending
        return member

    CLIENT_CLOSE = "client_close", Ending(CloseCode.NORMAL)
    ADMIN = "admin", Ending(CloseCode.NORMAL, "ended_by_admin", "An administrator ended this voice session.")
    PROTOCOL_ERROR = "protocol_error", Ending(
        CloseCode.PROTOCOL_ERROR, "protocol_error", "Too many malformed messages; last: {}"
    )
    IDLE_TIMEOUT = "idle_timeout", Ending(
        CloseCode.IDLE_TIMEOUT,
        "idle_timeout",
        "No answer to pings; closing the voice session.",
        resumable=True,
    )
    SUPERSEDED = "superseded", Ending(
        CloseCode.SUPERSEDED, "superseded", "Voice moved to your newer tab or device."
    )
    DURATION_CAP = "duration_cap", Ending(
        CloseCode.DURATION_CAP, "duration_cap", "This voice session reached its time limit."
    )
    UPSTREAM_ERROR = "upstream_error", Ending(
        CloseCode.UPSTREAM_FAILURE,
        "upstream_unavailable",
        "The voice partner is unavailable right now. Carry on in text mode.",
        failed=True,
    )
    # Its notice is a `reconnect` message (see `reconnect()`), not an error.
    SERVER_RESTART = "server_restart", Ending(CloseCode.SERVER_RESTART, resumable=True)
    TOO_BIG = "too_big", Ending(CloseCode.TOO_BIG, "too_big", "Frames are limited to {} bytes.")
    ROLLBACK = "rollback", Ending(
        CloseCode.ROLLED_BACK, "voice_disabled", "Voice mode was turned off; carry on in text mode."
    )
    # The browser vanished: nobody reads this code; the scene may be resumed.
    NETWORK_ERROR = "network_error", Ending(CloseCode.NORMAL, resumable=True)

    @property
    def code(self) -> CloseCode:
        return self.ending.code

    @property
    def failed(self) -> bool:
        return self.ending.failed

    @property
    def resumable(self) -> bool:
        return self.ending.resumable


# Reason name -> close code, for readers that only have the recorded string.
CLOSE_REASONS: dict[str, CloseCode] = {reason.value: reason.code for reason in CloseReason}


# Every `code` an `error` message may carry, and what it means. The browser branches on these;
# a code that is not here is a bug (audio/tests/test_fuzz_consumer.py checks what a fuzzed
# client is told against this table).
ERROR_CODES: dict[str, str] = {
    # a client frame refused; the socket stays open (up to MAX_BAD_MESSAGES in a row)
    "bad_message": "not JSON, no string 'type', a missing or wrong-typed field, odd-length PCM16",
    "unknown_type": "a JSON message whose 'type' the server does not know",
    "too_long": f"a 'text' message over {MAX_TEXT_CHARS} characters",
    # the session ends (the close code follows from CLOSE_REASONS)
    "protocol_error": "too many malformed messages in a row (close 4000)",
    "too_big": f"a frame over {MAX_FRAME_BYTES} bytes (close 4013)",
    "idle_timeout": "pongs stopped (close 4008)",
    "duration_cap": "WEBSOCKET_TIMEOUT reached (close 4010)",
    "superseded": "the same user opened a newer voice socket (close 4009)",
    "ended_by_admin": "an administrator ended the session (close 1000)",
    "voice_disabled": "the audio_v2 rollout no longer includes this user (close 4014)",
    "upstream_quota": "Gemini Live is out of quota (close 4011; text mode)",
    "upstream_unavailable": "Gemini Live failed and retries ran out (close 4011; text mode)",
    "server_error": "a relay task failed unexpectedly (close 4011; text mode)",
    # the handshake refused (audio/selectors.py), then the close code below
    "unauthenticated": "no signed-in user (close 4001)",
    "not_your_scene": "the scene belongs to someone else (close 4003)",
    "voice_not_enabled": "not in the audio_v2 rollout (close 4003)",
    "scene_not_found": "unknown scene (close 4004)",
    "scene_closed": "the scene has ended (close 4004)",
}


class ProtocolError(ValueError):
    """An untrusted client message that cannot be used; `code` goes into the `error` message."""

    def __init__(self, message: str, code: str = "bad_message") -> None:
        assert code in ERROR_CODES, code  # one vocabulary (ERROR_CODES)
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
    except (ValueError, RecursionError):
        # ValueError, not only JSONDecodeError: an integer literal over Python's 4300-digit
        # conversion limit raises a plain ValueError from inside the decoder.
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
    # Echo only small scalars: a ping must not make us reflect arbitrary payloads. Only finite
    # numbers: json.dumps writes NaN and Infinity, which a browser's JSON.parse refuses.
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not -(10**63) < value < 10**63:
        return None  # str() of a huge int is slow (and limited): check its size arithmetically
    if isinstance(value, (int, float, str)) and len(str(value)) <= 64:
        return value
    return None


# --- server -> client ------------------------------------------------------------------------
# Every server -> client JSON message is one of these, built by the function below it.
class ReadyMessage(TypedDict):
    type: Literal["ready"]
    session_id: str
    resumed: bool
    in_rate: int
    out_rate: int
    ping_interval_s: float
    max_duration_s: float
    max_frame_bytes: int


class PingMessage(TypedDict):
    type: Literal["ping", "pong"]
    t: Any


class TranscriptMessage(TypedDict):
    type: Literal["transcript"]
    role: Literal["user", "partner"]
    text: str
    final: bool


class InterruptedMessage(TypedDict):
    type: Literal["interrupted"]


class TurnCompleteMessage(TypedDict, total=False):
    type: Required[Literal["turn_complete"]]
    latency_ms: int


class UsageMessage(TypedDict, total=False):
    type: Required[Literal["usage"]]
    bytes_in: int
    bytes_out: int
    turns: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    dropped_audio_ms: Required[int]


class RoomMessage(TypedDict):
    type: Literal["room"]
    energy: Any
    engagement: Any
    mood: Any


class SavingMessage(TypedDict):
    type: Literal["saving"]
    delayed: bool
    pending: int


class CoachMessage(TypedDict):
    type: Literal["coach"]
    text: str


class WarningMessage(TypedDict):
    type: Literal["warning"]
    reason: str
    seconds_left: int


class ErrorMessage(TypedDict):
    type: Literal["error"]
    code: str
    message: str


class ReconnectMessage(TypedDict):
    type: Literal["reconnect"]
    reason: str
    resume_token: str
    retry_after_ms: int


ServerMessage = (
    ReadyMessage
    | PingMessage
    | TranscriptMessage
    | InterruptedMessage
    | TurnCompleteMessage
    | UsageMessage
    | RoomMessage
    | CoachMessage
    | SavingMessage
    | WarningMessage
    | ErrorMessage
    | ReconnectMessage
)


def ready(*, session_id: str, resumed: bool, ping_interval_s: float, max_duration_s: float) -> ReadyMessage:
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


def saving(*, delayed: bool, pending: int) -> SavingMessage:
    return {"type": "saving", "delayed": delayed, "pending": pending}


def ping(*, t: Any) -> PingMessage:
    return {"type": "ping", "t": t}


def pong(*, t: Any) -> PingMessage:
    return {"type": "pong", "t": t}


def transcript(role: Literal["user", "partner"], text: str, *, final: bool) -> TranscriptMessage:
    return {"type": "transcript", "role": role, "text": text, "final": final}


def interrupted() -> InterruptedMessage:
    return {"type": "interrupted"}


def turn_complete(*, latency_ms: int | None) -> TurnCompleteMessage:
    msg: TurnCompleteMessage = {"type": "turn_complete"}
    if latency_ms is not None:
        msg["latency_ms"] = latency_ms
    return msg


def usage(*, totals: Mapping[str, int], dropped_audio_ms: int) -> UsageMessage:
    """Session totals so far: only the counters that moved (keys of AudioSessionRecord)."""
    return cast(UsageMessage, {"type": "usage", **totals, "dropped_audio_ms": dropped_audio_ms})


def room(values: Mapping[str, Any]) -> RoomMessage:
    return {
        "type": "room",
        "energy": values.get("energy"),
        "engagement": values.get("engagement"),
        "mood": values.get("mood"),
    }


def coach(text: str) -> CoachMessage:
    return {"type": "coach", "text": text}


def warning(*, reason: str, seconds_left: int) -> WarningMessage:
    return {"type": "warning", "reason": reason, "seconds_left": seconds_left}


def error(code: str, message: str) -> ErrorMessage:
    return {"type": "error", "code": code, "message": message}


def closing(reason: CloseReason, detail: object = "") -> ErrorMessage:
    """The `error` message that goes before a close for `reason` (its code and user message)."""
    ending = reason.ending
    return error(ending.error_code, ending.message.format(detail))


def upstream_quota() -> ErrorMessage:
    """Ends with CloseReason.UPSTREAM_ERROR, like its default notice, for a quota failure."""
    return error("upstream_quota", "The voice partner is over capacity right now. Carry on in text mode.")


def server_error() -> ErrorMessage:
    """Ends with CloseReason.UPSTREAM_ERROR when one of the relay's own tasks failed."""
    return error("server_error", "Voice stopped because of a server error. Carry on in text mode.")


def reconnect(*, reason: str, resume_token: str, retry_after_ms: int) -> ReconnectMessage:
    return {
        "type": "reconnect",
        "reason": reason,
        "resume_token": resume_token,
        "retry_after_ms": retry_after_ms,
    }
