#!/usr/bin/env bash
# Error tracking, notifications and system audit events (issue 6 item 4):
# - a plugin that crashes at every start: its error records show up in
#   /v1/errors (source plugin:<id>) with the count growing, and as
#   plugin.failed system events in the audit log;
# - failed jobs (corrupt source) are one error group (source "jobs") whose
#   count grows with each failure and which names the latest job; resolve
#   closes it and the next failure opens a new group; webencode_errors_total
#   is the sum of the counts;
# - a user's completed, failed and cancelled jobs notify that user only:
#   another user gets 404 for them, the bootstrap admin (no user id) sees an
#   empty list; read, read-all, unread filter and count, delete;
# - worker joined / lost are audited as system events, and a lost worker
#   notifies the admin users.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

WE_TEST_PLUGINS=${WE_TEST_PLUGINS:-$WE_SRC/build/test-plugins}
KPLUGINS=$(vod_plugin_dir kplugins storage-fs auth-basic)
cp -r "$WE_TEST_PLUGINS/test-crashstart" "$KPLUGINS/"
export RATE_LIMIT_IP_RPS=1000 RATE_LIMIT_IP_BURST=1000

h_start_pg
h_migrate_up
h_start_nats
PLUGIN_DIR=$KPLUGINS h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/plugins/auth-basic | jq -e '.state == \"healthy\"'" \
  || h_fail "auth-basic not healthy"
VOD_WPLUGINS=$(vod_plugin_dir wplugins encoder-ffmpeg storage-fs)
vod_worker w1
vod_media ok.mp4 2
head -c 100000 /dev/urandom >"$STORAGE_FS_ROOT/in/corrupt.mp4"

as() { # as TOKEN METHOD PATH [BODY] → H_STATUS, H_BODY (no .curlrc)
  local tok=$1 m=$2 p=$3 b=${4:-}
  H_STATUS=$(curl -q -sS -o "$H_DIR/resp.body" -w '%{http_code}' -X "$m" ${b:+--data-binary "$b"} \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $tok" --max-time 10 \
    "$H_KERNEL_URL$p") || H_STATUS=000
  H_BODY=$(cat "$H_DIR/resp.body")
}
q() { h_psql -c "$1"; }
# new_user NAME ROLE: creates the user and a token; sets NEW_UID and NEW_TOK.
new_user() {
  as "$H_TOKEN" POST /v1/users "{\"username\":\"$1\",\"password\":\"correct-horse-battery\",\"role\":\"$2\"}"
  h_eq 201 "$H_STATUS" "create user $1: $H_BODY"
  NEW_UID=$(h_jq .user_id)
  as "$H_TOKEN" POST /v1/tokens "{\"user_id\":\"$NEW_UID\",\"name\":\"t\"}"
  h_eq 201 "$H_STATUS" "token for $1: $H_BODY"
  NEW_TOK=$(h_jq .token)
}
submit_as() { # submit_as TOKEN SOURCE: echoes the job id
  as "$1" POST /v1/jobs "{\"source_url\":\"$2\",\"profiles\":[\"480p-h264\"]}"
  [ "$H_STATUS" = 201 ] || h_fail "submit $2: $H_STATUS $H_BODY"
  h_jq .id
}

# ---- system events: a worker joined; a plugin crashes at every start -------------------
h_wait_for 10 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM audit_log
  WHERE action = 'worker.joined' AND resource_id = 'w1' AND actor = 'system'\") = 1 ]" \
  || h_fail "worker.joined not audited once"
# the host's "plugin state changed" (to failed) records, and the plugin's own error lines
state_count() { q "SELECT coalesce(max(count), 0) FROM error_events WHERE source = 'plugin:test-crashstart'
  AND message = 'plugin state changed' AND NOT resolved"; }
h_wait_for 20 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT coalesce(max(count), 0) FROM error_events
  WHERE source = 'plugin:test-crashstart' AND message = 'plugin state changed'\") -ge 2 ]" \
  || h_fail "the crashing plugin's errors are not counted: $(q "SELECT message, count FROM error_events")"
groups() { curl -fsS "$H_KERNEL_URL/v1/errors?source=plugin:test-crashstart" | jq -r '[.items[].message] | sort | join("|")'; }
h_wait_for 10 bash -c "[ \"\$(curl -fsS '$H_KERNEL_URL/v1/errors?source=plugin:test-crashstart' \
  | jq -r '[.items[].message] | sort | join(\"|\")')\" = 'crashing on purpose|plugin state changed' ]" \
  || h_fail "the plugin's error groups: $(groups)"
h_req GET "/v1/errors?source=plugin:test-crashstart"
h_eq 200 "$H_STATUS" "errors of the crashing plugin"
h_eq "test-crashstart|failed|error" \
  "$(h_jq '.items[] | select(.message == "plugin state changed") | "\(.context.plugin)|\(.context.to)|\(.severity)"')" \
  "plugin state group context"
n1=$(state_count)
h_wait_for 10 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM error_events
  WHERE source = 'plugin:test-crashstart' AND message = 'plugin state changed' AND count > $n1\") = 1 ]" \
  || h_fail "the count does not grow with more crashes (was $n1)"
h_wait_for 10 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM audit_log
  WHERE action = 'plugin.failed' AND resource_type = 'plugin' AND resource_id = 'test-crashstart'\") -ge 2 ]" \
  || h_fail "plugin.failed not audited"

# ---- two users; ann's jobs complete, fail, bob's is cancelled ------------------------------
new_user ann operator; ANN_UID=$NEW_UID ANN=$NEW_TOK
new_user bob operator; BOB=$NEW_TOK
ok=$(submit_as "$ANN" fs://in/ok.mp4)
bad1=$(submit_as "$ANN" fs://in/corrupt.mp4)
h_eq "$ANN_UID" "$(q "SELECT user_id FROM jobs WHERE id = '$ok'")" "the job's owner"
vod_wait "$bad1" failed 60
vod_wait "$ok" completed 120
bobs=$(submit_as "$BOB" fs://in/ok.mp4)
as "$BOB" POST "/v1/jobs/$bobs/cancel"
h_eq 200 "$H_STATUS" "bob cancels"

# ---- notifications --------------------------------------------------------------------------
h_wait_for 10 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM notifications\") -ge 3 ]" \
  || h_fail "notifications: $(q "SELECT title, user_id FROM notifications")"
as "$ANN" GET /v1/notifications
h_eq 200 "$H_STATUS" "ann's notifications"
h_eq 2 "$(h_jq '.items | length')" "ann has two: $H_BODY"
h_eq 2 "$(h_jq .unread_count)" "ann's unread"
h_eq "Job failed|error|/v1/jobs/$bad1|false" "$(h_jq '.items[] | select(.level == "error") | "\(.title)|\(.level)|\(.link)|\(.read)"')" "failure notification"
h_eq "Job completed|success|/v1/jobs/$ok" "$(h_jq '.items[] | select(.level == "success") | "\(.title)|\(.level)|\(.link)"')" "completion notification"
h_contains "$(h_jq '.items[] | select(.level == "error") | .message')" "failed:" "failure notification names the reason"
N_OK=$(h_jq '.items[] | select(.level == "success") | .id')
N_BAD=$(h_jq '.items[] | select(.level == "error") | .id')
as "$BOB" GET /v1/notifications
h_eq "Job cancelled|warning|/v1/jobs/$bobs" "$(h_jq '.items[] | "\(.title)|\(.level)|\(.link)"')" "bob sees only his own"
as "$BOB" POST "/v1/notifications/$N_OK/read"
h_eq 404 "$H_STATUS" "bob marks ann's notification"
as "$BOB" DELETE "/v1/notifications/$N_OK"
h_eq 404 "$H_STATUS" "bob deletes ann's notification"
h_req GET /v1/notifications
h_eq "0 0" "$(h_jq '"\(.items | length) \(.unread_count)"')" "the bootstrap admin has none"
as "$ANN" POST "/v1/notifications/$N_OK/read"
h_eq 200 "$H_STATUS" "ann marks one read"
h_eq true "$(h_jq .read)" "marked read"
as "$ANN" GET "/v1/notifications?unread=true"
h_eq "$N_BAD 1" "$(h_jq '"\(.items[].id) \(.unread_count)"')" "unread filter and count"
as "$ANN" POST /v1/notifications/read-all
h_eq '{"updated":1}' "$H_BODY" "read-all"
as "$ANN" GET "/v1/notifications?limit=1"
h_eq "1 0" "$(h_jq '"\(.items | length) \(.unread_count)"')" "one per page, none unread"
cursor=$(h_jq .next_cursor)
as "$ANN" GET "/v1/notifications?limit=1&cursor=$cursor"
h_eq "1 null" "$(h_jq '"\(.items | length) \(.next_cursor)"')" "second and last page"
as "$ANN" DELETE "/v1/notifications/$N_OK"
h_eq 204 "$H_STATUS" "ann deletes one"
as "$ANN" DELETE "/v1/notifications/$N_OK"
h_eq 404 "$H_STATUS" "deleted twice"
as "$ANN" GET /v1/notifications
h_eq "$N_BAD" "$(h_jq '.items[].id')" "one left"
for bad in "unread=maybe" "limit=0" "cursor=nope"; do
  as "$ANN" GET "/v1/notifications?$bad"
  h_eq 400 "$H_STATUS" "notifications?$bad"
done

# ---- failed jobs in error tracking ------------------------------------------------------------
jobs_group() { h_req GET "/v1/errors?source=jobs&resolved=false"; }
h_wait_for 10 bash -c "curl -fsS '$H_KERNEL_URL/v1/errors?source=jobs' | jq -e '.items | length == 1'" \
  || h_fail "no error group for the failed job"
jobs_group
h_eq "job failed|1|$bad1|WE-JOB-010|error" \
  "$(h_jq '.items[0] | "\(.message)|\(.count)|\(.job_id)|\(.context.code)|\(.severity)"')" "failed job group"
GID=$(h_jq '.items[0].id')
bad2=$(submit_as "$ANN" fs://in/corrupt.mp4)
vod_wait "$bad2" failed 60
h_wait_for 10 bash -c "curl -fsS $H_KERNEL_URL/v1/errors/$GID | jq -e '.count == 2'" \
  || h_fail "the group's count did not grow: $(curl -fsS "$H_KERNEL_URL/v1/errors/$GID")"
h_req GET "/v1/errors/$GID"
h_eq "$bad2" "$(h_jq .job_id)" "the group names the latest failed job"
h_req POST "/v1/errors/$GID/resolve"
h_eq "200 true" "$H_STATUS $(h_jq .resolved)" "resolve"
jobs_group
h_eq 0 "$(h_jq '.items | length')" "no open group after resolve"
bad3=$(submit_as "$ANN" fs://in/corrupt.mp4)
vod_wait "$bad3" failed 60
h_wait_for 10 bash -c "curl -fsS '$H_KERNEL_URL/v1/errors?source=jobs&resolved=false' | jq -e '.items | length == 1'" \
  || h_fail "no new group after resolve"
jobs_group
h_eq "1 $bad3" "$(h_jq '"\(.items[0].count) \(.items[0].job_id)"')" "a new group for the next failure"
h_req GET "/v1/errors?severity=error,fatal&limit=1"
h_eq 1 "$(h_jq '.items | length')" "severity filter and limit"
[ "$(h_jq .next_cursor)" != null ] || h_fail "no next cursor with more errors than the limit"
h_req GET "/v1/errors?since=2999-01-01T00:00:00Z"
h_eq 0 "$(h_jq '.items | length')" "since in the future"
for bad in "severity=bad" "resolved=1" "since=now" "limit=201"; do
  h_req GET "/v1/errors?$bad"
  h_eq 400 "$H_STATUS" "errors?$bad"
done
h_req GET /v1/errors/00000000-0000-0000-0000-000000000000
h_eq 404 "$H_STATUS" "unknown error id"
h_req POST /v1/errors/not-a-uuid/resolve
h_eq 404 "$H_STATUS" "malformed error id"
as "$ANN" GET /v1/errors
h_eq 403 "$H_STATUS" "an operator may not read errors"
# webencode_errors_total is sum(count) (every row, resolved or not)
total=$(q "SELECT sum(count) FROM error_events")
metric=$(curl -fsS "$H_KERNEL_URL/metrics" | awk '$1 == "webencode_errors_total" {print $2}')
h_eq "$total" "$(printf '%.0f' "$metric")" "webencode_errors_total"
h_eq 1 "$(q "SELECT count(*) FROM audit_log WHERE action = 'error.resolve' AND resource_id = '$GID'")" "resolve audited"

# ---- a lost worker: audited, and the admins are told -------------------------------------------
# The first admin user ends the bootstrap token; the admin signs in with a password.
as "$H_TOKEN" POST /v1/users '{"username":"root-admin","password":"correct-horse-battery","role":"admin"}'
h_eq 201 "$H_STATUS" "create the admin: $H_BODY"
admin_get() { curl -q -fsS -u root-admin:correct-horse-battery "$H_KERNEL_URL$1"; }
kill -9 "$(cat "$H_DIR/worker-w1.pid")"
h_wait_for 20 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM audit_log
  WHERE action = 'worker.lost' AND resource_id = 'w1' AND actor = 'system'\") = 1 ]" \
  || h_fail "worker.lost not audited"
h_wait_for 10 bash -c "curl -q -fsS -u root-admin:correct-horse-battery $H_KERNEL_URL/v1/notifications | jq -e '.items | length == 1'" \
  || h_fail "the admin was not told about the lost worker: $(admin_get /v1/notifications)"
h_eq "Worker lost|warning|/v1/workers/w1" \
  "$(admin_get /v1/notifications | jq -r '.items[0] | "\(.title)|\(.level)|\(.link)"')" "worker lost notification"
as "$ANN" GET /v1/notifications
h_eq "0 3" "$(h_jq '"\([.items[] | select(.title == "Worker lost")] | length) \(.items | length)"')" \
  "operators are not told about workers; ann has her three failures"
sleep 3 # the detector runs every 2 s: still one record for one silence
h_eq 1 "$(q "SELECT count(*) FROM audit_log WHERE action = 'worker.lost' AND resource_id = 'w1'")" "lost once"
h_pass
