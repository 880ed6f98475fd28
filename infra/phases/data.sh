# shellcheck shell=bash
#
# Phase "data" (guide §5 Firestore, plus what the Django app needs): Firestore native
# database with PITR, delete protection, daily backups, composite indexes from the app's
# index file, TTL on expires_at; the VPC + subnet for Direct VPC egress; Memorystore
# Redis for the Channels layer; Cloud SQL Postgres and the DATABASE_URL secret.
# Sourced by infra/deploy.sh.

readonly TTL_COLLECTIONS=(sessions audio_sessions)
readonly TTL_FIELD=expires_at
readonly FIRESTORE_DB="(default)"

#######################################
# The app's index file, or the test fixture when the app has not written it yet.
#######################################
firestore_index_file() {
  local app_file="${REPO_DIR}/improv/firestore/indexes.json"
  if [[ -n "${FIRESTORE_INDEX_FILE:-}" ]]; then
    printf '%s\n' "${FIRESTORE_INDEX_FILE}"
  elif [[ -f "${app_file}" ]]; then
    printf '%s\n' "${app_file}"
  elif [[ "${DRY_RUN}" == 1 ]]; then
    warn "Firestore index file ${app_file} not found: the plan has no composite indexes"
  else
    die "Firestore index file ${app_file} not found (set FIRESTORE_INDEX_FILE to use another)"
  fi
}

phase_data() {
  data_firestore
  data_network
  data_redis
  data_cloudsql
}

data_firestore() {
  info "data: Firestore ${FIRESTORE_DB} (native mode, ${FIRESTORE_LOCATION})"
  if exists firestore databases describe "--database=${FIRESTORE_DB}"; then
    local pitr
    pitr="$(query "" firestore databases describe "--database=${FIRESTORE_DB}" \
      '--format=value(pointInTimeRecoveryEnablement)')"
    [[ "${pitr}" == POINT_IN_TIME_RECOVERY_ENABLED ]] \
      || gc firestore databases update "--database=${FIRESTORE_DB}" --enable-pitr --delete-protection
  else
    gc firestore databases create "--database=${FIRESTORE_DB}" "--location=${FIRESTORE_LOCATION}" \
      --type=firestore-native --enable-pitr --delete-protection
  fi

  local schedules
  schedules="$(query "" firestore backups schedules list "--database=${FIRESTORE_DB}" '--format=value(name)')"
  [[ -n "${schedules}" ]] \
    || gc firestore backups schedules create "--database=${FIRESTORE_DB}" \
      "--retention=${FIRESTORE_BACKUP_RETENTION}" --recurrence=daily

  local index_file existing line group scope
  index_file="$(firestore_index_file)"
  if [[ -z "${index_file}" ]]; then
    index_file="$(mktemp)"
    printf '{"indexes": []}\n' >"${index_file}"
  fi
  info "data: Firestore composite indexes from ${index_file#"${REPO_DIR}"/}"
  existing="$(mktemp)"
  query "[]" firestore indexes composite list "--database=${FIRESTORE_DB}" --format=json >"${existing}"
  local plan
  plan="$(python3 "${INFRA_DIR}/firestore_indexes.py" composite "${index_file}" "${existing}")" \
    || die "cannot read ${index_file}"
  rm -f "${existing}"
  while IFS=$'\t' read -r -a line; do
    ((${#line[@]} > 0)) || continue
    group="${line[0]}"
    scope="${line[1]}"
    local fields=() f
    for f in "${line[@]:2}"; do
      fields+=("--field-config=${f}")
    done
    gc firestore indexes composite create "--database=${FIRESTORE_DB}" "--collection-group=${group}" \
      "--query-scope=${scope}" "${fields[@]}" --async
  done <<<"${plan}"

  info "data: Firestore TTL on ${TTL_FIELD} and field overrides"
  local coll overrides field ttl exempt
  for coll in "${TTL_COLLECTIONS[@]}"; do
    ensure_field_config "${coll}" "${TTL_FIELD}" 1 1
  done
  overrides="$(python3 "${INFRA_DIR}/firestore_indexes.py" overrides "${index_file}")" \
    || die "cannot read fieldOverrides in ${index_file}"
  while IFS=$'\t' read -r group field ttl exempt; do
    [[ -n "${group}" ]] || continue
    ensure_field_config "${group}" "${field}" "${ttl}" "${exempt}"
  done <<<"${overrides}"
}

#######################################
# TTL policy and/or single-field index exemption on COLLECTION.FIELD, each unless already
# in place (one describe per field). Exempting TTL timestamps matters: they are written in
# increasing order, and indexing them caps writes at 500/s (Firestore best practices).
# Arguments: collection group, field, want ttl (1/0), want exemption (1/0)
#######################################
ensure_field_config() {
  local coll="$1" field="$2" want_ttl="$3" want_exempt="$4" key="$1/$2" current ttl_state ancestor
  [[ " ${DONE_FIELDS:-} " == *" ${key} "* ]] && return 0
  DONE_FIELDS="${DONE_FIELDS:-} ${key}"
  current="$(query "" firestore indexes fields describe "${field}" "--collection-group=${coll}" \
    "--database=${FIRESTORE_DB}" '--format=value(ttlConfig.state,indexConfig.usesAncestorConfig)' 2>/dev/null || true)"
  ttl_state="${current%%$'\t'*}"
  ancestor="${current##*$'\t'}"
  if [[ "${want_ttl}" == 1 && "${ttl_state}" != ACTIVE && "${ttl_state}" != CREATING ]]; then
    gc firestore fields ttls update "${field}" "--collection-group=${coll}" "--database=${FIRESTORE_DB}" \
      --enable-ttl --async
  fi
  # usesAncestorConfig is True while the field inherits the default indexes.
  if [[ "${want_exempt}" == 1 && "${ancestor}" != False ]]; then
    gc firestore indexes fields update "${field}" "--collection-group=${coll}" "--database=${FIRESTORE_DB}" \
      --disable-indexes --async
  fi
}

data_network() {
  info "data: VPC ${VPC_NETWORK} and subnet ${VPC_SUBNET} (Direct VPC egress)"
  exists compute networks describe "${VPC_NETWORK}" \
    || gc compute networks create "${VPC_NETWORK}" --subnet-mode=custom
  exists compute networks subnets describe "${VPC_SUBNET}" "--region=${REGION}" \
    || gc compute networks subnets create "${VPC_SUBNET}" "--network=${VPC_NETWORK}" "--region=${REGION}" \
      "--range=${SUBNET_RANGE}" --enable-private-ip-google-access
}

data_redis() {
  info "data: Memorystore Redis ${REDIS_INSTANCE} (${REDIS_TIER}, ${REDIS_SIZE_GB} GB)"
  exists redis instances describe "${REDIS_INSTANCE}" "--region=${REGION}" \
    || gc redis instances create "${REDIS_INSTANCE}" "--region=${REGION}" "--tier=${REDIS_TIER}" \
      "--size=${REDIS_SIZE_GB}" "--redis-version=${REDIS_VERSION}" \
      "--network=projects/${PROJECT_ID}/global/networks/${VPC_NETWORK}" --connect-mode=direct-peering \
      "--labels=app=ai4joy,env=${ENVIRONMENT}"
}

#######################################
# redis://HOST:PORT/0 of the Memorystore instance (placeholder in dry-run mode).
#######################################
redis_url() {
  local host port
  host="$(query "REDIS_HOST" redis instances describe "${REDIS_INSTANCE}" "--region=${REGION}" '--format=value(host)')"
  port="$(query "6379" redis instances describe "${REDIS_INSTANCE}" "--region=${REGION}" '--format=value(port)')"
  [[ -n "${host}" ]] || die "Memorystore instance ${REDIS_INSTANCE} has no host yet (run the data phase)"
  printf 'redis://%s:%s/0\n' "${host}" "${port:-6379}"
}

data_cloudsql() {
  info "data: Cloud SQL ${SQL_INSTANCE} (${SQL_DATABASE_VERSION}, ${SQL_TIER})"
  exists sql instances describe "${SQL_INSTANCE}" \
    || gc sql instances create "${SQL_INSTANCE}" "--database-version=${SQL_DATABASE_VERSION}" \
      "--tier=${SQL_TIER}" --edition=enterprise "--region=${REGION}" \
      "--availability-type=${SQL_AVAILABILITY}" --backup-start-time=03:00 \
      --enable-point-in-time-recovery --storage-auto-increase --deletion-protection
  exists sql databases describe "${SQL_DATABASE}" "--instance=${SQL_INSTANCE}" \
    || gc sql databases create "${SQL_DATABASE}" "--instance=${SQL_INSTANCE}"

  # DATABASE_URL is written once, with a fresh password, when the secret has no
  # version yet. The password goes to Cloud SQL and Secret Manager only.
  if secret_has_version "${SECRET_DATABASE_URL}"; then
    return 0
  fi
  local users password flags_file
  password="$(random_secret 40)"
  users="$(query "" sql users list "--instance=${SQL_INSTANCE}" '--format=value(name)')"
  # The password never goes on a command line (visible in ps and shell history): gcloud
  # reads it from a --flags-file, written by a shell builtin into a file only we can read.
  flags_file="$(umask 077 && mktemp --suffix=.json)"
  printf '{"--password": "%s"}\n' "${password}" >"${flags_file}"
  if grep -qxF "${SQL_USER}" <<<"${users}"; then
    gc sql users set-password "${SQL_USER}" "--instance=${SQL_INSTANCE}" "--flags-file=${flags_file}" \
      || { rm -f "${flags_file}"; die "setting the Cloud SQL password of ${SQL_USER} failed"; }
  else
    gc sql users create "${SQL_USER}" "--instance=${SQL_INSTANCE}" "--flags-file=${flags_file}" \
      || { rm -f "${flags_file}"; die "creating the Cloud SQL user ${SQL_USER} failed"; }
  fi
  rm -f "${flags_file}"
  printf 'postgres://%s:%s@/%s?host=/cloudsql/%s' "${SQL_USER}" "${password}" "${SQL_DATABASE}" \
    "${SQL_CONNECTION}" | add_secret_version "${SECRET_DATABASE_URL}"
}
