"""`python -m emulator`: run the Gemini test double until SIGINT/SIGTERM.

When listening, it writes {"url", "ca_file", "pid"} to --ready-file (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from pathlib import Path

from emulator.server import EmulatorServer
from emulator.state import Options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="where ca.pem is kept")
    parser.add_argument("--ready-file", type=Path, help="JSON written once listening")
    parser.add_argument(
        "--live-lifetime",
        type=float,
        default=600.0,
        help="seconds before a Live connection gets goAway and is closed",
    )
    parser.add_argument(
        "--go-away-lead",
        type=float,
        help="goAway's timeLeft in seconds (default: min(60, lifetime/2))",
    )
    parser.add_argument("--seed", type=int, help="makes resumption handles and replies reproducible")
    parser.add_argument(
        "--realtime-factor", type=float, default=1.0, help="reply audio pacing; 1.0 is real time"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def write_ready_file(path: Path, info: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)  # readers never see a half-written file


async def serve(args: argparse.Namespace) -> None:
    options = Options(
        seed=args.seed,
        live_lifetime_s=args.live_lifetime,
        go_away_lead_s=args.go_away_lead,
        realtime_factor=args.realtime_factor,
    )
    server = EmulatorServer(state_dir=args.state_dir, host=args.host, port=args.port, options=options)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    info = {"url": server.url, "ca_file": str(server.ca_file), "pid": os.getpid()}
    if args.ready_file:
        write_ready_file(args.ready_file, info)
    print(json.dumps(info), flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
        if args.ready_file:
            args.ready_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="emulator %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
