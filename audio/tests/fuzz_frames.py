"""Hypothesis strategies for what a hostile or broken browser can send on /ws/audio/<scene_id>,
and the consumer's documented answer to each frame (the oracle the consumer fuzz checks).

The corpus leans towards frames that get past the first checks: JSON objects with a known
`type` and wrong-typed, missing, huge or odd fields, base64 that is almost right, and PCM
frames of every size around the limits; plain garbage (any text, any bytes) is part of it too.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from audio import protocol

# `make soak` raises this (FUZZ_SCALE=10 ...): the same tests, ten times the examples.
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
TYPES = [
    "ping",
    "pong",
    "text",
    "audio",
    "activity_start",
    "activity_end",
    "end",
    "hello",
    "",
    "PING",
    "tëxt",
]

huge_ints = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**80),
    st.sampled_from([2**63, -(2**63) - 1, 10**4299, -(10**4299)]),
)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.none(), st.booleans(), huge_ints, floats, st.text(max_size=80))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def base64ish(draw: st.DrawFn) -> Any:
    """Audio `data`: base64 of even or odd PCM, URL-safe or not, padded or not, broken, or not a string."""
    pcm = draw(st.binary(max_size=4096))
    encode = base64.urlsafe_b64encode if draw(st.booleans()) else base64.b64encode
    encoded = encode(pcm).decode()
    choice = draw(st.integers(0, 5))
    if choice == 1:
        encoded = encoded.rstrip("=")
    elif choice == 2 and encoded:
        at = draw(st.integers(0, len(encoded) - 1))
        encoded = encoded[:at] + draw(st.sampled_from(["*", " ", "é", "=", "\x00", "\n"])) + encoded[at + 1 :]
    elif choice == 3:
        return draw(json_values)
    elif choice == 4:
        return draw(st.text(max_size=200))
    return encoded


@st.composite
def message_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object with a plausible `type` and fields that may be right, wrong-typed or absent."""
    kind = draw(st.one_of(st.sampled_from(TYPES), json_values))
    obj: dict[str, Any] = {} if draw(st.integers(0, 9)) == 0 else {"type": kind}
    if draw(st.booleans()):
        obj["t"] = draw(scalars | json_values)
    if draw(st.booleans()):
        # Mostly short or blank lines (a real reply per typed line is slow), sometimes over the limit.
        obj["text"] = draw(
            st.one_of(
                st.sampled_from(["", "   ", "\n\t", "\u200b"]),
                st.text(max_size=12),
                st.just("x" * (protocol.MAX_TEXT_CHARS + 1)),
                json_values,
            )
        )
    if draw(st.booleans()):
        obj["data"] = draw(base64ish())
    obj.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return obj


def _encode(obj: Any, *, allow_nan: bool) -> str:
    try:
        return json.dumps(obj, allow_nan=allow_nan)
    except ValueError:  # NaN/Infinity refused, or an int too long to write: send garbage instead
        return "{" + repr(obj)[:200]


@st.composite
def text_frames(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 9))
    if choice <= 5:
        return _encode(draw(message_objects()), allow_nan=draw(st.booleans()))
    if choice == 6:
        return _encode(draw(json_values), allow_nan=True)  # JSON, but not an object (or no type)
    if choice == 7:
        depth = draw(st.sampled_from([10, 1000, 30_000, 70_000]))  # the last is over the frame limit
        return draw(st.sampled_from(["[", '{"a":'])) * depth  # deep nesting: RecursionError inside json
    if choice == 8:
        digits = draw(st.sampled_from([4300, 4301, 20_000]))
        return '{"type": "ping", "t": ' + "9" * digits + "}"  # past int('...')'s digit limit
    return draw(st.text(max_size=300))  # any unicode at all, surrogates included


@st.composite
def binary_frames(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return b"\x01" * (protocol.MAX_FRAME_BYTES + draw(st.sampled_from([-1, 0, 1, 2])))
    if choice == 1:
        return b""
    return draw(st.binary(max_size=3200))  # up to 100 ms of 16 kHz PCM16, odd sizes included


frames = st.one_of(text_frames(), binary_frames())


# --- the oracle: what the consumer documents for each frame ---------------------------------
@dataclass(frozen=True)
class Expected:
    """`error` code the browser is told (or None), whether the socket closes, and with what."""

    error: str | None = None
    close: int | None = None
    pong: Any = None  # a ping's echoed `t` (None when the frame is not a ping)
    is_ping: bool = False
    bad: bool = False  # counts towards MAX_BAD_MESSAGES


def expected_for(frame: str | bytes, *, bad_run: int, max_bad: int) -> Expected:
    """What the consumer must answer, given `bad_run` malformed frames in a row before this one."""
    if len(frame) > protocol.MAX_FRAME_BYTES:
        return Expected(error="too_big", close=int(protocol.CloseCode.TOO_BIG))
    if isinstance(frame, bytes):
        if len(frame) & 1:
            return _bad("bad_message", bad_run, max_bad)
        return Expected()
    try:
        message = protocol.parse_client_message(frame)
    except protocol.ProtocolError as exc:
        return _bad(exc.code, bad_run, max_bad)
    if isinstance(message, protocol.Ping):
        return Expected(pong=message.t, is_ping=True)
    if isinstance(message, protocol.End):
        return Expected(close=int(protocol.CloseCode.NORMAL))
    return Expected()


def _bad(code: str, bad_run: int, max_bad: int) -> Expected:
    if bad_run + 1 >= max_bad:
        return Expected(error="protocol_error", close=int(protocol.CloseCode.PROTOCOL_ERROR), bad=True)
    return Expected(error=code, bad=True)
