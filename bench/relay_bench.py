"""Voice relay benchmark: N concurrent voice sessions through a real Daphne process.

    python -m bench.relay_bench [--sessions 20] [--turns 2] [--timeout 120]   (or `make bench`)

Each session is a real WebSocket client (`websockets`) that streams 16 kHz PCM upstream in
40 ms frames, in real time, for the whole run (what a browser does), and asks for `--turns`
partner replies. Upstream is the Gemini emulator, run inside this process so that the time it
sends each 24 kHz audio chunk and the time the client receives that chunk through the relay
are read from one monotonic clock: their difference is the latency the relay adds
(emulator -> SDK -> relay -> Daphne -> client, all on loopback). Memory per session is the
Daphne process's RSS growth from one open session to N, divided by N - 1.

The emulator is a test double for Gemini (see emulator/); its replies are paced in real time.
The bench stamps its outgoing chunks by wrapping the emulator's send method: that touches only
the test double, never the app or the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FRAME = b"\x00\x00" * 640  # 40 ms of 16 kHz silence: the emulator's VAD hears no turn in it
_TAG = re.compile(r"benchtag(\d{4})")

SEED = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from flags.services import rollout_set
from improv.store import get_store
rollout_set(percent=100, actor_label="bench", reason="voice relay benchmark")
out = []
for i in range({n}):
    user = get_user_model().objects.create_user(username=f"bench{{i}}@example.com",
                                                email=f"bench{{i}}@example.com", password="x-bench-pass-1")
    client = Client()
    client.force_login(user)
    scene = get_store().scene_create(user_id=user.pk, status="active", game_slug="")
    get_store().scene_update(scene.id, suggestion=f"benchtag{{i:04d}}")
    out.append({{"cookie": client.cookies["sessionid"].value, "scene": scene.id}})
print("SEED" + json.dumps(out))
"""


def _prepare_database(env: dict[str, str], sessions: int) -> list[dict[str, str]]:
    """A fresh SQLite database with N signed-in users in the rollout, each with an open scene."""
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True, timeout=300)
    out = subprocess.run(
        [*manage, "shell", "-c", SEED.format(n=sessions)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return json.loads(out[out.index("SEED") + 4 :].strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class ChunkClock:
    """When the emulator sent audio chunk k of session i (wraps the test double's send)."""

    def __init__(self) -> None:
        self.sent: dict[tuple[int, int], float] = {}
        self._count: dict[int, int] = {}

    def install(self) -> None:
        from emulator import live

        original = live.LiveSession._send
        clock = self

        async def stamped(session: live.LiveSession, message: dict[str, Any]) -> None:
            await original(session, message)
            parts = message.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
            if parts and "inlineData" in parts[0] and session._setup is not None:
                match = _TAG.search(session._setup.system_text)
                if match:
                    i = int(match.group(1))
                    k = clock._count.get(i, 0)
                    clock._count[i] = k + 1
                    clock.sent[(i, k)] = time.monotonic()

        # mypy binds self twice when a method is patched on the class (def _send(self, self: ...)).
        live.LiveSession._send = stamped  # type: ignore[method-assign, assignment]


async def _session(
    i: int,
    url: str,
    port: int,
    seed: dict[str, str],
    turns: int,
    clock: ChunkClock,
    added_ms: list[float],
    ttfa_ms: list[float],
    finished: asyncio.Event,
    release: asyncio.Event,
    errors: list[str],
) -> None:
    from websockets.asyncio.client import connect

    headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={seed['cookie']}"}
    async with connect(f"{url}/ws/audio/{seed['scene']}/", additional_headers=headers, open_timeout=30) as ws:
        streaming = True

        async def mic() -> None:
            t0 = time.monotonic()
            n = 0
            while streaming:
                await ws.send(FRAME)
                n += 1
                await asyncio.sleep(max(0.0, t0 + n * 0.04 - time.monotonic()))

        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            errors.append(f"session {i}: {ready}")
            return
        mic_task = asyncio.create_task(mic())
        k = 0
        try:
            for turn in range(turns):
                asked = time.monotonic()
                await ws.send(
                    json.dumps({"type": "text", "text": f"Turn {turn}: the moon bakery needs help"})
                )
                first = True
                while True:
                    frame = await ws.recv()
                    now = time.monotonic()
                    if isinstance(frame, bytes):
                        if first:
                            ttfa_ms.append((now - asked) * 1000)
                            first = False
                        sent = clock.sent.get((i, k))
                        if sent is not None:
                            added_ms.append((now - sent) * 1000)
                        k += 1
                    elif json.loads(frame).get("type") == "turn_complete":
                        break
            finished.set()
            await release.wait()  # hold the socket open until memory is measured
        finally:
            streaming = False
            mic_task.cancel()
            await ws.send(json.dumps({"type": "end"}))


async def run(sessions: int, turns: int, budget_s: float) -> dict[str, Any]:
    from emulator.server import EmulatorServer
    from emulator.state import Options

    work = Path(tempfile.mkdtemp(prefix="ai4joy-bench-"))
    clock = ChunkClock()
    clock.install()
    emulator = EmulatorServer(state_dir=work / "emulator", options=Options(seed=1))
    await emulator.start()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "GEMINI_BACKEND": "emulator",
        "GEMINI_EMULATOR_URL": emulator.url,
        "GEMINI_EMULATOR_CA_FILE": str(emulator.ca_file),
        "DJANGO_SETTINGS_MODULE": "ai4joy.settings",
        "SERVICE_ROLE": "all",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "WEBSOCKET_PING_INTERVAL": "30",
        "PYTHONPATH": str(REPO),
    }
    seeds = await asyncio.to_thread(_prepare_database, env, sessions)
    port = _free_port()
    log = (work / "daphne.log").open("wb")
    server = subprocess.Popen(  # noqa: ASYNC220 (started once, before any session)
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ai4joy.asgi:application"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    added: list[float] = []
    ttfa: list[float] = []
    errors: list[str] = []
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        url = f"ws://127.0.0.1:{port}"
        release = asyncio.Event()
        events = [asyncio.Event() for _ in seeds]
        tasks = [
            asyncio.create_task(
                _session(0, url, port, seeds[0], turns, clock, [], [], events[0], release, errors)
            )
        ]
        # One session through all its turns first, so imports and caches are warm before measuring.
        await asyncio.wait_for(events[0].wait(), budget_s)
        rss_one = _rss_kib(server.pid)
        tasks += [
            asyncio.create_task(
                _session(i, url, port, seeds[i], turns, clock, added, ttfa, events[i], release, errors)
            )
            for i in range(1, len(seeds))
        ]
        started = time.monotonic()
        # Sessions hold their sockets open after their turns (until `release`): measure memory
        # once every turn is done, while all N are still connected.
        while (  # noqa: ASYNC110 (polls several conditions, once per 0.2 s)
            not all(e.is_set() for e in events)
            and time.monotonic() - started < budget_s
            and not any(t.done() for t in tasks)
        ):
            await asyncio.sleep(0.2)
        if not all(e.is_set() for e in events):
            errors.append(
                f"only {sum(e.is_set() for e in events)} of {len(events)} sessions finished in time"
            )
        rss_n = _rss_kib(server.pid)
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        errors += [repr(r) for r in results if isinstance(r, BaseException)]
    finally:
        server.terminate()
        server.wait(10)
        log.close()
        await emulator.stop()
    return {
        "sessions": sessions,
        "turns_per_session": turns,
        "audio_chunks": len(added),
        "added_latency_ms": {
            "p50": round(_pct(added, 0.5), 2),
            "p99": round(_pct(added, 0.99), 2),
            "max": round(max(added, default=float("nan")), 2),
        },
        "time_to_first_audio_ms": {"p50": round(_pct(ttfa, 0.5), 1), "p99": round(_pct(ttfa, 0.99), 1)},
        "memory_per_session_kib": round((rss_n - rss_one) / max(1, sessions - 1), 1),
        "server_rss_mib": round(rss_n / 1024, 1),
        "errors": errors[:5],
        "mean_added_ms": round(statistics.fmean(added), 2) if added else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=int(os.environ.get("BENCH_SESSIONS", 20)))
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for all turns to finish")
    args = parser.parse_args(argv)
    sessions = max(2, min(args.sessions, 500))
    report = asyncio.run(run(sessions, max(1, min(args.turns, 10)), args.timeout))
    print(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
