"""Test helpers: run `python -m ai4joy.serve` as a real process on a free loopback port.

A subprocess cannot see pytest-django's test database, so callers pass the DATABASE_URL of a
database they prepared themselves (see `migrate_database`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

REPO_ROOT = Path(__file__).resolve().parents[2]
# Variables of the test process that must not leak into a server started for a test.
_DROP = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CHANNEL_PREFIX", "PORT", "HOST"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith("PYTEST")}
    env.update(PYTHONPATH=str(REPO_ROOT), LOG_FORMAT="json", DJANGO_SETTINGS_MODULE="ai4joy.settings")
    env.update(overrides)
    return env


def migrate_database(env: dict[str, str], timeout: float = 180) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT,
                   env=env, check=True, timeout=timeout, capture_output=True)


def run_django(code: str, env: dict[str, str], timeout: float = 60) -> Any:
    """Run `code` in `manage.py shell` against the server's database; it prints one JSON line."""
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT, env=env,
                          timeout=timeout, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py shell failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def log_events(log: str, name: str) -> list[dict]:
    """The structured log events called `name` in a server's output (JSON lines among others)."""
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == name:
                found.append(record)
    return found


@dataclass
class ServerProcess:
    process: subprocess.Popen
    port: int
    log_path: Path
    env: dict[str, str] = field(repr=False)
    sigterm_at: float | None = None

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def origin(self) -> Origin:
        return Origin(f"http://127.0.0.1:{self.port}")

    def sigterm(self) -> None:
        if self.sigterm_at is None:
            self.sigterm_at = time.monotonic()
        self.process.send_signal(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, name: str) -> list[dict]:
        return log_events(self.log(), name)

    def wait_exit(self, within: float) -> int:
        """The exit code, if the process ends within `within` seconds of the first SIGTERM;
        raises subprocess.TimeoutExpired otherwise."""
        assert self.sigterm_at is not None, "send SIGTERM first"
        return self.process.wait(timeout=max(0.1, self.sigterm_at + within - time.monotonic()))

    def stop(self) -> None:
        # The whole process group: SIGKILL to the supervisor alone would leave its server
        # processes running as orphans (they were found piling up after test runs).
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # children of an exited supervisor


def start_server(env: dict[str, str], log_path: Path, *extra: str, timeout: float = 30) -> ServerProcess:
    """Start the entry point and return once it answers HTTP."""
    port = free_port()
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1"}
    with open(log_path, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "ai4joy.serve", *extra], cwd=REPO_ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # its own group, so stop() can end it all
    server = ServerProcess(process=process, port=port, log_path=log_path, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()[-3000:]}")
        if answers_http(port):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not listen within {timeout}s:\n{server.log()[-3000:]}")


def answers_http(port: int) -> bool:
    """A server process answers HTTP (any status). Not just a TCP accept: with several processes
    the parent's sockets accept into their backlog before any child can serve."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(2)
            sock.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return sock.recv(1) != b""
    except OSError:
        return False


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- WebSocket client helpers (the `websockets` library, as a browser stand-in) --------------
async def next_of_type(ws: ClientConnection, kind: str, timeout: float) -> dict:  # noqa: ASYNC109
    """The next JSON message of type `kind`, skipping others and binary audio."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv()
            if isinstance(raw, str) and (message := json.loads(raw))["type"] == kind:
                return message


async def until_closed(ws: ClientConnection, since: float, timeout: float) -> dict:  # noqa: ASYNC109
    """Read until the server closes; note when `reconnect` and the close frame arrived
    (seconds after `since`, a time.monotonic() value)."""
    seen: dict = {"reconnect": None, "reconnect_at": None}
    try:
        async with asyncio.timeout(timeout):
            async for raw in ws:
                if isinstance(raw, str) and (message := json.loads(raw))["type"] == "reconnect":
                    seen.update(reconnect=message, reconnect_at=time.monotonic() - since)
    except ConnectionClosed:
        pass
    seen.update(closed_at=time.monotonic() - since, code=ws.close_code, reason=ws.close_reason)
    return seen
