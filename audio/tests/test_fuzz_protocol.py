"""Property-based fuzzing of audio.protocol.parse_client_message (hypothesis, derandomized).

Properties: any text frame gives a typed message or a ProtocolError with a documented code and a
readable message, never another exception; what a ping asks us to echo is always strict JSON;
the guide's base64 audio and typed text round-trip exactly.
"""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio import protocol
from audio.protocol import ProtocolError, parse_client_message
from audio.tests.fuzz_frames import SCALE, json_values, scalars, text_frames


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        derandomize=True,  # the same corpus on every run and in CI
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzz(1000)
@given(raw=text_frames())
def test_any_text_frame_parses_or_is_refused_with_a_documented_code(raw: str) -> None:
    try:
        message = parse_client_message(raw)
    except ProtocolError as exc:
        assert exc.code in protocol.ERROR_CODES
        assert str(exc).strip()
        return
    assert isinstance(message, protocol.ClientMessage)
    if isinstance(message, (protocol.Ping, protocol.Pong)):
        # The pong goes back to a browser: JSON.parse must read it (no NaN, no Infinity).
        json.dumps({"type": "pong", "t": message.t}, allow_nan=False)
        assert message.t is None or len(str(message.t)) <= 64


@fuzz(400)
@given(t=st.one_of(scalars, json_values))
def test_a_ping_echoes_only_small_finite_scalars(t) -> None:
    raw = json.dumps({"type": "ping", "t": t})  # json.dumps writes NaN/Infinity as a browser might not
    echoed = _ping(raw).t
    if echoed is not None:
        assert not isinstance(echoed, bool) and isinstance(echoed, (int, float, str))
        assert echoed == t and len(str(echoed)) <= 64
        json.dumps(echoed, allow_nan=False)


@fuzz(300)
@given(pcm=st.binary(min_size=1, max_size=8192), url_safe=st.booleans(), strip=st.booleans())
def test_base64_audio_round_trips_or_odd_sizes_are_refused(pcm: bytes, url_safe: bool, strip: bool) -> None:
    encoded = (base64.urlsafe_b64encode if url_safe else base64.b64encode)(pcm).decode()
    raw = json.dumps({"type": "audio", "data": encoded.rstrip("=") if strip else encoded})
    if len(pcm) % 2:
        try:
            parse_client_message(raw)
        except ProtocolError as exc:
            assert exc.code == "bad_message"
        else:
            raise AssertionError("odd-length PCM16 accepted")
    else:
        assert parse_client_message(raw) == protocol.Audio(pcm)


@fuzz(300)
@given(text=st.text(min_size=1, max_size=protocol.MAX_TEXT_CHARS + 50))
def test_typed_text_is_kept_stripped_or_refused_with_its_code(text: str) -> None:
    raw = json.dumps({"type": "text", "text": text})
    try:
        message = parse_client_message(raw)
    except ProtocolError as exc:
        assert (exc.code, len(text) > protocol.MAX_TEXT_CHARS or not text.strip()) == (
            "too_long" if len(text) > protocol.MAX_TEXT_CHARS else "bad_message",
            True,
        )
        return
    assert message == protocol.Text(text.strip()) and len(text) <= protocol.MAX_TEXT_CHARS


def _ping(raw: str) -> protocol.Ping:
    message = parse_client_message(raw)
    assert isinstance(message, protocol.Ping)
    return message


def test_regressions_found_by_the_fuzzer() -> None:
    # An integer past Python's 4300-digit limit raised a bare ValueError out of the parser.
    try:
        parse_client_message('{"type": "ping", "t": ' + "9" * 5000 + "}")
    except ProtocolError as exc:
        assert exc.code == "bad_message"
    else:
        raise AssertionError("a 5000-digit integer was accepted")
    # NaN and Infinity were echoed in the pong, which a browser's JSON.parse refuses.
    assert _ping('{"type": "ping", "t": NaN}').t is None
    assert _ping('{"type": "ping", "t": -Infinity}').t is None
    assert _ping('{"type": "ping", "t": 1e999}').t is None
