#!/usr/bin/env bats
# Bad input fails early with a clear message and without touching the cloud.

setup() {
  load helper
  use_state "${BATS_TEST_TMPDIR}/state"
  export ENV_DIR="${BATS_TEST_TMPDIR}/env"
  make_env_dir "${ENV_DIR}"
}

@test "no environment: usage and a clear error" {
  run "${INFRA}/deploy.sh"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"Usage: infra/deploy.sh ENV"* ]]
  [[ "${output}" == *"missing ENV (one of: dev production staging)"* ]]
}

@test "unknown environment names the known ones" {
  run "${INFRA}/deploy.sh" qa --dry-run
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"unknown environment 'qa'"* && "${output}" == *"known: dev production staging"* ]]
  [ ! -s "${STUB_STATE_DIR}/calls.log" ]
}

@test "a missing config value is named, even if the caller's environment has it" {
  sed -i '/^AUDIO_CONCURRENCY=/d; s/^REGION=.*/REGION=/' "${ENV_DIR}/production.env"
  AUDIO_CONCURRENCY=15 REGION=us-central1 run "${INFRA}/deploy.sh" production
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"missing required value(s): REGION AUDIO_CONCURRENCY"* ]]
  [ ! -s "${STUB_STATE_DIR}/calls.log" ]
}

@test "a config line that is not KEY=VALUE is refused (the file is never executed)" {
  echo 'rm -rf /tmp/x' >>"${ENV_DIR}/staging.env"
  run "${INFRA}/deploy.sh" staging --dry-run
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"cannot parse line: rm -rf /tmp/x"* ]]
}

@test "ENVIRONMENT must match the file name" {
  sed -i 's/^ENVIRONMENT=.*/ENVIRONMENT=production/' "${ENV_DIR}/dev.env"
  run "${INFRA}/deploy.sh" dev --dry-run
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"ENVIRONMENT=production does not match the file name dev"* ]]
}

@test "unknown phase and unknown option are refused before any call" {
  run "${INFRA}/deploy.sh" production databse
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"unknown phase 'databse'"* ]]
  run "${INFRA}/deploy.sh" production --dryrun
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"unknown option --dryrun"* ]]
  [ ! -s "${STUB_STATE_DIR}/calls.log" ]
}

@test "a gcloud error other than NOT_FOUND stops the run instead of creating" {
  STUB_FAIL="iam service-accounts describe" run "${INFRA}/deploy.sh" production prerequisites
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"PERMISSION_DENIED"* ]]
  run grep -c 'iam service-accounts create' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
}

@test "a failing create stops the run" {
  STUB_FAIL="artifacts repositories create" run "${INFRA}/deploy.sh" production prerequisites
  [ "${status}" -ne 0 ]
  run grep -c 'iam service-accounts' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
}

@test "services without a built image: clear error, nothing deployed" {
  run "${INFRA}/deploy.sh" production services
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"is not in Artifact Registry: run 'infra/deploy.sh production build' first"* ]]
  run grep -c 'run deploy' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
}

@test "a broken Firestore index file is reported" {
  echo '{"indexes": [{"fields": []}]}' >"${BATS_TEST_TMPDIR}/bad.json"
  FIRESTORE_INDEX_FILE="${BATS_TEST_TMPDIR}/bad.json" run "${INFRA}/deploy.sh" production --dry-run data
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"index without collectionGroup"* ]]
}

@test "ops: unknown command and bad service are refused" {
  run "${INFRA}/ops.sh" production reboot
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"unknown command 'reboot'"* ]]
  run "${INFRA}/ops.sh" production rollback video rev-1
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"unknown service 'video'"* ]]
  run "${INFRA}/ops.sh" production scale audio --cpus=4
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"unknown knob '--cpus=4'"* ]]
}
