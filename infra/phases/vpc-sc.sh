# shellcheck shell=bash
#
# Phase "vpc-sc" (guide "VPC Service Controls (Optional for Enhanced Security)"): a service
# perimeter around the project restricting the guide's services (Vertex AI, Secret
# Manager), so their data cannot be reached from outside it. OPT-IN: it needs an
# organisation (an access policy lives at the organisation level) and an admin of it, and a
# wrong perimeter blocks the deploy itself, so it runs only with ENABLE_VPC_SC=true in the
# env file. ACCESS_POLICY_ID names an existing policy; without it, ORGANIZATION_ID creates
# the organisation's (one per organisation). Sourced by infra/deploy.sh.

readonly VPC_SC_RESTRICTED="aiplatform.googleapis.com,secretmanager.googleapis.com"

phase_vpc_sc() {
  if [[ "${ENABLE_VPC_SC}" != true ]]; then
    [[ "${DRY_RUN}" != 1 ]] || printf '# vpc-sc: off (ENABLE_VPC_SC=%s); opt-in, needs an organisation\n' "${ENABLE_VPC_SC:-}"
    info "vpc-sc: OFF for ${ENVIRONMENT} (opt-in). VPC Service Controls need a Google Cloud organisation:" \
      "set ENABLE_VPC_SC=true and ACCESS_POLICY_ID (or ORGANIZATION_ID) in infra/env/${ENVIRONMENT}.env," \
      "then run: infra/deploy.sh ${ENVIRONMENT} vpc-sc"
    return 0
  fi
  local policy="${ACCESS_POLICY_ID}"
  if [[ -z "${policy}" ]]; then
    [[ -n "${ORGANIZATION_ID}" ]] \
      || die "ENABLE_VPC_SC=true needs ACCESS_POLICY_ID or ORGANIZATION_ID in infra/env/${ENVIRONMENT}.env"
    policy="$(query "ACCESS_POLICY_ID" access-context-manager policies list "--organization=${ORGANIZATION_ID}" \
      '--format=value(name)')" || die "could not list the access policies of organisation ${ORGANIZATION_ID}"
    if [[ -z "${policy}" ]]; then
      gc access-context-manager policies create "--organization=${ORGANIZATION_ID}" "--title=ai4joy access policy"
      policy="$(query "ACCESS_POLICY_ID" access-context-manager policies list "--organization=${ORGANIZATION_ID}" \
        '--format=value(name)')"
    fi
    policy="${policy%%$'\n'*}"
    policy="${policy##*/}"
  fi
  info "vpc-sc: perimeter ${VPC_SC_PERIMETER} in access policy ${policy}"
  local number
  number="$(query "PROJECT_NUMBER" projects describe "${PROJECT_ID}" '--format=value(projectNumber)')" \
    || die "could not read the project number of ${PROJECT_ID}"
  exists access-context-manager perimeters describe "${VPC_SC_PERIMETER}" "--policy=${policy}" \
    || gc access-context-manager perimeters create "${VPC_SC_PERIMETER}" "--policy=${policy}" \
      "--title=ai4joy ${ENVIRONMENT} perimeter" "--resources=projects/${number}" \
      "--restricted-services=${VPC_SC_RESTRICTED}" --perimeter-type=regular
}
