#!/usr/bin/env bash
# plugins/auth-oidc through the plugin protocol (no kernel) against real
# OpenID Connect providers: oidc-provider (npm, tests/peers/oidc.mjs) on
# loopback, started and restarted by the checks. Real RS256 and ES256 access
# tokens from the token endpoint; tampered signature, wrong audience, wrong
# issuer (a second provider with the same keys), expired (002) and not yet
# valid tokens, alg none / HS256 / key confusion, non-JWT tokens refused
# without a network call; roles from a claim, a dotted path, groups through
# role_map, default_role; key rotation (restart with a new key set), the
# unknown-kid refetch rate limit (JWKS requests counted by the provider),
# provider down (health degraded, cached keys still verify); users rows in a
# migrated PostgreSQL; config errors; no client secret or token in the
# plugin's stderr; concurrent calls; then a short session under valgrind
# (normal build). The checks live in plugin_auth_oidc.py.
. "$(dirname "$0")/../lib/harness.sh"

EXE=${WE_PLUGINS:-$WE_SRC/plugins}/auth-oidc/auth-oidc
PEERS=$WE_SRC/tests/peers
[ -x "$EXE" ] || h_fail "auth-oidc is not built: $EXE"
command -v node >/dev/null || h_fail "node is not installed (scripts/deps.sh installs it)"
[ -d "$PEERS/node_modules/oidc-provider" ] ||
  h_fail "tests/peers/node_modules is missing: run scripts/deps.sh (npm ci in tests/peers)"

set +e
env -u WEBENCODE_PLUGIN "$EXE" </dev/null >"$H_DIR/bare.out" 2>"$H_DIR/bare.err"
rc=$?
set -e
h_eq 1 "$rc" "exit status without the magic cookie"
h_contains "$(cat "$H_DIR/bare.err")" "auth-oidc" "self-description"

h_start_pg
h_migrate_up || h_fail "migrations failed"
# two providers' ports and one where nothing listens, all different
ports=()
while [ ${#ports[@]} -lt 3 ]; do
  p=$(svc_free_port)
  [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
export OIDC_PORTS=${ports[0]},${ports[1]},${ports[2]} WE_SRC

timeout 240 /usr/bin/python3 "$WE_SRC/tests/integration/plugin_auth_oidc.py" \
  "$EXE" "$H_DIR" "$PEERS" >"$H_DIR/checks.out" 2>&1 ||
  { cat "$H_DIR/checks.out" >&2; h_fail "auth-oidc checks failed"; }
cat "$H_DIR/checks.out" >&2

# valgrind: normal build only (valgrind and ASan do not mix)
if [ "${WE_SANITIZE:-OFF}" != ON ] && command -v valgrind >/dev/null; then
  timeout 180 /usr/bin/python3 "$WE_SRC/tests/integration/plugin_auth_oidc.py" \
    "$EXE" "$H_DIR" "$PEERS" valgrind >"$H_DIR/checks-vg.out" 2>&1 ||
    { cat "$H_DIR/checks-vg.out" >&2; h_fail "auth-oidc under valgrind failed"; }
  cat "$H_DIR/checks-vg.out" >&2
fi
h_pass
