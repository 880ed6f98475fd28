"""Start the emulator as a subprocess and wait until it is ready (for Django/Daphne tests, `make run`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


class EmulatorStartError(RuntimeError):
    pass


@dataclass
class EmulatorProcess:
    url: str
    ca_file: str
    pid: int
    process: subprocess.Popen[bytes]
    ready_file: Path

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    state_dir: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    live_lifetime: float | None = None,
    go_away_lead: float | None = None,
    seed: int | None = None,
    realtime_factor: float | None = None,
    timeout: float = 20.0,
    log_path: Path | str | None = None,
) -> EmulatorProcess:
    """Runs `python -m emulator` in the background; returns once it listens.

    Output goes to `log_path` (default: state_dir/emulator.log) so a chatty emulator can never
    block on a full pipe.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "ready.json"
    ready.unlink(missing_ok=True)
    args = [
        sys.executable,
        "-m",
        "emulator",
        "--host",
        host,
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        "--ready-file",
        str(ready),
    ]
    if live_lifetime is not None:
        args += ["--live-lifetime", str(live_lifetime)]
    if go_away_lead is not None:
        args += ["--go-away-lead", str(go_away_lead)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if realtime_factor is not None:
        args += ["--realtime-factor", str(realtime_factor)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = Path(log_path) if log_path else state_dir / "emulator.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args, cwd=_REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.exists():
            info = json.loads(ready.read_text())
            return EmulatorProcess(
                url=info["url"], ca_file=info["ca_file"], pid=info["pid"], process=proc, ready_file=ready
            )
        if proc.poll() is not None:
            raise EmulatorStartError(
                f"emulator exited with {proc.returncode}; see {log}:\n" + log.read_text()[-2000:]
            )
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise EmulatorStartError(f"emulator not ready after {timeout} s; see {log}")
