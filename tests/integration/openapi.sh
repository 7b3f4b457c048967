#!/usr/bin/env bash
# docs/openapi.yaml describes exactly the routes of src/kernel/routes.c, and
# real responses (success and error) match its schemas.
. "$(dirname "$0")/../lib/harness.sh"

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
WORKER_HEARTBEAT_MS=300 h_start_worker api-1
h_wait_for 10 bash -c "curl -fsS $H_KERNEL_URL/v1/workers/api-1" || h_fail "worker not registered"

/usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$WE_SRC/docs/openapi.yaml" \
  "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" \
  "GET /v1/health" "GET /v1/system/health" "GET /v1/workers" "GET /v1/workers/api-1" \
  "GET /v1/workers/nobody" "GET /metrics" "GET /v1/unknown" "DELETE /v1/health" \
  || h_fail "openapi check failed"

# the checker itself must catch a mismatch: a spec missing a route fails
sed '/^  \/metrics:/,/^components:/{/^components:/!d}' "$WE_SRC/docs/openapi.yaml" >"$H_DIR/broken.yaml"
if /usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$H_DIR/broken.yaml" \
    "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" >/dev/null 2>&1; then
  h_fail "checker accepted a spec without /metrics"
fi
h_stop_pg
/usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$WE_SRC/docs/openapi.yaml" \
  "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" "GET /v1/workers" "GET /v1/system/health" \
  || h_fail "error responses with the database down do not match the spec"
h_pass
