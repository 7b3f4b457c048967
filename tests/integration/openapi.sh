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
# an error group, written directly (errors.c writes rows of this shape)
ERR=$(h_psql -c "INSERT INTO error_events (source, message, context, fingerprint)
  VALUES ('kernel', 'openapi check', '{\"error\":\"x\"}', repeat('a', 64)) RETURNING id")
# a webhook with one (finished) delivery, written directly: the API would resolve its host
WH=$(h_psql -c "INSERT INTO webhooks (url, secret, events) VALUES ('https://hooks.example.com/h',
  'openapi-secret-0123456789', '{job.created,job.failed}') RETURNING id")
h_psql -c "INSERT INTO webhook_deliveries (webhook_id, event_id, event, payload, status, attempts,
  last_status_code, last_error) VALUES ('$WH', gen_random_uuid(), 'job.created',
  '{\"id\":\"e\",\"type\":\"job.created\",\"time\":\"2026-01-01T00:00:00.000Z\",
  \"resource\":{\"type\":\"job\",\"id\":\"j\"},\"user_id\":null,\"data\":{}}', 'failed', 3, 500,
  'HTTP 500')"

/usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$WE_SRC/docs/openapi.yaml" \
  "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" \
  "GET /v1/health" "GET /v1/system/health" "GET /v1/workers" "GET /v1/workers/api-1" \
  "GET /v1/workers/nobody" "GET /metrics" "GET /v1/unknown" "DELETE /v1/health" \
  "GET /v1/audit" "GET /v1/errors" "GET /v1/errors/$ERR" "GET /v1/notifications" \
  "GET /v1/errors/00000000-0000-0000-0000-000000000000" \
  "GET /v1/auth/me" "GET !/v1/jobs" "GET !/v1/workers" "GET /v1/users" \
  "GET /v1/webhooks" "GET /v1/webhooks/$WH" "GET /v1/webhooks/$WH/deliveries" \
  "GET /v1/webhooks/nobody" "GET /v1/webhooks/00000000-0000-0000-0000-000000000000/deliveries" \
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
