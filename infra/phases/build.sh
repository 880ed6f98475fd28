# shellcheck shell=bash
#
# Phase "build" (guide 2.2/2.3): build the one image both services run, with Cloud Build
# from the repository's Dockerfile, and push it to Artifact Registry; and the small ops
# image (infra/Dockerfile) the secret-rotation job runs. Each is skipped when that tag is
# already in the registry. Sourced by infra/deploy.sh.

phase_build() {
  local image ops_image
  image="$(image_ref)"
  ops_image="$(ops_image_ref)"
  info "build: ${image}"
  if [[ "${image}" == *-dirty ]]; then
    warn "the working tree has uncommitted changes; the image tag ends in -dirty and is rebuilt on every run"
  elif exists artifacts docker images describe "${image}"; then
    info "build: ${image} is already in Artifact Registry"
    image=""
  fi
  [[ -z "${image}" ]] \
    || gc builds submit "${REPO_DIR}" "--config=${REPO_DIR}/cloudbuild.yaml" "--region=${REGION}" \
      "--substitutions=_IMAGE=${image}"
  # The ops image (gcloud + infra/) that the monthly secret-rotation job runs.
  info "build: ${ops_image}"
  if [[ "${ops_image}" != *-dirty ]] && exists artifacts docker images describe "${ops_image}"; then
    return 0
  fi
  gc builds submit "${INFRA_DIR}" "--tag=${ops_image}" "--region=${REGION}"
}
