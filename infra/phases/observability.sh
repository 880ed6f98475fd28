# shellcheck shell=bash
#
# Phase "observability" (guide §7 and "Monitoring & Alerting"): log-based metrics from
# the app's structured logs (jsonPayload.event), notification channels, SLOs (REST API:
# there is no gcloud command), alert policies (gcloud alpha), the nine-panel dashboard,
# the budget alert and the audit-log sink with 400-day retention.
# Definitions live in infra/monitoring/ as JSON templates with @PLACEHOLDERS@.
# Sourced by infra/deploy.sh.

readonly MONITORING_DIR="${INFRA_DIR}/monitoring"
readonly MONITORING_API="https://monitoring.googleapis.com/v3"
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

  info "observability: notification channels"
  local channels=()
  ensure_channel "ai4joy ${ENVIRONMENT} email" email "email_address=${NOTIFICATION_EMAIL}"
  channels+=("${CHANNEL_NAME}")
  if [[ -n "${NOTIFICATION_WEBHOOK_URL}" ]]; then
    ensure_channel "ai4joy ${ENVIRONMENT} webhook" webhook_tokenauth "url=${NOTIFICATION_WEBHOOK_URL}"
    channels+=("${CHANNEL_NAME}")
  fi
  local channel_list
  channel_list="$(IFS=,; printf '%s' "${channels[*]}")"

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
  for file in "${MONITORING_DIR}"/alerts/*.json; do
    rendered="$(render_template "${file}" "${vars[@]}")"
    display="$(json_eval "${rendered}" 'd["displayName"]')"
    if ! grep -qxF "${display}" <<<"${have_policies}"; then
      gc alpha monitoring policies create "--policy-from-file=${rendered}" "--notification-channels=${channel_list}"
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
