"""The close vocabulary: one CloseReason per way a session ends, and the browser's copy of the codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audio import protocol
from audio.protocol import CloseCode, CloseReason

SOCKET_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "socket.js"


def _js_close_codes() -> dict[str, int]:
    """The `export const CloseCode = Object.freeze({...})` object of static/js/socket.js."""
    text = SOCKET_JS.read_text(encoding="utf-8")
    block = re.search(r"export const CloseCode = Object\.freeze\(\{(.*?)\}\);", text, re.S)
    assert block, "static/js/socket.js has no `export const CloseCode = Object.freeze({...});`"
    body = re.sub(r"//[^\n]*", "", block.group(1))
    entries = [e.strip() for e in body.split(",") if e.strip()]
    codes = {}
    for entry in entries:
        match = re.fullmatch(r"([A-Z_][A-Z0-9_]*)\s*:\s*(\d+)", entry)
        assert match, f"unexpected entry in socket.js CloseCode: {entry!r}"
        codes[match.group(1)] = int(match.group(2))
    return codes


def test_socket_js_close_codes_equal_protocol_py():
    assert _js_close_codes() == {code.name: code.value for code in CloseCode}


def test_the_js_parser_reads_what_it_checks():
    # A parser that read nothing would make the test above pass vacuously for an empty enum.
    codes = _js_close_codes()
    assert codes["NORMAL"] == 1000 and codes["SERVER_RESTART"] == 4012 and len(codes) == len(CloseCode)


def test_every_reason_carries_its_code_and_meaning():
    assert {r.value: r.code for r in CloseReason} == protocol.CLOSE_REASONS
    assert {r for r in CloseReason if r.failed} == {CloseReason.UPSTREAM_ERROR}
    assert {r for r in CloseReason if r.resumable} == {
        CloseReason.SERVER_RESTART,
        CloseReason.NETWORK_ERROR,
        CloseReason.IDLE_TIMEOUT,
    }
    assert CloseReason("idle_timeout") is CloseReason.IDLE_TIMEOUT and CloseReason.ADMIN == "admin"
    with pytest.raises(ValueError):
        CloseReason("gremlins")


@pytest.mark.parametrize(
    ("reason", "code", "error_code"),
    [
        (CloseReason.ADMIN, 1000, "ended_by_admin"),
        (CloseReason.IDLE_TIMEOUT, 4008, "idle_timeout"),
        (CloseReason.SUPERSEDED, 4009, "superseded"),
        (CloseReason.DURATION_CAP, 4010, "duration_cap"),
        (CloseReason.UPSTREAM_ERROR, 4011, "upstream_unavailable"),
        (CloseReason.TOO_BIG, 4013, "too_big"),
        (CloseReason.ROLLBACK, 4014, "voice_disabled"),
    ],
)
def test_the_notice_before_a_close_names_the_reason(reason, code, error_code):
    notice = protocol.closing(reason)
    assert reason.code == code
    assert notice["type"] == "error" and notice["code"] == error_code and notice["message"]


def test_notices_with_a_detail_fill_it_in():
    assert protocol.closing(CloseReason.TOO_BIG, 65536)["message"] == "Frames are limited to 65536 bytes."
    last = protocol.closing(CloseReason.PROTOCOL_ERROR, "bad json")["message"]
    assert last == "Too many malformed messages; last: bad json"


def test_server_messages_have_their_documented_shape():
    assert protocol.usage(totals={"bytes_in": 3}, dropped_audio_ms=0) == {
        "type": "usage",
        "bytes_in": 3,
        "dropped_audio_ms": 0,
    }
    assert protocol.room({"energy": 7, "engagement": 6, "mood": "warm", "turn": 2}) == {
        "type": "room",
        "energy": 7,
        "engagement": 6,
        "mood": "warm",
    }
    assert protocol.turn_complete(latency_ms=None) == {"type": "turn_complete"}
    assert protocol.ping(t=5) == {"type": "ping", "t": 5} and protocol.pong(t=5)["type"] == "pong"
