#!/usr/bin/env bash
# The kernel and a worker under valgrind (normal build only; the sanitizer
# build is checked by ASan/LSan instead): serve requests, register, stop on
# SIGTERM — no memory errors and nothing definitely lost.
. "$(dirname "$0")/../lib/harness.sh"
if [ "${WE_SANITIZE:-OFF}" = ON ]; then
  h_log "skipped under the sanitizer build (valgrind and ASan do not mix)"
  h_pass
fi

VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-fds=no --quiet)
h_start_pg
h_migrate_up
h_start_nats
H_KERNEL_PORT=$(svc_free_port)
export PORT=$H_KERNEL_PORT WORKER_HEARTBEAT_MS=300
H_KERNEL_URL="http://127.0.0.1:$H_KERNEL_PORT"
"${VG[@]}" "$WE_BIN/kernel" >>"$H_DIR/kernel.log" 2>&1 &
kpid=$!
echo $kpid >"$H_DIR/kernel.pid"
svc_wait_http "$H_KERNEL_URL/v1/health" 60 || h_fail "kernel under valgrind did not start"
WORKER_ID=vg-1 "${VG[@]}" "$WE_BIN/worker" >>"$H_DIR/worker-vg-1.log" 2>&1 &
wpid=$!
echo $wpid >"$H_DIR/worker-vg-1.pid"
h_wait_for 60 bash -c "curl -fsS $H_KERNEL_URL/v1/workers/vg-1 | grep -q '\"healthy\":true'" \
  || h_fail "worker under valgrind did not register"
for p in /v1/health /v1/system/health /v1/workers /v1/workers/vg-1 /v1/workers/none /metrics /v1/x; do
  curl -s -o /dev/null "$H_KERNEL_URL$p"
done
curl -s -o /dev/null -X POST --data-binary 'not json' "$H_KERNEL_URL/v1/workers"

stop_and_check() {
  local pid=$1 name=$2 rc
  kill -TERM "$pid"
  wait "$pid" && rc=0 || rc=$?
  rm -f "$H_DIR/$name.pid"
  [ "$rc" -eq 0 ] || h_fail "$name under valgrind exited $rc (99 = memory errors or leaks)"
}
stop_and_check "$wpid" worker-vg-1
stop_and_check "$kpid" kernel
grep -q 'definitely lost' "$H_DIR"/*.log && h_fail "definite leaks reported"
h_pass
