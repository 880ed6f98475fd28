"""`python -m bench.run` (`make bench`): the voice relay ladder, the app beside a bare relay.

    python -m bench.run [--ladder 50,100,200,400] [--multi 400] [--duration 20] [--time-limit 900]
                        [--out var/bench/report.json]
    python -m bench.run --smoke          # a handful of sessions, for the test suite
    python -m bench.run --baseline-tree ../before   # also the app of another checkout: before/after

For each size in --ladder it runs the bare relay (bench/bare_relay.py) and then the app
(`python -m ai4joy.serve`, one process) with the same clients and traffic (and, with
--baseline-tree, the app of that other checkout as mode "base", so a change is measured before
and after in one run, under the same load); for each size in
--multi it runs the app with one process per vCPU (SERVE_PROCESSES). Every server gets a fresh
process; the emulator (bench/stamped_emulator.py) and the load generators (bench/loadgen.py,
about 100 clients each) are processes of their own. CPU is the server processes' user+system
time over the steady part of each step; RSS per session is the growth from a warmed-up server
to N connected sessions, divided by N. Each row also carries the machine's load average, since
anything else running skews CPU and latency: compare ratios within one run.

Prints a table and writes the JSON report; exits 1 if any step had errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import procstat

REPO = Path(__file__).resolve().parent.parent
CLIENTS_PER_LOADGEN = 100
WARMUP_S = 6.0
SEED_CODE = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from flags.services import rollout_set
from improv.store import get_store
rollout_set(percent=100, actor_label="bench", reason="voice relay benchmark")
out = []
for i in range({n}):
    email = "bench-{tag}-%d@example.com" % i
    user = get_user_model().objects.create_user(username=email, email=email, password=None)
    client = Client()
    client.force_login(user)
    scene = get_store().scene_create(user_id=user.pk, status="active", game_slug="")
    out.append({{"cookie": client.cookies["sessionid"].value, "scene": scene.id}})
print("SEED" + json.dumps(out))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not listening after {timeout} s:\n{log.read_text()[-3000:]}")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 1)


def redis_available() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


def database_url(work: Path) -> str:
    """BENCH_DATABASE_URL, else a SQLite file (fine for one process; several contend for its lock)."""
    return os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="ai4joy-bench-"))
        self.redis = redis_available() and not args.no_redis
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": "ai4joy.settings",
            "DATABASE_URL": database_url(self.work),
            "LOG_LEVEL": "WARNING",
        }
        for name in ("REDIS_URL", "CHANNEL_PREFIX", "PORT", "HOST", "SERVE_PROCESSES", "WEB_CONCURRENCY"):
            self.env.pop(name, None)
        self.emulator: subprocess.Popen | None = None
        self.emulator_info: dict[str, Any] = {}

    # --- fixtures of the whole run ---------------------------------------------------------
    def start_emulator(self) -> None:
        ready = self.work / "emulator" / "ready.json"
        log = (self.work / "emulator.log").open("wb")
        self.emulator = subprocess.Popen(
            [sys.executable, "-m", "bench.stamped_emulator", "--state-dir", str(self.work / "emulator"),
             "--ready-file", str(ready), "--seed", "1", "--log-level", "WARNING"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.emulator.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start; see " + str(self.work / "emulator.log"))
            time.sleep(0.05)
        self.emulator_info = json.loads(ready.read_text())

    def seed(self, n: int) -> Path:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=self.env, check=True,
                       capture_output=True, timeout=600)
        out = subprocess.run([*manage, "shell", "-c", SEED_CODE.format(n=n, tag=uuid.uuid4().hex[:8])],
                             cwd=REPO, env=self.env, check=True, capture_output=True, text=True,
                             timeout=600).stdout
        path = self.work / "seeds.json"
        path.write_text(out[out.index("SEED") + 4 :].strip())
        return path

    def stop(self) -> None:
        if self.emulator is not None and self.emulator.poll() is None:
            self.emulator.terminate()
            self.emulator.wait(10)

    # --- one step ----------------------------------------------------------------------------
    def start_server(self, mode: str, processes: int, port: int, log: Path) -> subprocess.Popen:
        tree = REPO
        if mode == "bare":
            cmd = [sys.executable, "-m", "bench.bare_relay", "--port", str(port),
                   "--emulator-url", self.emulator_info["url"], "--ca-file", self.emulator_info["ca_file"]]
            env = self.env
        else:
            if mode == "base":
                tree = self.args.baseline_tree.resolve()
            cmd = [sys.executable, "-m", "ai4joy.serve"]
            env = {
                **self.env, "PORT": str(port), "HOST": "127.0.0.1", "SERVICE_ROLE": "all",
                "SERVE_PROCESSES": str(processes), "GEMINI_BACKEND": "emulator",
                "GEMINI_EMULATOR_URL": self.emulator_info["url"],
                "GEMINI_EMULATOR_CA_FILE": self.emulator_info["ca_file"], "GEMINI_LIVE_MODEL": "",
                "WEBSOCKET_PING_INTERVAL": "10", "WEBSOCKET_TIMEOUT": "3600", "DRAIN_TIMEOUT": "8",
                "PYTHONPATH": str(tree),
            }
            if self.redis:
                env.update(REDIS_URL="redis://127.0.0.1:6379/0", CHANNEL_PREFIX=f"b{uuid.uuid4().hex[:10]}",
                           CACHE_PREFIX=f"b{uuid.uuid4().hex[:10]}")
        with log.open("ab") as out:
            proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        wait_listening(port, proc, log)
        return proc

    def loadgens(self, mode: str, port: int, seeds: Path, count: int, start_at: float, duration: float,
                 tag: str) -> list[tuple[subprocess.Popen, Path]]:
        procs = []
        per = math.ceil(count / max(1, math.ceil(count / CLIENTS_PER_LOADGEN)))
        protocol = "bare" if mode == "bare" else "app"  # "base" is the app of another checkout
        for first in range(0, count, per):
            out = self.work / f"{tag}-{first}.json"
            cmd = [sys.executable, "-m", "bench.loadgen", "--mode", protocol, "--url", f"ws://127.0.0.1:{port}",
                   "--origin", f"http://127.0.0.1:{port}", "--seeds", str(seeds), "--first", str(first),
                   "--count", str(min(per, count - first)), "--start-at", str(start_at),
                   "--duration", str(duration), "--barge-share", str(self.args.barge_share),
                   "--out", str(out)]
            log = (self.work / f"{tag}-{first}.log").open("wb")
            procs.append((subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT),
                          out))
        return procs

    def step(self, mode: str, sessions: int, processes: int, seeds: Path) -> dict[str, Any]:
        tag = f"{mode}-{sessions}-{processes}"
        port = free_port()
        server = self.start_server(mode, processes, port, self.work / f"{tag}-server.log")
        duration = self.args.duration
        try:
            # Warm-up: a few sessions through a turn, so imports and caches are loaded before the base.
            warm = min(sessions, 2 * processes)
            warm_at = time.time() + 0.5
            for proc, _ in self.loadgens(mode, port, seeds, warm, warm_at, WARMUP_S, f"{tag}-warm"):
                proc.wait(WARMUP_S + 60)
            time.sleep(0.5)
            pids = procstat.tree(server.pid)
            rss_base = procstat.rss_kib(pids)
            ramp = 2.0 + sessions / 40  # connect everyone before turns start
            start_at = time.time() + ramp
            gens = self.loadgens(mode, port, seeds, sessions, start_at, duration, tag)
            gen_pids = [p.pid for p, _ in gens]
            time.sleep(max(0.0, start_at + 2.0 - time.time()))  # turns spread over the first 2 s
            t0, cpu0, gen0 = time.monotonic(), procstat.cpu_seconds(pids), procstat.cpu_seconds(gen_pids)
            load = os.getloadavg()
            time.sleep(max(1.0, start_at + duration - 1.0 - time.time()))
            t1, cpu1, gen1 = time.monotonic(), procstat.cpu_seconds(pids), procstat.cpu_seconds(gen_pids)
            rss_loaded = procstat.rss_kib(pids)
            reports = []
            for proc, out in gens:
                proc.wait(duration + ramp + 120)
                reports.append(json.loads(out.read_text()) if out.exists() else
                               {"errors": [f"load generator exited with {proc.returncode}"], "clients": 0})
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        return summarise(mode, sessions, processes, reports, cpu=(cpu1 - cpu0) / (t1 - t0),
                         loadgen_cpu=(gen1 - gen0) / (t1 - t0), rss_base=rss_base, rss_loaded=rss_loaded,
                         load=load, server_exit=server.returncode)


def summarise(mode: str, sessions: int, processes: int, reports: list[dict[str, Any]], *, cpu: float,
              loadgen_cpu: float, rss_base: int, rss_loaded: int, load: tuple[float, float, float],
              server_exit: int | None) -> dict[str, Any]:
    first = [v for r in reports for v in r.get("first_audio_ms", [])]
    added = [v for r in reports for v in r.get("added_ms", [])]
    counts: dict[str, int] = {}
    closes: dict[str, int] = {}
    errors: list[str] = []
    for r in reports:
        for key, value in r.get("counts", {}).items():
            counts[key] = counts.get(key, 0) + value
        for key, value in r.get("close_codes", {}).items():
            closes[key] = closes.get(key, 0) + value
        errors += r.get("errors", [])
    # A load generator that left no report failed as a whole: count each of its clients.
    error_count = counts.get("errors", 0) + sum(1 for r in reports if "counts" not in r)
    return {
        "mode": mode,
        "sessions": sessions,
        "processes": processes,
        "connected": counts.get("connected", 0),
        "cpu_cores": round(cpu, 3),
        "cpu_per_session_pct": round(100 * cpu / sessions, 3),
        "ratio_to_bare": None,  # filled in by the ladder
        "first_audio_ms": {"p50": pct(first, 0.5), "p95": pct(first, 0.95), "p99": pct(first, 0.99)},
        "relay_added_ms": {"p50": pct(added, 0.5), "p95": pct(added, 0.95), "p99": pct(added, 0.99)},
        # More than 1% of partner audio later than late_frame_ms: the server (or the machine) could
        # not keep up, so its CPU figure is capped by what it got, not what it needed.
        "saturated": counts.get("late_chunks", 0) > 0.01 * max(1, len(added)),
        "late_frames": counts.get("late_chunks", 0),
        "dropped_frames": counts.get("lost_chunks", 0),
        "server_dropped_input_ms": counts.get("server_dropped_input_ms", 0),
        "rss_per_session_kib": round((rss_loaded - rss_base) / sessions, 1),
        "server_rss_mib": round(rss_loaded / 1024, 1),
        "turns_answered": counts.get("turns_answered", 0),
        "audio_chunks": len(added),
        "barge_ins": counts.get("barge_ins", 0),
        "interrupted": counts.get("interrupted", 0),
        "pongs": counts.get("pongs", 0),
        "client_lag_ticks": sum(r.get("client_lag_ticks", 0) for r in reports),
        "loadgen_cpu_cores": round(loadgen_cpu, 3),
        "close_codes": closes,
        "errors": error_count,
        "error_samples": errors[:10],
        "server_exit": server_exit,
        "load_average": [round(x, 2) for x in load],
    }


def ladder(args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(args)
    started = time.monotonic()
    plan: list[tuple[str, int, int]] = []
    for n in args.ladder:
        plan += [("bare", n, 1), *([("base", n, 1)] if args.baseline_tree else []), ("app", n, 1)]
    processes = args.processes or os.cpu_count() or 1
    plan += [("app", n, processes) for n in args.multi]
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    try:
        bench.start_emulator()
        seeds = bench.seed(max(n for _, n, _ in plan))
        for mode, n, p in plan:
            estimate = 2.0 + n / 40 + args.duration + WARMUP_S + 15
            if time.monotonic() - started + estimate > args.time_limit:
                skipped.append({"mode": mode, "sessions": n, "processes": p, "why": "time limit"})
                continue
            row = bench.step(mode, n, p, seeds)
            bare = next((r for r in rows if r["mode"] == "bare" and r["sessions"] == n), None)
            if mode != "bare" and bare and bare["cpu_per_session_pct"] > 0:
                row["ratio_to_bare"] = round(row["cpu_per_session_pct"] / bare["cpu_per_session_pct"], 2)
            rows.append(row)
            print(format_row(row), flush=True)
    finally:
        bench.stop()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "duration_s": args.duration,
        "barge_share": args.barge_share,
        "channel_layer": "redis" if bench.redis else "in-memory",
        "database": bench.env["DATABASE_URL"].split(":", 1)[0],
        "late_frame_ms": 100,
        "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
        "rows": rows,
        "skipped": skipped,
        "work_dir": str(bench.work),
        "total_s": round(time.monotonic() - started, 1),
    }


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0]}


HEADER = (f"{'mode':<5} {'sess':>5} {'proc':>4} {'cores':>6} {'%core/s':>8} {'x bare':>6} "
          f"{'1st audio p50/p95/p99 ms':>25} {'added p50/p95/p99 ms':>22} {'late':>5} {'lost':>5} "
          f"{'KiB/s':>6} {'err':>4} {'load1':>5}")


def format_row(row: dict[str, Any]) -> str:
    def trio(d: dict[str, Any]) -> str:
        return "/".join("-" if d[k] is None else f"{d[k]:.0f}" for k in ("p50", "p95", "p99"))

    ratio = "-" if row["ratio_to_bare"] is None else f"{row['ratio_to_bare']:.2f}"
    return (f"{row['mode']:<5} {row['sessions']:>5} {row['processes']:>4} {row['cpu_cores']:>6.2f} "
            f"{row['cpu_per_session_pct']:>8.3f} {ratio:>6} {trio(row['first_audio_ms']):>25} "
            f"{trio(row['relay_added_ms']):>22} {row['late_frames']:>5} {row['dropped_frames']:>5} "
            f"{row['rss_per_session_kib']:>6.0f} {row['errors']:>4} {row['load_average'][0]:>5.2f}"
            + (" saturated" if row["saturated"] else ""))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    sizes = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--ladder", type=sizes, default=[50, 100, 200, 400], help="sessions, one process")
    parser.add_argument("--multi", type=sizes, default=[400], help="sessions, one process per vCPU")
    parser.add_argument("--processes", type=int, default=0, help="for --multi; default: the CPU count")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of turns per step")
    parser.add_argument("--time-limit", type=float, default=900.0, help="skip steps that would end later")
    parser.add_argument("--barge-share", type=float, default=0.2)
    parser.add_argument("--baseline-tree", type=Path, help="another checkout whose app also runs (mode base)")
    parser.add_argument("--no-redis", action="store_true", help="in-memory channel layer (one process)")
    parser.add_argument("--smoke", action="store_true", help="3 sessions, 12 s, no multi-process step")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "report.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.ladder, args.multi, args.duration = [3], [], 12.0
    if not args.ladder and not args.multi:
        parser.error("nothing to run: give --ladder or --multi sizes")
    return args


def _stop(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwind, so every server, load generator and emulator is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background, where SIGINT is ignored
    print(HEADER, flush=True)
    report = ladder(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"report: {args.out} (load average now {os.getloadavg()[0]:.2f}; {report['total_s']} s)")
    return 1 if any(row["errors"] for row in report["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
