#!/usr/bin/env bash
# TLS everywhere (runbook), with a CA and certificates made here by openssl:
# - bad TLS configuration stops kernel and worker with exit 2, naming the
#   variable and the file and never printing key material;
# - PostgreSQL with ssl=on and a hostssl-only pg_hba (client certificate
#   required): migrate, the kernel and the auth-basic plugin connect with
#   sslmode=verify-full; a plain connection is refused; a kernel trusting the
#   wrong CA cannot reach the database;
# - nats-server with a tls {} block that requires client certificates: kernel
#   and worker connect over tls://; a worker without a client certificate is
#   refused by the server and never registers; a kernel trusting the wrong CA
#   logs the TLS failure and reports NATS down;
# - the kernel serves HTTPS only: verified with the CA, plain HTTP on the same
#   port fails, a client without the CA refuses the certificate.
. "$(dirname "$0")/../lib/harness.sh"

T=$H_DIR/tls
PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}

# --- certificates: CA, server (127.0.0.1 + localhost), client, a second CA ---
mkdir -p "$T"
cat >"$T/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF
ossl() { openssl "$@" >>"$T/openssl.log" 2>&1 || h_fail "openssl $1 failed: $(tail -3 "$T/openssl.log")"; }
new_ca() { # NAME CN
  ossl req -x509 -new -config "$T/openssl.cnf" -extensions ca_ext -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" -out "$T/$1.pem" -days 2 -subj "/CN=$2"
}
new_cert() { # NAME CN EXTENSIONS SERIAL
  ossl req -new -config "$T/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/$1.key" -out "$T/$1.csr" -subj "/CN=$2"
  ossl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial "$4" -days 2 \
    -extfile "$T/openssl.cnf" -extensions "$3" -out "$T/$1.pem"
}
new_ca ca "WebEncode Test CA"
new_ca other-ca "Some Other CA"
new_cert server localhost server_ext 2
new_cert client postgres client_ext 3 # CN = the database user (clientcert=verify-full)
chmod 600 "$T"/*.key
echo 'not a certificate' >"$T/garbage.pem"
# a line from the middle of each private key: must never appear in a log
KEY_LINES=("$(sed -n 2p "$T/server.key")" "$(sed -n 2p "$T/client.key")")

# Runs a binary that must stop on its configuration; checks exit 2 and that
# its output names what it should. Usage: must_refuse WHAT NEEDLE BINARY [VAR=VALUE...]
must_refuse() {
  local what=$1 needle=$2 bin=$3 rc
  shift 3
  set +e
  env "$@" PORT="$(svc_free_port)" WORKER_ID=wk-cfg timeout 20 "$WE_BIN/$bin" \
    >"$H_DIR/refuse-$bin.log" 2>&1
  rc=$?
  set -e
  cat "$H_DIR/refuse-$bin.log" >>"$H_DIR/refusals.log"
  h_eq 2 "$rc" "$what: exit status"
  grep -qF -- "$needle" "$H_DIR/refuse-$bin.log" \
    || h_fail "$what: [$needle] not in $(cat "$H_DIR/refuse-$bin.log")"
}

# --- configuration errors: exit 2 before touching any service -----------------
must_refuse "only TLS_CERT_FILE" \
  "TLS_CERT_FILE and TLS_KEY_FILE must be set together (only TLS_CERT_FILE is set)" \
  kernel TLS_CERT_FILE="$T/server.pem"
must_refuse "only TLS_KEY_FILE" "(only TLS_KEY_FILE is set)" kernel TLS_KEY_FILE="$T/server.key"
must_refuse "missing key file" "TLS_KEY_FILE=$T/nope.key cannot be read: No such file or directory" \
  kernel TLS_CERT_FILE="$T/server.pem" TLS_KEY_FILE="$T/nope.key"
must_refuse "garbage certificate" "TLS_CERT_FILE=$T/garbage.pem holds no PEM certificate" \
  kernel TLS_CERT_FILE="$T/garbage.pem" TLS_KEY_FILE="$T/server.key"
must_refuse "certificate as key" "TLS_KEY_FILE=$T/server.pem holds no valid PEM private key" \
  kernel TLS_CERT_FILE="$T/server.pem" TLS_KEY_FILE="$T/server.pem"
must_refuse "key of another certificate" \
  "TLS_KEY_FILE=$T/client.key does not belong to the certificate in TLS_CERT_FILE=$T/server.pem" \
  kernel TLS_CERT_FILE="$T/server.pem" TLS_KEY_FILE="$T/client.key"
must_refuse "kernel: bad NATS CA file" "NATS_TLS_CA_FILE=$T/garbage.pem holds no PEM certificate" \
  kernel NATS_TLS_CA_FILE="$T/garbage.pem"
must_refuse "worker: missing NATS CA file" "NATS_TLS_CA_FILE=$T/none.pem cannot be read" \
  worker NATS_URL=tls://127.0.0.1:4222 NATS_TLS_CA_FILE="$T/none.pem"
must_refuse "worker: NATS client key alone" "(only NATS_TLS_KEY_FILE is set)" \
  worker NATS_TLS_KEY_FILE="$T/client.key"
must_refuse "worker: mismatched NATS client pair" "NATS_TLS_KEY_FILE=$T/server.key does not belong" \
  worker NATS_TLS_CERT_FILE="$T/client.pem" NATS_TLS_KEY_FILE="$T/server.key"

# --- PostgreSQL: ssl=on, TCP only over TLS and with a client certificate -------
h_start_pg
PGS=$H_DIR/pg/ssl
mkdir -p "$PGS"
cp "$T/server.pem" "$T/server.key" "$T/ca.pem" "$PGS/"
chmod 600 "$PGS/server.key"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$PGS"
cat >"$H_DIR/pg/data/pg_hba.conf" <<HBA
local   all all                trust
hostssl all all 127.0.0.1/32   trust clientcert=verify-full
HBA
pg_local() { psql -h "$H_DIR/pg" -p "$H_PG_PORT" -U postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }
pg_local -c "ALTER SYSTEM SET ssl = on" -c "ALTER SYSTEM SET ssl_cert_file = '$PGS/server.pem'" \
  -c "ALTER SYSTEM SET ssl_key_file = '$PGS/server.key'" -c "ALTER SYSTEM SET ssl_ca_file = '$PGS/ca.pem'" \
  -c "ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2'" -c "SELECT pg_reload_conf()" >/dev/null
pg_ssl_on() { [ "$(pg_local -c 'SHOW ssl')" = on ]; }
h_wait_for 10 pg_ssl_on || h_fail "PostgreSQL did not turn ssl on"

PG_BASE="postgres://postgres:S3cretPw-tls@127.0.0.1:$H_PG_PORT/webencode"
PG_CLIENT="sslcert=$T/client.pem&sslkey=$T/client.key"
export DATABASE_URL="$PG_BASE?sslmode=verify-full&sslrootcert=$T/ca.pem&$PG_CLIENT"

set +e
plain=$(psql "host=127.0.0.1 port=$H_PG_PORT user=postgres dbname=webencode sslmode=disable" \
  -qAtX -c 'SELECT 1' 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || h_fail "a non-TLS connection to PostgreSQL was accepted"
h_contains "$plain" "no pg_hba.conf entry" "plain connection refused by pg_hba"
h_contains "$plain" "no encryption" "refusal names the missing encryption"
set +e
nocert=$(psql "$PG_BASE?sslmode=verify-full&sslrootcert=$T/ca.pem" -qAtX -c 'SELECT 1' 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || h_fail "a TLS connection without a client certificate was accepted"
h_contains "$nocert" "certificate" "refusal without a client certificate"
h_eq t "$(psql "$DATABASE_URL" -qAtX -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')" \
  "psql over verify-full uses TLS"

h_migrate_up || h_fail "migrate up over TLS failed: $(tail -5 "$H_DIR/migrate.log")"
h_eq t "$(psql "$DATABASE_URL" -qAtX -c 'SELECT count(*) > 0 FROM schema_migrations WHERE NOT dirty')" \
  "schema migrated over TLS"

# --- NATS: TLS required, client certificates verified --------------------------
cat >"$T/nats.conf" <<NATS
tls {
  cert_file: "$T/server.pem"
  key_file: "$T/server.key"
  ca_file: "$T/ca.pem"
  verify: true
  timeout: 2
}
NATS
h_start_nats -c "$T/nats.conf"
grep -q 'TLS required for client connections' "$H_DIR/nats/nats.log" || h_fail "nats-server without TLS"
export NATS_URL="tls://127.0.0.1:$H_NATS_PORT"
export NATS_TLS_CA_FILE=$T/ca.pem NATS_TLS_CERT_FILE=$T/client.pem NATS_TLS_KEY_FILE=$T/client.key

# --- the kernel over HTTPS ------------------------------------------------------
# every curl below trusts the test CA unless it says -q (no .curlrc, no token)
printf 'cacert = "%s"\n' "$T/ca.pem" >>"$H_DIR/.curlrc"
# start_kernel NAME PORT [VAR=VALUE...]: bin/kernel over HTTPS in the
# background (log NAME.log, pid NAME.pid).
start_kernel() {
  local name=$1 port=$2
  shift 2
  env "$@" PORT="$port" TLS_CERT_FILE="$T/server.pem" TLS_KEY_FILE="$T/server.key" \
    "$WE_BIN/kernel" >>"$H_DIR/$name.log" 2>&1 &
  echo $! >"$H_DIR/$name.pid"
}
PORT_kernel=$(svc_free_port)
start_kernel kernel "$PORT_kernel" PLUGIN_DIR="$PLUGINS" PLUGIN_HEALTH_INTERVAL_MS=500
H_KERNEL_URL="https://127.0.0.1:$PORT_kernel"
h_wait_for 30 curl -fsS -o /dev/null --max-time 2 "$H_KERNEL_URL/v1/health" \
  || h_fail "kernel did not answer over HTTPS"
grep -q '"msg":"HTTPS enabled"' "$H_DIR/kernel.log" || h_fail "kernel did not log HTTPS"

code=$(curl -q -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" "$H_KERNEL_URL/v1/health")
h_eq 200 "$code" "GET /v1/health over HTTPS with the CA"
code=$(curl -q -sS -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" \
  "https://localhost:$PORT_kernel/v1/health")
h_eq 200 "$code" "the certificate is valid for localhost too"
set +e
curl -q -sS -o /dev/null --max-time 5 "http://127.0.0.1:$PORT_kernel/v1/health" 2>"$H_DIR/plain.err"
rc_plain=$?
curl -q -sS -o /dev/null --max-time 5 "$H_KERNEL_URL/v1/health" 2>"$H_DIR/noca.err"
rc_noca=$?
set -e
[ "$rc_plain" -ne 0 ] || h_fail "plain HTTP on the HTTPS port answered"
h_eq 60 "$rc_noca" "curl without the CA (exit 60: peer certificate cannot be verified)"

h_wait_for 20 curl -fsS -o /dev/null "$H_KERNEL_URL/v1/system/health" || {
  curl -sS "$H_KERNEL_URL/v1/system/health" >&2 || true
  h_fail "kernel not ready over TLS"
}
h_req GET /v1/system/health
h_eq 200 "$H_STATUS" "readiness"
h_eq up "$(h_jq .checks.database.status)" "database check over TLS"
h_eq up "$(h_jq .checks.nats.status)" "NATS check over TLS"
h_eq up "$(h_jq .checks.jetstream.status)" "JetStream check over TLS"
grep '"msg":"NATS connected"' "$H_DIR/kernel.log" | grep -q '"tls":true' || h_fail "kernel NATS not over TLS"

# the event stream (suspended/resumed connections) works over TLS too
sse=$(curl -sS -N -o "$H_DIR/sse.out" -w '%{http_code} %{content_type}' --max-time 2 \
  "$H_KERNEL_URL/v1/events" 2>/dev/null || true)
h_contains "$sse" "200 text/event-stream" "GET /v1/events over HTTPS"

# auth-basic gets DATABASE_URL (sslmode=verify-full with a client certificate)
ssl_sessions() { # APPLICATION_NAME: its database sessions that use TLS
  psql "$DATABASE_URL" -qAtX -c "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a
    USING (pid) WHERE a.application_name = '$1' AND s.ssl"
}
has_ssl_session() { [ "$(ssl_sessions "$1")" -ge 1 ]; }
h_wait_for 15 has_ssl_session webencode-auth-basic || h_fail "auth-basic has no database session over TLS"
h_req GET /v1/plugins/auth-basic
h_eq 200 "$H_STATUS" "GET /v1/plugins/auth-basic"
h_eq healthy "$(h_jq .state)" "auth-basic state"
has_ssl_session webencode-kernel || h_fail "the kernel has no database session over TLS"

# --- a worker over tls:// with its client certificate ---------------------------
export WORKER_HEARTBEAT_MS=500
PLUGIN_DIR=$PLUGINS h_start_worker wk-tls
worker_healthy() { curl -fsS "$H_KERNEL_URL/v1/workers/$1" | jq -e '.healthy == true'; }
h_wait_for 20 worker_healthy wk-tls || h_fail "worker over TLS not healthy"
grep '"msg":"NATS connected"' "$H_DIR/worker-wk-tls.log" | grep -q '"tls":true' \
  || h_fail "worker NATS not over TLS"
connz=$(curl -q -fsS "http://127.0.0.1:$H_NATS_MON/connz")
h_eq 0 "$(jq '[.connections[] | select(.name == "kernel" or .name == "worker")
  | select((.tls_version // "") == "")] | length' <<<"$connz")" "every NATS client connection uses TLS"
h_eq true "$(jq '[.connections[] | select(.name == "worker")] | length == 1' <<<"$connz")" \
  "the worker's connection is listed"

# --- a worker without a client certificate is refused ---------------------------
NATS_TLS_CERT_FILE='' NATS_TLS_KEY_FILE='' PLUGIN_DIR=$PLUGINS h_start_worker wk-nocert
h_wait_for 20 grep -q 'NATS Connection Failed' "$H_DIR/worker-wk-nocert.log" \
  || h_fail "worker without a client certificate did not fail to connect"
h_wait_for 10 grep -q "client didn't provide a certificate" "$H_DIR/nats/nats.log" \
  || h_fail "nats-server did not log the missing client certificate"
h_req GET /v1/workers/wk-nocert
h_eq 404 "$H_STATUS" "worker without a client certificate never registers"
h_stop_worker wk-nocert

# --- a kernel trusting the wrong CA for NATS logs the TLS failure ---------------
mkdir -p "$H_DIR/no-plugins"
PORT_kbadnats=$(svc_free_port)
start_kernel kbadnats "$PORT_kbadnats" NATS_TLS_CA_FILE="$T/other-ca.pem" PLUGIN_DIR="$H_DIR/no-plugins"
h_wait_for 20 grep -q 'NATS Connection Failed' "$H_DIR/kbadnats.log" \
  || h_fail "kernel with the wrong NATS CA did not report a failure"
grep 'NATS Connection Failed' "$H_DIR/kbadnats.log" | grep -q 'SSL handshake error' \
  || h_fail "NATS failure does not name TLS: $(grep 'NATS Connection' "$H_DIR/kbadnats.log" | head -1)"
h_wait_for 20 curl -fsS -o /dev/null "https://127.0.0.1:$PORT_kbadnats/v1/health" \
  || h_fail "kernel with the wrong NATS CA does not serve"
code=$(curl -sS -o "$H_DIR/kbadnats.json" -w '%{http_code}' "https://127.0.0.1:$PORT_kbadnats/v1/system/health")
h_eq 503 "$code" "readiness with the wrong NATS CA"
h_eq down "$(jq -r .checks.nats.status "$H_DIR/kbadnats.json")" "NATS check with the wrong CA"
svc_stop_pidfile "$H_DIR/kbadnats.pid" 15

# --- a kernel trusting the wrong CA for PostgreSQL cannot reach it ---------------
PORT_kbadpg=$(svc_free_port)
start_kernel kbadpg "$PORT_kbadpg" DATABASE_URL="$PG_BASE?sslmode=verify-full&sslrootcert=$T/other-ca.pem&$PG_CLIENT" \
  PLUGIN_DIR="$H_DIR/no-plugins"
h_wait_for 20 grep -q 'Database Connection Failed' "$H_DIR/kbadpg.log" \
  || h_fail "kernel with the wrong PostgreSQL CA did not report a failure"
grep 'Database Connection Failed' "$H_DIR/kbadpg.log" | grep -q 'certificate verify failed' \
  || h_fail "database failure does not name the certificate: $(grep 'Database Connection' "$H_DIR/kbadpg.log" | head -1)"
curl -fsS -o /dev/null --max-time 2 "https://127.0.0.1:$PORT_kbadpg/v1/health" 2>/dev/null \
  && h_fail "kernel without its database serves"
svc_stop_pidfile "$H_DIR/kbadpg.pid" 15

# --- clean exits after TLS connections (libnats + OpenSSL exit handlers) -----------
# stop_clean NAME: SIGTERM the process of NAME.pid and expect exit status 0.
stop_clean() {
  local pid rc
  pid=$(cat "$H_DIR/$1.pid")
  kill -TERM "$pid"
  set +e
  wait "$pid"
  rc=$?
  set -e
  rm -f "$H_DIR/$1.pid"
  h_eq 0 "$rc" "$1: exit status after SIGTERM"
}
stop_clean worker-wk-tls
stop_clean kernel

# --- no secret in any log ---------------------------------------------------------
for f in "$H_DIR"/*.log "$H_DIR/nats/nats.log"; do
  grep -qF 'S3cretPw-tls' "$f" && h_fail "the database password is in $(basename "$f")"
  for k in "${KEY_LINES[@]}"; do
    grep -qF -- "$k" "$f" && h_fail "private key material is in $(basename "$f")"
  done
done
h_pass
