# shellcheck shell=bash
# shellcheck disable=SC2034  # constants and globals used by the scripts that source this file
#
# Shared helpers for the ai4joy deployment scripts (infra/deploy.sh, infra/ops.sh and
# the phase files in infra/phases/). Sourced, never executed.
#
# Conventions:
# - every mutating cloud call goes through run(), which prints the command (secrets
#   masked) and, in dry-run mode, does nothing else;
# - every read goes through exists()/query(), which in dry-run mode never call gcloud,
#   so a dry run prints the whole ordered plan as if nothing existed yet;
# - gcloud is injectable with GCLOUD=..., curl with CURL=... (tests put stubs on PATH);
# - flags are always written as --flag=value.

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly INFRA_DIR
readonly REPO_DIR="${INFRA_DIR%/infra}"
GCLOUD="${GCLOUD:-gcloud}"
CURL="${CURL:-curl}"
DRY_RUN="${DRY_RUN:-0}"

# Resource names, from the guide ("Expected Resources Created" and §1-§7). One project
# per environment, so the names do not carry the environment.
readonly AUDIO_SERVICE="ai4joy-audio-service"
readonly API_SERVICE="ai4joy-api-service"
readonly AUDIO_SA_NAME="audio-service"
readonly API_SA_NAME="api-service"
readonly SCHEDULER_SA_NAME="ai4joy-scheduler"
readonly CUSTOM_ROLE_ID="AudioServiceRole"
readonly ARTIFACT_REPO="ai4joy"
readonly IMAGE_NAME="ai4joy"
readonly OPS_IMAGE_NAME="ai4joy-ops"
readonly ROTATOR_SA_NAME="ai4joy-rotator"
readonly ROTATION_JOB="ai4joy-secret-rotation"
readonly ROTATION_SCHEDULE_JOB="ai4joy-secret-rotation-monthly"
readonly VPC_SC_PERIMETER="ai4joy_perimeter"
readonly MIGRATE_JOB="ai4joy-migrate"
readonly GUARD_JOB="ai4joy-rollout-guard"
readonly GUARD_SCHEDULE_JOB="ai4joy-rollout-guard-every-minute"
readonly VPC_NETWORK="ai4joy-vpc"
readonly VPC_SUBNET="ai4joy-run-egress"
readonly REDIS_INSTANCE="ai4joy-channels"
readonly SQL_INSTANCE="ai4joy-db"
readonly SQL_DATABASE="ai4joy"
readonly SQL_USER="ai4joy"
readonly LB_IP_NAME="ai4joy-lb-ip"
readonly AUDIO_NEG="ai4joy-audio-neg"
readonly API_NEG="ai4joy-api-neg"
readonly AUDIO_BACKEND="audio-backend-service"
readonly API_BACKEND="api-backend-service"
readonly URL_MAP="ai4joy-url-map"
readonly PATH_MATCHER="ai4joy-paths"
readonly SSL_CERT="ai4joy-ssl-cert"
readonly HTTPS_PROXY="ai4joy-https-proxy"
readonly HTTPS_RULE="ai4joy-https-rule"
readonly REDIRECT_URL_MAP="ai4joy-http-redirect"
readonly HTTP_PROXY="ai4joy-http-proxy"
readonly HTTP_RULE="ai4joy-http-rule"
readonly SECURITY_POLICY="ai4joy-security-policy"
readonly AUDIT_BUCKET="audio-audit-logs"
readonly AUDIT_SINK="audio-audit-logs"
readonly CONFIG_LABEL="ai4joy_config"

# Secret Manager secret -> environment variable it is exposed as.
readonly SECRET_DJANGO_KEY="django-secret-key"
readonly SECRET_DATABASE_URL="database-url"
readonly SECRET_OAUTH="oauth-client-secret"
readonly SECRET_ADK="adk-api-key"
# Secrets the monthly job rotates (values it can generate itself). The ADK API key comes
# from a key provider and the database password must change in Cloud SQL too: both stay
# manual (ops.sh rotate-secret).
readonly ROTATE_SECRETS="${SECRET_DJANGO_KEY}"
readonly OLD_VERSION_DAYS=7

# Values every environment file must set (a missing or empty one stops the run).
readonly REQUIRED_CONFIG=(
  PROJECT_ID REGION ENVIRONMENT DOMAIN_NAME
  AUDIO_MIN_INSTANCES AUDIO_MAX_INSTANCES AUDIO_CONCURRENCY AUDIO_CPU AUDIO_MEMORY AUDIO_TIMEOUT
  API_MIN_INSTANCES API_MAX_INSTANCES API_CONCURRENCY API_CPU API_MEMORY API_TIMEOUT
  NOTIFICATION_EMAIL ENABLE_CLOUD_ARMOR ENABLE_HTTP_REDIRECT
  VERTEX_AI_LOCATION FIRESTORE_LOCATION FIRESTORE_BACKUP_RETENTION
  SQL_TIER SQL_AVAILABILITY SQL_DATABASE_VERSION REDIS_TIER REDIS_SIZE_GB REDIS_VERSION
  SUBNET_RANGE BUDGET_AMOUNT API_RATE_LIMIT_PER_MIN WS_HANDSHAKE_LIMIT_PER_MIN
  DEFAULT_LOG_RETENTION_DAYS ARMOR_WAF_PREVIEW RUNBOOK_BASE_URL
)
# Values that may be empty (features that are skipped, with a warning, when unset).
readonly OPTIONAL_CONFIG=(GOOGLE_OAUTH_CLIENT_ID BILLING_ACCOUNT NOTIFICATION_WEBHOOK_URL IMAGE_TAG
  ENABLE_VPC_SC ACCESS_POLICY_ID ORGANIZATION_ID PAGER_EMAIL PAGER_WEBHOOK_URL)

#######################################
# Print an error to STDERR.
# Arguments: message words
#######################################
err() {
  printf 'ERROR: %s\n' "$*" >&2
}

#######################################
# Print an error and exit 1.
#######################################
die() {
  err "$@"
  exit 1
}

#######################################
# Progress message on STDERR (plan output stays clean on STDOUT).
#######################################
info() {
  printf '==> %s\n' "$*" >&2
}

warn() {
  printf 'WARNING: %s\n' "$*" >&2
}

#######################################
# Render a command for display, masking secret-looking values.
# Arguments: the command words
# Outputs: one line on STDOUT
#######################################
render_cmd() {
  local out="" word
  for word in "$@"; do
    case "${word}" in
      --password=*) word="--password=****" ;;
      *Bearer\ *) word="${word%%Bearer *}Bearer ****" ;;
    esac
    out+="$(printf '%q' "${word}") "
  done
  printf '%s\n' "${out% }"
}

#######################################
# Run a mutating command, or only print it in dry-run mode.
# Globals: DRY_RUN
# Arguments: the command words
# Outputs: "+ command" on STDOUT (dry run) or STDERR (real run)
#######################################
run() {
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '+ %s\n' "$(render_cmd "$@")"
    return 0
  fi
  printf '+ %s\n' "$(render_cmd "$@")" >&2
  "$@"
}

#######################################
# gcloud with the project and no prompts. Arguments: gcloud words.
#######################################
gc() {
  run "${GCLOUD}" "$@" "--project=${PROJECT_ID}" --quiet
}

#######################################
# Does a resource exist? Runs a describe/list command quietly.
# In dry-run mode nothing is asked and the answer is "no".
# A failure that is not "not found" (permissions, network) stops the run.
# Arguments: gcloud words of a describe command
# Returns: 0 if found, 1 if not found
#######################################
exists() {
  [[ "${DRY_RUN}" == 1 ]] && return 1
  local errfile rc=0
  errfile="$(mktemp)"
  "${GCLOUD}" "$@" "--project=${PROJECT_ID}" --quiet >/dev/null 2>"${errfile}" || rc=$?
  if ((rc == 0)); then
    rm -f "${errfile}"
    return 0
  fi
  if grep -qiE 'NOT_FOUND|not found|does not exist|404' "${errfile}"; then
    rm -f "${errfile}"
    return 1
  fi
  err "gcloud $* failed:"
  cat "${errfile}" >&2
  rm -f "${errfile}"
  exit 1
}

#######################################
# Read a value with gcloud (describe --format=value(...) or list).
# In dry-run mode prints the placeholder instead.
# Arguments: placeholder, then gcloud words
# Outputs: the value on STDOUT
#######################################
query() {
  local placeholder="$1"
  shift
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '%s\n' "${placeholder}"
    return 0
  fi
  "${GCLOUD}" "$@" "--project=${PROJECT_ID}" --quiet
}

#######################################
# Call a Google REST API (used for SLOs, which have no gcloud command).
# The access token comes from gcloud and is passed to curl on STDIN (never argv/logs).
# Arguments: METHOD URL [BODY_FILE]
# Sets: HTTP_STATUS and HTTP_BODY (the body is not printed: it may hold details)
#######################################
HTTP_STATUS=""
HTTP_BODY=""
gcp_api() {
  local method="$1" url="$2" body="${3:-}" token out
  HTTP_BODY=""
  if [[ "${DRY_RUN}" == 1 ]]; then
    # Reads are not made in a dry run; everything is planned as missing.
    if [[ "${method}" == GET ]]; then
      HTTP_STATUS=404
    else
      printf '+ %s\n' "$(render_cmd "${CURL}" -X "${method}" "${url}" ${body:+--data-binary "@${body}"})"
      HTTP_STATUS=200
    fi
    return 0
  fi
  if [[ -z "${ACCESS_TOKEN:-}" ]]; then
    ACCESS_TOKEN="$("${GCLOUD}" auth print-access-token --quiet)" || die "could not get an access token from gcloud"
  fi
  token="${ACCESS_TOKEN}"
  out="$(mktemp)"
  local args=(-sS -X "${method}" -o "${out}" -w '%{http_code}' --config -
    -H 'Content-Type: application/json' "${url}")
  [[ -n "${body}" ]] && args+=(--data-binary "@${body}")
  if [[ "${method}" != GET ]]; then
    printf '+ %s\n' "$(render_cmd "${CURL}" -X "${method}" "${url}" ${body:+--data-binary "@${body}"})" >&2
  fi
  HTTP_STATUS="$(printf 'header = "Authorization: Bearer %s"\n' "${token}" | "${CURL}" "${args[@]}")" \
    || die "HTTP ${method} ${url} failed"
  HTTP_BODY="$(cat "${out}")"
  rm -f "${out}"
}

#######################################
# Load infra/env/ENV.env into globals. KEY=VALUE lines only (no code is executed),
# '#' comments, optional surrounding quotes. Fails on unknown env or missing values.
# Arguments: environment name
#######################################
load_env() {
  local env_name="$1" file line key value
  [[ "${env_name}" =~ ^[a-z][a-z0-9-]*$ ]] || die "bad environment name '${env_name}'"
  file="${ENV_DIR:-${INFRA_DIR}/env}/${env_name}.env"
  [[ -f "${file}" ]] || die "unknown environment '${env_name}': no ${file} (known: $(known_envs))"
  # Only the file counts: a value left in the caller's environment must not fill a gap.
  # IMAGE_TAG is the one exception (documented: IMAGE_TAG=... infra/deploy.sh ...).
  local keep_tag="${IMAGE_TAG:-}"
  for key in "${REQUIRED_CONFIG[@]}" "${OPTIONAL_CONFIG[@]}"; do
    unset "${key}"
  done
  IMAGE_TAG="${keep_tag}"
  while IFS= read -r line || [[ -n "${line}" ]]; do
    [[ "${line}" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "${line}" =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || die "${file}: cannot parse line: ${line}"
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    value="${value%\"}"
    value="${value#\"}"
    printf -v "${key}" '%s' "${value}"
  done <"${file}"
  local missing=()
  for key in "${REQUIRED_CONFIG[@]}"; do
    [[ -n "${!key:-}" ]] || missing+=("${key}")
  done
  ((${#missing[@]} == 0)) || die "${file}: missing required value(s): ${missing[*]}"
  for key in "${OPTIONAL_CONFIG[@]}"; do
    [[ -n "${!key:-}" ]] || printf -v "${key}" '%s' ""
  done
  [[ "${ENVIRONMENT}" == "${env_name}" ]] \
    || die "${file}: ENVIRONMENT=${ENVIRONMENT} does not match the file name ${env_name}"
  derive_names
}

known_envs() {
  local f names=()
  for f in "${ENV_DIR:-${INFRA_DIR}/env}"/*.env; do
    [[ -e "${f}" ]] || continue
    f="${f##*/}"
    names+=("${f%.env}")
  done
  printf '%s' "${names[*]}"
}

#######################################
# Names derived from the loaded config.
#######################################
derive_names() {
  AUDIO_SA="${AUDIO_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  API_SA="${API_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  SCHEDULER_SA="${SCHEDULER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  ROTATOR_SA="${ROTATOR_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  REGISTRY="${REGION}-docker.pkg.dev/${PROJECT_ID}/${ARTIFACT_REPO}"
  SQL_CONNECTION="${PROJECT_ID}:${REGION}:${SQL_INSTANCE}"
}

#######################################
# The image reference to build and deploy: IMAGE_TAG from the env/command line, else
# the git commit (with -dirty when the tree has local changes).
#######################################
image_ref() {
  local tag="${IMAGE_TAG:-}"
  if [[ -z "${tag}" ]]; then
    tag="$(git -C "${REPO_DIR}" rev-parse --short=12 HEAD 2>/dev/null || true)"
    [[ -n "${tag}" ]] || die "IMAGE_TAG is not set and ${REPO_DIR} is not a git checkout"
    if [[ -n "$(git -C "${REPO_DIR}" status --porcelain 2>/dev/null)" ]]; then
      tag="${tag}-dirty"
    fi
  fi
  printf '%s/%s:%s\n' "${REGISTRY}" "${IMAGE_NAME}" "${tag}"
}

#######################################
# The ops image (infra/Dockerfile) for the same tag as the app image.
#######################################
ops_image_ref() {
  local app
  app="$(image_ref)"
  printf '%s/%s:%s\n' "${REGISTRY}" "${OPS_IMAGE_NAME}" "${app##*:}"
}

#######################################
# Substitute @KEY@ placeholders in a template into a temp file; prints its path.
# Arguments: template file, then KEY=VALUE pairs
#######################################
render_template() {
  local template="$1" out pair
  shift
  out="$(mktemp --suffix=.json)"
  cp "${template}" "${out}"
  for pair in "$@"; do
    local k="${pair%%=*}" v="${pair#*=}"
    v="${v//\\/\\\\}"
    v="${v//&/\\&}"
    v="${v//|/\\|}"
    sed -i "s|@${k}@|${v}|g" "${out}"
  done
  if grep -q '@[A-Z_]*@' "${out}"; then
    die "template ${template} has unfilled placeholders: $(grep -o '@[A-Z_]*@' "${out}" | sort -u | tr '\n' ' ')"
  fi
  printf '%s\n' "${out}"
}

# Placeholders every monitoring template may use.
template_vars() {
  printf '%s\n' "PROJECT_ID=${PROJECT_ID}" "REGION=${REGION}" "ENVIRONMENT=${ENVIRONMENT}" \
    "AUDIO_SERVICE=${AUDIO_SERVICE}" "API_SERVICE=${API_SERVICE}" "DOMAIN_NAME=${DOMAIN_NAME}" \
    "AUDIO_SATURATION_INSTANCES=$((AUDIO_MAX_INSTANCES * 8 / 10))" \
    "API_SATURATION_INSTANCES=$((API_MAX_INSTANCES * 8 / 10))"
}

#######################################
# Read a JSON value with python3 (present wherever the app is developed).
# Arguments: file, python expression over `d` (the parsed document)
#######################################
json_eval() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if r is not None else "")' "$1" "$2"
}

#######################################
# Is this IAM role already bound to this member on the resource?
# Arguments: member, role, then the gcloud words of a get-iam-policy command
#######################################
declare -A ROLE_CACHE=()
has_binding() {
  local member="$1" role="$2" cache_key
  shift 2
  [[ "${DRY_RUN}" == 1 ]] && return 1
  cache_key="$* ${member}"
  if [[ -z "${ROLE_CACHE[${cache_key}]+set}" ]]; then
    ROLE_CACHE[${cache_key}]="$("${GCLOUD}" "$@" "--flatten=bindings[].members" "--filter=bindings.members=${member}" \
      '--format=value(bindings.role)' "--project=${PROJECT_ID}" --quiet)" || die "gcloud $* failed"
  fi
  grep -qxF "${role}" <<<"${ROLE_CACHE[${cache_key}]}"
}

#######################################
# Add an IAM binding unless present.
# Arguments: kind (projects|secrets|run-jobs|run-services), resource, member, role, [extra flags...]
#######################################
ensure_binding() {
  local kind="$1" resource="$2" member="$3" role="$4"
  shift 4
  local cmd
  case "${kind}" in
    projects) cmd=(projects) ;;
    secrets) cmd=(secrets) ;;
    run-jobs) cmd=(run jobs) ;;
    run-services) cmd=(run services) ;;
    service-accounts) cmd=(iam service-accounts) ;;
    *) die "ensure_binding: unknown kind ${kind}" ;;
  esac
  if has_binding "${member}" "${role}" "${cmd[@]}" get-iam-policy "${resource}" "$@"; then
    return 0
  fi
  local extra=()
  [[ "${kind}" == projects ]] && extra=(--condition=None)
  gc "${cmd[@]}" add-iam-policy-binding "${resource}" "--member=${member}" "--role=${role}" "$@" \
    "${extra[@]}" --format=none
}

#######################################
# A short stable hash of the given words (used to redeploy only on change).
#######################################
config_hash() {
  printf '%s\n' "$@" | sha256sum | cut -c1-16
}

#######################################
# Generate a random URL-safe secret of N characters (default 50). Never printed.
#######################################
random_secret() {
  local n="${1:-50}" s=""
  while ((${#s} < n)); do
    s+="$(head -c 96 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')"
  done
  printf '%s' "${s:0:n}"
}

#######################################
# Does the secret have at least one enabled version?
#######################################
secret_has_version() {
  local secret="$1" versions
  [[ "${DRY_RUN}" == 1 ]] && return 1
  versions="$("${GCLOUD}" secrets versions list "${secret}" --filter=state=ENABLED --limit=1 \
    '--format=value(name)' "--project=${PROJECT_ID}" --quiet 2>/dev/null || true)"
  [[ -n "${versions}" ]]
}

#######################################
# Add a secret version from STDIN (the value never appears in argv or logs).
#######################################
add_secret_version() {
  local secret="$1"
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '+ %s\n' "$(render_cmd "${GCLOUD}" secrets versions add "${secret}" --data-file=- \
      "--project=${PROJECT_ID}" --quiet) <<< ****"
    cat >/dev/null
    return 0
  fi
  printf '+ %s\n' "$(render_cmd "${GCLOUD}" secrets versions add "${secret}" --data-file=- \
    "--project=${PROJECT_ID}" --quiet) <<< ****" >&2
  "${GCLOUD}" secrets versions add "${secret}" --data-file=- "--project=${PROJECT_ID}" --quiet >/dev/null
}

#######################################
# Describe where a service's traffic goes when it does not all follow the latest
# revision (pinned by a rollback, maintenance, or a no-traffic rotation).
# Arguments: service name
# Outputs: e.g. "ai4joy-audio-service-00001-abc=100%" or nothing when LATEST serves all
#######################################
pinned_traffic() {
  local svc="$1" doc
  [[ "${DRY_RUN}" == 1 ]] && return 0
  doc="$(mktemp)"
  query "" run services describe "${svc}" "--region=${REGION}" --format=json >"${doc}" \
    || { rm -f "${doc}"; die "could not read the traffic split of ${svc}"; }
  python3 - "${doc}" <<'PY' || { rm -f "${doc}"; die "could not parse the traffic split of ${svc}"; }
import json, sys
traffic = json.load(open(sys.argv[1])).get("status", {}).get("traffic", [])
if not any(t.get("latestRevision") and t.get("percent", 0) == 100 for t in traffic):
    print(", ".join(f"{t.get('revisionName', 'LATEST')}={t.get('percent', 0)}%" for t in traffic if t.get("percent")))
PY
  rm -f "${doc}"
}

#######################################
# Parse the common "ENV [--dry-run] [args...]" command line; sets ENV_NAME, DRY_RUN, ARGS.
#######################################
parse_common_args() {
  ARGS=()
  ENV_NAME=""
  local a
  for a in "$@"; do
    case "${a}" in
      --dry-run | -n) DRY_RUN=1 ;;
      --image-tag=*) IMAGE_TAG_OVERRIDE="${a#*=}" ;;
      -h | --help) usage; exit 0 ;;
      -*)
        [[ "${ALLOW_OPTIONS:-0}" == 1 ]] || die "unknown option ${a} (see --help)"
        ARGS+=("${a}")
        ;;
      *)
        if [[ -z "${ENV_NAME}" ]]; then ENV_NAME="${a}"; else ARGS+=("${a}"); fi
        ;;
    esac
  done
  [[ -n "${ENV_NAME}" ]] || { usage >&2; die "missing ENV (one of: $(known_envs))"; }
  load_env "${ENV_NAME}"
  [[ -z "${IMAGE_TAG_OVERRIDE:-}" ]] || IMAGE_TAG="${IMAGE_TAG_OVERRIDE}"
  if [[ "${DRY_RUN}" != 1 ]]; then
    command -v "${GCLOUD}" >/dev/null || die "gcloud not found (install the Google Cloud CLI or set GCLOUD)"
  fi
}
