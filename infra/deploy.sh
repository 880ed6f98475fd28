#!/usr/bin/env bash
#
# Deploy ai4joy to one environment, phase by phase, following the GCP real-time audio
# deployment guide. Re-runnable: every resource is described before it is created, and
# a second run creates nothing new.
#
#   infra/deploy.sh ENV [--dry-run] [--image-tag=TAG] [phase...]
#
# ENV is a file in infra/env/ (dev, staging, production). With no phase, all phases
# run in order. --dry-run prints the ordered plan of commands and touches nothing.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=phases/prerequisites.sh
source "${INFRA_DIR}/phases/prerequisites.sh"
# shellcheck source=phases/data.sh
source "${INFRA_DIR}/phases/data.sh"
# shellcheck source=phases/build.sh
source "${INFRA_DIR}/phases/build.sh"
# shellcheck source=phases/services.sh
source "${INFRA_DIR}/phases/services.sh"
# shellcheck source=phases/load-balancer.sh
source "${INFRA_DIR}/phases/load-balancer.sh"
# shellcheck source=phases/cloud-armor.sh
source "${INFRA_DIR}/phases/cloud-armor.sh"
# shellcheck source=phases/observability.sh
source "${INFRA_DIR}/phases/observability.sh"
# shellcheck source=phases/security.sh
source "${INFRA_DIR}/phases/security.sh"
# shellcheck source=phases/vpc-sc.sh
source "${INFRA_DIR}/phases/vpc-sc.sh"

readonly ALL_PHASES=(prerequisites data build services load-balancer cloud-armor observability security vpc-sc)

usage() {
  cat <<EOF
Usage: infra/deploy.sh ENV [--dry-run] [--image-tag=TAG] [phase...]

ENV:     one of: $(known_envs)
Phases (default: all, in this order):
  prerequisites  APIs, Artifact Registry, service accounts, custom role, IAM, secrets
  data           Firestore (PITR, backups, indexes, TTL), VPC, Memorystore Redis, Cloud SQL
  build          build the image with Cloud Build and push it to Artifact Registry
  services       migrate job, audio + api Cloud Run services, rollout guard job + scheduler
  load-balancer  static IP, serverless NEGs, backend services, URL map, cert, proxy, rules
  cloud-armor    WAF + rate limiting policy on both backend services
  observability  log metrics, channels, SLOs, alert policies, dashboard, budget, 7-day
                 _Default log retention, Data Access audit logs, audit sink
  security       monthly secret rotation: ops image job + Cloud Scheduler
  vpc-sc         VPC Service Controls perimeter (opt-in: ENABLE_VPC_SC=true; needs an organisation)
Options:
  --dry-run, -n    print the ordered plan of commands; call nothing
  --image-tag=TAG  image tag to build/deploy (default: the git commit)
EOF
}

main() {
  parse_common_args "$@"
  local phases=("${ARGS[@]}") phase
  ((${#phases[@]} > 0)) || phases=("${ALL_PHASES[@]}")
  for phase in "${phases[@]}"; do
    [[ " ${ALL_PHASES[*]} " == *" ${phase} "* ]] \
      || die "unknown phase '${phase}' (phases: ${ALL_PHASES[*]})"
  done
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '# Plan for %s (project %s, region %s): %s\n' "${ENVIRONMENT}" "${PROJECT_ID}" "${REGION}" "${phases[*]}"
  fi
  for phase in "${phases[@]}"; do
    [[ "${DRY_RUN}" == 1 ]] && printf '# --- phase: %s\n' "${phase}"
    "phase_${phase//-/_}"
  done
  if [[ -n "${DNS_INSTRUCTIONS:-}" ]]; then
    printf '\n%s\n' "${DNS_INSTRUCTIONS}"
  fi
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '# guide Phase 4 (after DNS and the certificate): infra/ops.sh %s smoke; make loadtest HOST=https://%s\n' \
      "${ENVIRONMENT}" "${DOMAIN_NAME}"
    info "dry run for ${ENVIRONMENT}: nothing was called"
  else
    info "done: ${phases[*]} (${ENVIRONMENT})"
  fi
}

main "$@"
