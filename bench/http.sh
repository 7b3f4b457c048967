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

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
h_start_worker bench-1
h_wait_for 15 bash -c "curl -fsS $H_KERNEL_URL/v1/workers/bench-1 | grep -q '\"healthy\":true'" \
  || h_fail "worker not registered"
sleep 2
rss_kb() { ps -o rss= -p "$(cat "$H_DIR/$1.pid")" | tr -d ' '; }
k_idle=$(rss_kb kernel)
w_idle=$(rss_kb worker-bench-1)

run_wrk() {
  local path=$1 out
  out=$(wrk -t2 -c64 -d"${DUR}s" --latency "$H_KERNEL_URL$path")
  local rps p99 p50 non2xx
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  printf '%-16s %12s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$path" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo "== wrk -t2 -c64 -d${DUR}s (kernel HTTP_THREADS=${HTTP_THREADS:-4}, $(nproc) cores shared with wrk)"
run_wrk /v1/health
run_wrk /v1/workers
echo "== resident memory"
echo "kernel idle RSS: $((k_idle / 1024)).$(( (k_idle % 1024) * 10 / 1024 )) MB (${k_idle} kB); after load: $(rss_kb kernel) kB"
echo "worker idle RSS: $((w_idle / 1024)).$(( (w_idle % 1024) * 10 / 1024 )) MB (${w_idle} kB)"
h_pass
