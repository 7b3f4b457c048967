#!/usr/bin/env bash
# plugins/auth-basic through the plugin protocol (no kernel) against a
# private, migrated PostgreSQL: users of each role, password and token
# logins, expired (WE-AUTH-002) and revoked (WE-AUTH-001) tokens, token roles
# capped at the user's, duplicate users and weak passwords refused, no
# plaintext password or token in the tables or in the plugin's stderr (nor
# database_url), PostgreSQL stopped and restarted mid-run (health degraded
# meanwhile, calls working again after); run by hand without the magic
# cookie it exits 1. The checks live in plugin_auth_basic.py.
. "$(dirname "$0")/../lib/harness.sh"

EXE=${WE_PLUGINS:-$WE_SRC/plugins}/auth-basic/auth-basic
[ -x "$EXE" ] || h_fail "auth-basic is not built: $EXE"

set +e
env -u WEBENCODE_PLUGIN "$EXE" </dev/null >"$H_DIR/bare.out" 2>"$H_DIR/bare.err"
rc=$?
set -e
h_eq 1 "$rc" "exit status without the magic cookie"
h_contains "$(cat "$H_DIR/bare.err")" "auth-basic" "self-description"

h_start_pg
h_migrate_up || h_fail "migrations failed"

# The Python side stops and starts this PostgreSQL through this script.
cat >"$H_DIR/pgctl.sh" <<PGCTL
. "$WE_SRC/scripts/lib/services.sh"
case "\$1" in
  stop) svc_pg_stop "$H_DIR/pg" ;;
  start) svc_pg_start "$H_DIR/pg" "$H_PG_PORT" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
esac
PGCTL

WE_SRC=$WE_SRC /usr/bin/python3 "$WE_SRC/tests/integration/plugin_auth_basic.py" "$EXE" "$H_DIR" \
  "$H_DIR/pgctl.sh" >"$H_DIR/checks.out" 2>&1 || { cat "$H_DIR/checks.out" >&2; h_fail "auth-basic checks failed"; }
cat "$H_DIR/checks.out" >&2
h_pass
