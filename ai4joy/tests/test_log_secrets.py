"""No secret, password, session key, CSRF token, OAuth secret or raw audio reaches a log line.

A real server (`python -m ai4joy.serve`, JSON logs, LOG_LEVEL=DEBUG so every event any logger
has is written) with a secret key and a Google OAuth client secret from the environment, as
Cloud Run sets them. Through it, as a browser would: a failed and a good email sign-in and a
sign-up (passwords in forms), the Google sign-in redirect, REST calls with the CSRF header,
a text turn during a Gemini outage (the error path logs), a voice session with binary PCM and
the guide's base64 audio frames and malformed frames. Then every line the process wrote is
searched for each secret and for any run of the audio sent, as base64, hex or bytes repr.
"""

from __future__ import annotations

import array
import asyncio
import base64
import json
import re
import secrets
import uuid

import pytest
import requests
from websockets.asyncio.client import connect

from ai4joy.tests.serving import base_env, migrate_database, next_of_type, run_django, start_server
from emulator.control import EmulatorControl
from emulator.tts import synthesize

PASSWORD = "Pw-" + secrets.token_urlsafe(18)
SIGNUP_PASSWORD = "Pw-" + secrets.token_urlsafe(18)
WRONG_PASSWORD = "Pw-" + secrets.token_urlsafe(18)
SECRET_KEY = secrets.token_urlsafe(50)
OAUTH_SECRET = "GOCSPX-" + secrets.token_urlsafe(24)
EMAIL = f"secret-{uuid.uuid4().hex[:8]}@example.com"
USER_CODE = """
import json
from django.contrib.auth import get_user_model
from flags.services import rollout_set
rollout_set(percent=100, actor_label="tests", reason="log secrets test")
get_user_model().objects.create_user(username={email!r}, email={email!r}, password={password!r})
print(json.dumps("ok"))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, gemini_emulator):
    tmp = tmp_path_factory.mktemp("log-secrets")
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        SERVICE_ROLE="all",
        LOG_LEVEL="DEBUG",
        DJANGO_SECRET_KEY=SECRET_KEY,
        GOOGLE_OAUTH_CLIENT_ID="123-abc.apps.googleusercontent.com",
        GOOGLE_OAUTH_CLIENT_SECRET=OAUTH_SECRET,
        GEMINI_BACKEND="emulator",
        GEMINI_EMULATOR_URL=gemini_emulator.url,
        GEMINI_EMULATOR_CA_FILE=gemini_emulator.ca_file,
        GEMINI_LIVE_MODEL="",
        WEBSOCKET_PING_INTERVAL="30",
        WEBSOCKET_TIMEOUT="3600",
    )
    migrate_database(env)
    run_django(USER_CODE.format(email=EMAIL, password=PASSWORD), env)
    proc = start_server(env, tmp / "server.log")
    yield proc
    proc.stop()


def _cookie(session: requests.Session, name: str) -> str:
    value = session.cookies.get(name)
    assert value, f"no {name} cookie"
    return value


def _form_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "no CSRF token in the form"
    return match.group(1)


def _post_form(http: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    token = _form_token(http.get(url, timeout=10).text)
    return http.post(url, data={**data, "csrfmiddlewaretoken": token}, allow_redirects=False, timeout=30)


def _browse(base: str, gemini: EmulatorControl) -> dict[str, set[str]]:
    """Everything a player does over HTTP; returns the secrets the browser held."""
    http = requests.Session()
    seen: dict[str, set[str]] = {"csrf": set(), "session": set()}
    failed = _post_form(http, f"{base}/accounts/login/", {"login": EMAIL, "password": WRONG_PASSWORD})
    assert failed.status_code == 200 and "password" in failed.text.lower()  # the form again, with an error
    signup = requests.Session()
    made = _post_form(
        signup,
        f"{base}/accounts/signup/",
        {
            "email": f"new-{EMAIL}",
            "password1": SIGNUP_PASSWORD,
            "password2": SIGNUP_PASSWORD,
        },
    )
    assert made.status_code == 302, made.text[:500]
    seen["session"].add(_cookie(signup, "sessionid"))
    signed_in = _post_form(http, f"{base}/accounts/login/", {"login": EMAIL, "password": PASSWORD})
    assert signed_in.status_code == 302, signed_in.text[:500]
    seen["session"].add(_cookie(http, "sessionid"))
    seen["player"] = {_cookie(http, "sessionid")}
    google = _post_form(http, f"{base}/accounts/google/login/", {})
    assert google.status_code == 302 and "accounts.google.com" in google.headers["Location"]
    assert OAUTH_SECRET not in google.headers["Location"]

    csrf = _cookie(http, "csrftoken")
    seen["csrf"].add(csrf)
    headers = {"X-CSRFToken": csrf, "Content-Type": "application/json"}

    def api(path: str, body: dict | None = None) -> requests.Response:
        return http.post(f"{base}/api/v1{path}", data=json.dumps(body or {}), headers=headers, timeout=60)

    scene = api("/scenes").json()["id"]
    assert api(f"/scenes/{scene}/game", {"game": "questions-only"}).status_code == 200
    assert api(f"/scenes/{scene}/suggestion").status_code == 200
    assert api(f"/scenes/{scene}/turns", {"text": "Where did you hide the map?"}).status_code == 200
    gemini.arm({"type": "http_status", "status": 503, "count": 20})
    assert api(f"/scenes/{scene}/turns", {"text": "Who ate the moon?"}).status_code == 503
    gemini.clear()
    assert (
        http.post(
            f"{base}/api/v1/scenes", headers={"Content-Type": "application/json"}, data="{}", timeout=10
        ).status_code
        == 403
    )  # no CSRF header: refused, and logged
    seen["scene"] = {scene}
    return seen


async def _voice(server, scene_id: str, session_cookie: str, speech: bytes) -> list[bytes]:
    """A voice turn from binary frames, one from base64 frames, and garbage; returns what was sent."""
    sent: list[bytes] = []
    url = f"{server.ws_base}/ws/audio/{scene_id}"
    async with connect(
        url,
        origin=server.origin,
        additional_headers={"Cookie": f"sessionid={session_cookie}"},
        open_timeout=10,
    ) as ws:
        await next_of_type(ws, "ready", timeout=15)
        frame = 1280  # 40 ms
        for at in range(0, len(speech), frame):
            sent.append(speech[at : at + frame])
            await ws.send(sent[-1])
        await ws.send(b"\x00" * 32000)  # 1 s of silence ends the turn
        await next_of_type(ws, "turn_complete", timeout=60)
        for at in range(0, len(speech), frame):
            sent.append(speech[at : at + frame])
            await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(sent[-1]).decode()}))
        await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(b"\x00" * 32000).decode()}))
        await next_of_type(ws, "turn_complete", timeout=60)
        odd = speech[:1281]
        sent.append(odd)
        await ws.send(odd)  # refused (odd length): the error path must not echo it either
        await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(odd).decode()}))
        await next_of_type(ws, "error", timeout=10)
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(ws.wait_closed(), 10)
    return sent


B64_RUN = 8  # 6 bytes: what websockets' DEBUG frame log shows of a payload (it leaked here once)
HEX_RUN = 12


def _audio_runs(stream: bytes) -> set[str]:
    """Every run of the speech that a log line could carry: base64 (either alphabet) of any
    6 bytes starting at any offset, and hex of any 6 bytes; near-silence is left out (it is
    the same in every recording, so it identifies nothing)."""
    runs: set[str] = set()
    for align in range(3):  # base64 of bytes starting at offset k is a 4-char-aligned run of one of these
        encoded = base64.b64encode(stream[align:]).decode()
        for at in range(0, len(encoded) - B64_RUN, 4):
            if _quiet(stream, align + at // 4 * 3):
                continue
            run = encoded[at : at + B64_RUN]
            runs.update({run, run.replace("+", "-").replace("/", "_")})
    hexed = stream.hex()
    for at in range(0, len(hexed) - HEX_RUN, 2):
        if not _quiet(stream, at // 2):
            runs.add(hexed[at : at + HEX_RUN])
    return runs


def _quiet(stream: bytes, start: int) -> bool:
    """Whether the whole samples around the 6 bytes at `start` are all near silence."""
    first = start & ~1
    samples = array.array("h", stream[first : first + 8][: (len(stream) - first) & ~1])
    return not samples or max(abs(v) for v in samples) < 256


def _windows(text: str, size: int) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def test_no_secret_or_audio_in_any_log_line(server, gemini):
    seen = _browse(f"http://127.0.0.1:{server.port}", gemini)
    speech = synthesize("The submarine bakery opens at midnight for the whales.", rate=16000)
    frames = asyncio.run(_voice(server, seen["scene"].pop(), seen["player"].pop(), speech))

    log = server.log()
    lines = [line for line in log.splitlines() if line.strip()]
    events = {json.loads(line).get("event") for line in lines if line.startswith("{")}
    # The run logged what matters: requests, sign-in, turns, the outage, the voice session.
    assert {"audio_session_started", "audio_session_ended", "gemini_error"} <= events, events
    assert len(lines) > 50
    secrets_ = {
        "password": PASSWORD,
        "signup password": SIGNUP_PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "OAuth client secret": OAUTH_SECRET,
        **{f"sessionid {i}": value for i, value in enumerate(seen["session"])},
        **{f"csrf {i}": value for i, value in enumerate(seen["csrf"])},
    }
    leaks = [(name, line[:300]) for name, value in secrets_.items() for line in lines if value in line]
    assert not leaks, leaks
    runs = _audio_runs(b"".join(frames))
    assert len(runs) > 10_000
    found = runs & (_windows(log, B64_RUN) | _windows(log, HEX_RUN))
    audio_leaks = [(run, line[:300]) for run in sorted(found)[:5] for line in lines if run in line]
    assert not found, audio_leaks
