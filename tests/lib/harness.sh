# Test harness for integration tests. Source it from a test script:
#
#   . "$(dirname "$0")/../lib/harness.sh"
#   h_start_pg; h_migrate_up; h_start_nats; h_start_kernel
#   ... assertions ...
#   h_pass
#
# Every service runs from a private temp directory on free loopback ports and
# is stopped (by pid) when the script exits, pass or fail. WE_BIN names the
# directory of the binaries under test (ctest sets it; default ./bin).
set -euo pipefail

WE_SRC=${WE_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
WE_BIN=${WE_BIN:-$WE_SRC/bin}
# shellcheck source=../../scripts/lib/services.sh
. "$WE_SRC/scripts/lib/services.sh"

H_NAME=$(basename "$0" .sh)
H_DIR=$(mktemp -d -t "we-$H_NAME.XXXXXX")
chmod 755 "$H_DIR"
H_PIDS=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}
export LOG_LEVEL=${LOG_LEVEL:-debug}
unset WEBENCODE_ENV_FILE
cd "$H_DIR"   # so no binary picks up a developer's .env

# Every route but /v1/health and /metrics needs a token. Tests act as the
# bootstrap admin (DESIGN §8): the kernel accepts WEBENCODE_BOOTSTRAP_ADMIN_TOKEN
# while no admin user exists. Every curl in a test sends it through the
# .curlrc below (CURL_HOME); `curl -q` skips it, for requests without a token.
# Python helpers read WE_TOKEN.
H_TOKEN=boot-$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
export WEBENCODE_BOOTSTRAP_ADMIN_TOKEN=$H_TOKEN WE_TOKEN=$H_TOKEN CURL_HOME=$H_DIR
printf 'header = "Authorization: Bearer %s"\n' "$H_TOKEN" >"$H_DIR/.curlrc"

# Secrets a test uses (tokens, passwords, webhook secrets…): h_secret VALUE.
# When the test ends, no log under $H_DIR may contain any of them (DESIGN §8:
# secrets never logged) — the bootstrap token is registered here.
H_SECRETS=("$H_TOKEN")
h_secret() { [ ${#1} -ge 6 ] && H_SECRETS+=("$1"); return 0; }

h_log() { printf '[%s] %s\n' "$H_NAME" "$*" >&2; }

h_cleanup() {
  local rc=$? f
  set +e
  for f in "$H_DIR"/*.pid; do
    [ -e "$f" ] && svc_stop_pidfile "$f" 5
  done
  [ -d "$H_DIR/pg/data" ] && svc_pg_stop "$H_DIR/pg"
  if [ $rc -ne 0 ]; then
    h_log "FAILED (exit $rc); logs follow"
    for f in "$H_DIR"/*.log; do
      [ -e "$f" ] || continue
      echo "----- $(basename "$f") (last 40 lines)" >&2
      tail -40 "$f" >&2
    done
  fi
  local sec
  for sec in "${H_SECRETS[@]}"; do
    if grep -rlF --include='*.log' -- "$sec" "$H_DIR" >/dev/null 2>&1; then
      h_log "a secret (${sec:0:4}…) appears in: $(grep -rlF --include='*.log' -- "$sec" "$H_DIR" | tr '\n' ' ')"
      rc=1
    fi
  done
  # sanitizer reports anywhere in the logs fail the test
  if grep -l -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$H_DIR"/*.log >/dev/null 2>&1; then
    h_log "sanitizer report found:"
    grep -h -A30 -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$H_DIR"/*.log >&2
    rc=1
  fi
  [ "${H_KEEP:-0}" = 1 ] || rm -rf "$H_DIR"
  exit $rc
}
trap h_cleanup EXIT

h_fail() { h_log "FAIL: $*"; exit 1; }
h_pass() { h_log "PASS"; exit 0; }

# h_eq EXPECTED ACTUAL WHAT
h_eq() { [ "$1" = "$2" ] || h_fail "$3: expected [$1], got [$2]"; }
# h_contains HAYSTACK NEEDLE WHAT
h_contains() { case "$1" in *"$2"*) ;; *) h_fail "$3: [$2] not found in [$1]";; esac; }
# h_wait_for TIMEOUT_S CMD...: retries CMD every 0.2 s until it succeeds.
h_wait_for() {
  local t=$1 i; shift
  for i in $(seq $((t * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# --- PostgreSQL --------------------------------------------------------------
h_start_pg() {
  H_PG_PORT=${H_PG_PORT:-$(svc_free_port)}
  svc_pg_init "$H_DIR/pg"
  svc_pg_start "$H_DIR/pg" "$H_PG_PORT" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  svc_pg_createdb "$H_PG_PORT" webencode
  export DATABASE_URL="postgres://postgres@127.0.0.1:$H_PG_PORT/webencode?sslmode=disable"
}
h_stop_pg() { svc_pg_stop "$H_DIR/pg"; }
h_restart_pg() {
  svc_pg_start "$H_DIR/pg" "$H_PG_PORT" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
}
h_psql() { psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
h_migrate_up() {
  "$WE_BIN/migrate" -path "$WE_SRC/pkg/db/migrations" -database "$DATABASE_URL" up >>"$H_DIR/migrate.log" 2>&1
}

# --- NATS --------------------------------------------------------------------
h_start_nats() {
  H_NATS_PORT=${H_NATS_PORT:-$(svc_free_port)}
  H_NATS_MON=${H_NATS_MON:-$(svc_free_port)}
  svc_nats_start "$H_DIR/nats" "$H_NATS_PORT" "$H_NATS_MON" "$@"
  cp "$H_DIR/nats/nats.pid" "$H_DIR/nats.pid"
  export NATS_URL="nats://127.0.0.1:$H_NATS_PORT"
}
h_stop_nats() {
  svc_stop_pidfile "$H_DIR/nats.pid" 5
  cat "$H_DIR/nats/nats.log" >>"$H_DIR/nats-all.log" 2>/dev/null || true
}

# --- WebEncode binaries -------------------------------------------------------
# h_start_kernel: starts bin/kernel on a free port; sets H_KERNEL_URL.
h_start_kernel() {
  H_KERNEL_PORT=${H_KERNEL_PORT:-$(svc_free_port)}
  export PORT=$H_KERNEL_PORT
  "$WE_BIN/kernel" >>"$H_DIR/kernel.log" 2>&1 &
  echo $! >"$H_DIR/kernel.pid"
  H_KERNEL_URL="http://127.0.0.1:$H_KERNEL_PORT"
  svc_wait_http "$H_KERNEL_URL/v1/health" 30 || h_fail "kernel did not answer /v1/health"
}
h_stop_kernel() { svc_stop_pidfile "$H_DIR/kernel.pid" 15; }

# h_start_worker ID: starts bin/worker with WORKER_ID=ID.
h_start_worker() {
  local id=$1
  WORKER_ID=$id "$WE_BIN/worker" >>"$H_DIR/worker-$id.log" 2>&1 &
  echo $! >"$H_DIR/worker-$id.pid"
}
h_stop_worker() { svc_stop_pidfile "$H_DIR/worker-$1.pid" 15; }

# h_req METHOD PATH [BODY]: request to the kernel; sets H_STATUS and H_BODY.
# Call it directly (not inside $(...)), so the variables reach the caller.
h_req() {
  H_STATUS=$(curl -sS -o "$H_DIR/resp.body" -w '%{http_code}' -X "$1" ${3:+--data-binary "$3"} \
    -H 'Content-Type: application/json' --max-time 10 "$H_KERNEL_URL$2") || H_STATUS=000
  H_BODY=$(cat "$H_DIR/resp.body" 2>/dev/null || true)
}
# h_jq FILTER: runs jq on the last response body.
h_jq() { jq -r "$1" <<<"$H_BODY"; }
