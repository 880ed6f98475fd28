# shellcheck shell=bash
# Shared setup for the infra bats tests: stub gcloud/curl first on PATH, a state dir per
# test (or per file), a fixed image tag and the fixture Firestore index file.

INFRA="$(cd "$(dirname "${BATS_TEST_FILENAME}")/.." && pwd)"
export INFRA
export IMAGE_TAG=test-tag
export FIRESTORE_INDEX_FILE="${INFRA}/tests/fixtures/firestore.indexes.json"
export SMOKE_WS_CLIENT=curl
unset CLOUDSDK_CONFIG GCLOUD CURL DRY_RUN ENV_DIR STUB_FAIL STUB_SMOKE_MISROUTED

# python3 behind a pyenv shim costs ~0.3 s a start; use the interpreter itself.
_py="$(python3 -c 'import sys; print(sys.executable)')"
_py_dir="$(dirname "${_py}")"
export PATH="${INFRA}/tests/stubs:${_py_dir}:${PATH}"

# use_state DIR: point the stubs at DIR (created empty if missing).
use_state() {
  export STUB_STATE_DIR="$1"
  mkdir -p "${STUB_STATE_DIR}"
  touch "${STUB_STATE_DIR}/calls.log"
}

# make_env_dir DIR: copies of the real env files, with the optional values filled in
# (billing account, OAuth client id, pager) so every branch of the deploy runs.
make_env_dir() {
  local dir="$1" f
  mkdir -p "${dir}"
  for f in "${INFRA}"/env/*.env; do
    sed -e 's/^BILLING_ACCOUNT=.*/BILLING_ACCOUNT=000000-AAAAAA-BBBBBB/' \
      -e 's/^GOOGLE_OAUTH_CLIENT_ID=.*/GOOGLE_OAUTH_CLIENT_ID=test-client.apps.googleusercontent.com/' \
      -e 's/^PAGER_EMAIL=.*/PAGER_EMAIL=oncall-pager@example.com/' \
      "${f}" >"${dir}/$(basename "${f}")"
  done
}

# calls_matching LOG REGEX: the recorded calls matching REGEX (grep -E).
calls_matching() {
  grep -E -- "$2" "$1" || true
}

# assert_line_has LINE WORD...: every WORD occurs in LINE as a whole argument.
assert_line_has() {
  local line="$1" w
  shift
  [[ -n "${line}" ]] || { echo "no such call" >&2; return 1; }
  for w in "$@"; do
    if [[ " ${line} " != *" ${w} "* && " ${line} " != *" '${w}' "* ]]; then
      echo "missing ${w} in: ${line}" >&2
      return 1
    fi
  done
}

# refute_in LINE SUBSTRING...: none of them occurs in LINE.
refute_in() {
  local line="$1" s
  shift
  for s in "$@"; do
    if [[ "${line}" == *"${s}"* ]]; then
      echo "unexpected ${s} in: ${line}" >&2
      return 1
    fi
  done
}

# line_no LOG REGEX: line number of the first call matching REGEX (fails if none).
line_no() {
  local n
  n="$(grep -n -E -m1 -- "$2" "$1" | cut -d: -f1)"
  [[ -n "${n}" ]] || { echo "no call matching $2" >&2; return 1; }
  echo "${n}"
}
