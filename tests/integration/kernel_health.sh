#!/usr/bin/env bash
# Kernel against real PostgreSQL and NATS: liveness and readiness, the error
# envelope on unknown routes / wrong methods / oversized bodies, readiness
# going 503 while NATS or PostgreSQL is down and recovering by itself when
# they return, JetStream streams created, and a graceful SIGTERM that
# finishes a request in flight.
. "$(dirname "$0")/../lib/harness.sh"

h_start_pg
h_migrate_up
h_start_nats
export MAX_BODY_BYTES=4096
h_start_kernel

# --- liveness and readiness
h_req GET /v1/health
h_eq 200 "$H_STATUS" "GET /v1/health status"
h_eq ok "$(h_jq .status)" "health status field"
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "system health never 200"
h_req GET /v1/system/health
h_eq 200 "$H_STATUS" "system health with everything up"
for c in database nats jetstream; do
  h_eq up "$(h_jq ".checks.$c.status")" "$c check"
  [ "$(h_jq ".checks.$c.latency_ms | type")" = number ] || h_fail "$c latency not a number"
done

# --- JetStream streams of DESIGN §5 exist with their retention
mon="http://127.0.0.1:$H_NATS_MON/jsz?streams=true&config=true"
js=$(curl -fsS "$mon")
for s in WEBENCODE_WORK WEBENCODE_EVENTS WEBENCODE_LIVE WEBENCODE_WEBHOOKS; do
  h_contains "$js" "\"$s\"" "stream $s"
done
events_age=$(jq '[.account_details[].stream_detail[] | select(.name=="WEBENCODE_EVENTS")][0].config.max_age' <<<"$js")
h_eq 7776000000000000 "$events_age" "WEBENCODE_EVENTS max_age (90 days in ns)"
work_ret=$(jq -r '[.account_details[].stream_detail[] | select(.name=="WEBENCODE_WORK")][0].config.retention' <<<"$js")
h_eq workqueue "$work_ret" "WEBENCODE_WORK retention"

# --- error envelope
h_req GET /v1/nope
h_eq 404 "$H_STATUS" "unknown route"
h_eq WE-SYS-002 "$(h_jq .error.code)" "unknown route code"
rid=$(h_jq .error.request_id)
[ -n "$rid" ] && [ "$rid" != null ] || h_fail "no request_id in error"
[ "$(h_jq .error.timestamp)" != null ] || h_fail "no timestamp in error"
h_req DELETE /v1/workers
h_eq 405 "$H_STATUS" "wrong method"
h_eq WE-SYS-003 "$(h_jq .error.code)" "wrong method code"
h_eq GET "$(h_jq .error.details.allow)" "allowed methods"
big=$(head -c 10000 /dev/zero | tr '\0' 'x')
h_req POST /v1/workers "$big"
h_eq 413 "$H_STATUS" "oversized body"
h_eq WE-SYS-007 "$(h_jq .error.code)" "oversized body code"
# a client request id is echoed; a hostile one is replaced
hdr=$(curl -sS -D - -o /dev/null -H 'X-Request-Id: abc-123' "$H_KERNEL_URL/v1/health")
h_contains "$hdr" "X-Request-Id: abc-123" "request id echo"
hdr=$(curl -sS -D - -o /dev/null -H 'X-Request-Id: a"b<c' "$H_KERNEL_URL/v1/health")
case "$hdr" in *'a"b<c'*) h_fail "hostile request id echoed";; esac
ctype=$(curl -sS -o /dev/null -w '%{content_type}' "$H_KERNEL_URL/v1/nope")
h_eq application/json "$ctype" "error content type"

# --- NATS down: readiness 503 naming NATS; back by itself
h_stop_nats
h_wait_for 15 bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $H_KERNEL_URL/v1/system/health) = 503 ]" \
  || h_fail "system health not 503 with NATS down"
h_req GET /v1/system/health
h_eq down "$(h_jq .checks.nats.status)" "nats check while down"
h_eq up "$(h_jq .checks.database.status)" "database check while NATS down"
h_req GET /v1/health
h_eq 200 "$H_STATUS" "liveness unaffected by NATS"
h_start_nats
h_wait_for 30 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "no recovery after NATS restart"
grep -q 'NATS reconnected' "$H_DIR/kernel.log" || h_fail "no reconnect logged"

# --- PostgreSQL down: 503 naming the database; back by itself
h_stop_pg
h_req GET /v1/system/health
h_eq 503 "$H_STATUS" "system health with PostgreSQL down"
h_eq down "$(h_jq .checks.database.status)" "database check while down"
h_req GET /v1/workers
h_eq 503 "$H_STATUS" "workers list with PostgreSQL down"
h_eq WE-SYS-006 "$(h_jq .error.code)" "database unavailable code"
h_restart_pg
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "no recovery after PostgreSQL restart"
h_req GET /v1/workers
h_eq 200 "$H_STATUS" "workers list after PostgreSQL restart"

# --- SIGTERM finishes a request in flight: a slow upload started before the
# signal still gets its complete answer, then the kernel exits 0.
head -c 3000 /dev/zero | tr '\0' 'y' >"$H_DIR/slow.body"
curl -sS -o "$H_DIR/slow.out" -w '%{http_code}' --limit-rate 1000 -X POST \
  --data-binary @"$H_DIR/slow.body" "$H_KERNEL_URL/v1/workers" >"$H_DIR/slow.code" &
slow=$!
sleep 1
kpid=$(cat "$H_DIR/kernel.pid")
kill -TERM "$kpid"
wait "$slow" || h_fail "in-flight request failed during shutdown"
h_eq 405 "$(cat "$H_DIR/slow.code")" "in-flight request answered"
for i in $(seq 100); do kill -0 "$kpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$kpid" 2>/dev/null && h_fail "kernel did not exit after SIGTERM"
wait "$kpid" 2>/dev/null; rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 127 ] || h_fail "kernel exit code $rc"
grep -q '"msg":"kernel stopped"' "$H_DIR/kernel.log" || h_fail "no clean stop logged"
rm -f "$H_DIR/kernel.pid"
# every log line is one JSON object with the required fields
jq -e -c 'select((.time and .level and .service and .msg) | not)' "$H_DIR/kernel.log" >/dev/null \
  && h_fail "log line without time/level/service/msg"
jq -e . "$H_DIR/kernel.log" >/dev/null || h_fail "kernel log is not JSON lines"
h_pass
