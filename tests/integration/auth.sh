#!/usr/bin/env bash
# Authentication and roles through the API (DESIGN §8, issue 5):
# - every route of src/kernel/routes.c against no token and the viewer,
#   operator and admin roles: 401 / 403 / allowed exactly as the table says;
# - the bootstrap admin token works only while no admin user exists;
# - users and tokens created and revoked by an admin; expired, revoked,
#   malformed tokens; tokens never logged;
# - dev-mode tokens refused in production mode (the kernel will not start);
# - per-token and per-IP rate limits (429, WE-SYS-005, Retry-After), not
#   keyed on X-Forwarded-For unless the peer is a trusted proxy; CORS.
. "$(dirname "$0")/../lib/harness.sh"

WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
export PLUGIN_DIR=$H_DIR/plugins
mkdir -p "$PLUGIN_DIR"
cp -r "$WE_PLUGINS/auth-basic" "$PLUGIN_DIR/"
export RATE_LIMIT_IP_RPS=1000 RATE_LIMIT_IP_BURST=1000

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/plugins/auth-basic | jq -e '.state == \"healthy\"'" \
  || h_fail "auth-basic not healthy"

# as TOKEN: METHOD PATH [BODY] → H_STATUS, H_BODY (no .curlrc)
as() {
  local tok=$1 m=$2 p=$3 b=${4:-}
  local auth=()
  [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
  H_STATUS=$(curl -q -sS -o "$H_DIR/resp.body" -w '%{http_code}' -X "$m" ${b:+--data-binary "$b"} \
    -H 'Content-Type: application/json' "${auth[@]}" --max-time 10 "$H_KERNEL_URL$p") || H_STATUS=000
  H_BODY=$(cat "$H_DIR/resp.body")
}
code() { jq -r '.error.code // empty' <<<"$H_BODY"; }

# ---- no token, bad tokens -------------------------------------------------------
as "" GET /v1/jobs
h_eq 401 "$H_STATUS" "no token"
h_eq WE-AUTH-001 "$(code)" "no token code"
hdr=$(curl -q -sS -D - -o /dev/null "$H_KERNEL_URL/v1/jobs")
h_contains "$hdr" 'WWW-Authenticate: Bearer' "WWW-Authenticate on 401"
for bad in "Basic Zm9vOmJhcg==" "Bearer" "Bearer    " "Bearer we_nottoken" "bearer $(printf 'x%.0s' {1..9000})"; do
  st=$(curl -q -sS -o "$H_DIR/r" -w '%{http_code}' -H "Authorization: $bad" "$H_KERNEL_URL/v1/jobs")
  h_eq 401 "$st" "Authorization: ${bad:0:30}"
done
st=$(curl -q -sS -o /dev/null -w '%{http_code}' -H $'Authorization: Bearer caf\xc3\xa9' "$H_KERNEL_URL/v1/jobs")
h_eq 401 "$st" "non-ASCII token"
as "" GET /v1/health
h_eq 200 "$H_STATUS" "health is anonymous"
as "" GET /metrics
h_eq 200 "$H_STATUS" "metrics anonymous by default"

# ---- bootstrap admin creates users and tokens -----------------------------------
as "$H_TOKEN" GET /v1/auth/me
h_eq 200 "$H_STATUS" "bootstrap me"
h_eq "admin bootstrap" "$(h_jq '.role + " " + .via')" "bootstrap identity"
PW=correct-horse-battery
h_secret "$PW"
declare -A TOK UID_OF
# The bootstrap admin creates the first admin user, and stops working then.
as "$H_TOKEN" POST /v1/users "{\"username\":\"admin-1\",\"password\":\"$PW\",\"role\":\"admin\"}"
h_eq 201 "$H_STATUS" "create admin user: $H_BODY"
UID_OF[admin]=$(h_jq .user_id)
h_wait_for 10 bash -c "[ \$(curl -q -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $H_TOKEN' $H_KERNEL_URL/v1/jobs) = 401 ]" \
  || h_fail "bootstrap token still accepted after an admin user exists"
# The admin signs in with the password (Basic) and makes an API token.
as "" POST /v1/tokens "{\"user_id\":\"${UID_OF[admin]}\",\"name\":\"t-admin\"}"
h_eq 401 "$H_STATUS" "no credentials"
H_STATUS=$(curl -q -sS -o "$H_DIR/resp.body" -w '%{http_code}' -u "admin-1:$PW" -H 'Content-Type: application/json' \
  --data-binary "{\"user_id\":\"${UID_OF[admin]}\",\"name\":\"t-admin\"}" "$H_KERNEL_URL/v1/tokens")
H_BODY=$(cat "$H_DIR/resp.body")
h_eq 201 "$H_STATUS" "admin token via Basic: $H_BODY"
TOK[admin]=$(h_jq .token)
h_secret "${TOK[admin]}"
st=$(curl -q -s -o /dev/null -w '%{http_code}' -u "admin-1:wrong-password-here" "$H_KERNEL_URL/v1/jobs")
h_eq 401 "$st" "wrong password"
# From here on the harness's .curlrc token is dead; use the admin's.
printf 'header = "Authorization: Bearer %s"\n' "${TOK[admin]}" >"$H_DIR/.curlrc"
for role in operator viewer; do
  as "${TOK[admin]}" POST /v1/users "{\"username\":\"$role-1\",\"password\":\"$PW\",\"role\":\"$role\"}"
  h_eq 201 "$H_STATUS" "create $role user: $H_BODY"
  UID_OF[$role]=$(h_jq .user_id)
  as "${TOK[admin]}" POST /v1/tokens "{\"user_id\":\"${UID_OF[$role]}\",\"name\":\"t-$role\"}"
  h_eq 201 "$H_STATUS" "create $role token: $H_BODY"
  TOK[$role]=$(h_jq .token)
  h_secret "${TOK[$role]}"
  [ ${#TOK[$role]} -ge 40 ] || h_fail "token for $role too short: ${TOK[$role]}"
done
as "${TOK[admin]}" POST /v1/users '{"username":"admin-1","password":"another-long-password"}'
h_eq 409 "$H_STATUS" "duplicate user"
as "${TOK[admin]}" POST /v1/users '{"username":"x-2","password":"short"}'
h_eq 422 "$H_STATUS" "weak password refused"
as "${TOK[admin]}" POST /v1/users '{"username":"x-3","password":"long-enough-password","is_admin":true}'
h_eq 422 "$H_STATUS" "unknown field refused"
h_contains "$H_BODY" is_admin "message names the field"

as "${TOK[viewer]}" GET /v1/auth/me
h_eq "viewer viewer-1 auth-basic" "$(h_jq '.role + " " + .username + " " + .via')" "viewer me"

# ---- every route × every role ---------------------------------------------------
rank() { case $1 in KN_ANON) echo 0;; KN_VIEWER) echo 1;; KN_OPERATOR) echo 2;; KN_ADMIN) echo 3;; esac; }
n=0
while read -r method path role; do
  need=$(rank "$role")
  url=${path//\{id\}/00000000-0000-0000-0000-000000000000}
  url=${url//\{[a-z_]*\}/00000000-0000-0000-0000-000000000001}
  for who in none viewer operator admin; do
    case $who in none) have=0 tok="";; viewer) have=1 tok=${TOK[viewer]};; operator) have=2 tok=${TOK[operator]};; admin) have=3 tok=${TOK[admin]};; esac
    as "$tok" "$method" "$url" '{}'
    if [ "$need" = 0 ]; then
      [ "$H_STATUS" != 401 ] && [ "$H_STATUS" != 403 ] || h_fail "$method $path as $who: $H_STATUS on an anonymous route"
    elif [ "$have" = 0 ]; then
      h_eq "401 WE-AUTH-001" "$H_STATUS $(code)" "$method $path without a token"
    elif [ "$have" -lt "$need" ]; then
      h_eq "403 WE-AUTH-003" "$H_STATUS $(code)" "$method $path as $who"
    else
      case $H_STATUS in 401|403|000|5*) h_fail "$method $path as $who: $H_STATUS $H_BODY";; esac
    fi
    n=$((n + 1))
  done
done < <(tr '\n' ' ' <"$WE_SRC/src/kernel/routes.c" |
         grep -oE '\{ *"[A-Z]+", *"[^"]+", *[a-z_]+, *KN_[A-Z]+ *\}' |
         sed -E 's/\{ *"([A-Z]+)", *"([^"]+)", *[a-z_]+, *(KN_[A-Z]+) *\}/\1 \2 \3/' |
         grep -v -E '^GET /v1/events ')
[ "$n" -ge 120 ] || h_fail "only $n route×role checks: route table not parsed?"
h_log "checked $n route×role combinations"
as "${TOK[viewer]}" POST /v1/jobs '{}'
h_contains "$(jq -r .error.message <<<"$H_BODY")" "needs the operator role" "403 message names the role"

# ---- expiry, revocation ---------------------------------------------------------
as "${TOK[admin]}" POST /v1/tokens "{\"user_id\":\"${UID_OF[operator]}\",\"name\":\"short\",\"expires_in_s\":1}"
h_eq 201 "$H_STATUS" "short-lived token"
short=$(h_jq .token)
h_secret "$short"
sleep 2.2
as "$short" GET /v1/jobs
h_eq "401 WE-AUTH-002" "$H_STATUS $(code)" "expired token"
as "${TOK[admin]}" GET "/v1/tokens?user_id=${UID_OF[viewer]}"
h_eq 200 "$H_STATUS" "token list"
vt=$(h_jq '.items[0].token_id')
grep -q "${TOK[viewer]}" <<<"$H_BODY" && h_fail "token list shows the token"
as "${TOK[viewer]}" GET /v1/jobs
h_eq 200 "$H_STATUS" "viewer before revoke"
as "${TOK[admin]}" DELETE "/v1/tokens/$vt"
h_eq 204 "$H_STATUS" "revoke"
as "${TOK[viewer]}" GET /v1/jobs
h_eq "401 WE-AUTH-001" "$H_STATUS $(code)" "revoked token refused at once on this kernel"
# A demoted user's token is demoted too.
as "${TOK[admin]}" PATCH "/v1/users/${UID_OF[operator]}" '{"role":"viewer"}'
h_eq 200 "$H_STATUS" "demote operator"
as "${TOK[operator]}" POST /v1/jobs '{}'
h_eq "403 WE-AUTH-003" "$H_STATUS $(code)" "demoted token"
as "${TOK[admin]}" DELETE "/v1/users/${UID_OF[operator]}"
h_eq 204 "$H_STATUS" "delete user"
as "${TOK[operator]}" GET /v1/jobs
h_eq 401 "$H_STATUS" "deleted user's token"

# ---- dev-mode tokens ------------------------------------------------------------
P2=$(svc_free_port)
set +e
WEBENCODE_DEV_TOKENS="admin:dev-admin-token-0123456789" PORT=$P2 timeout 20 "$WE_BIN/kernel" >"$H_DIR/devprod.log" 2>&1
rc=$?
set -e
h_eq 2 "$rc" "kernel with dev tokens in production mode exits 2"
grep -q 'never accepted in production' "$H_DIR/devprod.log" || h_fail "no reason given: $(cat "$H_DIR/devprod.log")"
grep -q 'dev-admin-token-0123456789' "$H_DIR/devprod.log" && h_fail "dev token logged"
WEBENCODE_MODE=development WEBENCODE_DEV_TOKENS="operator:dev-operator-token-0123" PORT=$P2 \
  "$WE_BIN/kernel" >>"$H_DIR/kernel-dev.log" 2>&1 &
echo $! >"$H_DIR/kernel-dev.pid"
svc_wait_http "http://127.0.0.1:$P2/v1/health" 30 || h_fail "dev kernel did not start"
st=$(curl -q -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer dev-operator-token-0123' "http://127.0.0.1:$P2/v1/jobs")
h_eq 200 "$st" "dev token in development mode"
st=$(curl -q -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer dev-operator-token-0123' -X POST "http://127.0.0.1:$P2/v1/profiles")
h_eq 403 "$st" "dev operator token is not admin"
svc_stop_pidfile "$H_DIR/kernel-dev.pid" 15

# ---- rate limits, trusted proxies, CORS ------------------------------------------
RATE_LIMIT_RPS=1 RATE_LIMIT_BURST=3 RATE_LIMIT_IP_RPS=1 RATE_LIMIT_IP_BURST=3 PORT=$P2 \
  "$WE_BIN/kernel" >>"$H_DIR/kernel-rl.log" 2>&1 &
echo $! >"$H_DIR/kernel-rl.pid"
svc_wait_http "http://127.0.0.1:$P2/v1/health" 30 || h_fail "rate-limited kernel did not start"
codes=""
for i in 1 2 3 4 5; do
  codes+=$(curl -q -s -o "$H_DIR/rl.body" -D "$H_DIR/rl.hdr" -w '%{http_code} ' -H "Authorization: Bearer ${TOK[admin]}" "http://127.0.0.1:$P2/v1/jobs")
done
h_contains "$codes" "429" "per-token limit: $codes"
h_eq "200 200 200" "$(cut -d' ' -f1-3 <<<"$codes")" "burst allowed"
grep -qi '^Retry-After: [1-9]' "$H_DIR/rl.hdr" || h_fail "no Retry-After: $(cat "$H_DIR/rl.hdr")"
h_eq WE-SYS-005 "$(jq -r .error.code "$H_DIR/rl.body")" "429 code"
# Guessing tokens from one address is throttled even with a new X-Forwarded-For each time.
codes=""
for i in 1 2 3 4 5 6; do
  codes+=$(curl -q -s -o /dev/null -w '%{http_code} ' -H "X-Forwarded-For: 10.0.0.$i" -H "Authorization: Bearer guess-$i" "http://127.0.0.1:$P2/v1/jobs")
done
h_contains "$codes" "429" "per-IP limit ignores a spoofed X-Forwarded-For: $codes"
# /v1/health is never limited
for i in 1 2 3 4 5 6; do
  st=$(curl -q -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/v1/health")
  h_eq 200 "$st" "health under rate limit"
done
hdr=$(curl -q -sS -D - -o /dev/null -H 'Origin: https://evil.example' -H "Authorization: Bearer ${TOK[admin]}" "$H_KERNEL_URL/v1/health")
grep -qi 'Access-Control-Allow-Origin' <<<"$hdr" && h_fail "CORS header sent while CORS is off"
st=$(curl -q -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST' "$H_KERNEL_URL/v1/jobs")
h_eq 403 "$st" "preflight refused while CORS is off"
svc_stop_pidfile "$H_DIR/kernel-rl.pid" 15

TRUSTED_PROXIES=127.0.0.1/32 CORS_ALLOWED_ORIGINS=https://ui.example RATE_LIMIT_IP_RPS=1 RATE_LIMIT_IP_BURST=2 PORT=$P2 \
  "$WE_BIN/kernel" >>"$H_DIR/kernel-px.log" 2>&1 &
echo $! >"$H_DIR/kernel-px.pid"
svc_wait_http "http://127.0.0.1:$P2/v1/health" 30 || h_fail "proxied kernel did not start"
codes=""
for i in 1 2 3 4 5 6; do
  codes+=$(curl -q -s -o /dev/null -w '%{http_code} ' -H "X-Forwarded-For: 10.0.0.$i" -H "Authorization: Bearer guess-$i" "http://127.0.0.1:$P2/v1/jobs")
done
h_eq "401 401 401 401 401 401 " "$codes" "behind a trusted proxy each forwarded client has its own bucket"
hdr=$(curl -q -sS -D - -o /dev/null -X OPTIONS -H 'Origin: https://ui.example' -H 'Access-Control-Request-Method: POST' "http://127.0.0.1:$P2/v1/jobs")
h_contains "$hdr" "204" "allowed preflight"
h_contains "$hdr" "Access-Control-Allow-Origin: https://ui.example" "preflight origin"
h_contains "$hdr" "Access-Control-Allow-Methods: " "preflight methods"
hdr=$(curl -q -sS -D - -o /dev/null -H 'Origin: https://other.example' "http://127.0.0.1:$P2/v1/health")
grep -qi 'Access-Control-Allow-Origin' <<<"$hdr" && h_fail "CORS header for an origin not in the list"
svc_stop_pidfile "$H_DIR/kernel-px.pid" 15

# Secrets never logged: the harness checks every h_secret value against all
# logs when the test ends; make sure that check is live.
h_secret dev-admin-token-0123456789
[ ${#H_SECRETS[@]} -ge 6 ] || h_fail "secrets not registered"
cat >"$H_DIR/leak.sh" <<'EOS'
. "$WE_SRC/tests/lib/harness.sh"
h_secret leaky-secret-value-123
echo "token=leaky-secret-value-123" >"$H_DIR/x.log"
h_pass
EOS
if WE_SRC=$WE_SRC bash "$H_DIR/leak.sh" 2>/dev/null; then h_fail "the harness missed a secret in a log"; fi
h_pass
