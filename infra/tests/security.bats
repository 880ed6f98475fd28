#!/usr/bin/env bats
# Opt-in VPC-SC, Cloud Armor preview/enforce switching, the monthly rotation run, the
# 7-day disable of old secret versions, the Data Access merge and the Vertex AI quota request.

setup() {
  load helper
  use_state "${BATS_TEST_TMPDIR}/state"
  export ENV_DIR="${BATS_TEST_TMPDIR}/env"
  make_env_dir "${ENV_DIR}"
}

# The pytest wrapper checks these calls with the real gcloud parser too.
teardown() {
  if [[ -n "${INFRA_PARSE_EXPORT:-}" && -f "${STUB_STATE_DIR}/calls.log" ]]; then
    mkdir -p "${INFRA_PARSE_EXPORT}"
    cat "${STUB_STATE_DIR}/calls.log" >>"${INFRA_PARSE_EXPORT}/security-calls.log"
  fi
}

@test "vpc-sc: enabled with an organisation, it finds or creates the access policy and the perimeter" {
  sed -i 's/^ENABLE_VPC_SC=.*/ENABLE_VPC_SC=true/; s/^ORGANIZATION_ID=.*/ORGANIZATION_ID=987654321/' "${ENV_DIR}/staging.env"
  run "${INFRA}/deploy.sh" staging vpc-sc
  echo "${output}"
  [ "${status}" -eq 0 ]
  assert_line_has "$(calls_matching "${STUB_STATE_DIR}/calls.log" '^gcloud access-context-manager policies create ')" \
    --organization=987654321
  line="$(calls_matching "${STUB_STATE_DIR}/calls.log" '^gcloud access-context-manager perimeters create ai4joy_perimeter ')"
  assert_line_has "${line}" --resources=projects/123456789012 \
    --restricted-services=aiplatform.googleapis.com,secretmanager.googleapis.com --perimeter-type=regular
  [[ "${line}" == *" --policy=555000111 "* ]]
  # idempotent: a second run creates nothing
  : >"${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/deploy.sh" staging vpc-sc
  [ "${status}" -eq 0 ]
  run grep -c ' create ' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
}

@test "vpc-sc: enabled without a policy or organisation is a clear error before any change" {
  sed -i 's/^ENABLE_VPC_SC=.*/ENABLE_VPC_SC=true/' "${ENV_DIR}/staging.env"
  run "${INFRA}/deploy.sh" staging vpc-sc
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"ENABLE_VPC_SC=true needs ACCESS_POLICY_ID or ORGANIZATION_ID in infra/env/staging.env"* ]]
  run grep -c 'create' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
}

@test "cloud armor: preview where the env file says so; switching it to enforce updates the rules once" {
  for bs in audio-backend-service api-backend-service; do
    gcloud compute backend-services create "${bs}" --global --project=ai4joy-staging >/dev/null
  done
  grep -qx 'ARMOR_WAF_PREVIEW=true' "${ENV_DIR}/staging.env"
  run "${INFRA}/deploy.sh" staging cloud-armor
  [ "${status}" -eq 0 ]
  [ "$(grep -c 'rules create .*evaluatePreconfiguredWaf.* --preview' "${STUB_STATE_DIR}/calls.log")" -eq 8 ]
  sed -i 's/^ARMOR_WAF_PREVIEW=.*/ARMOR_WAF_PREVIEW=false/' "${ENV_DIR}/staging.env"
  : >"${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/deploy.sh" staging cloud-armor
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"OWASP CRS rules enforced (ARMOR_WAF_PREVIEW=false)"* ]]
  [ "$(grep -c '^gcloud compute security-policies rules update 10[0-9][0-9] --security-policy=ai4joy-security-policy --no-preview ' "${STUB_STATE_DIR}/calls.log")" -eq 8 ]
  run grep -c 'rules create' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
  : >"${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/deploy.sh" staging cloud-armor
  [ "${status}" -eq 0 ]
  run grep -c 'rules update' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
}

# Two services with one revision each, and two old versions of the Django key.
rotation_fixture() {
  gcloud run deploy ai4joy-audio-service --image=x --project=ai4joy-production >/dev/null
  gcloud run deploy ai4joy-api-service --image=x --project=ai4joy-production >/dev/null
  printf 'a' | STUB_SECRET_VERSION_AGE_DAYS=40 gcloud secrets versions add django-secret-key --data-file=- --project=ai4joy-production
  printf 'b' | STUB_SECRET_VERSION_AGE_DAYS=10 gcloud secrets versions add django-secret-key --data-file=- --project=ai4joy-production
  : >"${STUB_STATE_DIR}/calls.log"
}

enabled_versions() {
  gcloud secrets versions list django-secret-key --filter=state=ENABLED '--format=value(name)' --project=ai4joy-production \
    | sed 's|.*/||' | tr '\n' ' '
}

@test "rotation-run: new key version, new revisions serving, smoke test, versions older than 7 days disabled" {
  rotation_fixture
  run "${INFRA}/ops.sh" production rotation-run
  echo "${output}"
  [ "${status}" -eq 0 ]
  grep -q '^gcloud secrets versions add django-secret-key --data-file=- .*# stdin: 64 bytes' "${STUB_STATE_DIR}/calls.log"
  for svc in ai4joy-audio-service ai4joy-api-service; do
    grep -q "^gcloud run services update ${svc} --region=us-central1 --update-env-vars=SECRET_ROTATED_AT=" "${STUB_STATE_DIR}/calls.log"
    [ "$(gcloud run services describe "${svc}" --region=us-central1 --format='value(name)' --project=ai4joy-production)" = "${svc}" ]
  done
  [[ "${output}" == *"smoke test passed"* ]]
  # versions 1 (40 days) and 2 (10 days) are disabled; 3, the new "latest", stays
  [ "$(enabled_versions)" = "3 " ]
  [[ "${output}" == *"django-secret-key: 2 version(s) older than 7 days disabled"* ]]
}

@test "rotation-run: a failing smoke test rolls traffic back and disables nothing" {
  rotation_fixture
  STUB_SMOKE_MISROUTED=1 run "${INFRA}/ops.sh" production rotation-run
  echo "${output}"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"rotation-run: smoke test FAILED"* ]]
  grep -q '^gcloud run services update-traffic ai4joy-audio-service --region=us-central1 --to-revisions=ai4joy-audio-service-00001-rev=100 ' "${STUB_STATE_DIR}/calls.log"
  grep -q '^gcloud run services update-traffic ai4joy-api-service --region=us-central1 --to-revisions=ai4joy-api-service-00001-rev=100 ' "${STUB_STATE_DIR}/calls.log"
  [ "$(enabled_versions)" = "1 2 3 " ]
}

@test "rotation-run refuses while traffic is pinned (a rollback or maintenance in progress)" {
  rotation_fixture
  "${INFRA}/ops.sh" production rollback audio ai4joy-audio-service-00001-rev 2>/dev/null
  : >"${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/ops.sh" production rotation-run
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"ai4joy-audio-service traffic is pinned (ai4joy-audio-service-00001-rev=100%)"* ]]
  run grep -c 'secrets versions add' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
}

@test "disable-old-versions keeps the newest version however old, and checks DAYS" {
  printf 'a' | STUB_SECRET_VERSION_AGE_DAYS=40 gcloud secrets versions add adk-api-key --data-file=- --project=ai4joy-production
  printf 'b' | STUB_SECRET_VERSION_AGE_DAYS=20 gcloud secrets versions add adk-api-key --data-file=- --project=ai4joy-production
  run "${INFRA}/ops.sh" production disable-old-versions adk-api-key
  [ "${status}" -eq 0 ]
  grep -q '^gcloud secrets versions disable 1 --secret=adk-api-key ' "${STUB_STATE_DIR}/calls.log"
  run grep -c 'versions disable 2 ' "${STUB_STATE_DIR}/calls.log"
  [ "${output}" = 0 ]
  run "${INFRA}/ops.sh" production disable-old-versions adk-api-key week
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"DAYS must be a number, not 'week'"* ]]
}

@test "audit_configs.jq keeps bindings, etag, other services and exemptions; adds only what is missing" {
  policy='{"bindings":[{"role":"roles/owner","members":["user:a@example.com"]}],"etag":"BwX","version":3,
    "auditConfigs":[{"service":"storage.googleapis.com","auditLogConfigs":[{"logType":"DATA_READ"}]},
    {"service":"aiplatform.googleapis.com","auditLogConfigs":[{"logType":"DATA_READ","exemptedMembers":["user:b@example.com"]}]}]}'
  run jq -c -S -f "${INFRA}/policy/audit_configs.jq" --args aiplatform.googleapis.com firestore.googleapis.com <<<"${policy}"
  [ "${status}" -eq 0 ]
  python3 - "${output}" <<'PY'
import json, sys
p = json.loads(sys.argv[1])
assert p["bindings"] == [{"members": ["user:a@example.com"], "role": "roles/owner"}] and p["etag"] == "BwX" and p["version"] == 3
c = {x["service"]: x["auditLogConfigs"] for x in p["auditConfigs"]}
assert c["storage.googleapis.com"] == [{"logType": "DATA_READ"}]
assert {"exemptedMembers": ["user:b@example.com"], "logType": "DATA_READ"} in c["aiplatform.googleapis.com"]
assert sorted(l["logType"] for l in c["aiplatform.googleapis.com"]) == ["ADMIN_READ", "DATA_READ", "DATA_WRITE"]
assert sorted(l["logType"] for l in c["firestore.googleapis.com"]) == ["ADMIN_READ", "DATA_READ", "DATA_WRITE"]
PY
  # merging twice changes nothing
  once="$(jq -S -f "${INFRA}/policy/audit_configs.jq" --args aiplatform.googleapis.com <<<"${policy}")"
  twice="$(jq -S -f "${INFRA}/policy/audit_configs.jq" --args aiplatform.googleapis.com <<<"${once}")"
  [ "${once}" = "${twice}" ]
}

@test "vertex-quota: list, and request files a quota preference (no 'there is no API')" {
  run "${INFRA}/ops.sh" production vertex-quota list
  [ "${status}" -eq 0 ]
  grep -q '^gcloud beta quotas info list --service=aiplatform.googleapis.com --project=ai4joy-production' "${STUB_STATE_DIR}/calls.log"
  run "${INFRA}/ops.sh" production vertex-quota request GenerateContentRequestsPerMinutePerProjectPerRegion 600
  echo "${output}"
  [ "${status}" -eq 0 ]
  line="$(calls_matching "${STUB_STATE_DIR}/calls.log" '^gcloud beta quotas preferences create ')"
  assert_line_has "${line}" --service=aiplatform.googleapis.com \
    --quota-id=GenerateContentRequestsPerMinutePerProjectPerRegion --preferred-value=600 \
    --dimensions=region=us-central1 --email=devops@example.com --project=ai4joy-production
  [[ "${line}" == *"--preference-id=generatecontentrequestsperminuteperprojectperregion-"* ]]
  run "${INFRA}/ops.sh" production vertex-quota request GenerateContent lots
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"VALUE must be a number, not 'lots'"* ]]
}
