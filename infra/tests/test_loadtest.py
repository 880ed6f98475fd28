"""The guide's load test (infra/loadtest/locustfile.py) run for a few seconds, headless, with
3 users against a real server: `python -m ai4joy.serve` with its own migrated database, the
Gemini emulator upstream, three accounts and the audio_v2 rollout at 100%. It passes when
locust counts no failure, every user got a voice socket to `ready`, and voice flowed both
ways (partner audio answered turns streamed as real-time binary frames)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from ai4joy.tests.serving import REPO_ROOT, base_env, migrate_database, run_django, start_server

pytestmark = pytest.mark.slow

USERS = 3
PASSWORD = "yes-and-load-test-2026"  # throwaway accounts in a throwaway database
SETUP_CODE = f"""
import json
from django.contrib.auth import get_user_model
from flags import services
emails = [f"loadtest-{{n}}@example.com" for n in range({USERS})]
make = get_user_model().objects.create_user
ids = [make(username=e, email=e, password={PASSWORD!r}).pk for e in emails]
services.rollout_set(percent=100, reason="load test")
print(json.dumps({{"users": ids}}))
"""
LOCUSTFILE = REPO_ROOT / "infra" / "loadtest" / "locustfile.py"


@pytest.fixture
def load_server(tmp_path, gemini_emulator):
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", SERVICE_ROLE="all", LOG_FORMAT="json",
        GEMINI_BACKEND="emulator", GEMINI_EMULATOR_URL=gemini_emulator.url,
        GEMINI_EMULATOR_CA_FILE=gemini_emulator.ca_file, GEMINI_LIVE_MODEL="", WEBSOCKET_TIMEOUT="3600",
    )
    migrate_database(env)
    assert len(run_django(SETUP_CODE, env)["users"]) == USERS
    server = start_server(env, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()


def _stats(prefix: Path) -> dict[str, dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def test_locust_voice_scenes_run_without_failures(load_server, tmp_path):
    prefix = tmp_path / "locust"
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", str(USERS),
         "--spawn-rate", str(USERS), "--run-time", "14s", "--stop-timeout", "15", "--only-summary",
         "--host", f"http://127.0.0.1:{load_server.port}", "--csv", str(prefix)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**base_env(), "LOADTEST_SCENE_SECONDS": "6", "LOADTEST_SPEAK_SECONDS": "1"},
    )
    report = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}\nserver:\n{load_server.log()[-3000:]}"
    assert done.returncode == 0, report
    stats = _stats(prefix)
    assert int(stats["Aggregated"]["Failure Count"]) == 0, report
    assert int(stats["ws: connect until ready"]["Request Count"]) >= USERS, report
    assert int(stats["POST /accounts/login/"]["Request Count"]) == USERS, report
    # voice flowed: turns streamed as real-time frames were answered with partner audio
    assert int(stats["voice: end of turn to partner audio"]["Request Count"]) >= USERS, report
    assert int(stats["voice: scene"]["Request Count"]) >= USERS, report
    started = load_server.events("audio_session_started")
    assert len(started) >= USERS, report
