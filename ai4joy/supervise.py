"""One draining Daphne process per vCPU on one port: the parent half of `python -m ai4joy.serve`.

Python runs one core's worth of relay per process, so a 2-vCPU instance needs two processes to use
what it pays for. The parent binds one SO_REUSEPORT listening socket per child on HOST:PORT
(the kernel spreads new connections over them) and starts each child as
`python -m ai4joy.serve --fd N` with SERVE_PROCESSES=1; it serves nothing itself.

- SIGTERM (or SIGINT) is forwarded once to every child, which drains exactly as a lone process
  does (reconnect + 4012, records finalised, exit within DRAIN_TIMEOUT); further signals are
  forwarded too, so a second Ctrl-C still cuts the children's drain short. The parent exits when
  they all have (0 if all did), and kills any child still running just before Cloud Run's SIGKILL.
- Children live in their own session, so a terminal's Ctrl-C reaches them once, through here;
  if the parent dies anyway (SIGKILL), the kernel sends each child SIGTERM and it drains.
- A child that dies on its own is replaced with a fresh socket; one that dies within
  STARTUP_S of starting (a configuration error) stops the whole server with its exit code.

How many: SERVE_PROCESSES, else WEB_CONCURRENCY, else the CPUs this process may run on, capped by
the container's CPU quota (cgroup cpu.max: a 2-vCPU container on a bigger host). Several
processes only make sense with a shared channel layer: supersede, rollback, admin "end session"
and health cross processes through Redis. With the in-memory layer (no REDIS_URL, `make run`)
it stays one process and logs why.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("ai4joy.serve")

STARTUP_S = 10.0
POLL_S = 0.1
BACKLOG = 1024
RESPAWN_DELAY_S = 1.0


class ConfigError(ValueError):
    pass


def process_count(environ: Mapping[str, str], channel_backend: str) -> tuple[int, str]:
    """(processes, why) from SERVE_PROCESSES / WEB_CONCURRENCY / the CPU count."""
    for name in ("SERVE_PROCESSES", "WEB_CONCURRENCY"):
        raw = environ.get(name, "").strip()
        if raw:
            try:
                wanted = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number of processes, not {raw!r}") from None
            if wanted < 1:
                raise ConfigError(f"{name} must be at least 1, not {wanted}")
            source = name
            break
    else:
        wanted, source = usable_cpus(), "the CPU count"
    if wanted > 1 and channel_backend.endswith("InMemoryChannelLayer"):
        return 1, (
            f"one process, not {wanted} ({source}): the in-memory channel layer cannot carry "
            "supersede, rollback, admin end or drain across processes; set REDIS_URL for more"
        )
    return wanted, f"{wanted} from {source}"


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Any:
    """In the child before exec: SIGTERM (so a drain) when the parent dies, even by SIGKILL. A child
    in its own session would otherwise keep serving the port unsupervised."""

    def arm() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


@dataclass
class Child:
    index: int
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    def __init__(self, *, count: int, host: str, port: int, argv: list[str], grace_s: float) -> None:
        self.count = count
        self.host = host
        self.port = port
        self.argv = argv
        self.grace_s = grace_s  # from the first signal until leftovers are killed
        self.children: dict[int, Child] = {}
        self.stop_at: float | None = None
        self.exit_code = 0

    def spawn(self, index: int) -> None:
        sock = listening_socket(self.host, self.port)
        try:
            env = {**os.environ, "SERVE_PROCESSES": "1", "SERVE_PROCESS_INDEX": str(index)}
            process = subprocess.Popen(
                [sys.executable, "-m", "ai4joy.serve", "--fd", str(sock.fileno()), *self.argv],
                env=env,
                pass_fds=(sock.fileno(),),
                start_new_session=True,
                preexec_fn=_die_with(os.getpid()),  # safe: the parent runs no threads
            )
        finally:
            sock.close()  # the child holds its own copy; ours would keep a dead socket in the group
        self.children[index] = Child(index=index, process=process, started=time.monotonic())

    def forward(self, signum: int, _frame: Any = None) -> None:
        if self.stop_at is None:
            self.stop_at = time.monotonic() + self.grace_s
            log.info("stopping server processes", extra={"event": "server_processes_stopping",
                                                          "processes": len(self.children)})
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signum)

    def run(self) -> int:
        for index in range(self.count):
            self.spawn(index)
        signal.signal(signal.SIGTERM, self.forward)
        signal.signal(signal.SIGINT, self.forward)
        log.info(
            "server processes started",
            extra={"event": "server_processes_started", "processes": self.count, "port": self.port},
        )
        while self.children:
            time.sleep(POLL_S)
            for index, child in list(self.children.items()):
                code = child.process.poll()
                if code is not None:
                    self._exited(index, child, code)
            if self.stop_at is not None and time.monotonic() > self.stop_at:
                for child in self.children.values():
                    child.process.kill()
                    child.process.wait()
                log.error("server processes killed after the grace period",
                          extra={"event": "server_processes_killed", "processes": len(self.children)})
                return 1
        return self.exit_code

    def _exited(self, index: int, child: Child, code: int) -> None:
        del self.children[index]
        if self.stop_at is not None:
            self.exit_code = self.exit_code or code
            return
        log.error("server process exited", extra={"event": "server_process_exited", "index": index,
                                                  "code": code})
        if time.monotonic() - child.started < STARTUP_S:
            # It could not even start: another would fail the same way. Take the rest down too.
            self.exit_code = code or 1
            self.forward(signal.SIGTERM)
            return
        time.sleep(RESPAWN_DELAY_S)
        self.spawn(index)
