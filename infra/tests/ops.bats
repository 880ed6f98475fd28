#!/usr/bin/env bats
# Runbook operations against the stub (services created directly through the stub).

setup() {
  load helper
  use_state "${BATS_TEST_TMPDIR}/state"
  # Two revisions of the real image (00001, 00002) for each service.
  gcloud run deploy ai4joy-audio-service --image=x --project=ai4joy-production >/dev/null
  gcloud run deploy ai4joy-audio-service --image=x --project=ai4joy-production >/dev/null
  gcloud run deploy ai4joy-api-service --image=x --project=ai4joy-production >/dev/null
  gcloud secrets create adk-api-key --project=ai4joy-production >/dev/null
  : >"${STUB_STATE_DIR}/calls.log"
}

@test "rollback sends all traffic to the named revision" {
  run "${INFRA}/ops.sh" production rollback audio ai4joy-audio-service-00001-rev
  [ "${status}" -eq 0 ]
  grep -q '^gcloud run services update-traffic ai4joy-audio-service --region=us-central1 --to-revisions=ai4joy-audio-service-00001-rev=100 ' "${STUB_STATE_DIR}/calls.log"
}

@test "promote sends traffic to the latest revision" {
  run "${INFRA}/ops.sh" production promote api
  [ "${status}" -eq 0 ]
  grep -q '^gcloud run services update-traffic ai4joy-api-service --region=us-central1 --to-latest ' "${STUB_STATE_DIR}/calls.log"
}

@test "maintenance on deploys the maintenance image; off goes back to the newest real revision" {
  run "${INFRA}/ops.sh" production maintenance on audio
  [ "${status}" -eq 0 ]
  grep -q '^gcloud run deploy ai4joy-audio-service --image=us-docker.pkg.dev/cloudrun/container/hello .*--tag=maintenance --no-traffic' "${STUB_STATE_DIR}/calls.log"
  grep -q 'update-traffic ai4joy-audio-service .*--to-tags=maintenance=100' "${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/ops.sh" production maintenance off audio
  [ "${status}" -eq 0 ]
  grep -q 'update-traffic ai4joy-audio-service .*--to-revisions=ai4joy-audio-service-00002-rev=100' "${STUB_STATE_DIR}/calls.log"
}

@test "maintenance off reads the whole revision listing, however long (no reader stops early)" {
  use_state "${BATS_TEST_TMPDIR}/long"
  # A service with a long history: the listing is far bigger than a pipe buffer.
  STUB_SEED_REVISIONS=3000 gcloud run deploy ai4joy-audio-service --image=real --project=ai4joy-production >/dev/null
  run "${INFRA}/ops.sh" production maintenance on audio
  [ "${status}" -eq 0 ]
  : >"${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/ops.sh" production maintenance off audio
  echo "${output}"
  [ "${status}" -eq 0 ]
  grep -q 'update-traffic ai4joy-audio-service .*--to-revisions=ai4joy-audio-service-03001-rev=100' "${STUB_STATE_DIR}/calls.log"
  # gcloud swallows EPIPE (exit 0), so the stub records it: nobody closed the pipe early.
  run grep -c '^# EPIPE' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
  # A producer that dies of SIGPIPE, as most tools do, must not fail it either (pipefail).
  gcloud run deploy ai4joy-audio-service --image=real --project=ai4joy-production >/dev/null
  run "${INFRA}/ops.sh" production maintenance on audio
  STUB_EPIPE=sigpipe run "${INFRA}/ops.sh" production maintenance off audio
  echo "${output}"
  [ "${status}" -eq 0 ]
  grep -q 'update-traffic ai4joy-audio-service .*--to-revisions=ai4joy-audio-service-03003-rev=100' "${STUB_STATE_DIR}/calls.log"
}

@test "the stub behaves like gcloud 528 on a closed pipe: no traceback, exit 0, EPIPE recorded" {
  use_state "${BATS_TEST_TMPDIR}/pipe"
  STUB_SEED_REVISIONS=3000 gcloud run deploy ai4joy-api-service --image=x --project=p >/dev/null
  run bash -c 'set -o pipefail; gcloud run revisions list --service=ai4joy-api-service --project=p 2>"$1" | awk "{print; exit}"; echo "status=$?"' _ "${BATS_TEST_TMPDIR}/err"
  [[ "${output}" == *"ai4joy-api-service-03001-rev"* ]]
  [[ "${output}" == *"status=0"* ]]
  [ ! -s "${BATS_TEST_TMPDIR}/err" ]
  grep -q '^# EPIPE: the reader closed the pipe after [0-9]* of 3001 lines' "${STUB_STATE_DIR}/calls.log"
  # ... and like a plain tool with STUB_EPIPE=sigpipe: the old early-exit pattern fails under pipefail.
  STUB_EPIPE=sigpipe run bash -c 'set -o pipefail; gcloud run revisions list --service=ai4joy-api-service --project=p | awk "{print; exit}"'
  [ "${status}" -eq 141 ]
}

@test "scale applies the runbook knobs" {
  run "${INFRA}/ops.sh" production scale audio --min=5 --max=100 --cpu=4 --memory=2Gi
  [ "${status}" -eq 0 ]
  grep -q '^gcloud run services update ai4joy-audio-service --region=us-central1 --min-instances=5 --max-instances=100 --cpu=4 --memory=2Gi ' "${STUB_STATE_DIR}/calls.log"
  [[ "${output}" == *"make them permanent in infra/env/production.env"* ]]
}

@test "rotate-secret reads STDIN, never logs the value, and stages no-traffic revisions" {
  run bash -c "printf 'new-key-value-987' | '${INFRA}/ops.sh' production rotate-secret adk-api-key"
  [ "${status}" -eq 0 ]
  [[ "${output}" != *"new-key-value-987"* ]]
  run grep -c 'new-key-value-987' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
  grep -q '^gcloud secrets versions add adk-api-key --data-file=- .*# stdin: 17 bytes' "${STUB_STATE_DIR}/calls.log"
  [ "$(grep -c 'run services update .*--no-traffic --tag=rotated' "${STUB_STATE_DIR}/calls.log")" -eq 2 ]
}

@test "rotate-secret refuses an empty value" {
  run bash -c "printf '' | '${INFRA}/ops.sh' production rotate-secret adk-api-key"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"the value on STDIN is empty"* ]]
}

@test "disable-secret-version disables an old version, never latest" {
  for v in 1 2 3; do
    printf 'v%s' "${v}" | gcloud secrets versions add adk-api-key --data-file=- --project=ai4joy-production
  done
  run "${INFRA}/ops.sh" production disable-secret-version adk-api-key 3
  [ "${status}" -eq 0 ]
  grep -q '^gcloud secrets versions disable 3 --secret=adk-api-key ' "${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/ops.sh" production disable-secret-version adk-api-key latest
  [ "${status}" -eq 1 ]
}

@test "smoke test passes when /health, /ws/health and the WebSocket route answer as expected" {
  run "${INFRA}/ops.sh" production smoke
  echo "${output}"
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"GET https://app.example.com/health: 200 healthy (api)"* ]]
  [[ "${output}" == *"GET https://app.example.com/ws/health: 200 healthy (audio)"* ]]
  [[ "${output}" == *"anonymous upgrade refused with HTTP 403"* ]]
}

@test "smoke test fails when /ws/health is not routed to the audio service" {
  STUB_SMOKE_MISROUTED=1 run "${INFRA}/ops.sh" production smoke
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"smoke test FAILED"* ]]
}

@test "revisions lists revisions and traffic" {
  run "${INFRA}/ops.sh" production revisions audio
  [ "${status}" -eq 0 ]
  grep -q '^gcloud run revisions list --service=ai4joy-audio-service' "${STUB_STATE_DIR}/calls.log"
}
