# shellcheck shell=bash
#
# Phase "load-balancer" (guide §3 and 3.4): global external Application Load Balancer in
# front of both Cloud Run services. Static IP, one serverless NEG per service, backend
# services, URL map with the guide's path rules, Google-managed certificate, HTTPS proxy,
# forwarding rule, optional HTTP->HTTPS redirect; prints the DNS A record to create.
#
# Serverless NEG backends take no --protocol (gcloud would derive portName=https and
# add-backend fails), no --timeout (not supported; Cloud Run's --timeout=3600 is the
# limit), no --session-affinity (set on the Cloud Run service instead), no health check.
# Sourced by infra/deploy.sh.

phase_load_balancer() {
  info "load-balancer: static IP ${LB_IP_NAME}"
  exists compute addresses describe "${LB_IP_NAME}" --global \
    || gc compute addresses create "${LB_IP_NAME}" --global --ip-version=IPV4 --network-tier=PREMIUM

  info "load-balancer: serverless NEGs and backend services"
  ensure_serverless_backend "${AUDIO_NEG}" "${AUDIO_SERVICE}" "${AUDIO_BACKEND}"
  ensure_serverless_backend "${API_NEG}" "${API_SERVICE}" "${API_BACKEND}"

  info "load-balancer: URL map ${URL_MAP}"
  exists compute url-maps describe "${URL_MAP}" --global \
    || gc compute url-maps create "${URL_MAP}" --global "--default-service=${API_BACKEND}"
  local matchers
  matchers="$(query "" compute url-maps describe "${URL_MAP}" --global '--format=value(pathMatchers[].name)')"
  # Guide path rules: /ws/audio/* and /ws/health -> audio; /api/*, /health and / -> api.
  [[ "${matchers}" == *"${PATH_MATCHER}"* ]] \
    || gc compute url-maps add-path-matcher "${URL_MAP}" --global "--path-matcher-name=${PATH_MATCHER}" \
      "--default-service=${API_BACKEND}" "--new-hosts=${DOMAIN_NAME}" \
      "--backend-service-path-rules=/ws/audio/*=${AUDIO_BACKEND},/ws/health=${AUDIO_BACKEND},/api/*=${API_BACKEND},/health=${API_BACKEND}"

  info "load-balancer: managed certificate ${SSL_CERT} for ${DOMAIN_NAME}"
  exists compute ssl-certificates describe "${SSL_CERT}" --global \
    || gc compute ssl-certificates create "${SSL_CERT}" --global "--domains=${DOMAIN_NAME}"

  info "load-balancer: HTTPS proxy and forwarding rule"
  exists compute target-https-proxies describe "${HTTPS_PROXY}" --global \
    || gc compute target-https-proxies create "${HTTPS_PROXY}" --global "--url-map=${URL_MAP}" \
      "--ssl-certificates=${SSL_CERT}"
  exists compute forwarding-rules describe "${HTTPS_RULE}" --global \
    || gc compute forwarding-rules create "${HTTPS_RULE}" --global --load-balancing-scheme=EXTERNAL_MANAGED \
      --network-tier=PREMIUM "--address=${LB_IP_NAME}" "--target-https-proxy=${HTTPS_PROXY}" --ports=443

  if [[ "${ENABLE_HTTP_REDIRECT}" == true ]]; then
    info "load-balancer: HTTP -> HTTPS redirect"
    if ! exists compute url-maps describe "${REDIRECT_URL_MAP}" --global; then
      local redirect_file
      redirect_file="$(mktemp --suffix=.yaml)"
      printf '%s\n' "name: ${REDIRECT_URL_MAP}" "defaultUrlRedirect:" \
        "  httpsRedirect: true" "  redirectResponseCode: MOVED_PERMANENTLY_DEFAULT" >"${redirect_file}"
      gc compute url-maps import "${REDIRECT_URL_MAP}" --global "--source=${redirect_file}"
      rm -f "${redirect_file}"
    fi
    exists compute target-http-proxies describe "${HTTP_PROXY}" --global \
      || gc compute target-http-proxies create "${HTTP_PROXY}" --global "--url-map=${REDIRECT_URL_MAP}"
    exists compute forwarding-rules describe "${HTTP_RULE}" --global \
      || gc compute forwarding-rules create "${HTTP_RULE}" --global --load-balancing-scheme=EXTERNAL_MANAGED \
        --network-tier=PREMIUM "--address=${LB_IP_NAME}" "--target-http-proxy=${HTTP_PROXY}" --ports=80
  fi

  local ip
  ip="$(query "LB_IP" compute addresses describe "${LB_IP_NAME}" --global '--format=value(address)')"
  # Printed by deploy.sh at the very end of the run.
  # shellcheck disable=SC2034  # read by deploy.sh
  DNS_INSTRUCTIONS="$(
    printf 'DNS: create this record at your DNS provider (guide 3.4), then wait for the certificate:\n'
    printf '  Type: A   Name: %s   Value: %s   TTL: 300\n' "${DOMAIN_NAME}" "${ip}"
    printf '  Check: gcloud compute ssl-certificates describe %s --global --format="get(managed.status)" --project=%s  (ACTIVE when ready, 15-60 min)' \
      "${SSL_CERT}" "${PROJECT_ID}"
  )"
}

#######################################
# Serverless NEG -> backend service (+ the NEG as its backend), each only if missing.
# Arguments: neg name, Cloud Run service, backend service name
#######################################
ensure_serverless_backend() {
  local neg="$1" service="$2" backend="$3" backends
  exists compute network-endpoint-groups describe "${neg}" "--region=${REGION}" \
    || gc compute network-endpoint-groups create "${neg}" "--region=${REGION}" \
      --network-endpoint-type=serverless "--cloud-run-service=${service}"
  exists compute backend-services describe "${backend}" --global \
    || gc compute backend-services create "${backend}" --global --load-balancing-scheme=EXTERNAL_MANAGED \
      --enable-logging --logging-sample-rate=1
  backends="$(query "" compute backend-services describe "${backend}" --global '--format=value(backends[].group)')"
  [[ "${backends}" == *"/networkEndpointGroups/${neg}"* ]] \
    || gc compute backend-services add-backend "${backend}" --global "--network-endpoint-group=${neg}" \
      "--network-endpoint-group-region=${REGION}"
}
