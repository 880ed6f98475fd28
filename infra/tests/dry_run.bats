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
  [ "${phases}" = "prerequisites data build services load-balancer cloud-armor observability security vpc-sc " ]
  # every mutating step is in the plan, in order
  first_api="$(grep -n -m1 '^+ gcloud services enable' <<<"${output}" | cut -d: -f1)"
  deploy_audio="$(grep -n -m1 '^+ gcloud run deploy ai4joy-audio-service' <<<"${output}" | cut -d: -f1)"
  lb="$(grep -n -m1 '^+ gcloud compute forwarding-rules create ai4joy-https-rule' <<<"${output}" | cut -d: -f1)"
  slo="$(grep -n -m1 '^+ curl -X POST https://monitoring.googleapis.com' <<<"${output}" | cut -d: -f1)"
  [ "${first_api}" -lt "${deploy_audio}" ] && [ "${deploy_audio}" -lt "${lb}" ] && [ "${lb}" -lt "${slo}" ]
  grep -q '^+ gcloud run jobs execute ai4joy-migrate' <<<"${output}"
  grep -q '^+ gcloud alpha monitoring policies create' <<<"${output}"
  grep -q 'Type: A   Name: app.example.com   Value: LB_IP' <<<"${output}"
  # the guide's later steps, in its order: log retention (cost), audit logs, rotation, VPC-SC
  retention="$(grep -n -m1 '^+ gcloud logging buckets update _Default .*--retention-days=7' <<<"${output}" | cut -d: -f1)"
  audit="$(grep -n -m1 '^+ gcloud projects set-iam-policy ai4joy-production ' <<<"${output}" | cut -d: -f1)"
  rotation="$(grep -n -m1 '^+ gcloud scheduler jobs create http ai4joy-secret-rotation-monthly ' <<<"${output}" | cut -d: -f1)"
  vpcsc="$(grep -n -m1 '^# vpc-sc: off (ENABLE_VPC_SC=false); opt-in, needs an organisation' <<<"${output}" | cut -d: -f1)"
  [ "${slo}" -lt "${retention}" ] && [ "${retention}" -lt "${audit}" ] && [ "${audit}" -lt "${rotation}" ] \
    && [ "${rotation}" -lt "${vpcsc}" ]
  # the operator steps of the guide appear where the guide has them
  quota="$(grep -n -m1 '^# guide 1.3: Vertex AI quota: infra/ops.sh production vertex-quota list' <<<"${output}" | cut -d: -f1)"
  registry="$(grep -n -m1 '^+ gcloud artifacts repositories create' <<<"${output}" | cut -d: -f1)"
  phase4="$(grep -n -m1 '^# guide Phase 4 .*infra/ops.sh production smoke; make loadtest HOST=https://app.example.com' <<<"${output}" | cut -d: -f1)"
  [ "${first_api}" -lt "${quota}" ] && [ "${quota}" -lt "${registry}" ] && [ "${vpcsc}" -lt "${phase4}" ]
  # WAF rules enforce in production
  [ "$(grep -c '^+ gcloud compute security-policies rules create .*evaluatePreconfiguredWaf' <<<"${output}")" -eq 8 ]
  run grep -E '^\+ gcloud compute security-policies rules create .*evaluatePreconfiguredWaf.*--preview' <<<"${output}"
  [ -z "${output}" ]
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
  # the Cloud SQL password is in a flags file, never on the command line
  grep -q '^+ gcloud sql users create ai4joy --instance=ai4joy-db --flags-file=' <<<"${output}"
  run grep -c -- '--password' <<<"${output}"
  [ "${output}" = 0 ]
}

@test "each environment has its own sizing from its env file" {
  run "${INFRA}/deploy.sh" dev --dry-run services
  [ "${status}" -eq 0 ]
  line="$(grep '^+ gcloud run deploy ai4joy-audio-service' <<<"${output}")"
  [[ "${line}" == *"--max-instances=5 "* && "${line}" == *"--project=ai4joy-dev "* ]]
  [[ "${line}" == *"--concurrency=80 "* && "${line}" == *"--timeout=3600 "* ]]
}
