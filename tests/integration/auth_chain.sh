#!/usr/bin/env bash
# The kernel's auth plugin chain end to end: auth-basic and auth-oidc side by
# side, configured the runbook's way (OIDC_ISSUER_URL, OIDC_CLIENT_ID,
# OIDC_CLIENT_SECRET), against oidc-provider from npm (tests/peers). An OIDC
# access token from the provider's token endpoint works through the API with
# the role of its claim and becomes a users row; API tokens of auth-basic
# still work; a tampered or foreign token is refused; a job submitted with
# the OIDC token belongs to that user; the client secret and tokens never
# reach a log.
. "$(dirname "$0")/../lib/harness.sh"

WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
PEERS=$WE_SRC/tests/peers
[ -d "$PEERS/node_modules/oidc-provider" ] ||
  h_fail "tests/peers/node_modules is missing: run scripts/deps.sh (npm ci in tests/peers)"
export PLUGIN_DIR=$H_DIR/plugins STORAGE_FS_ROOT=$H_DIR/storage
mkdir -p "$PLUGIN_DIR" "$STORAGE_FS_ROOT"
cp -r "$WE_PLUGINS/auth-basic" "$WE_PLUGINS/auth-oidc" "$WE_PLUGINS/storage-fs" "$PLUGIN_DIR/"

# ---- the provider ------------------------------------------------------------
OP=$(svc_free_port)
SECRET=oidc-client-secret-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
h_secret "$SECRET"
(cd "$PEERS" && node oidc.mjs keys "$H_DIR/keys.json" t) >/dev/null
cat >"$H_DIR/op.json" <<JSON
{ "port": $OP, "keys": ["$H_DIR/keys.json"], "hits": "$H_DIR/jwks.hits",
  "clients": [
    { "client_id": "webencode", "client_secret": "$SECRET",
      "claims": { "role": "operator", "preferred_username": "ops" } },
    { "client_id": "reader", "client_secret": "$SECRET",
      "claims": { "role": "viewer", "preferred_username": "reader" } } ],
  "resources": { "urn:webencode": { "audience": "webencode", "alg": "RS256" },
                 "urn:other": { "audience": "someone-else", "alg": "ES256" } } }
JSON
(cd "$PEERS" && exec node oidc.mjs serve "$H_DIR/op.json") >>"$H_DIR/provider.log" 2>&1 &
echo $! >"$H_DIR/provider.pid"
h_wait_for 20 curl -q -fsS "http://127.0.0.1:$OP/.well-known/openid-configuration" ||
  h_fail "oidc-provider did not start"

token() { # CLIENT RESOURCE
  curl -q -fsS -u "$1:$SECRET" -d grant_type=client_credentials -d scope=api -d "resource=$2" \
    "http://127.0.0.1:$OP/token" | jq -r .access_token
}

# ---- the kernel with both auth plugins ----------------------------------------
export OIDC_ISSUER_URL=http://127.0.0.1:$OP OIDC_CLIENT_ID=webencode OIDC_CLIENT_SECRET=$SECRET
h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
for p in auth-basic auth-oidc; do
  h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/plugins/$p | jq -e '.state == \"healthy\"'" ||
    h_fail "$p not healthy: $(curl -sS "$H_KERNEL_URL/v1/plugins/$p")"
done

as() { # TOKEN METHOD PATH [BODY]
  H_STATUS=$(curl -q -sS -o "$H_DIR/resp.body" -w '%{http_code}' -X "$2" ${4:+--data-binary "$4"} \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $1" "$H_KERNEL_URL$3")
  H_BODY=$(cat "$H_DIR/resp.body")
}

OPS=$(token webencode urn:webencode)
h_secret "$OPS"
[ "$(cut -d. -f1 <<<"$OPS" | base64 -d 2>/dev/null | jq -r .typ)" = at+jwt ] ||
  h_log "note: provider token typ is not at+jwt"
as "$OPS" GET /v1/auth/me
h_eq 200 "$H_STATUS" "OIDC token through the kernel: $H_BODY"
h_eq "operator auth-oidc oidc:ops" "$(h_jq '.role + " " + .via + " " + .username')" "OIDC identity"
oid=$(h_jq .user_id)
h_eq "oidc:ops operator" "$(h_psql -c "SELECT username || ' ' || role FROM users WHERE id = '$oid'")" \
  "OIDC user provisioned in users"
as "$OPS" POST /v1/profiles '{}'
h_eq "403 WE-AUTH-003" "$H_STATUS $(h_jq .error.code)" "operator from the role claim is not admin"

# a job submitted with the OIDC token belongs to that user
mkdir -p "$STORAGE_FS_ROOT/in"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=160x120:rate=10:duration=1 \
  -c:v libx264 -preset ultrafast "$STORAGE_FS_ROOT/in/a.mp4"
as "$OPS" POST /v1/jobs '{"source_url":"fs://in/a.mp4","profiles":["480p-h264"]}'
h_eq 201 "$H_STATUS" "job with an OIDC token: $H_BODY"
h_eq "$oid" "$(h_psql -c "SELECT user_id FROM jobs WHERE id = '$(h_jq .id)'")" "job owner"

READER=$(token reader urn:webencode)
h_secret "$READER"
as "$READER" GET /v1/jobs
h_eq 200 "$H_STATUS" "viewer from the role claim reads"
as "$READER" POST /v1/jobs '{}'
h_eq 403 "$H_STATUS" "viewer from the role claim cannot submit"

# refused: wrong audience, tampered signature, garbage
OTHER=$(token webencode urn:other)
h_secret "$OTHER"
as "$OTHER" GET /v1/jobs
h_eq "401 WE-AUTH-001" "$H_STATUS $(h_jq .error.code)" "token for another audience"
sig=${OPS##*.}
flip=$([ "${sig:0:1}" = A ] && echo B || echo A)
as "${OPS%.*}.${flip}${sig:1}" GET /v1/jobs
h_eq "401 WE-AUTH-001" "$H_STATUS $(h_jq .error.code)" "tampered signature"

# auth-basic in the same chain: a password user's API token still works
as "$H_TOKEN" POST /v1/users '{"username":"basic-1","password":"basic-password-123","role":"viewer"}'
h_eq 201 "$H_STATUS" "auth-basic user: $H_BODY"
as "$H_TOKEN" POST /v1/tokens "{\"user_id\":\"$(h_jq .user_id)\",\"name\":\"t\"}"
h_eq 201 "$H_STATUS" "auth-basic token"
BT=$(h_jq .token)
h_secret "$BT"
as "$BT" GET /v1/auth/me
h_eq "viewer auth-basic" "$(h_jq '.role + " " + .via')" "API token resolved by auth-basic"

# the provider going away does not take cached and JWKS-cached tokens with it
svc_stop_pidfile "$H_DIR/provider.pid" 5
as "$OPS" GET /v1/jobs
h_eq 200 "$H_STATUS" "OIDC token with the provider down (keys cached)"
h_pass
