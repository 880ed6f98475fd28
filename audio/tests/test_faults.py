"""Faults in the middle of live voice sessions, on a real server process (`python -m ai4joy.serve`).

Each test says what the player sees and what is kept:
- Redis (channel layer and cache) restarted: a private redis-server on a free loopback port,
  killed and started again mid-scene. Live sockets carry on; supersede and rollback work again
  once it is back.
- The Gemini emulator killed mid-scene: `error` upstream_unavailable, close 4011, the scene stays
  open for text mode, the record says `upstream_error` (failed), the turns so far are kept.
- A slow upstream (2 s before every reply): the latency readout shows it, nothing closes early.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ai4joy.tests.serving import (
    ServerProcess,
    base_env,
    free_port,
    migrate_database,
    next_of_type,
    run_django,
    until_closed,
)
from audio.protocol import CloseCode
from audio.tests.test_drain import make_players, stored
from emulator.process import start_emulator

REDIS = shutil.which("redis-server")


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port: only it is killed and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS
        self.process = subprocess.Popen(
            [
                REDIS,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def private_redis(tmp_path):
    if not REDIS or not shutil.which("redis-cli"):
        pytest.skip("needs redis-server and redis-cli (apt-get install redis-server)")
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture(scope="module")
def db_env(tmp_path_factory) -> dict[str, str]:
    db = tmp_path_factory.mktemp("faults-db") / "db.sqlite3"
    env = base_env(
        DATABASE_URL=f"sqlite:///{db}",
        SERVICE_ROLE="all",
        DRAIN_TIMEOUT="4",
        WEBSOCKET_PING_INTERVAL="30",
        WEBSOCKET_TIMEOUT="3600",
        GEMINI_LIVE_MODEL="",
    )
    migrate_database(env)
    return env


async def open_voice(server: ServerProcess, player: dict) -> tuple[ClientConnection, dict]:
    # Generous timeouts: on a loaded 2-core machine a fresh server process takes a while.
    ws = await connect(
        f"{server.ws_base}/ws/audio/{player['scene_id']}",
        origin=server.origin,
        open_timeout=30,
        additional_headers={"Cookie": f"sessionid={player['cookie']}"},
    )
    return ws, await next_of_type(ws, "ready", timeout=30)


def emulator_env(emulator) -> dict[str, str]:
    return {
        "GEMINI_BACKEND": "emulator",
        "GEMINI_EMULATOR_URL": emulator.url,
        "GEMINI_EMULATOR_CA_FILE": emulator.ca_file,
    }


async def typed_turn(ws, text: str, *, timeout: float = 30) -> dict:  # noqa: ASYNC109
    await ws.send(json.dumps({"type": "text", "text": text}))
    return await next_of_type(ws, "turn_complete", timeout=timeout)


class Inbox:
    """What the browser received (JSON messages), read by a task that answers pings as the page does."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):  # the close code is on self.ws
            async for raw in self.ws:
                if isinstance(raw, str):
                    message = json.loads(raw)
                    if message["type"] == "ping":
                        await self.ws.send(json.dumps({"type": "pong", "t": message.get("t")}))
                    async with self._changed:
                        self.messages.append(message)
                        self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def of(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    async def until(self, predicate, timeout: float = 30) -> None:  # noqa: ASYNC109
        def met() -> bool:
            assert not self.task.done() or any(map(predicate, self.messages)), self.messages[-5:]
            return any(map(predicate, self.messages))

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(met)

    async def turn(self, text: str, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Type a line and wait for its turn_complete."""
        done = len(self.of("turn_complete"))
        await self.ws.send(json.dumps({"type": "text", "text": text}))
        await self.until(lambda m: len(self.of("turn_complete")) > done, timeout)


# --- Redis restarted mid-scene ---------------------------------------------------------------
ROLLBACK_CODE = """
import json
from flags.services import rollout_rollback, rollout_set
rollout_rollback(reason="fault test")
print(json.dumps("ok"))
"""


async def test_redis_restart_mid_scene_sockets_carry_on_and_supersede_rollback_work_after(
    db_env, app_servers, private_redis, gemini_emulator
):
    env = {
        **db_env,
        **emulator_env(gemini_emulator),
        "REDIS_URL": private_redis.url,
        "CHANNEL_PREFIX": f"f{uuid.uuid4().hex[:8]}",
        "CACHE_PREFIX": f"f{uuid.uuid4().hex[:8]}",
    }
    alice, bob = make_players(env, 2)
    server = app_servers(env)
    alice_ws, _ = await open_voice(server, alice)
    bob_ws, _ = await open_voice(server, bob)
    await typed_turn(alice_ws, "The lighthouse keeper lost the key")

    private_redis.kill()  # Memorystore failing over: the channel layer and the cache are gone
    await asyncio.sleep(1.0)
    during = await typed_turn(alice_ws, "So we climb in through the window", timeout=40)
    assert during["type"] == "turn_complete"  # the live socket carried on, the turn was answered
    private_redis.start()  # back, empty: a restarted Redis has lost every group membership
    await asyncio.sleep(1.0)
    await typed_turn(alice_ws, "And the lamp turns on by itself")

    # Supersede works again: Alice opens a second tab; the first one is told and closed.
    alice_new, _ = await open_voice(server, alice)
    seen = await until_closed(alice_ws, time.monotonic(), timeout=15)
    assert seen["code"] == CloseCode.SUPERSEDED, seen
    # Rollback works again: voice turned off for everyone; both live sockets close with 4014.
    await asyncio.to_thread(run_django, ROLLBACK_CODE, env)
    for ws in (alice_new, bob_ws):
        closed = await until_closed(ws, time.monotonic(), timeout=20)
        assert closed["code"] == CloseCode.ROLLED_BACK, closed

    records = stored(env, [alice["scene_id"], bob["scene_id"]])
    reasons = sorted(r["close_reason"] for r in records[alice["scene_id"]]["audio"])
    assert reasons == ["rollback", "superseded"]
    assert [r["close_reason"] for r in records[bob["scene_id"]]["audio"]] == ["rollback"]
    said = [t["text"] for t in records[alice["scene_id"]]["turns"] if t["speaker"] == "user"]
    assert said == [
        "The lighthouse keeper lost the key",
        "So we climb in through the window",
        "And the lamp turns on by itself",
    ]
    assert not server.events("audio_relay_error")


# --- the Gemini emulator killed mid-scene ------------------------------------------------------
SCENE_CODE = """
import json
from improv.store import get_store
print(json.dumps(get_store().scene_get({scene_id!r}).status))
"""


async def test_upstream_killed_mid_scene_says_so_closes_4011_and_keeps_the_scene(
    db_env, app_servers, tmp_path
):
    emulator = start_emulator(tmp_path / "emulator", seed=7, realtime_factor=4.0)
    try:
        env = {**db_env, **emulator_env(emulator), "SERVE_PROCESSES": "1"}
        [player] = make_players(env, 1)
        server = app_servers(env)
        ws, _ = await open_voice(server, player)
        await typed_turn(ws, "The dragon wants a haircut")
        emulator.process.kill()  # Gemini Live gone: the socket drops, new connections are refused
        emulator.process.wait(5)
        inbox = Inbox(ws)
        await asyncio.wait_for(inbox.task, 20)  # until the server closes the socket
    finally:
        emulator.stop()

    seen = inbox.messages
    errors = inbox.of("error")
    assert [e["code"] for e in errors] == ["upstream_unavailable"], seen
    assert "text mode" in errors[0]["message"]  # what the player reads
    assert ws.close_code == CloseCode.UPSTREAM_FAILURE and ws.close_reason == "upstream_error"
    records = stored(env, [player["scene_id"]])[player["scene_id"]]
    [audio] = records["audio"]
    assert (audio["status"], audio["close_reason"]) == ("failed", "upstream_error")
    assert audio["turns"] == 1
    assert [t["text"] for t in records["turns"] if t["speaker"] == "user"] == ["The dragon wants a haircut"]
    # The scene itself stays open: the page carries on in text mode.
    assert run_django(SCENE_CODE.format(scene_id=player["scene_id"]), env) == "active"
    assert server.events("gemini_error") and not server.events("audio_relay_error")


# --- a slow upstream: 2 s before every reply ------------------------------------------------------
async def test_slow_upstream_shows_in_the_latency_readout_and_nothing_times_out(
    db_env, app_servers, gemini_emulator, gemini
):
    # Pings every 1 s: a reply that takes 2 s spans two of them, and the answered pings
    # must keep the socket open throughout.
    env = {
        **db_env,
        **emulator_env(gemini_emulator),
        "SERVE_PROCESSES": "1",
        "WEBSOCKET_PING_INTERVAL": "1",
    }
    [player] = make_players(env, 1)
    server = app_servers(env)
    gemini.arm({"type": "latency", "scope": "live", "ms": 2000})
    ws, _ = await open_voice(server, player)
    inbox = Inbox(ws)
    lines = ["The moon is made of bread", "Then we need a very big toaster", "Quick, before it goes stale"]
    for line in lines:
        await inbox.turn(line, timeout=40)
    await ws.send(json.dumps({"type": "end"}))
    await asyncio.wait_for(inbox.task, 10)
    seen = inbox.messages

    latencies = [m["latency_ms"] for m in seen if m["type"] == "turn_complete"]
    assert len(latencies) == 3 and all(ms >= 2000 for ms in latencies), latencies  # the readout shows it
    assert not [m for m in seen if m["type"] == "error"], seen
    assert len([m for m in seen if m["type"] == "ping"]) >= 4  # pings kept flowing during the waits
    assert ws.close_code == CloseCode.NORMAL
    records = stored(env, [player["scene_id"]])[player["scene_id"]]
    assert [(a["close_reason"], a["turns"]) for a in records["audio"]] == [("client_close", 3)]
    assert [t["text"] for t in records["turns"] if t["speaker"] == "user"] == lines


# --- the database unavailable mid-scene (time-compressed: "30 s" is ~5 s, the notice at 2 s) ------
class DatabaseOutage:
    """Another client holds the SQLite database's write lock: every write the server tries fails
    once it has waited out its busy timeout ("database is locked", an OperationalError like a
    database that is down), on the connection the voice path keeps open between calls as on a new
    one; reads still work (WAL). Released, everything writes again. (Moving the file away would
    cut off only new connections, and under WAL would part the file from its -wal.)"""

    def __init__(self, url: str) -> None:
        self.path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        self._holder: sqlite3.Connection | None = None

    def begin(self) -> None:
        self._holder = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        self._holder.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self._holder is not None:
            self._holder.execute("ROLLBACK")
            self._holder.close()
            self._holder = None


async def test_database_outage_mid_scene_queues_turns_and_writes_them_all_when_back(
    db_env, app_servers, gemini_emulator
):
    env = {**db_env, **emulator_env(gemini_emulator), "SERVE_PROCESSES": "1", "VOICE_SAVE_NOTICE_S": "2"}
    [player] = make_players(env, 1)
    # A 1 s busy timeout (SQLite's default is 5 s): a write fails 1 s into the outage.
    server = app_servers({**env, "DATABASE_URL": env["DATABASE_URL"] + "?timeout=1"})
    outage = DatabaseOutage(env["DATABASE_URL"])
    ws, _ = await open_voice(server, player)
    inbox = Inbox(ws)
    turn, until, seen = inbox.turn, inbox.until, inbox.messages
    lines = [
        "The pirate ship is out of jam",
        "We trade the parrot for a jar",
        "The parrot negotiates a better deal",
        "Now the parrot is captain",
    ]
    try:
        await turn(lines[0])
        outage.begin()  # a blip: shorter than the notice threshold
        await turn(lines[1])
        await asyncio.sleep(1.5)  # the turn's first write fails after 1 s
        outage.end()
        await asyncio.sleep(1.5)  # the retry writes it; no notice comes
        assert not [m for m in seen if m["type"] == "saving"], "a short outage must not worry the player"

        outage.begin()  # a long one: turns go on, saving waits
        await turn(lines[2])
        await turn(lines[3])
        await until(lambda m: m["type"] == "saving" and m["delayed"])
        await asyncio.sleep(3)
    finally:
        outage.end()
    await until(lambda m: m["type"] == "saving" and not m["delayed"])
    await ws.send(json.dumps({"type": "end"}))
    await asyncio.wait_for(inbox.task, 15)

    saving = [m for m in seen if m["type"] == "saving"]
    assert [m["delayed"] for m in saving] == [True, False]
    assert saving[0]["pending"] == 2  # the two turns said during the outage, kept in memory
    assert ws.close_code == CloseCode.NORMAL
    records = stored(env, [player["scene_id"]])[player["scene_id"]]
    user = [t["text"] for t in records["turns"] if t["speaker"] == "user"]
    assert user == lines  # every turn written once, in order
    partner = [t["text"] for t in records["turns"] if t["speaker"] == "partner"]
    finals = [m["text"] for m in seen if m["type"] == "transcript" and m["role"] == "partner" and m["final"]]
    assert partner == finals and len(partner) == 4
    [audio] = records["audio"]
    assert (audio["close_reason"], audio["turns"]) == ("client_close", 4)
    assert server.events("voice_turn_save_delayed") and server.events("voice_turn_save_recovered")
    assert not server.events("voice_turn_save_failed") and not server.events("voice_turns_lost")
