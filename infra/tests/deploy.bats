#!/usr/bin/env bats
# A full deploy of "production" against the stub gcloud/curl, run twice:
# the first run must create everything the guide lists with the guide's settings,
# the second must create nothing new.

setup_file() {
  load helper
  export ENV_DIR="${BATS_FILE_TMPDIR}/env"
  make_env_dir "${ENV_DIR}"
  use_state "${BATS_FILE_TMPDIR}/state"
  local s="${STUB_STATE_DIR}"
  # Operator steps before the first full deploy: prerequisites, then the OAuth secret.
  "${INFRA}/deploy.sh" production prerequisites >"${s}/prereq.out" 2>"${s}/prereq.err"
  printf 'oauth-secret-value-123' | "${INFRA}/ops.sh" production rotate-secret oauth-client-secret \
    >>"${s}/prereq.out" 2>>"${s}/prereq.err"
  "${INFRA}/deploy.sh" production >"${s}/first.out" 2>"${s}/first.err"
  cp "${s}/calls.log" "${s}/first.log"
  : >"${s}/calls.log"
  "${INFRA}/deploy.sh" production >"${s}/second.out" 2>"${s}/second.err"
  cp "${s}/calls.log" "${s}/second.log"
  : >"${s}/calls.log"
  if [[ -n "${INFRA_PARSE_EXPORT:-}" ]]; then
    mkdir -p "${INFRA_PARSE_EXPORT}"
    cp -r "${s}/files" "${INFRA_PARSE_EXPORT}/"
    sed "s|${s}/files/|${INFRA_PARSE_EXPORT}/files/|g" "${s}/first.log" >"${INFRA_PARSE_EXPORT}/deploy-calls.log"
  fi
}

setup() {
  load helper
  export ENV_DIR="${BATS_FILE_TMPDIR}/env"
  S="${BATS_FILE_TMPDIR}/state"
  FIRST="${S}/first.log"
  SECOND="${S}/second.log"
  export STUB_STATE_DIR="${S}"
}

@test "prerequisites: APIs, Artifact Registry, service accounts, custom role, IAM, secrets" {
  line="$(calls_matching "${FIRST}" '^gcloud services enable ')"
  assert_line_has "${line}" run.googleapis.com compute.googleapis.com aiplatform.googleapis.com \
    secretmanager.googleapis.com monitoring.googleapis.com logging.googleapis.com cloudtrace.googleapis.com \
    artifactregistry.googleapis.com firestore.googleapis.com redis.googleapis.com sqladmin.googleapis.com
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud artifacts repositories create ai4joy ')" \
    --repository-format=docker --location=us-central1
  calls_matching "${FIRST}" '^gcloud iam service-accounts create audio-service ' | grep -q .
  calls_matching "${FIRST}" '^gcloud iam service-accounts create api-service ' | grep -q .
  role="$(calls_matching "${FIRST}" '^gcloud iam roles create AudioServiceRole ')"
  [[ "${role}" == *aiplatform.endpoints.predict* && "${role}" == *datastore.entities.get* ]]
  # the runtime SAs get the custom role, not roles/editor
  calls_matching "${FIRST}" 'projects add-iam-policy-binding .*audio-service@.*--role=projects/ai4joy-production/roles/AudioServiceRole' | grep -q .
  run calls_matching "${FIRST}" 'roles/(editor|owner)'
  [ -z "${output}" ]
  for s in django-secret-key database-url oauth-client-secret adk-api-key; do
    assert_line_has "$(calls_matching "${FIRST}" "^gcloud secrets create ${s} ")" --replication-policy=automatic
  done
  # accessor bindings per secret; the OAuth secret only for the api
  calls_matching "${FIRST}" 'secrets add-iam-policy-binding adk-api-key --member=serviceAccount:audio-service@' | grep -q .
  calls_matching "${FIRST}" 'secrets add-iam-policy-binding oauth-client-secret --member=serviceAccount:api-service@' | grep -q .
  run calls_matching "${FIRST}" 'secrets add-iam-policy-binding oauth-client-secret --member=serviceAccount:audio-service@'
  [ -z "${output}" ]
}

@test "secret values go through STDIN and are never printed" {
  calls_matching "${FIRST}" '^gcloud secrets versions add django-secret-key --data-file=- .*# stdin: 64 bytes' | grep -q .
  calls_matching "${FIRST}" '^gcloud secrets versions add database-url --data-file=- .*# stdin: [0-9]+ bytes' | grep -q .
  calls_matching "${FIRST}" '^gcloud secrets versions add oauth-client-secret --data-file=- ' | grep -q .
  run grep -rl 'oauth-secret-value-123' "${S}"/*.log "${S}"/*.out "${S}"/*.err
  [ "${status}" -eq 1 ]
  # the generated SQL password reaches gcloud (in its flags file) but no log or printed output
  file="$(grep -oE -- '--flags-file=[^ ]+' "${FIRST}" | cut -d= -f2 | sed -n 1p)"
  password="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["--password"])' "${file}")"
  [ "${#password}" -eq 40 ]
  run grep -l -- "${password}" "${S}/first.out" "${S}/first.err" "${FIRST}"
  [ "${status}" -eq 1 ]
}

@test "data: Firestore native with PITR, backups, indexes from the index file, TTL on expires_at" {
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud firestore databases create ')" \
    --location=us-central1 --type=firestore-native --enable-pitr --delete-protection
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud firestore backups schedules create ')" \
    --recurrence=daily --retention=14d
  indexes="$(calls_matching "${FIRST}" '^gcloud firestore indexes composite create ')"
  [ "$(wc -l <<<"${indexes}")" -eq 3 ]
  grep -q -- '--collection-group=audio_sessions --query-scope=collection --field-config=field-path=user_id,order=ascending --field-config=field-path=created_at,order=descending' <<<"${indexes}"
  grep -q -- '--collection-group=audio_sessions --query-scope=collection --field-config=field-path=session_id,order=ascending --field-config=field-path=status,order=ascending' <<<"${indexes}"
  for c in sessions audio_sessions; do
    calls_matching "${FIRST}" "^gcloud firestore fields ttls update expires_at --collection-group=${c} .*--enable-ttl" | grep -q .
    calls_matching "${FIRST}" "^gcloud firestore indexes fields update expires_at --collection-group=${c} .*--disable-indexes" | grep -q .
  done
  # a fieldOverrides entry with "indexes": [] is exempted too
  calls_matching "${FIRST}" '^gcloud firestore indexes fields update transcript --collection-group=audio_sessions' | grep -q .
}

@test "data: VPC for Direct VPC egress, Memorystore Redis, Cloud SQL Postgres" {
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute networks subnets create ')" \
    --network=ai4joy-vpc --region=us-central1 --range=10.8.0.0/24
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud redis instances create ai4joy-channels ')" \
    --tier=standard --region=us-central1 --network=projects/ai4joy-production/global/networks/ai4joy-vpc
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud sql instances create ai4joy-db ')" \
    --database-version=POSTGRES_16 --availability-type=regional --enable-point-in-time-recovery
  calls_matching "${FIRST}" '^gcloud sql databases create ai4joy --instance=ai4joy-db' | grep -q .
  calls_matching "${FIRST}" '^gcloud sql users create ai4joy --instance=ai4joy-db' | grep -q .
}

@test "data: the Cloud SQL password goes through a private flags file, never a command line" {
  run grep -c -- '--password' "${FIRST}" "${SECOND}"
  [[ "${output}" == *"first.log:0"* && "${output}" == *"second.log:0"* ]]
  line="$(calls_matching "${FIRST}" '^gcloud sql users create ai4joy --instance=ai4joy-db ')"
  file="$(grep -oE -- '--flags-file=[^ ]+' <<<"${line}" | cut -d= -f2)"
  # the stub keeps a copy with the original's mode: readable by the deploying user only
  [ "$(stat -c %a "${file}")" = 600 ]
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["--password"]; assert len(p) == 40 and p.isalnum(), p' "${file}"
}

@test "build: Cloud Build pushes the image to Artifact Registry" {
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud builds submit ')" \
    --substitutions=_IMAGE=us-central1-docker.pkg.dev/ai4joy-production/ai4joy/ai4joy:test-tag
}

@test "services: the audio service has the guide's settings" {
  line="$(calls_matching "${FIRST}" '^gcloud run deploy ai4joy-audio-service ')"
  assert_line_has "${line}" --cpu=2 --memory=1Gi --concurrency=80 --min-instances=2 --max-instances=50 \
    --timeout=3600 --session-affinity --no-cpu-throttling --ingress=internal-and-cloud-load-balancing \
    --service-account=audio-service@ai4joy-production.iam.gserviceaccount.com --no-use-http2 \
    --image=us-central1-docker.pkg.dev/ai4joy-production/ai4joy/ai4joy:test-tag \
    --set-cloudsql-instances=ai4joy-production:us-central1:ai4joy-db \
    --network=ai4joy-vpc --subnet=ai4joy-run-egress --vpc-egress=private-ranges-only
  [[ "${line}" == *"--update-env-vars=SERVICE_ROLE=audio,"* ]]
}

@test "services: HTTP startup and liveness probes on /ws/health (audio) and /health (api)" {
  audio="$(calls_matching "${FIRST}" '^gcloud run deploy ai4joy-audio-service ')"
  assert_line_has "${audio}" \
    --startup-probe=httpGet.path=/ws/health,httpGet.port=8080,initialDelaySeconds=0,timeoutSeconds=3,periodSeconds=5,failureThreshold=24 \
    --liveness-probe=httpGet.path=/ws/health/live,httpGet.port=8080,timeoutSeconds=5,periodSeconds=60,failureThreshold=5
  api="$(calls_matching "${FIRST}" '^gcloud run deploy ai4joy-api-service ')"
  assert_line_has "${api}" \
    --startup-probe=httpGet.path=/health,httpGet.port=8080,initialDelaySeconds=0,timeoutSeconds=3,periodSeconds=3,failureThreshold=20 \
    --liveness-probe=httpGet.path=/health/live,httpGet.port=8080,timeoutSeconds=5,periodSeconds=30,failureThreshold=3
  # liveness on the audio service tolerates minutes of failure: a restart drops every open scene
  period="$(grep -oE -- '--liveness-probe=[^ ]*' <<<"${audio}" | grep -oE 'periodSeconds=[0-9]+' | cut -d= -f2)"
  threshold="$(grep -oE -- '--liveness-probe=[^ ]*' <<<"${audio}" | grep -oE 'failureThreshold=[0-9]+' | cut -d= -f2)"
  [ "$((period * threshold))" -ge 180 ]
}

@test "services: the api service has the guide's settings" {
  line="$(calls_matching "${FIRST}" '^gcloud run deploy ai4joy-api-service ')"
  assert_line_has "${line}" --cpu=1 --memory=512Mi --concurrency=80 --min-instances=0 --max-instances=100 \
    --timeout=30 --ingress=internal-and-cloud-load-balancing \
    --service-account=api-service@ai4joy-production.iam.gserviceaccount.com
  refute_in "${line}" --session-affinity --no-cpu-throttling
  [[ "${line}" == *"--update-env-vars=SERVICE_ROLE=api,"* ]]
  [[ "${line}" == *"GOOGLE_OAUTH_CLIENT_SECRET=oauth-client-secret:latest"* ]]
}

@test "services: env vars with --update-env-vars (never --set-env-vars), secrets with --set-secrets" {
  run grep -c -- '--set-env-vars' "${FIRST}"
  [ "${output}" = 0 ]
  for svc in ai4joy-audio-service ai4joy-api-service; do
    line="$(calls_matching "${FIRST}" "^gcloud run deploy ${svc} ")"
    env="$(grep -oE -- '--update-env-vars=[^ ]+' <<<"${line}")"
    for kv in GCP_PROJECT_ID=ai4joy-production VERTEX_AI_LOCATION=us-central1 WEBSOCKET_TIMEOUT=3600 \
      WEBSOCKET_PING_INTERVAL=30 SESSION_STORE=firestore GEMINI_BACKEND=vertex REDIS_URL=redis://10.0.0.3:6379/0 \
      ALLOWED_HOSTS=app.example.com CSRF_TRUSTED_ORIGINS=https://app.example.com DJANGO_DEBUG=false \
      ACCOUNT_EMAIL_LOGIN=false GOOGLE_OAUTH_CLIENT_ID=test-client.apps.googleusercontent.com DRAIN_TIMEOUT=8 \
      OTEL_EXPORTER=gcp VOICE_DAILY_BUDGET_USD=367; do
      [[ ",${env#--update-env-vars=}," == *",${kv},"* ]] || { echo "${svc}: missing ${kv}"; return 1; }
    done
    [[ "${line}" == *"--set-secrets=DJANGO_SECRET_KEY=django-secret-key:latest,DATABASE_URL=database-url:latest"* ]]
  done
}

@test "services: migrations run as a job before the services deploy; rollout guard every minute" {
  job="$(calls_matching "${FIRST}" '^gcloud run jobs deploy ai4joy-migrate ')"
  assert_line_has "${job}" --command=python --args=manage.py,migrate,--noinput
  exec_line="$(line_no "${FIRST}" '^gcloud run jobs execute ai4joy-migrate .*--wait')"
  audio_line="$(line_no "${FIRST}" '^gcloud run deploy ai4joy-audio-service ')"
  api_line="$(line_no "${FIRST}" '^gcloud run deploy ai4joy-api-service ')"
  [ "${exec_line}" -lt "${audio_line}" ]
  [ "${exec_line}" -lt "${api_line}" ]
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud run jobs deploy ai4joy-rollout-guard ')" \
    --command=python --args=manage.py,rollout,guard
  sched="$(calls_matching "${FIRST}" '^gcloud scheduler jobs create http ai4joy-rollout-guard-every-minute ')"
  [[ "${sched}" == *"'--schedule=* * * * *'"* ]]
  [[ "${sched}" == *"/jobs/ai4joy-rollout-guard:run"* ]]
  calls_matching "${FIRST}" 'run jobs add-iam-policy-binding ai4joy-rollout-guard .*--role=roles/run.invoker' | grep -q .
}

@test "load balancer: serverless NEGs, bare backend services, path rules, cert, proxy, rules" {
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute addresses create ai4joy-lb-ip ')" --global
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute network-endpoint-groups create ai4joy-audio-neg ')" \
    --network-endpoint-type=serverless --cloud-run-service=ai4joy-audio-service --region=us-central1
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute network-endpoint-groups create ai4joy-api-neg ')" \
    --network-endpoint-type=serverless --cloud-run-service=ai4joy-api-service
  for bs in audio-backend-service api-backend-service; do
    line="$(calls_matching "${FIRST}" "^gcloud compute backend-services create ${bs} ")"
    assert_line_has "${line}" --global --load-balancing-scheme=EXTERNAL_MANAGED
    # serverless NEG backends: no protocol, no timeout, no affinity, no health check
    refute_in "${line}" --protocol --timeout --session-affinity --health-checks --port-name
    calls_matching "${FIRST}" "^gcloud compute backend-services add-backend ${bs} " | grep -q .
  done
  run grep -E -- 'backend-services .*(--protocol|--timeout|--session-affinity)' "${FIRST}"
  [ -z "${output}" ]
  pm="$(calls_matching "${FIRST}" '^gcloud compute url-maps add-path-matcher ai4joy-url-map ')"
  assert_line_has "${pm}" --default-service=api-backend-service --new-hosts=app.example.com
  [[ "${pm}" == *"/ws/audio/*=audio-backend-service"* && "${pm}" == *"/ws/health=audio-backend-service"* ]]
  [[ "${pm}" == *"/api/*=api-backend-service"* && "${pm}" == *"/health=api-backend-service"* ]]
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute url-maps create ai4joy-url-map ')" \
    --default-service=api-backend-service
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute ssl-certificates create ai4joy-ssl-cert ')" \
    --domains=app.example.com --global
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute target-https-proxies create ')" \
    --url-map=ai4joy-url-map --ssl-certificates=ai4joy-ssl-cert
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute forwarding-rules create ai4joy-https-rule ')" \
    --address=ai4joy-lb-ip --ports=443 --load-balancing-scheme=EXTERNAL_MANAGED
  # HTTP -> HTTPS redirect
  redirect="$(calls_matching "${FIRST}" '^gcloud compute url-maps import ai4joy-http-redirect ')"
  file="$(grep -oE -- '--source=[^ ]+' <<<"${redirect}" | cut -d= -f2)"
  grep -q 'httpsRedirect: true' "${file}"
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute forwarding-rules create ai4joy-http-rule ')" --ports=80
  grep -q 'Type: A   Name: app.example.com   Value: 203.0.113.10' "${S}/first.out"
}

@test "cloud armor: WAF rules, API throttle, WebSocket handshake ban, attached to both backends" {
  calls_matching "${FIRST}" '^gcloud compute security-policies create ai4joy-security-policy ' | grep -q .
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud compute security-policies update ')" \
    --enable-layer7-ddos-defense --json-parsing=STANDARD
  [ "$(calls_matching "${FIRST}" 'security-policies rules create .*evaluatePreconfiguredWaf' | wc -l)" -ge 5 ]
  throttle="$(calls_matching "${FIRST}" 'security-policies rules create 2000 ')"
  assert_line_has "${throttle}" --action=throttle --rate-limit-threshold-count=300 --exceed-action=deny-429 --enforce-on-key=IP
  ban="$(calls_matching "${FIRST}" 'security-policies rules create 2100 ')"
  assert_line_has "${ban}" --action=rate-based-ban --ban-duration-sec=600
  for bs in audio-backend-service api-backend-service; do
    calls_matching "${FIRST}" "^gcloud compute backend-services update ${bs} .*--security-policy=ai4joy-security-policy" | grep -q .
  done
}

@test "observability: log metrics, alert policies, dashboard, SLOs, budget, audit sink" {
  for m in audio_sessions_started audio_sessions_ended audio_session_duration ws_rejected gemini_errors \
    gemini_live_reconnects rollout_changes rollout_guard_trips; do
    line="$(calls_matching "${FIRST}" "^gcloud logging metrics create ${m} ")"
    file="$(grep -oE -- '--config-from-file=[^ ]+' <<<"${line}" | cut -d= -f2)"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "jsonPayload.event=" in d["filter"], d' "${file}"
  done
  policies="$(calls_matching "${FIRST}" '^gcloud alpha monitoring policies create --policy-from-file=')"
  [ "$(wc -l <<<"${policies}")" -eq 11 ]
  # the guide's cost overrun: daily voice spend > 120% of DAILY_BUDGET_USD (367 in production.env)
  cost="$(grep -oE -- '--policy-from-file=[^ ]+' <<<"${policies}" | cut -d= -f2 | while read -r f; do
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["conditions"][0]["conditionThreshold"]
if "ai4joy.voice.cost" in c["filter"]: print(c["thresholdValue"])' "${f}"; done)"
  [ "${cost}" = 440 ]
  grep -q -- '--notification-channels=projects/ai4joy-production/notificationChannels/' <<<"${policies}"
  run grep -c '^gcloud monitoring policies' "${FIRST}"
  [ "${output}" = 0 ]
  dash="$(calls_matching "${FIRST}" '^gcloud monitoring dashboards create ')"
  file="$(grep -oE -- '--config-from-file=[^ ]+' <<<"${dash}" | cut -d= -f2)"
  [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["mosaicLayout"]["tiles"]))' "${file}")" -eq 9 ]
  # SLOs through the REST API, authenticated, with the guide's goals
  calls_matching "${FIRST}" '^curl POST https://monitoring.googleapis.com/v3/projects/ai4joy-production/services\?serviceId=ai4joy-api auth' | grep -q .
  for slo in api-availability api-latency audio-availability audio-first-audio-latency audio-quality; do
    calls_matching "${FIRST}" "^curl POST .*serviceLevelObjectiveId=${slo} auth body=" | grep -q .
  done
  goals="$(for f in $(grep -oE 'body=[^ ]+' "${FIRST}" | cut -d= -f2); do
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("goal", ""))' "${f}"; done | sort | tr '\n' ' ')"
  [[ "${goals}" == *"0.95 0.95 0.98 0.995 0.995"* ]]
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud billing budgets create ')" \
    --billing-account=000000-AAAAAA-BBBBBB --budget-amount=11000USD --threshold-rule=percent=0.8 \
    --threshold-rule=percent=1.0 --threshold-rule=percent=1.2 --filter-projects=projects/ai4joy-production
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud logging buckets update _Default ')" --location=global --retention-days=7
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud logging buckets create audio-audit-logs ')" --retention-days=400
  calls_matching "${FIRST}" '^gcloud logging sinks create audio-audit-logs logging.googleapis.com/projects/ai4joy-production/locations/global/buckets/audio-audit-logs ' | grep -q .
}

@test "observability: CRITICAL alerts page on-call, WARNING alerts go to e-mail; each links its runbook" {
  channel() {
    gcloud beta monitoring channels list "--filter=displayName=\"$1\"" '--format=value(name)' --project=ai4joy-production
  }
  pager="$(channel "ai4joy production pager email")"
  email="$(channel "ai4joy production email")"
  [[ -n "${pager}" && -n "${email}" && "${pager}" != "${email}" ]]
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud beta monitoring channels create .*pager')" \
    --type=email --channel-labels=email_address=oncall-pager@example.com
  critical=0 warning=0
  while IFS= read -r line; do
    file="$(grep -oE -- '--policy-from-file=[^ ]+' <<<"${line}" | cut -d= -f2)"
    route="$(grep -oE -- '--notification-channels=[^ ]+' <<<"${line}" | cut -d= -f2)"
    read -r severity display content < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["severity"], d["displayName"].replace(" ", "_"), d["documentation"]["content"].split("\n")[0])' "${file}")
    [[ "${content}" == "Runbook: https://docs.example.com/runbooks/"* ]] || { echo "no runbook link: ${display}"; return 1; }
    if [[ "${severity}" == CRITICAL ]]; then
      critical=$((critical + 1))
      [[ ",${route}," == *",${pager},"* && ",${route}," == *",${email},"* ]] || { echo "${display} does not page: ${route}"; return 1; }
    else
      warning=$((warning + 1))
      [[ ",${route}," != *",${pager},"* && ",${route}," == *",${email},"* ]] || { echo "${display} pages: ${route}"; return 1; }
    fi
  done < <(calls_matching "${FIRST}" '^gcloud alpha monitoring policies create ')
  [ "${critical}" -ge 3 ] && [ "${warning}" -ge 3 ]
  # the guide's three critical alerts are the ones that page
  for f in high-error-rate service-down vertex-quota-exhausted; do
    [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["severity"])' "${INFRA}/monitoring/alerts/${f}.json")" = CRITICAL ]
  done
}

@test "observability: Data Access audit logs merged into the project IAM policy, bindings kept" {
  line="$(calls_matching "${FIRST}" '^gcloud projects set-iam-policy ai4joy-production ')"
  [ "$(wc -l <<<"${line}")" -eq 1 ]
  file="$(awk '{print $5}' <<<"${line}")"
  python3 - "${file}" "${FIRST}" <<'PY'
import json, re, sys
policy = json.load(open(sys.argv[1]))
configs = {c["service"]: sorted(l["logType"] for l in c["auditLogConfigs"]) for c in policy["auditConfigs"]}
for svc in ("aiplatform.googleapis.com", "firestore.googleapis.com", "secretmanager.googleapis.com"):
    assert configs[svc] == ["ADMIN_READ", "DATA_READ", "DATA_WRITE"], configs
# every project binding the prerequisites added is still in the policy written back
added = set(re.findall(r"^gcloud projects add-iam-policy-binding ai4joy-production --member=(\S+) --role=(\S+)",
                       open(sys.argv[2]).read(), re.M))
kept = {(m, b["role"]) for b in policy["bindings"] for m in b["members"]}
assert added and added <= kept, added - kept
assert policy["etag"] == "c3R1Yi0w", policy  # the etag that was read (stub-0): no blind overwrite
PY
  # the second run found them enabled and wrote nothing (checked by "creates nothing new" too)
  run grep -c 'set-iam-policy' "${SECOND}"
  [ "${output}" = 0 ]
}

@test "cloud armor: production enforces the OWASP rules (no --preview)" {
  [ "$(calls_matching "${FIRST}" 'security-policies rules create .*evaluatePreconfiguredWaf' | wc -l)" -eq 8 ]
  run grep -E 'security-policies rules create .*evaluatePreconfiguredWaf.* --preview' "${FIRST}"
  [ -z "${output}" ]
}

@test "security: monthly rotation job (ops image) with Cloud Scheduler, own service account" {
  assert_line_has "$(calls_matching "${FIRST}" '^gcloud builds submit .*/infra --tag=')" \
    --tag=us-central1-docker.pkg.dev/ai4joy-production/ai4joy/ai4joy-ops:test-tag
  job="$(calls_matching "${FIRST}" '^gcloud run jobs deploy ai4joy-secret-rotation ')"
  assert_line_has "${job}" --image=us-central1-docker.pkg.dev/ai4joy-production/ai4joy/ai4joy-ops:test-tag \
    --args=production,rotation-run --service-account=ai4joy-rotator@ai4joy-production.iam.gserviceaccount.com --max-retries=0
  sched="$(calls_matching "${FIRST}" '^gcloud scheduler jobs create http ai4joy-secret-rotation-monthly ')"
  [[ "${sched}" == *"'--schedule=0 9 1 * *'"* && "${sched}" == *"/jobs/ai4joy-secret-rotation:run"* ]]
  calls_matching "${FIRST}" 'secrets add-iam-policy-binding django-secret-key --member=serviceAccount:ai4joy-rotator@.*secretVersionManager' | grep -q .
  calls_matching "${FIRST}" 'run services add-iam-policy-binding ai4joy-audio-service --member=serviceAccount:ai4joy-rotator@.*run.developer' | grep -q .
  calls_matching "${FIRST}" 'iam service-accounts add-iam-policy-binding audio-service@.*--member=serviceAccount:ai4joy-rotator@.*serviceAccountUser' | grep -q .
  # never a project-wide grant for the rotator
  run grep -E '^gcloud projects add-iam-policy-binding .*ai4joy-rotator' "${FIRST}"
  [ -z "${output}" ]
}

@test "vpc-sc: off by default, with a clear message and no calls" {
  grep -q 'vpc-sc: OFF for production (opt-in). VPC Service Controls need a Google Cloud organisation' "${S}/first.err"
  run grep -c 'access-context-manager' "${FIRST}"
  [ "${output}" = 0 ]
}

@test "phases run in the guide's order" {
  a="$(line_no "${FIRST}" '^gcloud firestore databases create ')"
  b="$(line_no "${FIRST}" '^gcloud builds submit ')"
  c="$(line_no "${FIRST}" '^gcloud run deploy ai4joy-audio-service ')"
  d="$(line_no "${FIRST}" '^gcloud compute addresses create ')"
  e="$(line_no "${FIRST}" '^gcloud compute security-policies create ')"
  f="$(line_no "${FIRST}" '^gcloud logging metrics create ')"
  [ "${a}" -lt "${b}" ] && [ "${b}" -lt "${c}" ] && [ "${c}" -lt "${d}" ] && [ "${d}" -lt "${e}" ] && [ "${e}" -lt "${f}" ]
}

@test "every gcloud output was read whole (no reader closed a pipe early)" {
  run grep -h '^# EPIPE' "${FIRST}" "${SECOND}"
  echo "${output}"
  [ -z "${output}" ]
}

@test "second run creates nothing new (reads only)" {
  [ -s "${SECOND}" ]
  run grep -vE '^gcloud [a-z -]*(describe|list|get-iam-policy) |^gcloud auth print-access-token|^curl GET ' "${SECOND}"
  echo "${output}"
  [ -z "${output}" ]
  ! grep -q 'ALREADY_EXISTS' "${S}/second.err"
}

@test "a changed image redeploys the services and re-runs migrations, and nothing else" {
  : >"${S}/calls.log"
  IMAGE_TAG=test-tag-2 run "${INFRA}/deploy.sh" production build services
  [ "${status}" -eq 0 ]
  changed="$(grep -vE '^gcloud [a-z -]*(describe|list|get-iam-policy) ' "${S}/calls.log")"
  echo "${changed}"
  [ "$(grep -c '^gcloud run deploy ' <<<"${changed}")" -eq 2 ]
  grep -q '^gcloud run jobs execute ai4joy-migrate ' <<<"${changed}"
  grep -q '^gcloud builds submit ' <<<"${changed}"
  run grep -E '^gcloud (scheduler|iam|secrets|compute) ' <<<"${changed}"
  [ -z "${output}" ]
}

@test "a deploy after a rollback routes traffic to the new revision (Cloud Run keeps pinned splits)" {
  : >"${S}/calls.log"
  run "${INFRA}/ops.sh" production rollback audio ai4joy-audio-service-00001-rev
  [ "${status}" -eq 0 ]
  run gcloud run services describe ai4joy-audio-service --region=us-central1 --format=json --project=ai4joy-production
  python3 -c '
import json, sys
d = json.load(sys.stdin)["status"]
assert d["latestReadyRevisionName"] != "ai4joy-audio-service-00001-rev", d
assert d["traffic"] == [{"percent": 100, "revisionName": "ai4joy-audio-service-00001-rev"}], d
' <<<"${output}"
  # unchanged config: nothing is deployed, the rollback holds, and the deploy says how to release it
  IMAGE_TAG=test-tag-2 run "${INFRA}/deploy.sh" production services
  echo "${output}"
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"ai4joy-audio-service is unchanged and its traffic is PINNED (ai4joy-audio-service-00001-rev=100%)"* ]]
  [[ "${output}" == *"infra/ops.sh production promote audio"* ]]
  ! grep -q 'update-traffic ai4joy-audio-service .*--to-latest' "${S}/calls.log"
  # a new image: the new revision is created AND serves
  IMAGE_TAG=test-tag-after-rollback run "${INFRA}/deploy.sh" production build services
  echo "${output}"
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"ai4joy-audio-service traffic was pinned (ai4joy-audio-service-00001-rev=100%)"* ]]
  run gcloud run services describe ai4joy-audio-service --region=us-central1 --format=json --project=ai4joy-production
  python3 -c '
import json, sys
d = json.load(sys.stdin)["status"]
serving = [t for t in d["traffic"] if t.get("percent")]
assert serving == [{"latestRevision": True, "percent": 100, "revisionName": d["latestReadyRevisionName"]}], serving
' <<<"${output}"
  deploy_line="$(line_no "${S}/calls.log" '^gcloud run deploy ai4joy-audio-service ')"
  release_line="$(line_no "${S}/calls.log" '^gcloud run services update-traffic ai4joy-audio-service --region=us-central1 --to-latest ')"
  [ "${deploy_line}" -lt "${release_line}" ]
}
