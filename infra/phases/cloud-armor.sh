# shellcheck shell=bash
#
# Phase "cloud-armor" (guide §3 "Cloud Armor: DDoS protection + WAF (rate limiting, OWASP
# rules)"): one policy on both backend services. Adaptive Protection (L7 DDoS), JSON body
# parsing, preconfigured OWASP CRS 3.3 rules at sensitivity 1 (enforced; in preview only
# where the env file sets ARMOR_WAF_PREVIEW=true, for tuning), per-IP throttling of /api/*, and a rate-based ban
# on WebSocket handshake storms. Cloud Armor sees the HTTP upgrade request only; frame
# size and rate limits live in the audio consumer. Sourced by infra/deploy.sh.

phase_cloud_armor() {
  if [[ "${ENABLE_CLOUD_ARMOR}" != true ]]; then
    info "cloud-armor: disabled for ${ENVIRONMENT} (ENABLE_CLOUD_ARMOR=${ENABLE_CLOUD_ARMOR})"
    return 0
  fi
  info "cloud-armor: policy ${SECURITY_POLICY}"
  if ! exists compute security-policies describe "${SECURITY_POLICY}" --global; then
    gc compute security-policies create "${SECURITY_POLICY}" --type=CLOUD_ARMOR --global \
      "--description=ai4joy edge policy (WAF, rate limits)"
    gc compute security-policies update "${SECURITY_POLICY}" --global --enable-layer7-ddos-defense \
      --layer7-ddos-defense-rule-visibility=STANDARD --json-parsing=STANDARD --log-level=VERBOSE
  fi

  # The rules already in the policy, "PRIORITY PREVIEW" per line (one read for all).
  local rules_json
  rules_json="$(query '{"rules": []}' compute security-policies describe "${SECURITY_POLICY}" --global \
    '--format=json(rules)')" || die "could not read the rules of ${SECURITY_POLICY}"
  ARMOR_RULES="$(python3 -c 'import json,sys
for r in json.loads(sys.argv[1] or "{}").get("rules", []):
    print(r["priority"], str(bool(r.get("preview"))).lower())' "${rules_json}")" \
    || die "could not parse the rules of ${SECURITY_POLICY}"
  # WAF rules enforce unless the env file keeps them in preview (tuning in staging/dev);
  # a rule created in preview earlier is switched when the setting changes.
  local waf priority=1000 name mode=() note="enforced"
  if [[ "${ARMOR_WAF_PREVIEW}" == true ]]; then
    mode=(--preview)
    note="preview: logged, not enforced"
  fi
  info "cloud-armor: OWASP CRS rules ${note} (ARMOR_WAF_PREVIEW=${ARMOR_WAF_PREVIEW})"
  for name in sqli xss lfi rfi rce scannerdetection protocolattack sessionfixation; do
    waf="evaluatePreconfiguredWaf('${name}-v33-stable', {'sensitivity': 1})"
    ensure_armor_rule "${priority}" "--expression=${waf}" --action=deny-403 "${mode[@]}" \
      "--description=OWASP CRS ${name}"
    ensure_armor_preview "${priority}" "${ARMOR_WAF_PREVIEW}"
    priority=$((priority + 1))
  done
  ensure_armor_rule 2000 "--expression=request.path.startsWith('/api/')" --action=throttle \
    "--rate-limit-threshold-count=${API_RATE_LIMIT_PER_MIN}" --rate-limit-threshold-interval-sec=60 \
    --conform-action=allow --exceed-action=deny-429 --enforce-on-key=IP \
    "--description=Throttle the REST API per client IP"
  ensure_armor_rule 2100 "--expression=request.path.startsWith('/ws/audio/')" --action=rate-based-ban \
    "--rate-limit-threshold-count=${WS_HANDSHAKE_LIMIT_PER_MIN}" --rate-limit-threshold-interval-sec=60 \
    --ban-duration-sec=600 --conform-action=allow --exceed-action=deny-429 --enforce-on-key=IP \
    "--description=Ban WebSocket handshake storms per client IP"

  info "cloud-armor: attach to ${AUDIO_BACKEND} and ${API_BACKEND}"
  local backend attached
  for backend in "${AUDIO_BACKEND}" "${API_BACKEND}"; do
    attached="$(query "" compute backend-services describe "${backend}" --global '--format=value(securityPolicy)')"
    [[ "${attached}" == *"/securityPolicies/${SECURITY_POLICY}" ]] \
      || gc compute backend-services update "${backend}" --global "--security-policy=${SECURITY_POLICY}"
  done
}

#######################################
# Create a rule at PRIORITY unless one exists there.
# Arguments: priority, then rules-create flags
#######################################
ensure_armor_rule() {
  local priority="$1"
  shift
  grep -qE "^${priority} " <<<"${ARMOR_RULES}" \
    || gc compute security-policies rules create "${priority}" "--security-policy=${SECURITY_POLICY}" "$@"
}

#######################################
# Switch an existing rule into or out of preview when the env file says otherwise.
# Arguments: priority, want preview (true|false)
#######################################
ensure_armor_preview() {
  local priority="$1" want="$2" have
  have="$(awk -v p="${priority}" '$1 == p {print $2}' <<<"${ARMOR_RULES}")"
  [[ -n "${have}" && "${have}" != "${want}" ]] || return 0
  local flag=--no-preview
  [[ "${want}" == true ]] && flag=--preview
  gc compute security-policies rules update "${priority}" "--security-policy=${SECURITY_POLICY}" "${flag}"
}
