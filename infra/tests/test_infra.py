"""Runs the infra test suite (bats + shellcheck) from pytest / `python manage.py test`.

- The bats suite drives infra/deploy.sh and infra/ops.sh against a stub gcloud and curl
  (infra/tests/stubs): dry run, a full deploy run twice, bad input, runbook operations,
  shellcheck. It needs `bats` and `shellcheck` on PATH; without them these tests FAIL
  (install them: `apt-get install -y bats shellcheck`; CI does).
- The monitoring JSON is validated against Google's protobuf schemas when the client
  libraries are importable (google-cloud-monitoring, -monitoring-dashboards, -logging);
  otherwise that test is skipped with the reason.
- Every gcloud command line recorded during the stubbed deploy is checked against the
  installed Google Cloud CLI's own argument parser, offline (no credentials, no network).
  Where gcloud is not installed that test is skipped, loudly.
No database is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parent.parent
TESTS = INFRA / "tests"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not installed: run `apt-get install -y bats shellcheck` (CI installs them)")
    return path


@pytest.fixture(scope="module")
def bats_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    bats = _require("bats")
    _require("shellcheck")
    export = tmp_path_factory.mktemp("infra-parse-export")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "GOOGLE_APPLICATION"))}
    env["INFRA_PARSE_EXPORT"] = str(export)
    files = sorted(str(p) for p in TESTS.glob("*.bats"))
    result = subprocess.run(
        [bats, "--print-output-on-failure", *files] if _bats_has_flag(bats) else [bats, *files],
        cwd=INFRA.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    return result, export


def _bats_has_flag(bats: str) -> bool:
    out = subprocess.run([bats, "--help"], capture_output=True, text=True, check=False).stdout
    return "--print-output-on-failure" in out


# The bats suite takes 1-3 minutes (slower on a busy machine); allow more than the
# project's default per-test timeout for the two tests that share its run.
@pytest.mark.timeout(600)
def test_bats_suite_passes(bats_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, _ = bats_run
    summary = "\n".join(line for line in result.stdout.splitlines() if re.match(r"^(not ok|ok|1\.\.)", line))
    assert result.returncode == 0, f"bats failed:\n{result.stdout}\n{result.stderr}"
    assert "not ok" not in result.stdout, summary
    assert re.search(r"^1\.\.\d+", result.stdout, re.M), result.stdout


def test_monitoring_json_matches_google_schemas() -> None:
    try:
        from google.cloud import monitoring_dashboard_v1, monitoring_v3
        from google.cloud.logging_v2.types import LogMetric
    except ImportError as exc:
        pytest.skip(
            f"SKIPPED: proto validation of infra/monitoring needs google-cloud-monitoring, "
            f"google-cloud-monitoring-dashboards and google-cloud-logging ({exc})"
        )
    values = {
        "PROJECT_ID": "p",
        "REGION": "us-central1",
        "ENVIRONMENT": "production",
        "AUDIO_SERVICE": "ai4joy-audio-service",
        "API_SERVICE": "ai4joy-api-service",
        "DOMAIN_NAME": "app.example.com",
        "AUDIO_SATURATION_INSTANCES": "40",
        "API_SATURATION_INSTANCES": "80",
        "AUDIO_MIN_INSTANCES": "2",
        "AUDIO_MAX_INSTANCES": "50",
        "DAILY_COST_ALERT_USD": "440",
    }

    def render(path: Path) -> str:
        return re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], path.read_text())

    mon = INFRA / "monitoring"
    checked = 0
    for path in sorted((mon / "alerts").glob("*.json")):
        monitoring_v3.AlertPolicy.from_json(render(path))  # raises ParseError on unknown fields
        checked += 1
    for path in sorted((mon / "metrics").glob("*.json")):
        LogMetric.from_json(render(path))
        checked += 1
    monitoring_dashboard_v1.Dashboard.from_json(render(mon / "dashboard.json"))
    for path in sorted((mon / "slos").glob("service-*.json")):
        monitoring_v3.Service.from_json(render(path))
        checked += 1
    for path in sorted((mon / "slos").glob("*--*.json")):
        monitoring_v3.ServiceLevelObjective.from_json(render(path))
        checked += 1
    assert checked >= 20


def _sdk_python_and_root() -> tuple[str, Path] | None:
    gcloud = shutil.which("gcloud", path=os.environ.get("PATH", "").replace(str(TESTS / "stubs"), ""))
    if not gcloud:
        return None
    root = Path(os.path.realpath(gcloud)).parent.parent
    if not (root / "lib" / "googlecloudsdk").is_dir():
        return None
    bundled = root / "platform" / "bundledpythonunix" / "bin" / "python3"
    python = os.environ.get("CLOUDSDK_PYTHON") or (str(bundled) if bundled.exists() else sys.executable)
    return python, root


@pytest.mark.timeout(600)
def test_recorded_gcloud_commands_parse_with_real_gcloud(
    bats_run: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    found = _sdk_python_and_root()
    if found is None:
        pytest.skip(
            "SKIPPED LOUDLY: the Google Cloud CLI (gcloud) is not installed here, so the recorded "
            "gcloud command lines were NOT checked against its argument parser"
        )
    python, root = found
    _, export = bats_run
    log = export / "deploy-calls.log"
    assert log.exists(), "the bats deploy test did not export its recorded calls"
    # Runbook operations too, recorded in dry-run-free form through the stub.
    ops_log = tmp_path / "ops-calls.log"
    env = dict(
        os.environ,
        STUB_STATE_DIR=str(tmp_path),
        PATH=f"{TESTS / 'stubs'}:{os.environ['PATH']}",
        SMOKE_WS_CLIENT="curl",
    )
    stub = TESTS / "stubs" / "gcloud"
    for args in (
        ["run", "deploy", "ai4joy-audio-service", "--image=x"],
        ["run", "deploy", "ai4joy-api-service", "--image=x"],
    ):
        subprocess.run([str(stub), *args, "--project=ai4joy-production"], env=env, check=True)
    for _ in range(3):  # versions 1-3 of the ADK key, for disable-secret-version
        subprocess.run([str(stub), "secrets", "versions", "add", "adk-api-key", "--data-file=-",
                        "--project=ai4joy-production"], env=env, check=True, input="v", text=True)
    ops = [
        ["rotation-run"],  # first: it refuses to run once a rollback has pinned the traffic
        ["rollback", "audio", "ai4joy-audio-service-00001-old"],
        ["promote", "api"],
        ["maintenance", "on", "audio"],
        ["maintenance", "off", "audio"],
        ["scale", "audio", "--min=5", "--max=100", "--cpu=4", "--memory=2Gi", "--concurrency=10"],
        ["disable-secret-version", "adk-api-key", "3"],
        ["revisions", "audio"],
        ["logs", "api"],
        ["vertex-quota", "list"],
        ["vertex-quota", "request", "GenerateContentRequestsPerMinutePerProjectPerRegion", "600"],
        ["disable-old-versions", "adk-api-key"],
    ]
    for args in ops:
        subprocess.run([str(INFRA / "ops.sh"), "production", *args], env=env, check=True, capture_output=True)
    subprocess.run(
        [str(INFRA / "ops.sh"), "production", "rotate-secret", "adk-api-key"],
        env=env,
        check=True,
        input="value",
        text=True,
        capture_output=True,
    )
    (tmp_path / "calls.log").replace(ops_log)
    combined = tmp_path / "all-calls.log"
    security_log = export / "security-calls.log"
    assert security_log.exists(), "the bats security tests did not export their recorded calls"
    combined.write_text(log.read_text() + ops_log.read_text() + security_log.read_text())
    result = subprocess.run(
        [python, "-S", str(TESTS / "gcloud_parse_check.py"), str(root), str(combined)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    print(result.stdout[-2000:])
    assert result.returncode == 0, (
        f"gcloud rejected recorded command lines:\n{result.stdout}\n{result.stderr[-3000:]}"
    )
    summary = r"^\d+ unique gcloud command lines checked against the real parser, 0 failed$"
    assert re.search(summary, result.stdout, re.M)
