"""`python -m bench.soak` end to end with a handful of sessions: the fast variant of the soak
that `make soak` runs for ten minutes (README, "Reliability").

Real processes (the stamped emulator, `python -m ai4joy.serve`, the load generators). Asserts
what the soak promises apart from the memory figure, which a few sessions cannot settle (the
allocator's noise is larger than what they leave): every session connected and answered, closed
normally, no record left open, fds and threads bounded. That a finished session leaves nothing
for the cycle collector is asserted exactly by audio/tests/test_memory.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_soak_closes_every_session_and_record(tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--sessions", "4", "--rounds", "3", "--round-s", "14",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    report = json.loads(out.read_text())
    assert report["sessions"] == 4 and len(report["rounds_detail"]) == 3
    checks = report["checks"]
    assert set(checks) == {"rss_within_5pct", "fds_bounded", "threads_bounded", "records_closed",
                           "no_errors", "all_connected"}
    failed = [name for name, ok in checks.items() if not ok and name != "rss_within_5pct"]
    assert failed == [], report["rounds_detail"]
    assert report["records_active"] == 0
    for round_ in report["rounds_detail"]:
        assert round_["turns_answered"] > 0, round_
        assert round_["close_codes"] == {"1000": 4}, round_
        assert round_["rss_kib"] > 0 and round_["fds"] > 0 and round_["threads"] > 0, round_
    assert done.returncode == (0 if checks["rss_within_5pct"] else 1), done.stderr[-3000:]
