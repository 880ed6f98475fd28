"""The deployment guide's own smoke test (scripts/test_websocket.py) against a real server:
`python -m ai4joy.serve` with its own migrated database, a user in the audio_v2 rollout, the
Gemini emulator upstream, and a 2 s ping interval so the script's ping wait can be 3 s."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ai4joy.tests.serving import REPO_ROOT, base_env, migrate_database, run_django, start_server

pytestmark = pytest.mark.slow

EMAIL = "smoke@example.com"
PASSWORD = "guide-smoke-password"  # a throwaway user in a throwaway database
USER_CODE = f"""
import json
from django.contrib.auth import get_user_model
user = get_user_model().objects.create_user(username={EMAIL!r}, email={EMAIL!r}, password={PASSWORD!r})
print(json.dumps({{"user_id": user.pk}}))
"""


@pytest.fixture
def smoke_server(tmp_path, gemini_emulator):
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", SERVICE_ROLE="all", LOG_FORMAT="plain",
        GEMINI_BACKEND="emulator", GEMINI_EMULATOR_URL=gemini_emulator.url,
        GEMINI_EMULATOR_CA_FILE=gemini_emulator.ca_file, GEMINI_LIVE_MODEL="",
        WEBSOCKET_PING_INTERVAL="2", WEBSOCKET_TIMEOUT="3600",
    )
    migrate_database(env)
    run_django(USER_CODE, env)
    subprocess.run([sys.executable, "manage.py", "rollout", "set", "100", "--reason", "guide smoke test"],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=60)
    server = start_server(env, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()


def test_the_guides_websocket_script_passes(smoke_server):
    done = subprocess.run(
        [sys.executable, "scripts/test_websocket.py", "--base-url", smoke_server.origin,
         "--email", EMAIL, "--password", PASSWORD, "--ping-wait", "3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{smoke_server.log()[-3000:]}"
    assert '"type": "ready"' in done.stdout  # the response the guide prints
    assert "ping answered" in done.stdout
