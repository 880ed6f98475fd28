# shellcheck shell=bash
#
# Phase "observability" (guide §7 and "Monitoring & Alerting"): log-based metrics from
# the app's structured logs (jsonPayload.event), notification channels, SLOs (REST API:
# there is no gcloud command), alert policies (gcloud alpha), the nine-panel dashboard,
# the budget alert, 7-day retention of the _Default log bucket, Data Access audit logs
# and the audit-log sink with 400-day retention.
# Definitions live in infra/monitoring/ as JSON templates with @PLACEHOLDERS@.
# Sourced by infra/deploy.sh.

readonly MONITORING_DIR="${INFRA_DIR}/monitoring"
readonly MONITORING_API="https://monitoring.googleapis.com/v3"
# Guide "Audit Logging": Data Access logs must be enabled (Admin Activity logs always are).
readonly DATA_ACCESS_SERVICES=(aiplatform.googleapis.com firestore.googleapis.com secretmanager.googleapis.com)
readonly AUDIT_LOG_FILTER='logName:"cloudaudit.googleapis.com" AND (protoPayload.serviceName="aiplatform.googleapis.com" OR protoPayload.serviceName="run.googleapis.com" OR protoPayload.serviceName="secretmanager.googleapis.com")'

phase_observability() {
  local vars=() file rendered name
  mapfile -t vars < <(template_vars)
  # The dashboard's audio min/max lines, and the guide's cost overrun (daily spend > 120% of the
  # daily budget: DAILY_BUDGET_USD, whole dollars; by default a thirtieth of BUDGET_AMOUNT).
  local daily_budget="${DAILY_BUDGET_USD:-$((BUDGET_AMOUNT / 30))}"
  [[ "${daily_budget}" =~ ^[0-9]+$ ]] || die "DAILY_BUDGET_USD must be whole dollars, not '${daily_budget}'"
  vars+=("AUDIO_MIN_INSTANCES=${AUDIO_MIN_INSTANCES}" "AUDIO_MAX_INSTANCES=${AUDIO_MAX_INSTANCES}"
    "DAILY_COST_ALERT_USD=$((daily_budget * 12 / 10))")

  info "observability: log-based metrics"
  local have_metrics
  have_metrics="$(query "" logging metrics list '--format=value(name)')"
  for file in "${MONITORING_DIR}"/metrics/*.json; do
    name="$(basename "${file}" .json)"
    if ! grep -qxF "${name}" <<<"${have_metrics}"; then
      rendered="$(render_template "${file}" "${vars[@]}")"
      gc logging metrics create "${name}" "--config-from-file=${rendered}"
      rm -f "${rendered}"
    fi
  done

  info "observability: notification channels (warnings: e-mail/webhook; critical: pager)"
  local channels=() pagers=()
  ensure_channel "ai4joy ${ENVIRONMENT} email" email "email_address=${NOTIFICATION_EMAIL}"
  channels+=("${CHANNEL_NAME}")
  if [[ -n "${NOTIFICATION_WEBHOOK_URL}" ]]; then
    ensure_channel "ai4joy ${ENVIRONMENT} webhook" webhook_tokenauth "url=${NOTIFICATION_WEBHOOK_URL}"
    channels+=("${CHANNEL_NAME}")
  fi
  if [[ -n "${PAGER_EMAIL}" ]]; then
    ensure_channel "ai4joy ${ENVIRONMENT} pager email" email "email_address=${PAGER_EMAIL}"
    pagers+=("${CHANNEL_NAME}")
  fi
  if [[ -n "${PAGER_WEBHOOK_URL}" ]]; then
    ensure_channel "ai4joy ${ENVIRONMENT} pager webhook" webhook_tokenauth "url=${PAGER_WEBHOOK_URL}"
    pagers+=("${CHANNEL_NAME}")
  fi
  local channel_list page_list
  channel_list="$(IFS=,; printf '%s' "${channels[*]}")"
  if ((${#pagers[@]} == 0)); then
    warn "no paging channel (PAGER_EMAIL / PAGER_WEBHOOK_URL empty in infra/env/${ENVIRONMENT}.env):" \
      "CRITICAL alerts go to the warning channels and page nobody"
    page_list="${channel_list}"
  else
    # Critical alerts page, and also reach the warning channels so there is a written record.
    page_list="$(IFS=,; printf '%s' "${pagers[*]},${channels[*]}")"
  fi

  info "observability: SLOs (Monitoring REST API)"
  ensure_slo_service ai4joy-api "${MONITORING_DIR}/slos/service-ai4joy-api.json" "${vars[@]}"
  ensure_slo_service ai4joy-audio "${MONITORING_DIR}/slos/service-ai4joy-audio.json" "${vars[@]}"
  for file in "${MONITORING_DIR}"/slos/*--*.json; do
    name="$(basename "${file}" .json)"
    ensure_slo "${name%%--*}" "${name#*--}" "${file}" "${vars[@]}"
  done

  info "observability: alert policies"
  local display have_policies
  have_policies="$(query "" alpha monitoring policies list '--format=value(displayName)')"
  local severity route
  for file in "${MONITORING_DIR}"/alerts/*.json; do
    rendered="$(render_template "${file}" "${vars[@]}")"
    add_runbook_link "${rendered}" "${RUNBOOK_BASE_URL%/}/$(basename "${file}" .json)"
    display="$(json_eval "${rendered}" 'd["displayName"]')"
    severity="$(json_eval "${rendered}" 'd.get("severity", "")')"
    route="${channel_list}"
    [[ "${severity}" != CRITICAL ]] || route="${page_list}"
    if ! grep -qxF "${display}" <<<"${have_policies}"; then
      gc alpha monitoring policies create "--policy-from-file=${rendered}" "--notification-channels=${route}"
    fi
    rm -f "${rendered}"
  done

  info "observability: dashboard"
  rendered="$(render_template "${MONITORING_DIR}/dashboard.json" "${vars[@]}")"
  display="$(json_eval "${rendered}" 'd["displayName"]')"
  [[ -n "$(list_by_display_name "${display}" monitoring dashboards list)" ]] \
    || gc monitoring dashboards create "--config-from-file=${rendered}"
  rm -f "${rendered}"

  info "observability: budget alert"
  if [[ -z "${BILLING_ACCOUNT}" ]]; then
    warn "BILLING_ACCOUNT is empty in infra/env/${ENVIRONMENT}.env: the Cloud Billing budget (80/100/120% of" \
      "${BUDGET_AMOUNT} USD a month) was NOT created, so the whole bill is unwatched; only the app's own" \
      "estimate of voice spend is alerted on (daily > 120% of ${daily_budget} USD). Set BILLING_ACCOUNT to add it."
  else
    local budget_name="ai4joy ${ENVIRONMENT} budget"
    [[ -n "$(list_by_display_name "${budget_name}" billing budgets list "--billing-account=${BILLING_ACCOUNT}")" ]] \
      || gc billing budgets create "--billing-account=${BILLING_ACCOUNT}" "--display-name=${budget_name}" \
        "--budget-amount=${BUDGET_AMOUNT}USD" --threshold-rule=percent=0.8 --threshold-rule=percent=1.0 \
        --threshold-rule=percent=1.2 "--filter-projects=projects/${PROJECT_ID}" \
        "--notifications-rule-monitoring-notification-channels=${channel_list}"
  fi

  info "observability: _Default log bucket retention (${DEFAULT_LOG_RETENTION_DAYS} days)"
  # The guide's cost step ("sinks update _Default --log-filter='timestamp >= ...'") only
  # filters what is routed; retention is a property of the bucket, so set it there.
  local retention
  retention="$(query "" logging buckets describe _Default --location=global '--format=value(retentionDays)')"
  [[ "${retention}" == "${DEFAULT_LOG_RETENTION_DAYS}" ]] \
    || gc logging buckets update _Default --location=global "--retention-days=${DEFAULT_LOG_RETENTION_DAYS}"

  info "observability: Data Access audit logs (${DATA_ACCESS_SERVICES[*]})"
  ensure_data_access_logs

  info "observability: audit-log bucket (400 days) and sink"
  exists logging buckets describe "${AUDIT_BUCKET}" --location=global \
    || gc logging buckets create "${AUDIT_BUCKET}" --location=global --retention-days=400 \
      "--description=ai4joy audit logs (400-day retention)"
  exists logging sinks describe "${AUDIT_SINK}" \
    || gc logging sinks create "${AUDIT_SINK}" \
      "logging.googleapis.com/projects/${PROJECT_ID}/locations/global/buckets/${AUDIT_BUCKET}" \
      "--log-filter=${AUDIT_LOG_FILTER}"
}

#######################################
# Names of resources whose displayName is exactly NAME (empty when none; none in dry run).
# Arguments: display name, then the gcloud words of a list command
#######################################
list_by_display_name() {
  local display="$1"
  shift
  query "" "$@" "--filter=displayName=\"${display}\"" '--format=value(name)'
}

#######################################
# Notification channel by display name, created if missing.
# Sets: CHANNEL_NAME (its resource name)
#######################################
ensure_channel() {
  local display="$1" type="$2" label="$3" name
  name="$(list_by_display_name "${display}" beta monitoring channels list)"
  if [[ -z "${name}" ]]; then
    gc beta monitoring channels create "--display-name=${display}" "--type=${type}" "--channel-labels=${label}"
    name="$(query "projects/${PROJECT_ID}/notificationChannels/CHANNEL_${type^^}" \
      beta monitoring channels list "--filter=displayName=\"${display}\"" '--format=value(name)')"
  fi
  [[ -n "${name}" ]] || die "notification channel '${display}' was not found after creating it"
  CHANNEL_NAME="${name%%$'\n'*}"
}

#######################################
# Monitoring custom service for SLOs, created if GET says 404.
# Arguments: service id, template, template vars...
#######################################
ensure_slo_service() {
  local id="$1" template="$2" rendered
  shift 2
  gcp_api GET "${MONITORING_API}/projects/${PROJECT_ID}/services/${id}"
  case "${HTTP_STATUS}" in
    200) return 0 ;;
    404)
      rendered="$(render_template "${template}" "$@")"
      gcp_api POST "${MONITORING_API}/projects/${PROJECT_ID}/services?serviceId=${id}" "${rendered}"
      rm -f "${rendered}"
      [[ "${HTTP_STATUS}" == 200 ]] || die "creating monitoring service ${id} failed (HTTP ${HTTP_STATUS})"
      ;;
    *) die "reading monitoring service ${id} failed (HTTP ${HTTP_STATUS})" ;;
  esac
}

#######################################
# SLO under a service, created if GET says 404.
# Arguments: service id, slo id, template, template vars...
#######################################
ensure_slo() {
  local service="$1" slo="$2" template="$3" rendered url
  shift 3
  url="${MONITORING_API}/projects/${PROJECT_ID}/services/${service}/serviceLevelObjectives"
  gcp_api GET "${url}/${slo}"
  case "${HTTP_STATUS}" in
    200) return 0 ;;
    404)
      rendered="$(render_template "${template}" "$@")"
      gcp_api POST "${url}?serviceLevelObjectiveId=${slo}" "${rendered}"
      rm -f "${rendered}"
      [[ "${HTTP_STATUS}" == 200 ]] || die "creating SLO ${service}/${slo} failed (HTTP ${HTTP_STATUS})"
      ;;
    *) die "reading SLO ${service}/${slo} failed (HTTP ${HTTP_STATUS})" ;;
  esac
}

#######################################
# Data Access audit logs (ADMIN_READ, DATA_READ, DATA_WRITE) for DATA_ACCESS_SERVICES, set
# in the project IAM policy's auditConfigs. The policy is read whole, merged with jq
# (policy/audit_configs.jq: bindings, etag and other services are kept) and written back
# only when it changed; the etag makes a concurrent IAM change fail instead of being lost.
#######################################
ensure_data_access_logs() {
  local current merged
  command -v jq >/dev/null || die "jq is needed to merge the project IAM policy (apt-get install jq)"
  current="$(mktemp --suffix=.json)"
  merged="$(mktemp --suffix=.json)"
  query '{"bindings": [], "etag": "ETAG"}' projects get-iam-policy "${PROJECT_ID}" --format=json >"${current}" \
    || die "could not read the IAM policy of ${PROJECT_ID}"
  jq -f "${INFRA_DIR}/policy/audit_configs.jq" --args "${DATA_ACCESS_SERVICES[@]}" <"${current}" >"${merged}" \
    || die "could not merge auditConfigs into the IAM policy of ${PROJECT_ID}"
  jq -e --slurpfile before "${current}" '.bindings == $before[0].bindings and .etag == $before[0].etag' \
    "${merged}" >/dev/null || die "auditConfigs merge changed bindings or etag; refusing to write the policy"
  if [[ "${DRY_RUN}" != 1 ]] && jq -e --slurpfile before "${current}" '. == $before[0]' "${merged}" >/dev/null; then
    info "observability: Data Access audit logs already enabled"
  else
    gc projects set-iam-policy "${PROJECT_ID}" "${merged}" --format=none
  fi
  rm -f "${current}" "${merged}"
}

#######################################
# Put "Runbook: URL" at the top of an alert policy's documentation (guide "Runbook
# Integration"); the URL comes from RUNBOOK_BASE_URL in the env file.
# Arguments: rendered policy file (changed in place), runbook URL
#######################################
add_runbook_link() {
  python3 - "$1" "$2" <<'PY' || die "could not add the runbook link to $1"
import json, sys
path, url = sys.argv[1], sys.argv[2]
with open(path) as fh:
    policy = json.load(fh)
doc = policy.setdefault("documentation", {"mimeType": "text/markdown"})
doc["content"] = f"Runbook: {url}\n\n" + doc.get("content", "")
with open(path, "w") as fh:
    json.dump(policy, fh, indent=2)
PY
}
