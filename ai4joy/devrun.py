"""`make run`: the whole app on one machine, on embedded defaults.

Starts the local Gemini emulator (a test double for the paid Gemini API) and points the
app at it, unless GEMINI_BACKEND says otherwise, then serves everything (SERVICE_ROLE=all)
through the same draining Daphne entry point production uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM tidies up like Ctrl-C: drain the server, stop the emulator


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    env.setdefault("SERVICE_ROLE", "all")
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("LOG_FORMAT", "plain")
    emulator = None
    if env.get("GEMINI_BACKEND", "emulator") == "emulator" and not env.get("GEMINI_EMULATOR_URL"):
        from emulator.process import start_emulator

        emulator = start_emulator(ROOT / "var" / "emulator", port=int(env.get("EMULATOR_PORT", "0")))
        env.update(
            GEMINI_BACKEND="emulator",
            GEMINI_EMULATOR_URL=emulator.url,
            GEMINI_EMULATOR_CA_FILE=emulator.ca_file,
        )
        print(f"Gemini emulator (local stand-in) at {emulator.url}", flush=True)
    port = env.setdefault("PORT", "8000")
    print(
        f"\nImprov Olympics AI at http://127.0.0.1:{port}/\n"
        "Sign in with demo@ai4joy.local / yes-and-demo (staff: /admin), or sign up with any email.\n"
        "Voice (audio_v2) is off until you roll it out: python manage.py rollout set 100 --reason 'local'\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    server = subprocess.Popen([sys.executable, "-m", "ai4joy.serve"], cwd=ROOT, env=env)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait()
    finally:
        if emulator is not None:
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
