# shellcheck shell=bash
#
# Phase "security" (guide "Secret Rotation"): the monthly rotation, run unattended. A Cloud
# Run job (the ops image: gcloud + infra/) runs `ops.sh ENV rotation-run` on the first of
# each month at 09:00 UTC, triggered by Cloud Scheduler. rotation-run adds a new version
# of each secret in ROTATE_SECRETS (values it can generate itself), rolls the services that
# use it onto a new revision, smoke-tests through the load balancer, rolls back if the
# smoke test fails, and disables versions older than 7 days (the guide's last step).
# The job runs as its own service account with only what that needs. Sourced by deploy.sh.

readonly ROTATION_SCHEDULE="0 9 1 * *"

phase_security() {
  local ops_image
  ops_image="$(ops_image_ref)"
  info "security: service account ${ROTATOR_SA_NAME} for the rotation job"
  exists iam service-accounts describe "${ROTATOR_SA}" \
    || gc iam service-accounts create "${ROTATOR_SA_NAME}" "--display-name=ai4joy monthly secret rotation (Cloud Run job)"
  local secret sa
  for secret in ${ROTATE_SECRETS}; do
    # add versions, list and disable old ones: on the rotated secrets only
    ensure_binding secrets "${secret}" "serviceAccount:${ROTATOR_SA}" roles/secretmanager.secretVersionManager
    ensure_binding secrets "${secret}" "serviceAccount:${ROTATOR_SA}" roles/secretmanager.viewer
  done
  # roll the services onto new revisions, which run as the runtime service accounts
  ensure_binding run-services "${AUDIO_SERVICE}" "serviceAccount:${ROTATOR_SA}" roles/run.developer "--region=${REGION}"
  ensure_binding run-services "${API_SERVICE}" "serviceAccount:${ROTATOR_SA}" roles/run.developer "--region=${REGION}"
  for sa in "${AUDIO_SA}" "${API_SA}"; do
    ensure_binding service-accounts "${sa}" "serviceAccount:${ROTATOR_SA}" roles/iam.serviceAccountUser
  done

  info "security: job ${ROTATION_JOB} + Cloud Scheduler (${ROTATION_SCHEDULE}, UTC)"
  deploy_if_changed jobs "${ROTATION_JOB}" run jobs deploy "${ROTATION_JOB}" "--image=${ops_image}" \
    "--region=${REGION}" "--service-account=${ROTATOR_SA}" "--args=${ENVIRONMENT},rotation-run" \
    --max-retries=0 --task-timeout=1800 --cpu=1 --memory=512Mi
  ensure_binding run-jobs "${ROTATION_JOB}" "serviceAccount:${SCHEDULER_SA}" roles/run.invoker "--region=${REGION}"
  exists scheduler jobs describe "${ROTATION_SCHEDULE_JOB}" "--location=${REGION}" \
    || gc scheduler jobs create http "${ROTATION_SCHEDULE_JOB}" "--location=${REGION}" \
      "--schedule=${ROTATION_SCHEDULE}" --time-zone=Etc/UTC \
      "--uri=https://run.googleapis.com/v2/projects/${PROJECT_ID}/locations/${REGION}/jobs/${ROTATION_JOB}:run" \
      --http-method=POST "--oauth-service-account-email=${SCHEDULER_SA}" \
      --oauth-token-scope=https://www.googleapis.com/auth/cloud-platform \
      "--description=infra/ops.sh ${ENVIRONMENT} rotation-run (monthly secret rotation)" --attempt-deadline=1800s
}
