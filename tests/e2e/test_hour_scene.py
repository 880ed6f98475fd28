"""An hour-long voice scene, time-compressed, in real Chromium with the fake microphone.

One scale factor S (HOUR_SCENE_SCALE, default 36) divides the hour's clocks: the emulator's Live
connections get their goAway after 600 s / S ("10 minutes"), the relay pings every 30 s / S
(WEBSOCKET_PING_INTERVAL) and caps the voice socket at 3600 s / S (WEBSOCKET_TIMEOUT). Speech is
not compressed: the microphone plays espeak-ng lines in real time and the partner's replies are
real-time audio, so the goAway's timeLeft (Gemini's ~60 s) scales only down to one whole turn,
14 s, and the cap warning keeps the relay's own rule, min(60 s, cap/2).

Two real `python -m ai4joy.serve` processes share one port (SO_REUSEPORT sockets handed over with
--fd, the way ai4joy/supervise.py runs them, but each its own instance, as two Cloud Run
instances behind one load balancer), one SQLite file and, when it answers, Redis. The scene:

- one 1011 from the emulator at the end of the scene's first user turn (before the reply): the
  relay asks again on a new connection, so the line is answered once;
- right after that reply, SIGTERM of the process holding the voice socket: `reconnect` + 4012,
  and the browser resumes on the other process;
- there, an upstream goAway every "10 minutes", each answered by the relay moving between turns
  (never mid-line) to a resumed connection;
- the duration cap: the `warning` shown as a notice, then 4010 and its guidance.

Checked: the browser's voice socket closes only at the drain and at the cap; the saved
transcript equals what the emulator heard and said (GET /emulator/conversations), turn for turn,
none lost or duplicated; within each partner reply no gap between audio chunks (timestamped in
the page as they arrive) reaches 500 ms; the two session records' counters add up.

`make soak` runs it at HOUR_SCENE_SCALE=6 (a 10-minute socket cap, a goAway every 100 s).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ai4joy.supervise import listening_socket
from ai4joy.tests.serving import free_port, log_events, run_django
from emulator.control import EmulatorControl
from tests.e2e.conftest import (
    REPO_ROOT,
    SCREENSHOTS,
    VOICE_USER,
    launch,
    open_page,
    stack_env,
    start_active_scene,
)

SCALE = float(os.environ.get("HOUR_SCENE_SCALE", "36"))
GO_AWAY_EVERY_S = 600 / SCALE  # a Live connection's "10 minutes", then goAway
# goAway's timeLeft, Gemini's ~60 s scaled, but never under 14 s: one whole turn (a line, the
# end-of-speech silence, a ~6 s reply), which the relay lets finish before it moves.
GO_AWAY_LEAD_S = min(60.0, max(14.0, 60 / SCALE))
LIFETIME_S = GO_AWAY_EVERY_S + GO_AWAY_LEAD_S  # the emulator closes 1011 then, if still open
PING_S = 30 / SCALE
CAP_S = round(3600 / SCALE)
WARNING_LEAD_S = round(min(60.0, CAP_S / 2))  # audio/relay.py's rule

# The scene takes CAP_S and a little more whatever the load; setting up (servers, browser) is the rest.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300 + 3 * CAP_S)]
ARTIFACTS = REPO_ROOT / "test-artifacts"
HEARD_SLACK_S = 0.4  # a line heard whole: its length as the emulator's detector hears the WAV, +- this
GAP_LIMIT_MS = 500  # the bound on an audio gap inside one partner reply
CHUNK_BYTES = 24000 * 2 * 80 // 1000  # one 80 ms reply chunk, 24 kHz PCM16
# Three lines, each followed by time for the partner's whole reply, looped by Chromium.
LINES = (
    "Captain, the lighthouse keeper has lost the key to the lamp.",
    "Then we climb the stairs and light it with our lantern.",
    "Listen, the foghorn is playing a waltz for the ships.",
)
LEAD_IN_S, AFTER_LINE_S = 1.0, 11.0

# Test-only instrumentation, installed before the page's scripts: every voice-socket frame the
# page receives, timestamped as the page's code gets it (ping/pong only counted), and the bytes
# the page sends. Nothing of the app is replaced: the page's own WebSocket is this subclass.
RECORDER = """
(() => {
  const Native = window.WebSocket;
  const log = [];
  const sent = {};
  const pings = {};
  const KEEP = new Set(['ready', 'reconnect', 'warning', 'error', 'turn_complete']);
  let sockets = 0;
  class Recorded extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const s = sockets++;
      this.__s = s;
      sent[s] = 0;
      pings[s] = 0;
      log.push({ s, k: 'open', t: performance.now(), url: String(url) });
      this.addEventListener('message', (event) => {
        const t = performance.now();
        if (typeof event.data !== 'string') {
          log.push({ s, k: 'bin', t, n: event.data.byteLength });
          return;
        }
        let message = {};
        try { message = JSON.parse(event.data); } catch { /* recorded without a type */ }
        if (message.type === 'ping' || message.type === 'pong') { pings[s] += 1; return; }
        const entry = { s, k: 'json', t, type: message.type };
        if (KEEP.has(message.type)) entry.message = message;
        log.push(entry);
      });
      this.addEventListener('close', (event) => {
        log.push({ s, k: 'close', t: performance.now(), code: event.code, reason: event.reason });
      });
    }
    send(data) {
      if (typeof data !== 'string') sent[this.__s] += data.byteLength;
      return super.send(data);
    }
  }
  window.WebSocket = Recorded;
  window.__hour = { log, sent, pings };
})();
"""

RECORDS = """
import json
from dataclasses import asdict
from improv.store import get_store

store = get_store()
print(json.dumps({{
    "audio": [asdict(r) for r in store.audio_sessions_for_scene({scene_id!r})],
    "turns": [
        {{"speaker": t.speaker, "text": t.text, "mode": t.mode, "meta": t.meta}}
        for t in store.turns_list({scene_id!r})
    ],
}}, default=str))
"""


# --- the microphone ---------------------------------------------------------------------------
def _sox(*args: str | Path) -> None:
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Microphone:
    wav: Path
    line_s: tuple[float, ...]  # each line's length as the emulator's voice detector hears it


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Microphone:
    from emulator.vad import Segmenter, SpeechEnded

    work = tmp_path_factory.mktemp("hour-wav")
    parts, line_s = [], []
    for name, seconds in (("lead", LEAD_IN_S), ("after", AFTER_LINE_S)):
        _sox("-n", "-r", "48000", "-c", "1", "-b", "16", work / f"{name}.wav", "trim", "0", str(seconds))
    parts.append(work / "lead.wav")
    for i, text in enumerate(LINES):
        raw = work / f"line{i}-raw.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(raw), text],
                       check=True, capture_output=True, timeout=60)
        _sox(raw, "-r", "48000", "-c", "1", "-b", "16", work / f"line{i}.wav")
        parts += [work / f"line{i}.wav", work / "after.wav"]
        raw16 = work / f"line{i}.raw"
        _sox(work / f"line{i}.wav", "-r", "16000", "-t", "raw", "-e", "signed", "-b", "16", raw16)
        pcm = raw16.read_bytes() + bytes(32000)  # and a second of silence to end it
        line_s += [e.seconds for e in Segmenter().feed(pcm, 16000) if isinstance(e, SpeechEnded)]
    out = work / "scene.wav"
    _sox(*parts, out)
    assert len(line_s) == len(LINES), line_s  # each line is one turn to the detector
    return Microphone(out, tuple(line_s))


# --- two server processes on one port ---------------------------------------------------------
@dataclass
class Served:
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str) -> list[dict]:
        return log_events(self.log(), name)

    def wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.events("server_listening"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def spawn(env: dict[str, str], port: int, log_path: Path, *, wait: bool = True) -> Served:
    """`python -m ai4joy.serve --fd N` on its own SO_REUSEPORT socket of `port`."""
    sock = listening_socket("127.0.0.1", port)
    try:
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "ai4joy.serve", "--fd", str(sock.fileno())],
                cwd=REPO_ROOT, env=env, pass_fds=(sock.fileno(),), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
    finally:
        sock.close()  # the child has its copy; ours would take a share of the connections and never answer
    served = Served(process, log_path)
    if wait:
        served.wait_listening()
    return served


def redis_env() -> dict[str, str]:
    """Redis as the channel layer and cache when it answers (as in production); else in-memory."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return {}
    tag = uuid.uuid4().hex[:10]
    return {"REDIS_URL": "redis://127.0.0.1:6379/0", "CHANNEL_PREFIX": f"h{tag}", "CACHE_PREFIX": f"h{tag}"}


@dataclass
class HourStack:
    emulator: Any
    env: dict[str, str]
    port: int
    servers: list[Served] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.emulator.url, self.emulator.ca_file)


@pytest.fixture
def hour_stack(tmp_path: Path, migrated_db: Path) -> Iterator[HourStack]:
    from emulator.process import start_emulator

    emulator = start_emulator(tmp_path / "emulator", seed=23, live_lifetime=LIFETIME_S,
                              go_away_lead=GO_AWAY_LEAD_S)
    env = stack_env(
        tmp_path,
        migrated_db,
        emulator,
        rollout_percent=100,
        extra_env={
            "IMPROV_SCENE_TURNS": "1000",  # an hour of voice is many more turns than a scene's default 15
            "WEBSOCKET_PING_INTERVAL": f"{PING_S:.3f}",
            "WEBSOCKET_TIMEOUT": str(CAP_S),
            **redis_env(),
        },
    )
    stack = HourStack(emulator=emulator, env=env, port=free_port())
    try:
        stack.servers += [spawn(env, stack.port, tmp_path / f"server{i}.log", wait=False) for i in range(2)]
        for server in stack.servers:
            server.wait_listening()
        yield stack
    finally:
        for server in stack.servers:
            server.stop()
        emulator.stop()


# --- helpers ------------------------------------------------------------------------------------
def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def page_wait(page, expression: str, timeout_s: float) -> None:
    page.wait_for_function(expression, timeout=timeout_s * 1000, polling=200)


def the_conversation(control: EmulatorControl) -> dict:
    [conv] = control.conversations()  # one scene, one Live conversation, however many connections
    return conv


@dataclass
class Exchange:
    """One turn as the emulator lived it: the user's line it heard, the reply it said."""

    user: str | None = None
    heard_on: int | None = None
    said: dict | None = None
    lost_with_connection: bool = False  # its connection closed before a reply began
    asked_again: bool = False  # the relay sent the unanswered line again on the next connection

    @property
    def connection(self) -> int:
        return self.said["connection"] if self.said else self.heard_on or 0


def exchanges(record: list[dict]) -> list[Exchange]:
    out: list[Exchange] = []
    for entry in record:
        last = out[-1] if out else None
        if entry["event"] == "heard":
            if (entry["source"] == "text" and last is not None and last.said is None
                    and last.lost_with_connection and last.user == entry["text"]):
                last.asked_again, last.lost_with_connection = True, False
                last.heard_on = entry["connection"]
                continue
            out.append(Exchange(user=entry["text"], heard_on=entry["connection"]))
        elif entry["event"] == "said":
            if last is not None and last.user is not None and last.said is None:
                last.said = entry
            else:
                out.append(Exchange(said=entry))
        elif entry["event"] == "closed" and last is not None and last.said is None:
            if last.heard_on == entry["connection"]:
                last.lost_with_connection = True
    return out


def saved_exchanges(lines: list[dict]) -> list[tuple[str | None, str | None]]:
    """The saved voice lines, paired the way the relay saves them: (user line, partner line)."""
    out: list[tuple[str | None, str | None]] = []
    for line in lines:
        if line["speaker"] == "user":
            out.append((line["text"], None))
        elif out and out[-1][0] is not None and out[-1][1] is None:
            out[-1] = (out[-1][0], line["text"])
        else:
            out.append((None, line["text"]))
    return out


def reply_gaps(log: list[dict]) -> tuple[float, int, int]:
    """(max gap in ms, replies, chunks): gaps between audio chunks of one partner reply, on one socket."""
    worst, replies, chunks = 0.0, 0, 0
    last: dict[int, float | None] = {}
    for entry in log:
        s = entry["s"]
        if entry["k"] == "bin":
            chunks += 1
            if last.get(s) is None:
                replies += 1
            else:
                worst = max(worst, entry["t"] - last[s])
            last[s] = entry["t"]
        elif entry["k"] == "close" or entry.get("type") in ("turn_complete", "interrupted"):
            last[s] = None
    return worst, replies, chunks


def start_voice(page) -> None:
    try:
        page.get_by_role("button", name=re.compile("Start voice|Switch to voice")).click()
        page.wait_for_selector("[data-voice-panel][data-state='live']", timeout=30_000)
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "failure-hour-start-voice.png"), full_page=True)
        raise


# --- the scene -----------------------------------------------------------------------------------
def test_an_hour_long_voice_scene_survives_go_aways_a_1011_a_drain_and_ends_at_the_cap(
    hour_stack: HourStack, playwright_driver, microphone: Microphone, shot
) -> None:
    stack, control = hour_stack, hour_stack.control
    browser = launch(playwright_driver, "--use-fake-ui-for-media-stream",
                     f"--use-file-for-fake-audio-capture={microphone.wav}")
    console: list[str] = []
    context, page = open_page(browser, stack.url, VOICE_USER, console)
    try:
        page.add_init_script(RECORDER)
        start_active_scene(page, stack.url)
        scene_id = page.locator("#stage").get_attribute("data-scene-id")
        # One 1011 from upstream, on the scene's first connection, at the end of the first user turn
        # (before the reply): the relay must ask again on a new connection, so the turn is not lost.
        control.arm({"type": "live_close", "code": 1011, "when": "turn", "count": 1})
        start_voice(page)

        # The voice socket landed on one of the two processes: that one gets the SIGTERM.
        def holder() -> Served | None:
            for server in stack.servers:
                if any(e.get("scene_id") == scene_id for e in server.events("audio_session_started")):
                    return server
            return None

        first = wait_until(holder, 20, "the audio session's start in a server log")
        second = next(s for s in stack.servers if s is not first)
        [started] = [e for e in first.events("audio_session_started") if e.get("scene_id") == scene_id]

        # The 1011's line answered on the next connection: SIGTERM the process right after that
        # reply (between turns).
        wait_until(lambda: any(e.get("session_id") == started["session_id"] and e.get("why") == "closed_1011"
                               for e in first.events("gemini_live_reconnect")), 60, "the 1011's reconnect")
        page_wait(page, "window.__hour.log.some((e) => e.type === 'turn_complete')", 60)
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(20) == 0

        page_wait(page, "window.__hour.log.some((e) => e.s === 1 && e.type === 'ready')", 40)
        page.wait_for_selector("[data-voice-panel][data-state='live']", timeout=20_000)
        assert "Reconnected — the scene carries on." in page.locator("[data-transcript]").inner_text()

        # The cap: the warning first, as a notice a person reads, then the close.
        notice = page.locator("[data-voice-panel] [data-notice]")
        page_wait(page, "document.querySelector('[data-notice-title]').textContent === "
                        "'Voice session ending soon' && !document.querySelector('[data-notice]').hidden",
                  CAP_S + 60)
        assert notice.is_visible()
        assert notice.inner_text().split("\n", 1)[1].strip() == (
            f"This voice session reaches its time limit in about {WARNING_LEAD_S} s. "
            "Your scene is saved: start voice again to continue."
        )
        assert page.locator("[data-conn-label]").inner_text() == "Live"
        shot(page, "stage-voice-hour-warning")
        page.wait_for_selector("[data-voice-panel][data-state='ended']", timeout=(WARNING_LEAD_S + 60) * 1000)
        assert notice.is_visible()
        assert page.locator("[data-notice-title]").inner_text() == "Voice session time is up"
        assert page.get_by_role("button", name="Try voice again").is_visible()
        shot(page, "stage-voice-hour-cap")
        recorded = page.evaluate("window.__hour")
    finally:
        context.close()
        browser.close()

    conv = the_conversation(control)
    stored = run_django(RECORDS.format(scene_id=scene_id), stack.env)
    # Everything measured, kept for reading after a failure (git-ignored).
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "hour-scene.json").write_text(json.dumps(
        {"browser": recorded, "emulator": conv, "stored": stored, "pids": [first.pid, second.pid],
         "logs": {str(s.pid): s.log().splitlines()[-400:] for s in stack.servers}}, indent=1, default=str))
    report: dict[str, Any] = {"scale": SCALE, "cap_s": CAP_S, "go_away_every_s": round(GO_AWAY_EVERY_S, 2),
                              "go_away_lead_s": GO_AWAY_LEAD_S}

    # --- the browser's socket: closed only by the drain, then by the cap ---------------------------
    log = recorded["log"]
    sockets = [e for e in log if e["k"] == "open"]
    closes = [e for e in log if e["k"] == "close"]
    assert len(sockets) == 2, f"the voice socket dropped more than at the drain: {sockets} {closes}"
    assert [(c["s"], c["code"], c["reason"]) for c in closes] == [
        (0, 4012, "server_restart"), (1, 4010, "duration_cap")
    ]
    kinds = {s: [e.get("type") for e in log if e["s"] == s and e["k"] == "json"] for s in (0, 1)}
    # The one `error` is the cap's own notice, the last message before its close.
    errors = [(e["s"], e["message"]) for e in log if e.get("type") == "error"]
    assert errors == [(1, {"type": "error", "code": "duration_cap",
                           "message": "This voice session reached its time limit."})], errors
    reconnect = next(e["message"] for e in log if e.get("type") == "reconnect")
    assert reconnect["reason"] == "server_restart" and reconnect["resume_token"] == started["session_id"]
    assert f"resume={started['session_id']}" in sockets[1]["url"]
    ready = [e["message"] for e in log if e.get("type") == "ready"]
    assert [r["resumed"] for r in ready] == [False, True]
    warning = [e["message"] for e in log if e.get("type") == "warning"]
    assert warning == [{"type": "warning", "reason": "duration_cap", "seconds_left": WARNING_LEAD_S}]
    # ready, ..., the warning, ..., the cap's error; after it only what saving the cut-short turn
    # sends (its room and coach note), then the close.
    assert kinds[1][0] == "ready" and kinds[1].index("warning") < kinds[1].index("error")
    assert set(kinds[1][kinds[1].index("error") + 1:]) <= {"room", "coach"}, kinds[1]
    assert "reconnect" in kinds[0]
    assert not [line for line in console if line.startswith(("pageerror", "error"))], console
    scene_s = (closes[1]["t"] - sockets[0]["t"]) / 1000
    report.update(wall_s=round(scene_s, 1), simulated_min=round(scene_s * SCALE / 60, 1))

    # --- a second process took the scene over ---------------------------------------------------------
    [resumed] = [e for e in second.events("audio_session_started") if e.get("scene_id") == scene_id]
    assert resumed["resumed_from"] == started["session_id"]
    assert not [e for e in first.events("audio_session_started") if e.get("scene_id") == scene_id][1:]
    records = stored["audio"]
    assert [(r["id"], r["status"], r["close_reason"], r["resumable"]) for r in records] == [
        (started["session_id"], "ended", "server_restart", True),
        (resumed["session_id"], "ended", "duration_cap", False),
    ]
    assert [r["instance"].rsplit(":", 1)[1] for r in records] == [str(first.pid), str(second.pid)]
    assert first.pid != second.pid

    # --- upstream: goAways every lifetime, one 1011, every move made before the deadline ---------------
    record = conv["record"]
    assert conv["record_dropped"] == 0
    moves = {s: [e["why"] for e in srv.events("gemini_live_reconnect") if e.get("session_id") == r["id"]]
             for s, srv, r in ((0, first, records[0]), (1, second, records[1]))}
    go_aways = [e for e in record if e["event"] == "go_away"]
    faults = [e for e in record if e["event"] == "fault"]
    closed = [e for e in record if e["event"] == "closed"]
    assert [(f["kind"], f["code"], f["when"]) for f in faults] == [("live_close", 1011, "turn")]
    assert moves[0][0] == "closed_1011" and set(moves[0][1:] + moves[1]) == {"go_away"}, moves
    # The relay left every connection itself (a goAway move, the drain, the cap), except the fault's:
    assert [c["by"] for c in closed if c["by"] != "client"] == ["fault"], closed
    assert conv["connections"] == 2 + len(moves[0]) + len(moves[1])
    assert len(go_aways) >= moves[0].count("go_away") + moves[1].count("go_away")
    # No connection outlived its lifetime (no deadline closes, above): in CAP_S the second socket had
    # at least CAP_S / LIFETIME_S connections, so one goAway fewer.
    assert moves[1].count("go_away") >= math.ceil(CAP_S / LIFETIME_S) - 1, moves
    last_on_first = 1 + len(moves[0])
    connected = {e["connection"]: e["resumed"] for e in record if e["event"] == "connected"}
    assert connected == {n: n > 1 for n in range(1, conv["connections"] + 1)}
    report.update(go_aways=moves[0].count("go_away") + moves[1].count("go_away"), upstream_1011=1, drains=1,
                  connections=conv["connections"])

    # --- turns: the saved transcript is what the emulator heard and said ------------------------------
    lines = [t for t in stored["turns"] if t["mode"] == "voice" and t["speaker"] in ("user", "partner")]
    saved = saved_exchanges(lines)
    expected = exchanges(record)
    assert not [x for x in expected if x.lost_with_connection], "a heard line never answered nor asked again"
    assert sum(x.asked_again for x in expected) == 1  # the 1011's line, asked again on the next connection
    final = conv["connections"]
    # The cap may land between the emulator sending a line and the relay reading it: the scene's last
    # exchange, on the last connection, may then be missing or cut short.
    if expected and expected[-1].connection == final and len(saved) == len(expected) - 1:
        expected = expected[:-1]
    assert len(saved) == len(expected), _diff(saved, expected)
    for n, ((user, partner), want) in enumerate(zip(saved, expected, strict=True)):
        assert user == want.user, _diff(saved, expected, n)
        said = want.said
        if said is None or not said["text"]:
            assert partner == ("…" if want.user else None), _diff(saved, expected, n)
        elif said["ended"] == "cut":  # the drain or the cap closed the connection mid-reply
            assert said["connection"] in (last_on_first, final), _diff(saved, expected, n)
            assert partner == "…" or f"{said['text']} ".startswith(f"{partner} "), _diff(saved, expected, n)
        else:
            assert partner == said["text"], _diff(saved, expected, n)
    user_lines = [u for u, _ in saved if u]
    assert len(user_lines) >= 6, saved
    # No line lost in part either: each was heard whole (a move mid-line keeps only its tail),
    # but for the one spoken across the drain (the browser sends nothing while it reconnects).
    heard = [(e["connection"], e["heard_s"]) for e in record
             if e["event"] == "heard" and e["source"] == "audio"]
    cut_lines = [(c, s) for c, s in heard if c != last_on_first + 1
                 and min(abs(s - want) for want in microphone.line_s) > HEARD_SLACK_S]
    assert not cut_lines, (cut_lines, microphone.line_s)
    report.update(turns_saved=len(saved), user_lines=len(user_lines), turns_lost=0, duplicated=0,
                  interrupted=sum(1 for x in expected if x.said and x.said["ended"] == "interrupted"))

    # --- audio: no gap of 500 ms inside one partner reply ---------------------------------------------
    worst_ms, replies, chunks = reply_gaps(log)
    assert replies >= len(user_lines) - 1 and chunks > 0
    assert worst_ms < GAP_LIMIT_MS, f"a {worst_ms:.0f} ms gap inside a partner reply"
    # Not bounded by the issue, reported: the wait from the end of a line to the reply's first audio
    # (server-measured), the 1011's line (asked again on a new connection) first.
    latencies = [e["message"].get("latency_ms") for e in log if e.get("type") == "turn_complete"]
    report.update(max_gap_ms=round(worst_ms), replies_heard=replies, chunks=chunks, latency_ms=latencies)

    # --- the records' counters add up -----------------------------------------------------------------
    per_socket_bytes = {s: sum(e["n"] for e in log if e["k"] == "bin" and e["s"] == s) for s in (0, 1)}
    for s, r in enumerate(records):
        assert r["reconnects"] == len(moves[s])
        # Counted when forwarded: at the close at most the chunk in flight was not delivered.
        assert 0 <= r["bytes_out"] - per_socket_bytes[s] <= CHUNK_BYTES, (r["bytes_out"], per_socket_bytes[s])
        assert 0 < r["bytes_in"] <= recorded["sent"][str(s)]
    first_turns = sum(1 for x in expected if x.connection <= last_on_first)
    assert records[0]["turns"] == first_turns
    assert records[0]["turns"] + records[1]["turns"] == len(saved)
    said_tokens = [x.said["total_tokens"] or 0 for x in expected if x.said]
    app_tokens = records[0]["tokens_total"] + records[1]["tokens_total"]
    # The usage of the reply the cap cut (if its turnComplete was in flight) is the one it may lack.
    assert app_tokens in (sum(said_tokens), sum(said_tokens[:-1])), (app_tokens, said_tokens)
    report.update(reconnects=[r["reconnects"] for r in records], record_turns=[r["turns"] for r in records],
                  dropped_bytes=[r["dropped_bytes"] for r in records], pings=recorded["pings"])
    print("HOUR SCENE", json.dumps(report))
    (ARTIFACTS / "hour-scene-report.json").write_text(json.dumps(report, indent=1))


def _diff(saved: list, expected: list[Exchange], at: int | None = None) -> str:
    rows = [f"saved:    {s}" for s in saved] + [
        f"expected: ({x.user!r}, {x.said['text'] if x.said else None!r}, "
        f"{x.said['ended'] if x.said else ''}, conn {x.connection})" for x in expected
    ]
    return (f"at exchange {at}\n" if at is not None else "") + "\n".join(rows)
