"""The deployment guide's load test (Phase 4.3): signed-in users in real-time voice scenes.

    make loadtest HOST=https://staging.example.com          # 100 users, 10 new a second
    locust -f infra/loadtest/locustfile.py --host=http://127.0.0.1:8000 --users 3 --spawn-rate 3

Each simulated user is a person in a voice scene, the way the browser does it:
1. signs in with e-mail and password through /accounts/login/ (the form's CSRF token), or
   signs up at /accounts/signup/ when that account does not exist yet;
2. starts a scene through the REST API (POST /api/v1/scenes, CSRF header);
3. opens /ws/audio/<scene_id>?ptt=1 with the session cookie and an Origin header, waits for
   `ready`, and then streams 40 ms binary frames of 16 kHz PCM16 in real time (a quiet tone
   while "speaking", silence otherwise), marking each turn with activity_start/activity_end;
4. answers every `ping` with `pong` (the server closes sockets that stop answering);
5. after LOADTEST_SCENE_SECONDS ends the scene and starts another.

Reported to locust (and so to its statistics and failure count):
- "POST /accounts/login/", "POST /api/v1/scenes": the HTTP steps;
- "ws: connect until ready": handshake to `ready` (the Gemini Live upstream is connected);
- "voice: end of turn to partner audio": activity_end to the partner's first audio frame;
- "voice: scene": one whole scene; a failure names the close code or `error` message.

The server allows one voice socket per user, so every simulated user has its own account:
LOADTEST_EMAIL_PATTERN (default loadtest-{n}@example.com, n = 0, 1, ...) with
LOADTEST_PASSWORD. Sign-up is rate limited per IP (20 a minute); for 100 users create the
accounts beforehand (infra/README.md shows how). Voice must be on for them: the audio_v2
rollout at 100% (python manage.py rollout set 100). Production runs with e-mail sign-in off
(ACCOUNT_EMAIL_LOGIN=false), so load-test staging with it on for the test's accounts.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import ssl
import struct
import time
import urllib.parse
from typing import Any

import gevent
import websocket
from locust import HttpUser, between, events, task
from locust.exception import StopUser

IN_RATE = 16_000
FRAME_MS = 40
FRAME_SAMPLES = IN_RATE * FRAME_MS // 1000
SILENCE = b"\x00\x00" * FRAME_SAMPLES
# A quiet 220 Hz tone stands in for speech (the server only relays audio; it never looks).
TONE = struct.pack(
    f"<{FRAME_SAMPLES}h",
    *(int(3000 * math.sin(2 * math.pi * 220 * i / IN_RATE)) for i in range(FRAME_SAMPLES)),
)
EMAIL_PATTERN = os.environ.get("LOADTEST_EMAIL_PATTERN", "loadtest-{n}@example.com")
PASSWORD = os.environ.get("LOADTEST_PASSWORD", "yes-and-load-test-2026")
SCENE_SECONDS = float(os.environ.get("LOADTEST_SCENE_SECONDS", "120"))
SPEAK_SECONDS = float(os.environ.get("LOADTEST_SPEAK_SECONDS", "1.5"))
READY_TIMEOUT = float(os.environ.get("LOADTEST_READY_TIMEOUT", "20"))
_numbers = itertools.count()


def _report(name: str, started: float, exc: BaseException | None = None, length: int = 0) -> None:
    events.request.fire(request_type="WS", name=name, response_time=(time.monotonic() - started) * 1000,
                        response_length=length, exception=exc, context={})


class VoiceSceneError(Exception):
    pass


class VoiceSceneUser(HttpUser):
    wait_time = between(1, 2)

    def on_start(self) -> None:
        if not self.host:
            raise StopUser()  # locust itself refuses to start without --host
        base = self.host.rstrip("/")
        # The guide writes --host=wss://...; the HTTP steps need http(s).
        base = base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
        self.client.base_url = base
        parts = urllib.parse.urlsplit(base)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.ws_base = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        self.email = EMAIL_PATTERN.format(n=next(_numbers))
        if not self._sign_in() and not self._sign_up():
            raise StopUser()

    # --- HTTP --------------------------------------------------------------------------------
    def _post_form(self, path: str, form: dict[str, str], name: str) -> Any:
        self.client.get(path, name=f"GET {path}")  # sets the csrftoken cookie
        form = {**form, "csrfmiddlewaretoken": self.client.cookies.get("csrftoken") or ""}
        return self.client.post(path, data=form, headers={"Referer": self.client.base_url + path}, name=name)

    def _sign_in(self) -> bool:
        form = {"login": self.email, "password": PASSWORD}
        self._post_form("/accounts/login/", form, "POST /accounts/login/")
        return bool(self.client.cookies.get("sessionid"))

    def _sign_up(self) -> bool:
        response = self._post_form(
            "/accounts/signup/", {"email": self.email, "password1": PASSWORD, "password2": PASSWORD},
            "POST /accounts/signup/",
        )
        if not self.client.cookies.get("sessionid"):
            exc = VoiceSceneError(f"{self.email}: no session (HTTP {response.status_code})")
            events.request.fire(request_type="HTTP", name="sign in or sign up", response_time=0,
                                response_length=0, context={}, exception=exc)
            return False
        return True

    def _create_scene(self) -> str | None:
        with self.client.post("/api/v1/scenes", json={}, name="POST /api/v1/scenes", catch_response=True,
                              headers={"X-CSRFToken": self.client.cookies.get("csrftoken", ""),
                                       "Referer": self.client.base_url + "/"}) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return None
            return response.json()["id"]

    # --- voice -------------------------------------------------------------------------------
    @task
    def voice_scene(self) -> None:
        scene_id = self._create_scene()
        if scene_id is None:
            return
        started = time.monotonic()
        try:
            turns = self._stream(scene_id)
        except VoiceSceneError as exc:
            _report("voice: scene", started, exc)
        else:
            _report("voice: scene", started, length=turns)

    def _stream(self, scene_id: str) -> int:
        sslopt = {"cert_reqs": ssl.CERT_REQUIRED} if self.ws_base.startswith("wss") else None
        connect_started = time.monotonic()
        try:
            ws = websocket.create_connection(
                f"{self.ws_base}/ws/audio/{scene_id}?ptt=1", origin=self.origin, timeout=READY_TIMEOUT,
                cookie=f"sessionid={self.client.cookies.get('sessionid', '')}", sslopt=sslopt,
                enable_multithread=True,  # the reader greenlet sends pongs while frames go out
            )
        except (OSError, websocket.WebSocketException) as exc:
            _report("ws: connect until ready", connect_started, exc)
            raise VoiceSceneError(f"connect: {exc}") from exc
        state = _SceneState()
        try:
            self._wait_ready(ws, connect_started)
            ws.settimeout(None)  # pings come every 30 s in production; the reader waits for them
            reader = gevent.spawn(_read, ws, state)
            try:
                return self._talk(ws, state)
            finally:
                reader.kill()
        finally:
            try:
                ws.close()
            except (OSError, websocket.WebSocketException):
                pass  # already closed by the server

    def _wait_ready(self, ws: websocket.WebSocket, started: float) -> None:
        deadline = started + READY_TIMEOUT
        while time.monotonic() < deadline:
            opcode, data = ws.recv_data(control_frame=False)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                message = json.loads(data)
                if message.get("type") == "ready":
                    _report("ws: connect until ready", started)
                    return
                if message.get("type") == "error":
                    code, text = message.get("code"), message.get("message")
                    exc = VoiceSceneError(f"error before ready: {code}: {text}")
                    _report("ws: connect until ready", started, exc)
                    raise exc
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                exc = VoiceSceneError(f"closed before ready: {_close_code(data)}")
                _report("ws: connect until ready", started, exc)
                raise exc
        exc = VoiceSceneError(f"no ready within {READY_TIMEOUT:.0f}s")
        _report("ws: connect until ready", started, exc)
        raise exc

    def _talk(self, ws: websocket.WebSocket, state: _SceneState) -> int:
        """Real-time frames for SCENE_SECONDS: speak for SPEAK_SECONDS, then listen until the
        partner has answered (or 10 s), and again. Returns the number of answered turns."""
        end_at = time.monotonic() + SCENE_SECONDS
        turns = 0
        next_frame = time.monotonic()
        while time.monotonic() < end_at:
            ws.send(json.dumps({"type": "activity_start"}))
            speak_until = time.monotonic() + SPEAK_SECONDS
            while time.monotonic() < speak_until:
                next_frame = self._frame(ws, state, TONE, next_frame)
            state.turn_ended_at = time.monotonic()
            state.answered.clear()
            ws.send(json.dumps({"type": "activity_end"}))
            listen_until = time.monotonic() + 10
            while not state.answered.is_set() and time.monotonic() < min(listen_until, end_at):
                next_frame = self._frame(ws, state, SILENCE, next_frame)
            if state.answered.is_set():
                turns += 1
            elif time.monotonic() < end_at:
                _report("voice: end of turn to partner audio", state.turn_ended_at,
                        VoiceSceneError("no partner audio within 10 s"))
        ws.send(json.dumps({"type": "end"}))
        return turns

    @staticmethod
    def _frame(ws: websocket.WebSocket, state: _SceneState, frame: bytes, due: float) -> float:
        if state.closed is not None:
            raise VoiceSceneError(f"server closed the socket mid-scene: {state.closed}")
        ws.send_binary(frame)
        state.frames_sent += 1
        due += FRAME_MS / 1000
        gevent.sleep(max(0.0, due - time.monotonic()))  # real time: one frame per 40 ms
        return due


class _SceneState:
    def __init__(self) -> None:
        from gevent.event import Event

        self.answered = Event()
        self.turn_ended_at = 0.0
        self.frames_sent = 0
        self.closed: str | None = None


def _read(ws: websocket.WebSocket, state: _SceneState) -> None:
    """Reader greenlet: answers pings, notes the partner's first audio after each turn."""
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=False)
            if opcode == websocket.ABNF.OPCODE_BINARY:
                if state.turn_ended_at and not state.answered.is_set():
                    _report("voice: end of turn to partner audio", state.turn_ended_at, length=len(data))
                    state.answered.set()
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                message = json.loads(data)
                if message.get("type") == "ping":
                    ws.send(json.dumps({"type": "pong", "t": message.get("t")}))
                elif message.get("type") == "error":
                    state.closed = f"error {message.get('code')}: {message.get('message')}"
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                state.closed = state.closed or f"close {_close_code(data)}"
                return
    except (OSError, websocket.WebSocketException) as exc:
        state.closed = state.closed or f"{type(exc).__name__}: {exc}"


def _close_code(data: bytes) -> str:
    if len(data) >= 2:
        return f"{struct.unpack('!H', data[:2])[0]} {data[2:].decode(errors='replace')}".strip()
    return "no close code"
