"""`python -m bench.run --smoke`: the whole bench, end to end, with a handful of sessions.

Real processes throughout (the stamped emulator, `python -m ai4joy.serve`, the bare relay, the
load generators). Asserts the report's shape and that nothing failed; never a time or a rate:
the numbers depend on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROW_FIELDS = {
    "mode", "sessions", "processes", "connected", "cpu_cores", "cpu_per_session_pct", "ratio_to_bare",
    "first_audio_ms", "relay_added_ms", "saturated", "late_frames", "dropped_frames",
    "server_dropped_input_ms",
    "rss_per_session_kib", "server_rss_mib", "turns_answered", "audio_chunks", "barge_ins", "interrupted",
    "pongs", "client_lag_ticks", "loadgen_cpu_cores", "close_codes", "errors", "error_samples",
    "server_exit", "load_average",
}


@pytest.mark.slow
def test_smoke_bench_writes_every_field_and_has_no_errors(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"date", "machine", "rows", "skipped", "channel_layer", "database"} <= set(report)
    assert [(r["mode"], r["processes"]) for r in report["rows"]] == [("bare", 1), ("app", 1)]
    for row in report["rows"]:
        assert set(row) == ROW_FIELDS
        assert row["errors"] == 0, row["error_samples"]
        assert row["connected"] == row["sessions"] == 3
        assert row["close_codes"] == {"1000": 3}  # every session ended with the client's `end`
        assert row["audio_chunks"] > 0
        for key in ("first_audio_ms", "relay_added_ms"):
            assert None not in row[key].values(), (key, row[key])
    app = report["rows"][1]
    assert app["ratio_to_bare"] is not None
    assert app["pongs"] > 0  # the app pings; the load generator answers
    assert app["server_exit"] == 0  # the app drained and exited cleanly on SIGTERM
    assert done.stdout.splitlines()[0].split()[0] == "mode"  # the table's header, then a line per row
