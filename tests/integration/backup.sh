#!/usr/bin/env bash
# The runbook's backups: scripts/backup (pg_dump -Fc) while the kernel runs,
# with two jobs completed and one queued (no worker), a user with a token and
# a custom profile; stop the kernel, DROP DATABASE, scripts/backup --restore:
# jobs, tasks, outputs, profiles, users, tokens, outbox, applied events and
# schema_migrations are identical row for row (md5 of each table's rows in
# order), `migrate version` is the same, the kernel starts on it, the
# restored token works, and the queued job runs to completion once a worker
# starts. After the restore the runbook's tuning SQL (indexes, VACUUM ANALYZE,
# ALTER SYSTEM). Retention (--keep, --keep-days), a restore into a non-empty
# database refused. JetStream: WEBENCODE_EVENTS (audit.>) keeps 90 days.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

BACKUP=$WE_SRC/scripts/backup
# backup ARGS...: scripts/backup on this stack; OUT, RC.
backup() {
  set +e
  OUT=$(WE_ROOT=$H_DIR "$BACKUP" "$@" 2>&1)
  RC=$?
  set -e
  h_log "scripts/backup $* -> exit $RC: $OUT"
}
# One line per table: name, row count, md5 of its rows in a fixed order.
TABLES="jobs tasks job_outputs profiles users api_tokens task_outbox task_events_applied schema_migrations"
snapshot() {
  local t
  for t in $TABLES; do
    printf '%s %s %s\n' "$t" "$(h_psql -c "SELECT count(*) FROM $t")" \
      "$(h_psql -c "COPY (SELECT x::text FROM $t x ORDER BY x::text) TO STDOUT" | md5sum | cut -d' ' -f1)"
  done
}
version() { "$WE_BIN/migrate" -database "$DATABASE_URL" version 2>&1; }

h_start_pg
h_migrate_up
h_start_nats
KPLUGINS=$(vod_plugin_dir kplugins storage-fs auth-basic)
PLUGIN_DIR=$KPLUGINS h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/plugins/auth-basic | jq -e '.state == \"healthy\"'" \
  || h_fail "auth-basic not healthy"
VOD_WPLUGINS=$(vod_plugin_dir wplugins encoder-ffmpeg storage-fs)
vod_worker w1
vod_media src.mp4 6

# --- state worth keeping ------------------------------------------------------------
h_req POST /v1/users '{"username":"ops-1","password":"correct-horse-battery","role":"operator"}'
h_eq 201 "$H_STATUS" "create user: $H_BODY"
uid=$(h_jq .user_id)
h_req POST /v1/tokens "{\"user_id\":\"$uid\",\"name\":\"backup-test\"}"
h_eq 201 "$H_STATUS" "create token: $H_BODY"
TOK=$(h_jq .token)
h_req GET /v1/profiles/480p-h264
cfg=$(jq -c .config <<<"$H_BODY")
h_req POST /v1/profiles "{\"id\":\"custom-480p\",\"name\":\"Custom\",\"config\":$cfg}"
h_eq 201 "$H_STATUS" "create profile: $H_BODY"
j1=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
j2=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["custom-480p","720p-h264"]}')
vod_wait "$j1" completed 120
vod_wait "$j2" completed 120
h_stop_worker w1
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/workers/w1 | jq -e '.healthy == false'" || h_fail "w1 still healthy"
j3=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
h_wait_for 30 bash -c "curl -fsS $H_KERNEL_URL/v1/jobs/$j3 | jq -e '.wait_reason // \"\" | test(\"no healthy worker\")'" \
  || h_fail "job 3 not waiting for a worker: $(curl -fsS "$H_KERNEL_URL/v1/jobs/$j3")"
h_eq queued "$(curl -fsS "$H_KERNEL_URL/v1/jobs/$j3" | jq -r .status)" "job 3 queued"
v0=$(version)

# --- dump while the kernel runs ---------------------------------------------------------
s1=$(snapshot)
backup --dir "$H_DIR/backups"
h_eq 0 "$RC" "backup: exit"
dump=$(sed -n 's/^backup: wrote \([^ ]*\) .*/\1/p' <<<"$OUT")
[ -s "$dump" ] || h_fail "no dump file ($OUT)"
s2=$(snapshot)
h_eq "$s1" "$s2" "tables changed while dumping (the comparison below needs them still)"

# --- drop, restore -----------------------------------------------------------------------
h_stop_kernel
MAINT="postgres://postgres@127.0.0.1:$H_PG_PORT/postgres?sslmode=disable"
psql "$MAINT" -qAtX -v ON_ERROR_STOP=1 -c 'DROP DATABASE webencode'
h_contains "$(version)" "does not exist" "database gone"
backup --restore "$dump"
h_eq 0 "$RC" "restore: exit"
h_contains "$OUT" "created database webencode" "restore creates the database"
h_contains "$OUT" "schema version $v0" "restore reports the version"
s3=$(snapshot)
h_log "tables compared:"$'\n'"$s3"
h_eq "$s1" "$s3" "tables after the restore"
h_eq "$v0" "$(version)" "migrate version after the restore"
backup --restore "$dump"
h_eq 1 "$RC" "restore into a non-empty database: exit"
h_contains "$OUT" "database webencode is not empty" "restore into a non-empty database"

# --- the kernel resumes ------------------------------------------------------------------
PLUGIN_DIR=$KPLUGINS h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready after the restore"
h_req GET /v1/jobs
h_eq 3 "$(h_jq .total)" "jobs after the restore"
h_eq "completed completed queued" "$(for j in "$j1" "$j2" "$j3"; do curl -fsS "$H_KERNEL_URL/v1/jobs/$j" | jq -r .status; done | xargs)" "job statuses"
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/plugins/auth-basic | jq -e '.state == \"healthy\"'" \
  || h_fail "auth-basic not healthy after the restore"
me=$(curl -q -fsS -H "Authorization: Bearer $TOK" "$H_KERNEL_URL/v1/auth/me")
h_eq "ops-1 operator" "$(jq -r '.username + " " + .role' <<<"$me")" "restored token"
h_req GET "/v1/jobs/$j2/outputs"
h_eq 2 "$(h_jq '.items | length')" "outputs of job 2"
for k in $(h_jq '.items[] | "\(.key)=\(.sha256)"'); do
  h_eq "${k#*=}" "$(sha256sum "$STORAGE_FS_ROOT/${k%%=*}" | cut -d' ' -f1)" "stored file ${k%%=*}"
done
vod_worker w2
vod_wait "$j3" completed 120
h_eq 1 "$(h_psql -c "SELECT count(*) FROM job_outputs WHERE job_id = '$j3'")" "job 3 output"
h_eq 1 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$j3' AND type = 'stitch'")" "job 3 stitch"

# --- after a restore: the runbook's tuning SQL ---------------------------------------------
# The runbook's indexes came back with the restore (migrations 0002, 0003 create
# them); its CREATE INDEX lines, with IF NOT EXISTS, change nothing.
for ix in idx_jobs_user_created idx_tasks_job_status idx_streams_user_live; do
  h_eq 1 "$(h_psql -c "SELECT count(*) FROM pg_indexes WHERE indexname = '$ix'")" "index $ix after the restore"
done
h_psql -c "CREATE INDEX IF NOT EXISTS idx_jobs_user_created ON jobs(user_id, created_at DESC) WHERE status != 'completed'" \
  -c "CREATE INDEX IF NOT EXISTS idx_tasks_job_status ON tasks(job_id, status)" \
  -c "CREATE INDEX IF NOT EXISTS idx_streams_user_live ON streams(user_id) WHERE is_live = true" 2>/dev/null
h_psql -c 'VACUUM ANALYZE jobs' -c 'VACUUM ANALYZE tasks' -c 'VACUUM ANALYZE streams'
h_psql -c "ALTER SYSTEM SET work_mem = '256MB'" -c "ALTER SYSTEM SET shared_buffers = '1GB'" \
  -c "ALTER SYSTEM SET effective_cache_size = '4GB'" -c 'SELECT pg_reload_conf()' >/dev/null
h_wait_for 10 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c 'SHOW work_mem')\" = 256MB ]" || h_fail "work_mem not applied by pg_reload_conf"
h_eq 4GB "$(h_psql -c 'SHOW effective_cache_size')" "effective_cache_size"
h_eq t "$(h_psql -c "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'")" "shared_buffers needs a PostgreSQL restart"

# --- retention ---------------------------------------------------------------------------
mkdir -p "$H_DIR/retain"
touch -d '40 days ago' "$H_DIR/retain/webencode-20000101T000000Z.dump"
touch "$H_DIR/retain/notes.txt"
for i in 1 2 3; do backup --dir "$H_DIR/retain" --keep 2; h_eq 0 "$RC" "backup $i with --keep 2"; done
h_eq 2 "$(find "$H_DIR/retain" -name 'webencode-*.dump' | wc -l)" "dumps kept with --keep 2"
touch -d '40 days ago' "$H_DIR/retain/webencode-20000101T000000Z.dump"
backup --dir "$H_DIR/retain" --keep-days 30
h_contains "$OUT" "removed $H_DIR/retain/webencode-20000101T000000Z.dump (older than 30 days)" "--keep-days"
h_eq 3 "$(find "$H_DIR/retain" -name 'webencode-*.dump' | wc -l)" "recent dumps kept with --keep-days 30"
[ -e "$H_DIR/retain/notes.txt" ] || h_fail "retention removed a file that is not a dump"

# --- JetStream: the audit stream keeps 90 days ---------------------------------------------
jsz=$(curl -fsS "http://127.0.0.1:$H_NATS_MON/jsz?accounts=true&streams=true&config=true")
ev=$(jq -c '[.account_details[]?.stream_detail[]? | select(.name == "WEBENCODE_EVENTS")][0].config' <<<"$jsz")
h_eq 7776000000000000 "$(jq -r .max_age <<<"$ev")" "WEBENCODE_EVENTS max_age (90 days in ns)"
h_eq '["audit.>"]' "$(jq -c .subjects <<<"$ev")" "WEBENCODE_EVENTS subjects"
h_eq file "$(jq -r .storage <<<"$ev")" "WEBENCODE_EVENTS storage"
h_pass
