#!/usr/bin/env bash
#
# Runbook operations from the deployment guide ("Operational Runbook", "Secret
# Rotation", "Disaster Recovery"), for one environment.
#
#   infra/ops.sh ENV [--dry-run] COMMAND [args...]
#
# SERVICE is audio, api, or a full Cloud Run service name.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly MAINTENANCE_IMAGE="${MAINTENANCE_IMAGE:-us-docker.pkg.dev/cloudrun/container/hello}"

usage() {
  cat <<EOF
Usage: infra/ops.sh ENV [--dry-run] COMMAND [args...]

Commands:
  revisions SERVICE                 list revisions (newest first) and the traffic split
  rollback SERVICE REVISION         send 100% of traffic to REVISION
  promote SERVICE                   send 100% of traffic to the latest revision (after a smoke test)
  maintenance on SERVICE            serve the maintenance image (guide: gcr.io/cloudrun/hello)
  maintenance off SERVICE [REV]     back to REV (default: newest revision not running the maintenance image)
  scale SERVICE [--min=N] [--max=N] [--cpu=N] [--memory=SIZE] [--concurrency=N]
                                    the runbook's scaling knobs (gcloud run services update)
  rotate-secret SECRET              add a secret version from STDIN, then deploy no-traffic
                                    revisions (tag "rotated") of the services that use it
  disable-secret-version SECRET VERSION
                                    disable an old version (guide: after 7 days)
  disable-old-versions SECRET [DAYS]
                                    disable every enabled version older than DAYS (default 7)
                                    except the newest
  rotation-run                      the monthly job (Cloud Scheduler): new versions of the
                                    generated secrets (${ROTATE_SECRETS}), new revisions,
                                    smoke test (rollback on failure), old versions disabled
  vertex-quota list                 Vertex AI quotas of the project (gcloud beta quotas info list)
  vertex-quota request QUOTA_ID VALUE [DIMENSION=V,...] [--email=ADDR]
                                    ask for more (gcloud beta quotas preferences create)
  logs SERVICE [LIMIT]              recent errors (severity>=ERROR) of a service
  smoke [BASE_URL]                  smoke test through the load balancer (default https://DOMAIN_NAME)

ENV: one of: $(known_envs)
EOF
}

#######################################
# audio|api|full name -> Cloud Run service name.
#######################################
service_name() {
  case "${1:-}" in
    audio | "${AUDIO_SERVICE}") printf '%s\n' "${AUDIO_SERVICE}" ;;
    api | "${API_SERVICE}") printf '%s\n' "${API_SERVICE}" ;;
    "") die "missing SERVICE (audio or api)" ;;
    *) die "unknown service '$1' (audio or api)" ;;
  esac
}

cmd_revisions() {
  local svc
  svc="$(service_name "${1:-}")"
  run "${GCLOUD}" run revisions list "--service=${svc}" "--region=${REGION}" "--project=${PROJECT_ID}" \
    --sort-by=~metadata.creationTimestamp --limit=10
  run "${GCLOUD}" run services describe "${svc}" "--region=${REGION}" "--project=${PROJECT_ID}" \
    '--format=table(status.traffic[].revisionName,status.traffic[].percent,status.traffic[].tag)'
}

cmd_rollback() {
  local svc revision="${2:-}"
  svc="$(service_name "${1:-}")"
  [[ -n "${revision}" ]] || die "missing REVISION (see: infra/ops.sh ${ENVIRONMENT} revisions ${1})"
  gc run services update-traffic "${svc}" "--region=${REGION}" "--to-revisions=${revision}=100"
}

cmd_promote() {
  local svc
  svc="$(service_name "${1:-}")"
  gc run services update-traffic "${svc}" "--region=${REGION}" --to-latest
}

cmd_maintenance() {
  local mode="${1:-}" svc revision="${3:-}"
  svc="$(service_name "${2:-}")"
  case "${mode}" in
    on)
      # The config label is changed so that the next 'deploy.sh services' redeploys the
      # real image instead of treating the maintenance revision as current.
      gc run deploy "${svc}" "--image=${MAINTENANCE_IMAGE}" "--region=${REGION}" --tag=maintenance \
        --no-traffic "--update-labels=${CONFIG_LABEL}=maintenance"
      gc run services update-traffic "${svc}" "--region=${REGION}" --to-tags=maintenance=100
      info "maintenance on for ${svc}; end it with: infra/ops.sh ${ENVIRONMENT} maintenance off ${2}"
      ;;
    off)
      if [[ -z "${revision}" ]]; then
        # The listing is read whole first and parsed after: a reader that stops at the first
        # match (awk '{...; exit}') closes the pipe while gcloud may still be writing, and
        # under pipefail that fails the command whenever the listing is long.
        local listing
        listing="$(query "PREVIOUS_REVISION" run revisions list "--service=${svc}" "--region=${REGION}" \
          --sort-by=~metadata.creationTimestamp '--format=value(metadata.name,spec.containers[0].image)')" \
          || die "could not list the revisions of ${svc}"
        revision="$(awk -v img="${MAINTENANCE_IMAGE}" \
          'found == 0 && $2 != img && index($2, img "@") != 1 {print $1; found = 1}' <<<"${listing}")"
        [[ "${DRY_RUN}" != 1 ]] || revision="PREVIOUS_REVISION"
      fi
      [[ -n "${revision}" ]] || die "no revision without the maintenance image found; pass REVISION"
      gc run services update-traffic "${svc}" "--region=${REGION}" "--to-revisions=${revision}=100"
      gc run services update-traffic "${svc}" "--region=${REGION}" --remove-tags=maintenance
      ;;
    *) die "maintenance: say 'on' or 'off'" ;;
  esac
}

cmd_scale() {
  local svc flags=() a
  svc="$(service_name "${1:-}")"
  shift || true
  for a in "$@"; do
    case "${a}" in
      --min=[0-9]*) flags+=("--min-instances=${a#*=}") ;;
      --max=[0-9]*) flags+=("--max-instances=${a#*=}") ;;
      --cpu=[0-9]*) flags+=("--cpu=${a#*=}") ;;
      --memory=[0-9]*) flags+=("--memory=${a#*=}") ;;
      --concurrency=[0-9]*) flags+=("--concurrency=${a#*=}") ;;
      *) die "scale: unknown knob '${a}' (--min=N --max=N --cpu=N --memory=SIZE --concurrency=N)" ;;
    esac
  done
  ((${#flags[@]} > 0)) || die "scale: give at least one of --min --max --cpu --memory --concurrency"
  gc run services update "${svc}" "--region=${REGION}" "${flags[@]}"
  warn "scaling changes last until the next deploy of a changed config; make them permanent in infra/env/${ENVIRONMENT}.env"
}

cmd_rotate_secret() {
  local secret="${1:-}" users=() svc stamp
  case "${secret}" in
    "${SECRET_DJANGO_KEY}" | "${SECRET_DATABASE_URL}" | "${SECRET_ADK}") users=("${AUDIO_SERVICE}" "${API_SERVICE}") ;;
    "${SECRET_OAUTH}") users=("${API_SERVICE}") ;;
    "") die "missing SECRET (${SECRET_DJANGO_KEY} ${SECRET_DATABASE_URL} ${SECRET_OAUTH} ${SECRET_ADK})" ;;
    *) die "unknown secret '${secret}' (${SECRET_DJANGO_KEY} ${SECRET_DATABASE_URL} ${SECRET_OAUTH} ${SECRET_ADK})" ;;
  esac
  [[ ! -t 0 ]] || die "rotate-secret reads the new value from STDIN (e.g. pipe it in); it is never an argument"
  local value
  value="$(cat)"
  [[ -n "${value}" ]] || die "rotate-secret: the value on STDIN is empty"
  printf '%s' "${value}" | add_secret_version "${secret}"
  unset value
  stamp="$(date -u +%Y%m%dt%H%M%Sz)"
  for svc in "${users[@]}"; do
    if [[ "${DRY_RUN}" == 1 ]] || exists run services describe "${svc}" "--region=${REGION}"; then
      # A new revision resolves :latest again; no traffic until promoted (guide).
      gc run services update "${svc}" "--region=${REGION}" --no-traffic --tag=rotated \
        "--update-env-vars=SECRET_ROTATED_AT=${stamp}"
    fi
  done
  info "next: infra/ops.sh ${ENVIRONMENT} promote SERVICE, then infra/ops.sh ${ENVIRONMENT} smoke" \
    "(roll back with 'rollback' if it fails); disable the old version after 7 days with disable-secret-version"
}

cmd_disable_secret_version() {
  local secret="${1:-}" version="${2:-}"
  [[ -n "${secret}" && -n "${version}" ]] || die "usage: disable-secret-version SECRET VERSION"
  [[ "${version}" != latest ]] || die "refusing to disable 'latest'"
  gc secrets versions disable "${version}" "--secret=${secret}"
}

#######################################
# Disable every ENABLED version of SECRET older than DAYS, except the newest one (which
# "latest" resolves to). The listing is read whole before anything is parsed.
#######################################
cmd_disable_old_versions() {
  local secret="${1:-}" days="${2:-${OLD_VERSION_DAYS}}" listing old version
  [[ -n "${secret}" ]] || die "usage: disable-old-versions SECRET [DAYS]"
  [[ "${days}" =~ ^[0-9]+$ ]] || die "disable-old-versions: DAYS must be a number, not '${days}'"
  listing="$(query "" secrets versions list "${secret}" --filter=state=ENABLED --sort-by=~createTime \
    '--format=value(name,createTime)')" || die "could not list the versions of ${secret}"
  old="$(python3 -c '
import datetime as dt, sys
days, listing = int(sys.argv[1]), sys.argv[2]
rows = [line.split("\t") for line in listing.splitlines() if line.strip()]
cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
for name, created in rows[1:]:  # rows[0] is the newest: "latest" must stay enabled
    if dt.datetime.fromisoformat(created.replace("Z", "+00:00")) < cutoff:
        print(name.rsplit("/", 1)[-1])
' "${days}" "${listing}")" || die "could not read the version list of ${secret}"
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '# then: gcloud secrets versions disable VERSION --secret=%s, for each enabled version older than %s days but the newest\n' \
      "${secret}" "${days}"
    return 0
  fi
  for version in ${old}; do
    gc secrets versions disable "${version}" "--secret=${secret}"
  done
  info "${secret}: $(wc -w <<<"${old}") version(s) older than ${days} days disabled"
}

#######################################
# The monthly rotation job (infra/phases/security.sh schedules it). Refuses to run while a
# service's traffic is pinned (a rollback or maintenance is in progress).
#######################################
cmd_rotation_run() {
  local secret svc stamp previous=() services=("${AUDIO_SERVICE}" "${API_SERVICE}") pinned rev
  for svc in "${services[@]}"; do
    pinned="$(pinned_traffic "${svc}")"
    [[ -z "${pinned}" ]] || die "rotation-run: ${svc} traffic is pinned (${pinned}); not rotating during a rollback or maintenance"
  done
  for secret in ${ROTATE_SECRETS}; do
    random_secret 64 | add_secret_version "${secret}"
  done
  stamp="$(date -u +%Y%m%dt%H%M%Sz)"
  for svc in "${services[@]}"; do
    rev="$(query "PREVIOUS_REVISION" run services describe "${svc}" "--region=${REGION}" \
      '--format=value(status.latestReadyRevisionName)')" || die "could not read ${svc}"
    [[ -n "${rev}" ]] || die "rotation-run: ${svc} has no ready revision"
    previous+=("${rev}")
    # A new revision resolves :latest again; traffic follows LATEST (checked above).
    gc run services update "${svc}" "--region=${REGION}" "--update-env-vars=SECRET_ROTATED_AT=${stamp}"
  done
  if ! cmd_smoke "https://${DOMAIN_NAME}"; then
    local i
    for i in "${!services[@]}"; do
      gc run services update-traffic "${services[i]}" "--region=${REGION}" "--to-revisions=${previous[i]}=100"
    done
    die "rotation-run: smoke test FAILED after rotating ${ROTATE_SECRETS}; traffic is back on" \
      "${previous[*]} (pinned: release with 'promote' once fixed)"
  fi
  for secret in ${ROTATE_SECRETS}; do
    cmd_disable_old_versions "${secret}" "${OLD_VERSION_DAYS}"
  done
  info "rotation-run: rotated ${ROTATE_SECRETS}; services on new revisions; smoke test passed"
}

#######################################
# Vertex AI quota (guide 1.3). "list" shows the project's Vertex AI quotas (their QUOTA_ID
# and dimensions); "request" files a quota preference, the API behind the console's
# "edit quota" (guaranteed capacity beyond quotas is Provisioned Throughput, bought in the
# console). The preference id is fixed per quota and dimensions, so a re-run updates it.
#######################################
cmd_vertex_quota() {
  local mode="${1:-}"
  case "${mode}" in
    list)
      run "${GCLOUD}" beta quotas info list --service=aiplatform.googleapis.com "--project=${PROJECT_ID}" \
        '--format=table(quotaId,dimensions.list(),metric)'
      ;;
    request)
      local quota="${2:-}" value="${3:-}" dims="" email="" a
      [[ "${quota}" =~ ^[A-Za-z0-9_-]+$ ]] || die "vertex-quota request: QUOTA_ID (see 'vertex-quota list')"
      [[ "${value}" =~ ^[0-9]+$ ]] || die "vertex-quota request: VALUE must be a number, not '${value}'"
      for a in "${@:4}"; do
        case "${a}" in
          --email=*) email="${a#*=}" ;;
          *=*) dims="${a}" ;;
          *) die "vertex-quota request: unknown argument '${a}'" ;;
        esac
      done
      [[ -n "${dims}" ]] || dims="region=${VERTEX_AI_LOCATION}"
      local id
      id="$(tr -c 'a-z0-9-' '-' <<<"${quota,,}-${dims,,}" | cut -c1-60)"
      id="${id%-}"
      gc beta quotas preferences create "--service=aiplatform.googleapis.com" "--quota-id=${quota}" \
        "--preferred-value=${value}" "--dimensions=${dims}" "--preference-id=${id}" \
        "--email=${email:-${NOTIFICATION_EMAIL}}" \
        "--justification=ai4joy ${ENVIRONMENT}: real-time voice sessions (deployment guide 1.3)"
      info "quota preference ${id} filed; follow it with: gcloud beta quotas preferences describe ${id} --project=${PROJECT_ID}"
      ;;
    *) die "vertex-quota: say 'list' or 'request QUOTA_ID VALUE'" ;;
  esac
}

cmd_logs() {
  local svc limit="${2:-50}"
  svc="$(service_name "${1:-}")"
  run "${GCLOUD}" logging read \
    "resource.type=cloud_run_revision AND resource.labels.service_name=${svc} AND severity>=ERROR" \
    "--limit=${limit}" --format=json "--project=${PROJECT_ID}"
}

#######################################
# Smoke test (guide 4.1/4.2), honest about what it can check without signing in:
#  1. GET /health answers 200 {"status":"healthy","service":"api"}  (routed to the api)
#  2. GET /ws/health answers 200 {"status":"healthy","service":"audio"} (routed to audio)
#  3. an anonymous WebSocket upgrade on /ws/audio/ reaches the audio service and is
#     refused (HTTP 403 at the handshake, or accepted and closed with a 4xxx policy code).
# The guide's ping -> pong exchange needs a signed-in session and is not run here.
#######################################
cmd_smoke() {
  local base="${1:-https://${DOMAIN_NAME}}" failed=0
  base="${base%/}"
  if [[ "${DRY_RUN}" == 1 ]]; then
    printf '+ %s\n' "$(render_cmd "${CURL}" -sS "${base}/health")" "$(render_cmd "${CURL}" -sS "${base}/ws/health")" \
      "$(render_cmd "${CURL}" --http1.1 -H 'Upgrade: websocket' "${base}/ws/audio/smoke-test")"
    return 0
  fi
  smoke_health "${base}/health" api || failed=1
  smoke_health "${base}/ws/health" audio || failed=1
  smoke_ws "${base}" || failed=1
  if ((failed)); then
    err "smoke test FAILED for ${base}"
    return 1
  fi
  info "smoke test passed for ${base}"
}

smoke_health() {
  local url="$1" want="$2" body code
  body="$(mktemp)"
  code="$("${CURL}" -sS --max-time 10 -o "${body}" -w '%{http_code}' "${url}" || true)"
  if [[ "${code}" != 200 ]]; then
    err "GET ${url}: HTTP ${code:-none} (want 200)"
    rm -f "${body}"
    return 1
  fi
  if ! python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("status")=="healthy" and d.get("service")==sys.argv[2] else 1)' \
    "${body}" "${want}" 2>/dev/null; then
    err "GET ${url}: body is not {\"status\":\"healthy\",\"service\":\"${want}\"}: $(head -c 200 "${body}")"
    rm -f "${body}"
    return 1
  fi
  rm -f "${body}"
  info "GET ${url}: 200 healthy (${want})"
}

smoke_ws() {
  local base="$1" url code result
  url="${base}/ws/audio/smoke-test"
  if [[ "${SMOKE_WS_CLIENT:-auto}" != curl ]] && python3 -c 'import websockets' 2>/dev/null; then
    result="$(python3 "${INFRA_DIR}/smoke_ws.py" "${url/#http/ws}" "${base}")" || {
      err "WebSocket ${url}: ${result}"
      return 1
    }
    info "WebSocket ${url}: ${result}"
    return 0
  fi
  code="$("${CURL}" --http1.1 -sS -o /dev/null --max-time 5 -w '%{http_code}' \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: c21va2UtdGVzdC1ub25jZQ==' -H "Origin: ${base}" "${url}" 2>/dev/null || true)"
  case "${code}" in
    403 | 401) info "WebSocket ${url}: anonymous upgrade refused with HTTP ${code} (as expected)" ;;
    101) info "WebSocket ${url}: upgrade accepted (HTTP 101); the close code is not visible to curl" ;;
    *)
      err "WebSocket ${url}: HTTP ${code:-none} (want 403 for an anonymous socket, or 101)"
      return 1
      ;;
  esac
}

main() {
  ALLOW_OPTIONS=1
  parse_common_args "$@"
  local command_name="${ARGS[0]:-}"
  [[ -n "${command_name}" ]] || { usage >&2; die "missing COMMAND"; }
  local rest=("${ARGS[@]:1}")
  case "${command_name}" in
    revisions | rollback | promote | maintenance | scale | logs | smoke) "cmd_${command_name}" "${rest[@]}" ;;
    rotate-secret) cmd_rotate_secret "${rest[@]}" ;;
    disable-secret-version) cmd_disable_secret_version "${rest[@]}" ;;
    disable-old-versions) cmd_disable_old_versions "${rest[@]}" ;;
    rotation-run) cmd_rotation_run "${rest[@]}" ;;
    vertex-quota) cmd_vertex_quota "${rest[@]}" ;;
    *) usage >&2; die "unknown command '${command_name}'" ;;
  esac
}

main "$@"
