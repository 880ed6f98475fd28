"""The browser protocol's parser and the upstream failure classification (pure functions)."""

from __future__ import annotations

import base64

import pytest
from google.genai import errors

from audio import protocol
from audio.live import FATAL, QUOTA, RESUME, RETRY, classify
from audio.protocol import Audio, ProtocolError, parse_client_message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type": "ping", "t": 5}', protocol.Ping(t=5)),
        ('{"type": "pong"}', protocol.Pong()),
        ('{"type": "text", "text": "  hi  "}', protocol.Text(text="hi")),
        ('{"type": "activity_start"}', protocol.ActivityStart()),
        ('{"type": "activity_end"}', protocol.ActivityEnd()),
        ('{"type": "end"}', protocol.End()),
        ('{"type": "ping", "t": {"big": "object"}}', protocol.Ping(t=None)),  # never reflected
    ],
)
def test_valid_messages_parse_to_types(raw, expected):
    assert parse_client_message(raw) == expected


def test_guide_audio_message_takes_standard_and_url_safe_base64():
    pcm = bytes(range(256)) * 4
    assert parse_client_message(f'{{"type":"audio","data":"{base64.b64encode(pcm).decode()}"}}') == Audio(pcm)
    url_safe = base64.urlsafe_b64encode(pcm).decode().rstrip("=")
    assert parse_client_message(f'{{"type":"audio","data":"{url_safe}"}}') == Audio(pcm)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{nope", "bad_message"),
        ("[1, 2]", "bad_message"),
        ('{"no": "type"}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "text", "text": ""}', "bad_message"),
        ('{"type": "text", "text": "' + "x" * 2001 + '"}', "too_long"),
        ('{"type": "audio", "data": "***"}', "bad_message"),
        ('{"type": "audio", "data": ""}', "bad_message"),
        ('{"type": "audio", "data": "AA=="}', "bad_message"),  # one byte: not whole samples
    ],
)
def test_bad_messages_say_why(raw, code):
    with pytest.raises(ProtocolError) as err:
        parse_client_message(raw)
    assert err.value.code == code and str(err.value)


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (1008, "RESOURCE_EXHAUSTED: Quota exceeded", QUOTA),
        (1011, "Deadline expired before operation could complete.", RETRY),
        (1006, "Abnormal closure.", RETRY),
        (1000, "", RESUME),
        (1007, "Request contains an invalid argument.", FATAL),
    ],
)
def test_live_close_codes_are_classified(code, message, kind):
    assert classify(errors.APIError(code, {"message": message, "status": ""})).kind == kind


def test_every_close_reason_has_a_documented_code():
    assert set(protocol.CLOSE_REASONS.values()) <= set(protocol.CloseCode)
    for reason in (
        "client_close",
        "idle_timeout",
        "server_restart",
        "network_error",
        "upstream_error",
        "superseded",
        "rollback",
        "duration_cap",
        "admin",
    ):
        assert reason in protocol.CLOSE_REASONS
