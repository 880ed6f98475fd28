#!/usr/bin/env bats
# Static checks: shellcheck, strict mode, monitoring definitions, Dockerfile, env files.

setup() {
  load helper
  REPO="$(cd "${INFRA}/.." && pwd)"
}

@test "shellcheck passes on every script" {
  command -v shellcheck || { echo "shellcheck is not installed (apt-get install shellcheck)"; return 1; }
  cd "${INFRA}"
  run shellcheck -x deploy.sh ops.sh lib.sh phases/*.sh tests/helper.bash
  echo "${output}"
  [ "${status}" -eq 0 ]
}

@test "every script parses and the executables run in strict mode" {
  for f in "${INFRA}"/deploy.sh "${INFRA}"/ops.sh "${INFRA}"/lib.sh "${INFRA}"/phases/*.sh; do
    bash -n "${f}"
  done
  for f in "${INFRA}/deploy.sh" "${INFRA}/ops.sh"; do
    [ -x "${f}" ]
    grep -qx 'set -euo pipefail' "${f}"
  done
}

@test "no pipeline ends in a reader that stops early (it would fail under pipefail)" {
  cd "${INFRA}"
  # head, grep -q/-m, sed NNq and awk '... exit' close the pipe before the writer is done;
  # the writer then dies of SIGPIPE (or EPIPE) and pipefail fails the whole command.
  run grep -nE '[^|]\|[[:space:]]*(head([[:space:]]|$)|grep[[:space:]]+-[[:alnum:]]*[qm]|sed[[:space:]]+-n?[[:space:]]*.?[0-9]+q|awk[[:space:]].*[{;[:space:]]exit([[:space:]]|;|}))' \
    deploy.sh ops.sh lib.sh phases/*.sh
  echo "${output}"
  [ "${status}" -eq 1 ]
  # the guard itself catches the pattern that made ops.bats flaky
  printf '%s\n' "x=\"\$(gcloud run revisions list | awk '\$2 != img {print \$1; exit}')\"" \
    "printf '%s\\n' \"\${a[@]}\" | grep -qxF b" >"${BATS_TEST_TMPDIR}/bad.sh"
  run grep -cE '[^|]\|[[:space:]]*(head([[:space:]]|$)|grep[[:space:]]+-[[:alnum:]]*[qm]|sed[[:space:]]+-n?[[:space:]]*.?[0-9]+q|awk[[:space:]].*[{;[:space:]]exit([[:space:]]|;|}))' \
    "${BATS_TEST_TMPDIR}/bad.sh"
  [ "${output}" = 2 ]
}

@test "monitoring templates render to valid JSON with the guide's thresholds" {
  run python3 - "${INFRA}/monitoring" <<'PY'
import glob, json, re, sys
root = sys.argv[1]
vals = {"PROJECT_ID": "p", "REGION": "us-central1", "ENVIRONMENT": "production", "AUDIO_SERVICE": "ai4joy-audio-service",
        "API_SERVICE": "ai4joy-api-service", "DOMAIN_NAME": "app.example.com",
        "AUDIO_SATURATION_INSTANCES": "40", "API_SATURATION_INSTANCES": "80",
        "AUDIO_MIN_INSTANCES": "2", "AUDIO_MAX_INSTANCES": "50", "DAILY_COST_ALERT_USD": "440"}
def load(p):
    return json.loads(re.sub(r"@([A-Z_]+)@", lambda m: vals[m.group(1)], open(p).read()))
alerts = {p.rsplit("/", 1)[1][:-5]: load(p) for p in glob.glob(root + "/alerts/*.json")}
def cond(name, i=0):
    c = alerts[name]["conditions"][i]
    return c.get("conditionThreshold") or c.get("conditionPrometheusQueryLanguage")
assert cond("high-error-rate")["thresholdValue"] == 0.05 and cond("high-error-rate")["duration"] == "300s"
assert cond("service-down")["thresholdValue"] >= 0.99 and cond("service-down")["duration"] == "120s"
assert cond("high-latency")["thresholdValue"] == 2000 and cond("high-latency")["duration"] == "300s"
assert "PERCENTILE_95" in json.dumps(cond("high-latency")["aggregations"])
assert cond("instance-saturation")["thresholdValue"] == 40 and cond("instance-saturation")["duration"] == "600s"
assert "> 10" in cond("cold-starts")["query"] and cond("cold-starts")["duration"] == "300s"
assert "RESOURCE_EXHAUSTED" in cond("vertex-quota-exhausted")["filter"]
assert cond("audio-session-errors")["thresholdValue"] == 0.1 and cond("audio-session-errors")["duration"] == "600s"
for name, a in alerts.items():
    assert a["displayName"] and a["documentation"]["content"], name
dash = load(root + "/dashboard.json")
titles = [t["widget"]["title"] for t in dash["mosaicLayout"]["tiles"]]
assert len(titles) == 9, titles
for word in ("WebSocket", "latency", "Instance", "CPU", "Memory", "Error", "Vertex AI API latency", "token", "SLO"):
    assert any(word.lower() in t.lower() for t in titles), word
tiles = [t["widget"] for t in dash["mosaicLayout"]["tiles"]]
def filters(w):
    return [d["timeSeriesQuery"]["timeSeriesFilter"] for d in w["xyChart"]["dataSets"]]
voice = "workload.googleapis.com/ai4joy.voice."
# Panel 1 is the total of open voice sockets (the app's gauge summed over instances), not concurrency.
first = filters(tiles[0])[0]
assert first["filter"] == f'metric.type="{voice}sockets.open"' and first["aggregation"]["crossSeriesReducer"] == "REDUCE_SUM"
assert not first["aggregation"]["groupByFields"]
assert "max_request_concurrencies" not in json.dumps(tiles[0])
# Panel 2 has the voice first-audio p50/p95/p99; panel 3 the audio service's min and max.
reducers = {f["aggregation"]["crossSeriesReducer"] for f in filters(tiles[1]) if "first_audio_latency" in f["filter"]}
assert reducers == {"REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_95", "REDUCE_PERCENTILE_99"}, reducers
assert [t["value"] for t in tiles[2]["xyChart"]["thresholds"]] == [2, 50]
assert any("voice.tokens" in f["filter"] for f in filters(tiles[7]))
for slo in ("audio-first-audio-latency", "audio-quality"):
    assert any(f"ai4joy-audio/serviceLevelObjectives/{slo}" in f["filter"] for f in filters(tiles[8])), slo
# The voice SLOs beside availability, their burn-rate alert, and the daily cost alert at 120%.
slos = {p.rsplit("/", 1)[1]: load(p) for p in glob.glob(root + "/slos/*--*.json")}
latency = slos["ai4joy-audio--audio-first-audio-latency.json"]
assert latency["goal"] == 0.95
cut = latency["serviceLevelIndicator"]["requestBased"]["distributionCut"]
assert cut["range"]["max"] == 1000 and "first_audio_latency" in cut["distributionFilter"]
quality = slos["ai4joy-audio--audio-quality.json"]
assert quality["goal"] == 0.98
assert 'audio="good"' in quality["serviceLevelIndicator"]["requestBased"]["goodTotalRatio"]["goodServiceFilter"]
burns = [c["conditionThreshold"]["filter"] for c in alerts["voice-slo-burn-rate"]["conditions"]]
assert any("audio-first-audio-latency" in f for f in burns) and any("audio-quality" in f for f in burns)
assert cond("daily-cost-overrun")["thresholdValue"] == 440 and "voice.cost" in cond("daily-cost-overrun")["filter"]
assert cond("daily-cost-overrun")["aggregations"][0]["alignmentPeriod"] == "86400s"
assert slos["ai4joy-api--api-availability.json"]["goal"] == 0.995
assert slos["ai4joy-api--api-latency.json"]["goal"] == 0.95
assert slos["ai4joy-api--api-latency.json"]["serviceLevelIndicator"]["requestBased"]["distributionCut"]["range"]["max"] == 1000
events = {"audio_session_started", "audio_session_ended", "ws_rejected", "gemini_error", "gemini_live_reconnect",
          "rollout_changed", "rollout_guard_tripped"}
seen = set()
for p in glob.glob(root + "/metrics/*.json"):
    m = load(p)
    assert m["name"] == p.rsplit("/", 1)[1][:-5]
    seen |= set(re.findall(r'jsonPayload.event="([a-z_]+)"', m["filter"]))
assert seen == events, seen ^ events
print("ok")
PY
  echo "${output}"
  [ "${status}" -eq 0 ]
}

@test "Dockerfile: python:3.11-slim, non-root, healthcheck, collectstatic, exec-form entry point" {
  df="${REPO}/Dockerfile"
  grep -q '^FROM python:3.11-slim' "${df}"
  grep -qE '^USER app$' "${df}"
  grep -q '^HEALTHCHECK ' "${df}"
  grep -q 'pip install --no-cache-dir -r requirements.txt' "${df}"
  grep -q 'DJANGO_SECRET_KEY=build python manage.py collectstatic --noinput' "${df}"
  grep -qx 'CMD \["python", "-m", "ai4joy.serve"\]' "${df}"
  grep -q 'PORT=8080' "${df}"
  # USER comes after the last RUN that needs root, and before CMD
  user_line="$(grep -n '^USER ' "${df}" | cut -d: -f1)"
  last_run="$(grep -n '^RUN ' "${df}" | tail -1 | cut -d: -f1)"
  [ "${user_line}" -gt "${last_run}" ]
  grep -qx '.venv' "${REPO}/.dockerignore"
  grep -qx '.git' "${REPO}/.dockerignore"
}

@test "the probes the deploy declares are the ones infra/README.md and the Dockerfile describe" {
  run "${INFRA}/deploy.sh" production --dry-run services
  [ "${status}" -eq 0 ]
  probes="$(grep -oE -- '--(startup|liveness)-probe=[^ ]+' <<<"${output}" | cut -d= -f2- | tr -d '\\')"
  [ "$(wc -l <<<"${probes}")" -eq 4 ]
  while IFS= read -r p; do
    grep -qF -- "\`${p}\`" "${INFRA}/README.md" || { echo "README does not list ${p}"; return 1; }
  done <<<"${probes}"
  grep -q 'Cloud Run ignores HEALTHCHECK: there the services declare' "${REPO}/Dockerfile"
  grep -q 'their own HTTP startup and liveness probes on the same paths' "${REPO}/Dockerfile"
}

@test "env files carry the guide's tfvars values" {
  p="${INFRA}/env/production.env"
  for kv in REGION=us-central1 ENVIRONMENT=production DOMAIN_NAME=app.example.com AUDIO_MIN_INSTANCES=2 \
    AUDIO_MAX_INSTANCES=50 AUDIO_CONCURRENCY=80 NOTIFICATION_EMAIL=devops@example.com ENABLE_CLOUD_ARMOR=true; do
    grep -qx "${kv}" "${p}" || { echo "missing ${kv}"; return 1; }
  done
  for e in dev staging production; do
    [ -f "${INFRA}/env/${e}.env" ]
    grep -qx "ENVIRONMENT=${e}" "${INFRA}/env/${e}.env"
  done
}

@test "the app's Firestore index file, when present, is readable by the deploy" {
  real="${REPO}/improv/firestore/indexes.json"
  if [[ ! -f "${real}" ]]; then
    skip "SKIPPED LOUDLY: ${real} does not exist yet; the deploy tests use the fixture copy"
  fi
  empty="${BATS_TEST_TMPDIR}/empty.json"
  echo '[]' >"${empty}"
  run python3 "${INFRA}/firestore_indexes.py" composite "${real}" "${empty}"
  [ "${status}" -eq 0 ]
  run python3 "${INFRA}/firestore_indexes.py" overrides "${real}"
  [ "${status}" -eq 0 ]
  # without FIRESTORE_INDEX_FILE the deploy reads the app's file: one create per index in it
  want="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["indexes"]))' "${real}")"
  unset FIRESTORE_INDEX_FILE
  run "${INFRA}/deploy.sh" production --dry-run data
  [ "${status}" -eq 0 ]
  [ "$(grep -c '^+ gcloud firestore indexes composite create' <<<"${output}")" -eq "${want}" ]
}
