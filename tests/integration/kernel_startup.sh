#!/usr/bin/env bash
# Kernel start-up rules: a bad variable stops it with an error naming the
# variable; a schema behind the migrations stops it with "run migrate up";
# NATS missing at start logs "NATS Connection Failed" and the kernel connects
# by itself once NATS appears; a NATS without JetStream is named as such with
# the `nats-server -js` advice.
. "$(dirname "$0")/../lib/harness.sh"

# --- bad configuration: exit 2, message names the variable
set +e
PORT=eighty "$WE_BIN/kernel" >"$H_DIR/badcfg.log" 2>&1; rc=$?
set -e
h_eq 2 "$rc" "exit code on bad PORT"
grep -q 'PORT=eighty is invalid' "$H_DIR/badcfg.log" || h_fail "bad PORT not named"
set +e
LOG_LEVEL=chatty "$WE_BIN/kernel" >"$H_DIR/badcfg.log" 2>&1; rc=$?
set -e
h_eq 2 "$rc" "exit code on bad LOG_LEVEL"
grep -q 'LOG_LEVEL' "$H_DIR/badcfg.log" || h_fail "bad LOG_LEVEL not named"

# --- .env is read; the environment wins over it
h_start_pg
cat >"$H_DIR/.env" <<ENV
PORT=notaport
ENV
set +e
"$WE_BIN/kernel" >"$H_DIR/envfile.log" 2>&1; rc=$?
set -e
h_eq 2 "$rc" ".env value used"
grep -q 'PORT=notaport' "$H_DIR/envfile.log" || h_fail ".env PORT not named"
rm "$H_DIR/.env"

# --- schema behind: refuse, say to run migrate up
set +e
PORT=$(svc_free_port) timeout 20 "$WE_BIN/kernel" >"$H_DIR/schema.log" 2>&1; rc=$?
set -e
h_eq 1 "$rc" "exit code with no schema"
grep -q 'run migrate up' "$H_DIR/schema.log" || h_fail "no 'run migrate up' advice"
grep -q 'migrate -path pkg/db/migrations -database' "$H_DIR/schema.log" || h_fail "no migrate command"

# --- NATS absent at start: serves liveness, reports NATS down, recovers
h_migrate_up
H_NATS_PORT=$(svc_free_port)
H_NATS_MON=$(svc_free_port)
export NATS_URL="nats://127.0.0.1:$H_NATS_PORT"
h_start_kernel
h_wait_for 10 grep -q 'NATS Connection Failed' "$H_DIR/kernel.log" || h_fail "no 'NATS Connection Failed' log"
h_req GET /v1/system/health
h_eq 503 "$H_STATUS" "readiness without NATS"
h_eq down "$(h_jq .checks.nats.status)" "nats check"
h_start_nats
h_wait_for 40 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel did not connect once NATS started"
h_stop_kernel
h_stop_nats

# --- NATS without JetStream: the log says to run nats-server -js
h_start_nats --no-js
: >"$H_DIR/kernel.log"
h_start_kernel
h_wait_for 15 grep -q 'nats-server -js' "$H_DIR/kernel.log" || h_fail "no JetStream advice in log"
grep 'NATS Connection Failed' "$H_DIR/kernel.log" | grep -q 'JetStream is not enabled' \
  || h_fail "JetStream cause not named"
h_req GET /v1/system/health
h_eq 503 "$H_STATUS" "readiness without JetStream"
h_stop_kernel
h_pass
