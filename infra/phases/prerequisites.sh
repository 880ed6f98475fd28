# shellcheck shell=bash
#
# Phase "prerequisites" (guide Phase 1 and "Security & IAM"): APIs, Artifact Registry,
# service accounts, the least-privilege custom role, IAM bindings, secrets and their
# per-secret accessor bindings. Sourced by infra/deploy.sh.

# Guide 1.1, plus what the rest of the deployment uses.
readonly REQUIRED_APIS=(
  run.googleapis.com compute.googleapis.com aiplatform.googleapis.com
  secretmanager.googleapis.com monitoring.googleapis.com logging.googleapis.com
  cloudtrace.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com
  firestore.googleapis.com redis.googleapis.com sqladmin.googleapis.com
  vpcaccess.googleapis.com cloudscheduler.googleapis.com billingbudgets.googleapis.com
  iam.googleapis.com
)

# Guide "Create Custom Role", minus secretmanager.versions.access (granted per secret
# below instead of project-wide) and plus what the Firestore client needs to query and
# delete. aiplatform.endpoints.predict covers generateContent and the Live API
# (BidiGenerateContent) on publisher models.
readonly CUSTOM_ROLE_PERMISSIONS="aiplatform.endpoints.predict,datastore.databases.getMetadata,datastore.entities.get,datastore.entities.list,datastore.entities.create,datastore.entities.update,datastore.entities.delete"

# Predefined roles from the guide's list (logging, monitoring, trace) + the Cloud SQL
# connector. Vertex AI and Firestore come from the custom role.
readonly RUNTIME_ROLES=(roles/logging.logWriter roles/monitoring.metricWriter roles/cloudtrace.agent roles/cloudsql.client)

phase_prerequisites() {
  info "prerequisites: APIs"
  local enabled="" missing=() api
  if [[ "${DRY_RUN}" != 1 ]]; then
    enabled="$(query "" services list --enabled '--format=value(config.name)')" || die "could not list the enabled APIs"
  fi
  for api in "${REQUIRED_APIS[@]}"; do
    # A here-string, not a pipe into grep -q: grep -q stops at the first match, and the
    # writer of a pipe it closed fails the pipeline under pipefail.
    grep -qxF "${api}" <<<"${enabled}" || missing+=("${api}")
  done
  if ((${#missing[@]} > 0)); then
    gc services enable "${missing[@]}"
  fi

  # Guide 1.3 comes next: the Vertex AI quota request (days to approve) is an operator step.
  [[ "${DRY_RUN}" != 1 ]] || printf '# guide 1.3: Vertex AI quota: infra/ops.sh %s vertex-quota list, then vertex-quota request QUOTA_ID VALUE\n' \
    "${ENVIRONMENT}"

  info "prerequisites: Artifact Registry"
  exists artifacts repositories describe "${ARTIFACT_REPO}" "--location=${REGION}" \
    || gc artifacts repositories create "${ARTIFACT_REPO}" --repository-format=docker \
      "--location=${REGION}" "--description=AI4Joy container images"

  info "prerequisites: service accounts"
  ensure_service_account "${AUDIO_SA_NAME}" "${AUDIO_SA}" "ai4joy audio service (Cloud Run)"
  ensure_service_account "${API_SA_NAME}" "${API_SA}" "ai4joy API service and jobs (Cloud Run)"
  ensure_service_account "${SCHEDULER_SA_NAME}" "${SCHEDULER_SA}" "Cloud Scheduler invoker of the rollout guard job"

  info "prerequisites: custom role ${CUSTOM_ROLE_ID}"
  exists iam roles describe "${CUSTOM_ROLE_ID}" \
    || gc iam roles create "${CUSTOM_ROLE_ID}" "--title=Audio Service Custom Role" \
      "--description=Minimal permissions for the ai4joy services (Vertex AI, Firestore)" \
      "--permissions=${CUSTOM_ROLE_PERMISSIONS}" --stage=GA

  info "prerequisites: IAM bindings"
  local sa role
  for sa in "${AUDIO_SA}" "${API_SA}"; do
    ensure_binding projects "${PROJECT_ID}" "serviceAccount:${sa}" "projects/${PROJECT_ID}/roles/${CUSTOM_ROLE_ID}"
    for role in "${RUNTIME_ROLES[@]}"; do
      ensure_binding projects "${PROJECT_ID}" "serviceAccount:${sa}" "${role}"
    done
  done

  info "prerequisites: secrets"
  ensure_secret "${SECRET_DJANGO_KEY}"
  ensure_secret "${SECRET_DATABASE_URL}"
  ensure_secret "${SECRET_OAUTH}"
  ensure_secret "${SECRET_ADK}"
  if ! secret_has_version "${SECRET_DJANGO_KEY}"; then
    random_secret 64 | add_secret_version "${SECRET_DJANGO_KEY}"
  fi
  # Accessor bindings per secret (guide §6), not project-wide.
  for sa in "${AUDIO_SA}" "${API_SA}"; do
    ensure_binding secrets "${SECRET_DJANGO_KEY}" "serviceAccount:${sa}" roles/secretmanager.secretAccessor
    ensure_binding secrets "${SECRET_DATABASE_URL}" "serviceAccount:${sa}" roles/secretmanager.secretAccessor
    ensure_binding secrets "${SECRET_ADK}" "serviceAccount:${sa}" roles/secretmanager.secretAccessor
  done
  # Only the API service runs the Google sign-in flow.
  ensure_binding secrets "${SECRET_OAUTH}" "serviceAccount:${API_SA}" roles/secretmanager.secretAccessor
  if [[ "${DRY_RUN}" != 1 ]] && ! secret_has_version "${SECRET_OAUTH}"; then
    warn "secret ${SECRET_OAUTH} has no version yet: add one with" \
      "'infra/ops.sh ${ENVIRONMENT} rotate-secret ${SECRET_OAUTH}' (reads the value from STDIN)" \
      "before the services phase"
  fi
}

ensure_service_account() {
  local name="$1" email="$2" display="$3"
  exists iam service-accounts describe "${email}" \
    || gc iam service-accounts create "${name}" "--display-name=${display}"
}

ensure_secret() {
  local name="$1"
  exists secrets describe "${name}" \
    || gc secrets create "${name}" --replication-policy=automatic "--labels=app=ai4joy,env=${ENVIRONMENT}"
}
