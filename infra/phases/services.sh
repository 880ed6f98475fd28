# shellcheck shell=bash
#
# Phase "services" (guide §1, §2): the migrate job (run before deploying), the two Cloud
# Run services with the guide's settings, and the rollout-guard job with its
# every-minute Cloud Scheduler trigger. Sourced by infra/deploy.sh.
#
# A service or job is (re)deployed only when its configuration changed: a hash of the
# deploy command is kept in the label ai4joy_config, so a second run deploys nothing.

#######################################
# Environment variables both services get (passed with --update-env-vars, never
# --set-env-vars, which would drop anything set by hand, e.g. during an incident).
# Arguments: role (api|audio), redis url
#######################################
service_env_vars() {
  local role="$1" redis="$2" pairs pair joined=""
  pairs=(
    "SERVICE_ROLE=${role}"
    "AI4JOY_ENV=production"
    "GCP_PROJECT_ID=${PROJECT_ID}"
    "VERTEX_AI_LOCATION=${VERTEX_AI_LOCATION}"
    "WEBSOCKET_TIMEOUT=${AUDIO_TIMEOUT}"
    "WEBSOCKET_PING_INTERVAL=30"
    "SESSION_STORE=firestore"
    "GEMINI_BACKEND=vertex"
    "REDIS_URL=${redis}"
    "ALLOWED_HOSTS=${DOMAIN_NAME}"
    "CSRF_TRUSTED_ORIGINS=https://${DOMAIN_NAME}"
    "DJANGO_DEBUG=false"
    "ACCOUNT_EMAIL_LOGIN=false"
    "GOOGLE_OAUTH_CLIENT_ID=${GOOGLE_OAUTH_CLIENT_ID}"
    "DRAIN_TIMEOUT=8"
  )
  for pair in "${pairs[@]}"; do
    [[ "${pair}" != *,* ]] || die "environment value must not contain a comma: ${pair%%=*}"
    joined+="${pair},"
  done
  printf '%s\n' "${joined%,}"
}

#######################################
# --set-secrets value for a role. ADK_API_KEY only when the secret has a version
# (it is optional: Vertex AI uses the service account); the OAuth secret for the api.
#######################################
service_secrets() {
  local role="$1" s
  s="DJANGO_SECRET_KEY=${SECRET_DJANGO_KEY}:latest,DATABASE_URL=${SECRET_DATABASE_URL}:latest"
  if [[ "${role}" == api && -n "${GOOGLE_OAUTH_CLIENT_ID}" ]]; then
    s+=",GOOGLE_OAUTH_CLIENT_SECRET=${SECRET_OAUTH}:latest"
  fi
  if [[ "${DRY_RUN}" == 1 ]] || secret_has_version "${SECRET_ADK}"; then
    s+=",ADK_API_KEY=${SECRET_ADK}:latest"
  fi
  printf '%s\n' "${s}"
}

#######################################
# Deploy a service or job only when its configuration hash changed.
# Arguments: kind (services|jobs), name, then the full deploy words (without labels)
# Sets: DEPLOYED=1 if deployed, 0 if unchanged (status is not used, so that a failing
#       deploy still stops the run under set -e)
#######################################
deploy_if_changed() {
  local kind="$1" name="$2" hash current label_flag
  shift 2
  hash="$(config_hash "$@")"
  current=""
  if exists run "${kind}" describe "${name}" "--region=${REGION}"; then
    current="$(query "" run "${kind}" describe "${name}" "--region=${REGION}" \
      "--format=value(metadata.labels.${CONFIG_LABEL})")"
  fi
  if [[ "${current}" == "${hash}" ]]; then
    info "services: ${name} is up to date (${CONFIG_LABEL}=${hash})"
    DEPLOYED=0
    return 0
  fi
  if [[ "${kind}" == services ]]; then
    label_flag="--update-labels=app=ai4joy,env=${ENVIRONMENT},${CONFIG_LABEL}=${hash}"
  else
    label_flag="--labels=app=ai4joy,env=${ENVIRONMENT},${CONFIG_LABEL}=${hash}"
  fi
  gc "$@" "${label_flag}"
  DEPLOYED=1
}

# Health probes (HTTP, on the routes each role serves). The startup probe holds traffic
# until Django answers (up to 2 min for the audio service, 1 min for the api); liveness
# restarts an instance only after minutes of consecutive failures, because a restart of an
# audio instance drops every open one-hour voice scene on it (liveness is for wedged
# instances, not for slow moments). Liveness waits until the startup probe has passed.
readonly AUDIO_STARTUP_PROBE="httpGet.path=/ws/health,httpGet.port=8080,initialDelaySeconds=0,timeoutSeconds=3,periodSeconds=5,failureThreshold=24"
readonly AUDIO_LIVENESS_PROBE="httpGet.path=/ws/health,httpGet.port=8080,timeoutSeconds=5,periodSeconds=60,failureThreshold=5"
readonly API_STARTUP_PROBE="httpGet.path=/health,httpGet.port=8080,initialDelaySeconds=0,timeoutSeconds=3,periodSeconds=3,failureThreshold=20"
readonly API_LIVENESS_PROBE="httpGet.path=/health,httpGet.port=8080,timeoutSeconds=5,periodSeconds=30,failureThreshold=3"

#######################################
# A deploy must end with its new revision serving. Cloud Run keeps a pinned split for
# later deploys (the new revision would get 0% and the deploy would still "succeed"), so
# after a deploy traffic goes back to LATEST, said loudly when it was pinned. An
# unchanged service with pinned traffic is left alone (that is a rollback holding), with
# the command that releases it.
# Arguments: service name, short name (audio|api), deployed (1|0)
#######################################
ensure_serving_latest() {
  local svc="$1" short="$2" deployed="$3" pinned
  pinned="$(pinned_traffic "${svc}")"
  if ((deployed)); then
    [[ -z "${pinned}" ]] \
      || warn "services: ${svc} traffic was pinned (${pinned}) by a rollback or maintenance;" \
        "sending 100% to the revision just deployed"
    gc run services update-traffic "${svc}" "--region=${REGION}" --to-latest
  elif [[ -n "${pinned}" ]]; then
    warn "services: ${svc} is unchanged and its traffic is PINNED (${pinned}): the latest revision" \
      "does not serve. Release it with: infra/ops.sh ${ENVIRONMENT} promote ${short}"
  fi
}

phase_services() {
  local image redis
  image="$(image_ref)"
  info "services: image ${image}"
  if [[ "${DRY_RUN}" != 1 ]]; then
    exists artifacts docker images describe "${image}" \
      || die "image ${image} is not in Artifact Registry: run 'infra/deploy.sh ${ENVIRONMENT} build' first"
    local s
    for s in "${SECRET_DJANGO_KEY}" "${SECRET_DATABASE_URL}"; do
      secret_has_version "${s}" || die "secret ${s} has no version: run the prerequisites and data phases"
    done
    if [[ -n "${GOOGLE_OAUTH_CLIENT_ID}" ]] && ! secret_has_version "${SECRET_OAUTH}"; then
      die "GOOGLE_OAUTH_CLIENT_ID is set but secret ${SECRET_OAUTH} has no version:" \
        "run 'infra/ops.sh ${ENVIRONMENT} rotate-secret ${SECRET_OAUTH}' (value on STDIN)"
    fi
    [[ -n "${GOOGLE_OAUTH_CLIENT_ID}" ]] \
      || warn "GOOGLE_OAUTH_CLIENT_ID is empty and email login is off: nobody can sign in"
  fi
  redis="$(redis_url)"

  local network=("--network=${VPC_NETWORK}" "--subnet=${VPC_SUBNET}" --vpc-egress=private-ranges-only)
  local common=(
    "--image=${image}" "--region=${REGION}"
    "--set-cloudsql-instances=${SQL_CONNECTION}" "${network[@]}"
  )

  # Migrations run as a job before any service deploys (guide: "run before deploy").
  local api_env api_secrets audio_env audio_secrets
  api_env="$(service_env_vars api "${redis}")"
  api_secrets="$(service_secrets api)"
  audio_env="$(service_env_vars audio "${redis}")"
  audio_secrets="$(service_secrets audio)"
  local job_common=("${common[@]}" "--service-account=${API_SA}" "--set-secrets=${api_secrets}"
    "--update-env-vars=${api_env}" --max-retries=0 --cpu=1 --memory=512Mi)
  info "services: migrate job ${MIGRATE_JOB}"
  local migrate_changed
  deploy_if_changed jobs "${MIGRATE_JOB}" run jobs deploy "${MIGRATE_JOB}" "${job_common[@]}" \
    --command=python --args=manage.py,migrate,--noinput --task-timeout=900
  migrate_changed="${DEPLOYED}"

  local audio_cmd=(run deploy "${AUDIO_SERVICE}" "${common[@]}"
    "--service-account=${AUDIO_SA}"
    "--cpu=${AUDIO_CPU}" "--memory=${AUDIO_MEMORY}" "--concurrency=${AUDIO_CONCURRENCY}"
    "--min-instances=${AUDIO_MIN_INSTANCES}" "--max-instances=${AUDIO_MAX_INSTANCES}"
    "--timeout=${AUDIO_TIMEOUT}" --session-affinity --no-cpu-throttling --cpu-boost
    --execution-environment=gen2 --no-use-http2
    --ingress=internal-and-cloud-load-balancing --allow-unauthenticated --port=8080
    "--startup-probe=${AUDIO_STARTUP_PROBE}" "--liveness-probe=${AUDIO_LIVENESS_PROBE}"
    "--set-secrets=${audio_secrets}" "--update-env-vars=${audio_env}")
  local api_cmd=(run deploy "${API_SERVICE}" "${common[@]}"
    "--service-account=${API_SA}"
    "--cpu=${API_CPU}" "--memory=${API_MEMORY}" "--concurrency=${API_CONCURRENCY}"
    "--min-instances=${API_MIN_INSTANCES}" "--max-instances=${API_MAX_INSTANCES}"
    "--timeout=${API_TIMEOUT}" --cpu-boost --execution-environment=gen2
    --ingress=internal-and-cloud-load-balancing --allow-unauthenticated --port=8080
    "--startup-probe=${API_STARTUP_PROBE}" "--liveness-probe=${API_LIVENESS_PROBE}"
    "--set-secrets=${api_secrets}" "--update-env-vars=${api_env}")

  # Execute migrations when the image/config changed (the services are about to change).
  local audio_hash api_hash audio_now="" api_now=""
  audio_hash="$(config_hash "${audio_cmd[@]}")"
  api_hash="$(config_hash "${api_cmd[@]}")"
  if [[ "${DRY_RUN}" != 1 ]]; then
    if exists run services describe "${AUDIO_SERVICE}" "--region=${REGION}"; then
      audio_now="$(query "" run services describe "${AUDIO_SERVICE}" "--region=${REGION}" \
        "--format=value(metadata.labels.${CONFIG_LABEL})")"
    fi
    if exists run services describe "${API_SERVICE}" "--region=${REGION}"; then
      api_now="$(query "" run services describe "${API_SERVICE}" "--region=${REGION}" \
        "--format=value(metadata.labels.${CONFIG_LABEL})")"
    fi
  fi
  if ((migrate_changed)) || [[ "${audio_now}" != "${audio_hash}" || "${api_now}" != "${api_hash}" ]]; then
    gc run jobs execute "${MIGRATE_JOB}" "--region=${REGION}" --wait
  fi

  info "services: ${AUDIO_SERVICE}"
  deploy_if_changed services "${AUDIO_SERVICE}" "${audio_cmd[@]}"
  ensure_serving_latest "${AUDIO_SERVICE}" audio "${DEPLOYED}"
  info "services: ${API_SERVICE}"
  deploy_if_changed services "${API_SERVICE}" "${api_cmd[@]}"
  ensure_serving_latest "${API_SERVICE}" api "${DEPLOYED}"

  info "services: rollout guard job ${GUARD_JOB} + Cloud Scheduler (every minute)"
  deploy_if_changed jobs "${GUARD_JOB}" run jobs deploy "${GUARD_JOB}" "${job_common[@]}" \
    --command=python --args=manage.py,rollout,guard --task-timeout=120
  ensure_binding run-jobs "${GUARD_JOB}" "serviceAccount:${SCHEDULER_SA}" roles/run.invoker "--region=${REGION}"
  exists scheduler jobs describe "${GUARD_SCHEDULE_JOB}" "--location=${REGION}" \
    || gc scheduler jobs create http "${GUARD_SCHEDULE_JOB}" "--location=${REGION}" "--schedule=* * * * *" \
      "--uri=https://run.googleapis.com/v2/projects/${PROJECT_ID}/locations/${REGION}/jobs/${GUARD_JOB}:run" \
      --http-method=POST "--oauth-service-account-email=${SCHEDULER_SA}" \
      --oauth-token-scope=https://www.googleapis.com/auth/cloud-platform \
      "--description=python manage.py rollout guard (audio_v2 auto-rollback)" --attempt-deadline=180s
}
