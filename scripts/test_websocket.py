"""The deployment guide's WebSocket smoke test (Phase 4.2, `test_websocket.py`), for ai4joy.

Changed from the guide only where the app requires it: it signs in first (email and password
through the login form, with the form's CSRF token, for the session cookie the voice socket
needs), sends an Origin header (the server refuses cross-site sockets), and takes its target
from the command line. The guide's placeholder "base64_encoded_audio_chunk" is a real chunk:
100 ms of 16 kHz PCM16 silence, base64-encoded. Otherwise it does what the guide's script
does: send audio, print the first response, wait for a `ping`, answer `pong`.

By hand, against `make run` (voice is off until the audio_v2 rollout includes you):

    make run
    .venv/bin/python manage.py rollout set 100 --reason "smoke test"
    .venv/bin/python scripts/test_websocket.py --email demo@ai4joy.local --password yes-and-demo

Without --scene it starts a scene through the REST API (POST /api/v1/scenes). It exits 0 when
the socket answered and a ping arrived within --ping-wait seconds (the server pings every
WEBSOCKET_PING_INTERVAL, 30 s by default, hence 35).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import websockets
from websockets.typing import Origin

AUDIO_CHUNK = base64.b64encode(b"\x00\x00" * 1600).decode()  # 100 ms of 16 kHz PCM16 silence


class Session:
    """An HTTP client with a cookie jar: signs in like a browser and calls the REST API."""

    def __init__(self, base_url: str) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            sys.exit(f"--base-url must be http:// or https://, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.jar if c.name == name), "")

    def request(self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
        url = self.base_url + path
        # http(s) only: checked in __init__.
        req = urllib.request.Request(url, data=data, headers={"Referer": url, **(headers or {})})  # noqa: S310
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            sys.exit(f"{req.get_method()} {path}: HTTP {exc.code} {exc.read()[:500]!r}")

    def sign_in(self, email: str, password: str) -> None:
        self.request("/accounts/login/")  # sets the csrftoken cookie
        form = {"login": email, "password": password, "csrfmiddlewaretoken": self.cookie("csrftoken")}
        self.request("/accounts/login/", urllib.parse.urlencode(form).encode())
        if not self.cookie("sessionid"):
            sys.exit(f"sign-in failed for {email}: no session cookie (wrong email or password?)")

    def create_scene(self) -> str:
        body = json.dumps({}).encode()  # the MC's welcome; the game is chosen later
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken")}
        return json.loads(self.request("/api/v1/scenes", body, headers))["id"]


async def test_audio_websocket(uri: str, origin: str, cookie: str, ping_wait: float) -> None:
    headers = {"Cookie": cookie}
    async with websockets.connect(uri, origin=Origin(origin), additional_headers=headers) as websocket:
        # Send test audio data
        await websocket.send(json.dumps({
            "type": "audio",
            "data": AUDIO_CHUNK,
        }))

        # Receive response
        response = await websocket.recv()
        print(f"Received: {response!r}")

        # Test keepalive
        await asyncio.sleep(ping_wait)  # Wait for ping
        ping = await websocket.recv()
        assert json.loads(ping)["type"] == "ping"

        # Send pong
        await websocket.send(json.dumps({"type": "pong"}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the app, http(s)://host[:port]")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--scene", default="", help="a scene id of yours (default: start a new scene)")
    parser.add_argument("--ping-wait", type=float, default=35.0, help="seconds to wait for a ping")
    args = parser.parse_args(argv)

    session = Session(args.base_url)
    session.sign_in(args.email, args.password)
    scene_id = args.scene or session.create_scene()
    parts = urllib.parse.urlsplit(session.base_url)
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    uri = f"{ws_scheme}://{parts.netloc}/ws/audio/{scene_id}"
    origin = f"{parts.scheme}://{parts.netloc}"
    cookie = f"sessionid={session.cookie('sessionid')}"

    asyncio.run(test_audio_websocket(uri, origin, cookie, args.ping_wait))
    print("OK: audio accepted, ping answered")


if __name__ == "__main__":
    main()
