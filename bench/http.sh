#!/usr/bin/env bash
# HTTP benchmark: wrk against GET /v1/health and GET /v1/workers on a kernel
# backed by private PostgreSQL and NATS (started here on free ports, stopped
# at the end), plus the resident memory of an idle kernel and an idle worker.
# Usage: bench/http.sh [DURATION_S]   (default 10; wrk shares the machine's cores)
set -euo pipefail
DUR=${1:-10}
export H_KEEP=0
. "$(dirname "$0")/../tests/lib/harness.sh"
export LOG_LEVEL=info
# Rate limits off: this measures the server, not the limiter.
export RATE_LIMIT_RPS=0 RATE_LIMIT_IP_RPS=0
export PLUGIN_DIR=$H_DIR/plugins
mkdir -p "$PLUGIN_DIR"
cp -r "${WE_PLUGINS:-$WE_SRC/plugins}/auth-basic" "$PLUGIN_DIR/"

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
h_start_worker bench-1
h_wait_for 15 bash -c "curl -fsS $H_KERNEL_URL/v1/workers/bench-1 | grep -q '\"healthy\":true'" \
  || h_fail "worker not registered"
# A viewer with an API token (resolved by auth-basic, then cached).
h_req POST /v1/users '{"username":"bench-viewer","password":"bench-password-123","role":"viewer"}'
h_eq 201 "$H_STATUS" "create user: $H_BODY"
h_req POST /v1/tokens "{\"user_id\":\"$(h_jq .user_id)\",\"name\":\"bench\"}"
h_eq 201 "$H_STATUS" "create token: $H_BODY"
API_TOKEN=$(h_jq .token)
sleep 2
rss_kb() { ps -o rss= -p "$(cat "$H_DIR/$1.pid")" | tr -d ' '; }
k_idle=$(rss_kb kernel)
w_idle=$(rss_kb worker-bench-1)

run_wrk() {
  local path=$1 token=${2:-$H_TOKEN} label=${3:-} out
  out=$(wrk -t2 -c64 -d"${DUR}s" --latency -H "Authorization: Bearer $token" "$H_KERNEL_URL$path")
  local rps p99 p50 non2xx
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  printf '%-12s %-20s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$path" "$label" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo "== wrk -t2 -c64 -d${DUR}s (kernel HTTP_THREADS=${HTTP_THREADS:-4}, $(nproc) cores shared with wrk)"
run_wrk /v1/health "" "(anonymous)"
run_wrk /v1/workers "$H_TOKEN" "(bootstrap token)"
run_wrk /v1/workers "$API_TOKEN" "(API token, cached)"
echo "== resident memory"
echo "kernel idle RSS: $((k_idle / 1024)).$(( (k_idle % 1024) * 10 / 1024 )) MB (${k_idle} kB); after load: $(rss_kb kernel) kB"
echo "worker idle RSS: $((w_idle / 1024)).$(( (w_idle % 1024) * 10 / 1024 )) MB (${w_idle} kB)"
h_pass
