"""`python -m bench.soak` (part of `make soak`): many voice sessions, round after round, then idle;
does the server give back what it took?

    python -m bench.soak [--sessions 200] [--rounds 3] [--round-s 60] [--processes 1]
                         [--out var/soak/report.json]

The app (`python -m ai4joy.serve`; one process with the in-memory channel layer, or with
--processes N that many on one port sharing Redis; SQLite in WAL, or BENCH_DATABASE_URL)
against the stamped emulator, loopback only. Round 1 warms it up (imports, caches, allocator
arenas); after it and after every later round the server idles a few seconds and the soak reads,
from /proc, its resident memory, open file descriptors and threads. Every session of every round
talks for the whole round through bench/loadgen.py (real protocol: 40 ms frames, speech turns,
pongs, barge-ins), then disconnects. Passes when, after the last round, RSS is within 5 % of
the post-warm-up value, the fd and thread counts are no higher than after some earlier round
(pools fill up to their bound; a leak grows every round), every audio-session record is closed
(none left `active`), and no session saw an error. Prints one JSON report; exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import procstat
from bench.run import REPO, Bench, free_port

IDLE_S = 5.0
RSS_DRIFT_LIMIT = 0.05
ACTIVE_CODE = """
import json
from improv.store import get_store
store = get_store()
print("SOAK" + json.dumps({"active": len(store.audio_sessions_active(limit=10000))}))
"""


def fds(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return total


def threads(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
    return total


def snapshot(server_pid: int) -> dict[str, int]:
    pids = procstat.tree(server_pid)
    return {"rss_kib": procstat.rss_kib(pids), "fds": fds(pids), "threads": threads(pids)}


def active_records(bench: Bench) -> int:
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", ACTIVE_CODE], cwd=REPO, env=bench.env,
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return int(json.loads(out[out.index("SOAK") + 4 :])["active"])


def run_round(
    bench: Bench, port: int, seeds: Path, sessions: int, seconds: float, tag: str
) -> dict[str, Any]:
    ramp = 2.0 + sessions / 40
    gens = bench.loadgens("app", port, seeds, sessions, time.time() + ramp, seconds, tag)
    reports = []
    for proc, out in gens:
        proc.wait(seconds + ramp + 180)
        reports.append(json.loads(out.read_text()) if out.exists() else
                       {"errors": [f"load generator exited with {proc.returncode}"]})
    counts: dict[str, int] = {}
    closes: dict[str, int] = {}
    for report in reports:
        for key, value in report.get("counts", {}).items():
            counts[key] = counts.get(key, 0) + value
        for key, value in report.get("close_codes", {}).items():
            closes[key] = closes.get(key, 0) + value
    errors = counts.get("errors", 0) + sum(1 for r in reports if "counts" not in r)
    samples = [e for r in reports for e in r.get("errors", [])][:5]
    return {"connected": counts.get("connected", 0), "turns_answered": counts.get("turns_answered", 0),
            "close_codes": closes, "errors": errors, "error_samples": samples}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(argparse.Namespace(barge_share=args.barge_share, no_redis=args.processes == 1))
    if args.processes > 1 and not bench.redis:
        raise SystemExit("--processes > 1 needs Redis at 127.0.0.1:6379")
    started = time.monotonic()
    rounds: list[dict[str, Any]] = []
    server = None
    try:
        bench.start_emulator()
        seeds = bench.seed(args.sessions)
        port = free_port()
        server = bench.start_server("app", args.processes, port, bench.work / "soak-server.log")
        for n in range(1, args.rounds + 1):
            result = run_round(bench, port, seeds, args.sessions, args.round_s, f"soak-{n}")
            time.sleep(IDLE_S)  # everyone gone: let closes and saves finish
            result.update(round=n, **snapshot(server.pid))
            rounds.append(result)
            print(json.dumps(result), flush=True)
        records_active = active_records(bench)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        bench.stop()
    base, last = rounds[0], rounds[-1]
    drift = (last["rss_kib"] - base["rss_kib"]) / base["rss_kib"]
    checks = {
        "rss_within_5pct": abs(drift) <= RSS_DRIFT_LIMIT,
        # Pools (database connections, sync threads) may grow after the warm-up up to their
        # bound; a leak grows every round, so the last round may hold no more than one before it.
        "fds_bounded": last["fds"] <= max(r["fds"] for r in rounds[:-1]),
        "threads_bounded": last["threads"] <= max(r["threads"] for r in rounds[:-1]),
        "records_closed": records_active == 0,
        "no_errors": all(r["errors"] == 0 for r in rounds),
        "all_connected": all(r["connected"] == args.sessions for r in rounds),
    }
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sessions": args.sessions, "processes": args.processes,
        "rounds": args.rounds, "round_s": args.round_s,
        "voice_session_seconds": args.sessions * args.rounds * args.round_s,
        "rss_drift_pct": round(100 * drift, 2), "records_active": records_active,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "checks": checks, "ok": all(checks.values()), "rounds_detail": rounds,
        "total_s": round(time.monotonic() - started, 1), "work_dir": str(bench.work),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="the first is the warm-up")
    parser.add_argument("--round-s", type=float, default=60.0, help="seconds of talk per round")
    parser.add_argument("--barge-share", type=float, default=0.2)
    parser.add_argument("--processes", type=int, default=1, help="server processes on one port (>1: Redis)")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "soak" / "report.json")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the first is the warm-up)")
    report = soak(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "rounds_detail"}, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
