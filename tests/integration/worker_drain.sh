#!/usr/bin/env bash
# Drain and undrain over the API: a drained worker finishes what it runs but
# takes nothing new (a new job waits, and says why), undrain resumes it;
# unknown workers are 404, a worker that cannot answer is 409.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

vod_stack 1
vod_media src.mp4 60 640x360 30

# drain while a task runs: that task finishes, nothing new starts
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["720p-h264"]}')
h_wait_for 60 bash -c "[ -n \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT id FROM tasks WHERE job_id = '$id' AND type = 'video' AND status = 'running'\")\" ]" \
  || h_fail "no segment ever ran"
task=$(h_psql -c "SELECT id FROM tasks WHERE job_id = '$id' AND type = 'video' AND status = 'running' LIMIT 1")
h_req POST /v1/workers/w1/drain
h_eq 200 "$H_STATUS" "drain"
h_eq draining "$(h_jq .status)" "status after drain"
h_eq true "$(h_jq .draining)" "draining flag"
grep -q '"msg":"worker draining: no new tasks"' "$H_DIR/worker-w1.log" || h_fail "worker did not log the drain"
h_wait_for 120 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status FROM tasks WHERE id = '$task'\")\" = completed ]" \
  || h_fail "the running task did not finish while draining"
sleep 3
h_eq 0 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND status = 'running'")" "nothing new started"
h_req GET "/v1/jobs/$id"
[ "$(h_jq .status)" != completed ] || h_fail "job completed while its worker drained"
h_contains "$(h_jq .wait_reason)" "capability cpu" "wait reason while draining"

h_req POST /v1/workers/w1/undrain
h_eq 200 "$H_STATUS" "undrain"
h_eq healthy "$(h_jq .status)" "status after undrain"
vod_wait "$id" completed 300

h_req POST /v1/workers/nobody/drain
h_eq 404 "$H_STATUS" "drain an unknown worker"
h_req POST /v1/workers/bad.id/drain
h_eq 404 "$H_STATUS" "drain a hostile id"
kill -STOP "$(cat "$H_DIR/worker-w1.pid")"
h_req POST /v1/workers/w1/drain
kill -CONT "$(cat "$H_DIR/worker-w1.pid")"
h_eq 409 "$H_STATUS" "drain a worker that does not answer"
h_eq WE-WRK-002 "$(h_jq .error.code)" "code"
h_pass
