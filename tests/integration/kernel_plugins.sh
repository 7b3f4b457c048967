#!/usr/bin/env bash
# The kernel as plugin host, through its API: discovery in PLUGIN_DIR, an
# incompatible plugin marked failed with "Incompatible API version" while
# the kernel keeps running, GET /v1/plugins[/{id}], configuration validated
# against config_schema with secrets write-only and persisted, enable /
# disable / reload (a replaced binary is picked up), registering a new
# plugin, SIGHUP reloading everything, and no plugin outliving a kernel
# killed with SIGKILL.
. "$(dirname "$0")/../lib/harness.sh"
WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
WE_TEST_PLUGINS=${WE_TEST_PLUGINS:-$WE_SRC/build/test-plugins}

export PLUGIN_DIR=$H_DIR/plugins
mkdir -p "$PLUGIN_DIR"
cp -r "$WE_TEST_PLUGINS/test-echo" "$WE_TEST_PLUGINS/test-badapi" "$PLUGIN_DIR/"
cp -r "$WE_PLUGINS/storage-fs" "$PLUGIN_DIR/"
export STORAGE_FS_ROOT=$H_DIR/storage PLUGIN_HEALTH_INTERVAL_MS=500

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel

plugin() { h_req GET "/v1/plugins/$1"; h_jq "$2"; }
h_req GET /v1/plugins
h_eq 200 "$H_STATUS" "GET /v1/plugins"
h_eq 3 "$(h_jq .total)" "plugins found"
h_eq healthy "$(plugin storage-fs .state)" "storage-fs state"
h_eq healthy "$(plugin test-echo .state)" "test-echo state"
h_eq failed "$(plugin test-badapi .state)" "incompatible plugin state"
h_contains "$(plugin test-badapi .last_error)" "Incompatible API version" "last_error"
grep 'Incompatible API version' "$H_DIR/kernel.log" | grep -q '99' || h_fail "mismatch not logged with both versions"
h_eq "$H_DIR/storage" "$(plugin storage-fs .config.root)" "storage root from STORAGE_FS_ROOT"
h_eq 1 "$(plugin storage-fs .api_version)" "api_version"
[ "$(plugin storage-fs .pid)" -gt 0 ] || h_fail "no pid"
h_req GET /v1/plugins/nope
h_eq 404 "$H_STATUS" "unknown plugin"
h_eq WE-PLG-001 "$(h_jq .error.code)" "unknown plugin code"
h_req GET /v1/plugins/..%2Fetc
h_eq 404 "$H_STATUS" "hostile plugin id"

# --- configuration: validated, secrets write-only, persisted
secret="s3cr3t-$(date +%s%N)"
h_secret "$secret"
h_req PUT /v1/plugins/test-echo/config "{\"config\":{\"greeting\":\"bonjour\",\"token\":\"$secret\"}}"
h_eq 200 "$H_STATUS" "PUT config"
h_eq bonjour "$(h_jq .config.greeting)" "greeting applied"
h_eq '********' "$(h_jq .config.token)" "secret masked in the response"
h_eq healthy "$(h_jq .state)" "healthy after config change"
h_eq '{"greeting": "bonjour"}' "$(h_psql -c "SELECT config FROM plugin_configs WHERE id='test-echo'")" "plain config stored"
h_eq "$secret" "$(h_psql -c "SELECT secrets->>'token' FROM plugin_configs WHERE id='test-echo'")" "secret stored apart"
h_req GET /v1/plugins/test-echo
case "$H_BODY" in *"$secret"*) h_fail "secret returned by GET";; esac
h_req GET /v1/plugins
case "$H_BODY" in *"$secret"*) h_fail "secret returned by list";; esac
# the masked value keeps the stored secret
h_req PUT /v1/plugins/test-echo/config '{"config":{"greeting":"hej","token":"********"}}'
h_eq 200 "$H_STATUS" "PUT with masked secret"
h_eq "$secret" "$(h_psql -c "SELECT secrets->>'token' FROM plugin_configs WHERE id='test-echo'")" "masked secret kept"
# bad input: wrong type, unknown field, not an object, malformed JSON
h_req PUT /v1/plugins/test-echo/config '{"config":{"count":"ten"}}'
h_eq 422 "$H_STATUS" "wrong type"
h_eq WE-PLG-002 "$(h_jq .error.code)" "wrong type code"
h_contains "$(h_jq .error.message)" count "message names the field"
h_req PUT /v1/plugins/test-echo/config '{"config":{"colour":"red"}}'
h_eq 422 "$H_STATUS" "unknown field"
h_contains "$(h_jq .error.message)" colour "message names the unknown field"
h_req PUT /v1/plugins/test-echo/config '{"config":[1]}'
h_eq 422 "$H_STATUS" "config not an object"
h_req PUT /v1/plugins/test-echo/config '{"config":'
h_eq 400 "$H_STATUS" "malformed JSON"
h_eq WE-SYS-004 "$(h_jq .error.code)" "malformed JSON code"
h_eq hej "$(h_psql -c "SELECT config->>'greeting' FROM plugin_configs WHERE id='test-echo'")" "rejected changes stored nothing"

# --- disable / enable / reload
h_req POST /v1/plugins/test-echo/disable
h_eq 200 "$H_STATUS" "disable"
h_eq disabled "$(h_jq .state)" "disabled state"
h_eq f "$(h_psql -c "SELECT enabled FROM plugin_configs WHERE id='test-echo'")" "disable persisted"
h_req POST /v1/plugins/test-echo/enable
h_eq healthy "$(h_jq .state)" "enabled again"
h_eq hej "$(h_jq .config.greeting)" "config survives disable/enable"
old_pid=$(plugin test-echo .pid)
cp "$WE_TEST_PLUGINS/test-echo-v2/test-echo-v2" "$PLUGIN_DIR/test-echo/test-echo.new"
mv "$PLUGIN_DIR/test-echo/test-echo.new" "$PLUGIN_DIR/test-echo/test-echo"
h_req POST /v1/plugins/test-echo/reload
h_eq 200 "$H_STATUS" "reload"
h_eq healthy "$(h_jq .state)" "healthy after reload"
h_eq 2.0.0 "$(h_jq .version)" "replaced binary picked up"
[ "$(h_jq .pid)" != "$old_pid" ] || h_fail "reload kept the old process"
kill -0 "$old_pid" 2>/dev/null && h_fail "old plugin process still alive"

# --- register a plugin placed after start
cp -r "$WE_TEST_PLUGINS/test-crashcall" "$PLUGIN_DIR/"
h_req POST /v1/plugins '{"id":"test-crashcall"}'
h_eq 201 "$H_STATUS" "register: $H_BODY"
h_eq healthy "$(h_jq .state)" "registered plugin started"
h_req POST /v1/plugins '{"id":"test-crashcall"}'
h_eq 409 "$H_STATUS" "register twice"
# a binary that says it is someone else is registered but failed, with the reason
cp -r "$WE_TEST_PLUGINS/test-echo" "$H_DIR/new-echo"
sed -i 's/^id = "test-echo"/id = "echo-two"\nexecutable = "echo-two"/' "$H_DIR/new-echo/plugin.toml"
mv "$H_DIR/new-echo/test-echo" "$H_DIR/new-echo/echo-two"
mv "$H_DIR/new-echo" "$PLUGIN_DIR/echo-two"
h_req POST /v1/plugins '{"id":"echo-two"}'
h_eq 201 "$H_STATUS" "register an impostor"
h_eq failed "$(h_jq .state)" "impostor state"
h_contains "$(h_jq .last_error)" "differs from the manifest" "impostor reason"
h_req POST /v1/plugins '{"id":"not-there"}'
h_eq 404 "$H_STATUS" "register a missing directory"
h_req POST /v1/plugins '{"id":"../etc"}'
h_eq 422 "$H_STATUS" "register a hostile id"
h_req POST /v1/plugins '{"id":5}'
h_eq 422 "$H_STATUS" "register with a wrong type"

# responses match docs/openapi.yaml
/usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$WE_SRC/docs/openapi.yaml" \
  "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" "GET /v1/plugins" "GET /v1/plugins/storage-fs" \
  "GET /v1/plugins/nope" "POST /v1/plugins/storage-fs/reload" >/dev/null || h_fail "plugin responses vs openapi"

# --- SIGHUP reloads every plugin
pids_before=$(curl -fsS "$H_KERNEL_URL/v1/plugins" | jq -r '[.items[] | select(.state=="healthy") | .pid] | sort | join(",")')
kill -HUP "$(cat "$H_DIR/kernel.pid")"
changed() {
  local now
  now=$(curl -fsS "$H_KERNEL_URL/v1/plugins" | jq -r '[.items[] | select(.state=="healthy") | .pid] | sort | join(",")')
  [ -n "$now" ] && [ "$now" != "$pids_before" ] && [ "$(tr , '\n' <<<"$now" | wc -l)" = "$(tr , '\n' <<<"$pids_before" | wc -l)" ]
}
h_wait_for 20 changed || h_fail "SIGHUP did not restart the plugins"

# --- no orphans: SIGKILL the kernel, every plugin exits
pids=$(curl -fsS "$H_KERNEL_URL/v1/plugins" | jq -r '.items[] | select(.pid != null) | .pid')
[ -n "$pids" ] || h_fail "no plugin pids"
kill -KILL "$(cat "$H_DIR/kernel.pid")"
rm -f "$H_DIR/kernel.pid"
gone() { for p in $pids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
h_wait_for 5 gone || h_fail "plugins outlived a SIGKILLed kernel: $pids"
grep -q "$secret" "$H_DIR"/*.log && h_fail "the secret appears in a log"
h_pass
