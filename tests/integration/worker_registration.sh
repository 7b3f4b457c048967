#!/usr/bin/env bash
# Worker registration end to end: bin/worker heartbeats over NATS, the kernel
# records it, GET /v1/workers shows it healthy with its capabilities; a
# worker that stops heartbeating (SIGSTOP) turns unhealthy after 3 missed
# intervals and healthy again when it resumes; SIGTERM deregisters it;
# /metrics follows; garbage on the heartbeat subject is rejected without harm.
. "$(dirname "$0")/../lib/harness.sh"

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"

export WORKER_HEARTBEAT_MS=400
# wk-1 hosts the encoder plugin; its state travels in the heartbeat
PLUGIN_DIR=${WE_PLUGINS:-$WE_SRC/plugins} h_start_worker wk-1
worker_healthy() {
  curl -fsS "$H_KERNEL_URL/v1/workers/$1" | jq -e '.healthy == true and .status == "healthy"'
}
h_wait_for 10 worker_healthy wk-1 || h_fail "worker wk-1 not healthy within 10 s"

h_req GET /v1/workers
h_eq 200 "$H_STATUS" "GET /v1/workers"
h_eq 1 "$(h_jq .total)" "worker count"
h_eq 1 "$(h_jq .healthy)" "healthy count"
h_eq wk-1 "$(h_jq '.items[0].id')" "listed id"
h_eq true "$(h_jq '.items[0].capabilities | index("cpu") != null')" "cpu capability"
h_eq true "$(h_jq '.items[0].encoders | index("libx264") != null')" "libx264 in encoders"
h_eq 1 "$(h_jq '.items[0].slots')" "default slots"
h_eq 400 "$(h_jq '.items[0].heartbeat_interval_ms')" "interval recorded"
[ "$(h_jq '.items[0].hostname')" != null ] || h_fail "hostname missing"
[ "$(h_jq '.items[0].version')" != null ] || h_fail "version missing"
h_req GET /v1/workers/wk-1
h_eq 200 "$H_STATUS" "GET /v1/workers/{id}"
h_eq healthy "$(h_jq '.metadata.plugins[] | select(.id == "encoder-ffmpeg") | .state')" \
  "encoder plugin hosted by the worker"
h_eq 0 "$(h_jq '[.metadata.plugins[] | select(.type == "auth")] | length')" "worker hosts no auth plugin"
h_req GET /v1/workers/nobody
h_eq 404 "$H_STATUS" "unknown worker"
h_eq WE-WRK-001 "$(h_jq .error.code)" "unknown worker code"
h_req GET '/v1/workers/bad%2Eid'
h_eq 404 "$H_STATUS" "invalid worker id"
grep -q '"msg":"worker registered"' "$H_DIR/kernel.log" || h_fail "registration not logged"
metric() { curl -fsS "$H_KERNEL_URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
h_eq 1 "$(metric webencode_workers_healthy)" "webencode_workers_healthy"

# --- a second worker with 2 slots; both listed
WORKER_SLOTS=2 h_start_worker wk-2
h_wait_for 10 worker_healthy wk-2 || h_fail "worker wk-2 not healthy"
h_req GET /v1/workers/wk-2
h_eq 2 "$(h_jq .slots)" "wk-2 slots"
h_eq 2 "$(metric webencode_workers_healthy)" "two healthy workers"

# --- missed heartbeats: unhealthy after 3 intervals, healthy after resuming
kill -STOP "$(cat "$H_DIR/worker-wk-1.pid")"
worker_unhealthy() {
  curl -fsS "$H_KERNEL_URL/v1/workers/$1" | jq -e '.healthy == false and .status == "unhealthy"'
}
h_wait_for 10 worker_unhealthy wk-1 || h_fail "stopped worker still healthy"
h_eq 1 "$(metric webencode_workers_healthy)" "healthy gauge after loss"
kill -CONT "$(cat "$H_DIR/worker-wk-1.pid")"
h_wait_for 10 worker_healthy wk-1 || h_fail "resumed worker not healthy"

# --- garbage on the heartbeat subject (raw NATS protocol) is rejected
exec 3<>"/dev/tcp/127.0.0.1/$H_NATS_PORT"
raw_pub() { printf 'PUB %s %d\r\n%s\r\n' "$1" "${#2}" "$2" >&3; }
printf 'CONNECT {"verbose":false}\r\n' >&3
raw_pub workers.heartbeat.evil 'not json!'
raw_pub workers.heartbeat.wk-1 '{"id":"wk-1"}'
raw_pub workers.heartbeat.spoof '{"id":"wk-1","slots":"x"}'
printf 'PING\r\n' >&3
sleep 1
exec 3>&-
h_wait_for 5 bash -c "[ \$(grep -c 'heartbeat rejected' $H_DIR/kernel.log) -ge 3 ]" \
  || h_fail "garbage heartbeats not rejected"
h_req GET /v1/workers
h_eq 2 "$(h_jq .total)" "garbage created no worker"
h_eq true "$(h_jq '[.items[] | select(.id == "wk-1")][0].healthy')" "wk-1 unharmed"

# --- SIGTERM deregisters at once
wpid=$(cat "$H_DIR/worker-wk-2.pid")
kill -TERM "$wpid"
for i in $(seq 50); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$wpid" 2>/dev/null && h_fail "worker did not exit on SIGTERM"
wait "$wpid" 2>/dev/null && rc=0 || rc=$?
h_eq 0 "$rc" "worker exit code"
rm -f "$H_DIR/worker-wk-2.pid"
worker_offline() {
  curl -fsS "$H_KERNEL_URL/v1/workers/$1" | jq -e '.status == "offline" and .healthy == false'
}
h_wait_for 5 worker_offline wk-2 || h_fail "worker not offline after SIGTERM"
grep -q '"msg":"worker deregistered"' "$H_DIR/kernel.log" || h_fail "deregistration not logged"
h_eq 1 "$(metric webencode_workers_healthy)" "healthy gauge after deregistration"
jq -e . "$H_DIR/worker-wk-1.log" >/dev/null || h_fail "worker log is not JSON lines"
h_pass
