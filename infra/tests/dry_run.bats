#!/usr/bin/env bats
# --dry-run prints the whole ordered plan and calls nothing.

setup() {
  load helper
  use_state "${BATS_TEST_TMPDIR}/state"
}

@test "dry run prints the ordered plan of every phase and calls nothing" {
  run "${INFRA}/deploy.sh" production --dry-run
  [ "${status}" -eq 0 ]
  [ ! -s "${STUB_STATE_DIR}/calls.log" ]
  phases="$(grep '^# --- phase: ' <<<"${output}" | sed 's/# --- phase: //' | tr '\n' ' ')"
  [ "${phases}" = "prerequisites data build services load-balancer cloud-armor observability " ]
  # every mutating step is in the plan, in order
  first_api="$(grep -n -m1 '^+ gcloud services enable' <<<"${output}" | cut -d: -f1)"
  deploy_audio="$(grep -n -m1 '^+ gcloud run deploy ai4joy-audio-service' <<<"${output}" | cut -d: -f1)"
  lb="$(grep -n -m1 '^+ gcloud compute forwarding-rules create ai4joy-https-rule' <<<"${output}" | cut -d: -f1)"
  slo="$(grep -n -m1 '^+ curl -X POST https://monitoring.googleapis.com' <<<"${output}" | cut -d: -f1)"
  [ "${first_api}" -lt "${deploy_audio}" ] && [ "${deploy_audio}" -lt "${lb}" ] && [ "${lb}" -lt "${slo}" ]
  grep -q '^+ gcloud run jobs execute ai4joy-migrate' <<<"${output}"
  grep -q '^+ gcloud alpha monitoring policies create' <<<"${output}"
  grep -q 'Type: A   Name: app.example.com   Value: LB_IP' <<<"${output}"
}

@test "dry run works without gcloud installed" {
  GCLOUD=/nonexistent/gcloud run "${INFRA}/deploy.sh" dev --dry-run
  [ "${status}" -eq 0 ]
  grep -q '^+ /nonexistent/gcloud run deploy ai4joy-audio-service' <<<"${output}"
}

@test "dry run of one phase prints only that phase" {
  run "${INFRA}/deploy.sh" staging --dry-run load-balancer
  [ "${status}" -eq 0 ]
  [ "$(grep -c '^# --- phase: ' <<<"${output}")" -eq 1 ]
  grep -q '^+ gcloud compute url-maps add-path-matcher' <<<"${output}"
  run grep -E '^\+ gcloud (run|services|firestore) ' <<<"${output}"
  [ -z "${output}" ]
}

@test "dry run masks secrets and passwords" {
  run "${INFRA}/deploy.sh" production --dry-run prerequisites data
  [ "${status}" -eq 0 ]
  grep -q 'secrets versions add django-secret-key --data-file=- .* <<< \*\*\*\*' <<<"${output}"
  grep -q -- '--password=\\\*\\\*\\\*\\\*' <<<"${output}"
  run grep -E -- '--password=[A-Za-z0-9]{8,}' <<<"${output}"
  [ -z "${output}" ]
}

@test "each environment has its own sizing from its env file" {
  run "${INFRA}/deploy.sh" dev --dry-run services
  [ "${status}" -eq 0 ]
  line="$(grep '^+ gcloud run deploy ai4joy-audio-service' <<<"${output}")"
  [[ "${line}" == *"--max-instances=5 "* && "${line}" == *"--project=ai4joy-dev "* ]]
  [[ "${line}" == *"--concurrency=20 "* && "${line}" == *"--timeout=3600 "* ]]
}
