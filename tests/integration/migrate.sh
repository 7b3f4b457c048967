#!/usr/bin/env bash
# bin/migrate against a private PostgreSQL, with the real pkg/db/migrations:
# up / version / no change; the schema (tables, the runbook's indexes, the
# workers columns the kernel writes, a few constraints); every migration's
# down undoes exactly its up; down -all, the down confirmation, up N / down N,
# goto; a broken migration (rolled back, dirty, refused, force, fixed);
# concurrent runs serialised by the advisory lock; error exits; the database
# password never printed; drop.
. "$(dirname "$0")/../lib/harness.sh"
h_start_pg

MIG=$WE_BIN/migrate
REAL=$WE_SRC/pkg/db/migrations
NMIG=$(find "$REAL" -maxdepth 1 -name '*.up.sql' | wc -l)
LATEST=$(find "$REAL" -maxdepth 1 -name '*.up.sql' -printf '%f\n' | sed 's/_.*//' | sort -n | tail -1)
LATEST=$((10#$LATEST))

# m NAME ARGS...: runs migrate with stdout+stderr to NAME.log; sets RC and OUT.
m() {
  local name=$1; shift
  set +e
  "$MIG" "$@" <"${M_STDIN:-/dev/null}" >"$H_DIR/$name.log" 2>&1
  RC=$?
  set -e
  OUT=$(cat "$H_DIR/$name.log")
}
# mr NAME ARGS...: m against the real directory and $DATABASE_URL.
mr() { local name=$1; shift; m "$name" -path "$REAL" -database "$DATABASE_URL" "$@"; }
# version_of URL: what `migrate version` prints on stdout ("" when none).
version_of() { "$MIG" -database "$1" version 2>>"$H_DIR/version.log" || true; }
steps() { grep -c "$1" <<<"$OUT" || true; }
sql_fails() { if h_psql -c "$1" >/dev/null 2>&1; then h_fail "accepted: $2"; fi; }

# One line per object of the public schema, to compare schemas.
catalog() {
  h_psql -c "SELECT coalesce(string_agg(x, E'\n' ORDER BY x), '') FROM (
    SELECT 'rel ' || relname || ' ' || relkind::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL SELECT 'proc ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'con ' || conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'trg ' || tgname FROM pg_trigger WHERE NOT tgisinternal) s(x)"
}

# --- fresh database: no version; up applies everything, once --------------------
m v0 -database "$DATABASE_URL" version
h_eq 1 "$RC" "version on an empty database: exit"
h_contains "$OUT" "error: no migration" "version on an empty database"
mr up1 up
h_eq 0 "$RC" "up: exit"
h_eq "$NMIG" "$(steps '/u ')" "up: steps printed"
h_contains "$OUT" "1/u init (" "up: golang-migrate step line"
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "version after up"
h_eq "$LATEST|f" "$(h_psql -c 'SELECT version, dirty FROM schema_migrations')" "schema_migrations row"
mr up2 up
h_eq 0 "$RC" "second up: exit"
h_eq "no change" "$OUT" "second up"

# --- the schema --------------------------------------------------------------------
for t in users api_tokens profiles jobs tasks task_outbox task_events_applied job_outputs \
         job_logs workers streams restream_jobs restream_destinations plugin_configs webhooks \
         webhook_deliveries audit_log error_events notifications; do
  h_eq t "$(h_psql -c "SELECT to_regclass('public.$t') IS NOT NULL")" "table $t exists"
done
idx() { h_psql -c "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = '$1'"; }
h_contains "$(idx idx_jobs_user_created)" \
  "ON public.jobs USING btree (user_id, created_at DESC) WHERE (status <> 'completed'::job_status)" \
  "runbook index idx_jobs_user_created"
h_contains "$(idx idx_tasks_job_status)" "ON public.tasks USING btree (job_id, status)" \
  "runbook index idx_tasks_job_status"
h_contains "$(idx idx_streams_user_live)" "ON public.streams USING btree (user_id) WHERE (is_live = true)" \
  "runbook index idx_streams_user_live"
h_eq "{queued,processing,stitching,uploading,completed,failed,cancelled}" \
  "$(h_psql -c 'SELECT enum_range(NULL::job_status)')" "job_status order (metrics rely on it)"
workers_cols=$(h_psql -c "SELECT string_agg(column_name || ':' || udt_name || ':' || is_nullable || ':'
    || coalesce(column_default, ''), ' ' ORDER BY ordinal_position)
  FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'workers'")
h_eq "id:text:NO: hostname:text:NO: version:text:NO: slots:int4:NO:1 running:int4:NO:0 \
capabilities:_text:NO:'{}'::text[] encoders:_text:NO:'{}'::text[] \
status:worker_status:NO:'online'::worker_status heartbeat_interval_ms:int4:NO:5000 \
first_seen:timestamptz:NO:now() last_seen:timestamptz:NO:now() metadata:jsonb:NO:'{}'::jsonb" \
  "$workers_cols" "workers columns"

# constraints that catch bugs, and the idempotency-key rules
sql_fails "INSERT INTO jobs (source_url, profiles, progress) VALUES ('fs://a', '{p}', 101)" "progress 101"
sql_fails "INSERT INTO jobs (source_url, profiles) VALUES ('fs://a', '{}')" "job without profiles"
job=$(h_psql -c "INSERT INTO jobs (source_url, profiles, idempotency_key) VALUES ('fs://a', '{p}', 'k1') RETURNING id")
sql_fails "INSERT INTO jobs (source_url, profiles, idempotency_key) VALUES ('fs://b', '{p}', 'k1')" \
  "same idempotency key twice without a user"
sql_fails "UPDATE jobs SET status = 'completed' WHERE id = '$job'" "completed job without finished_at"
sql_fails "INSERT INTO tasks (job_id, type, attempt, max_attempts) VALUES ('$job', 'probe', 4, 3)" \
  "attempt > max_attempts"
h_psql -c "INSERT INTO tasks (job_id, type, profile) VALUES ('$job', 'stitch', 'p')"
sql_fails "INSERT INTO tasks (job_id, type, profile) VALUES ('$job', 'stitch', 'p')" "second stitch task"
sql_fails "INSERT INTO profiles (id, name, config) VALUES ('../x', 'x', '{}')" "profile id with .."
h_psql -c "WITH u AS (INSERT INTO users (username) VALUES ('alice'), ('bob') RETURNING id)
  INSERT INTO jobs (user_id, source_url, profiles, idempotency_key) SELECT id, 'fs://a', '{p}', 'k1' FROM u"
h_psql -c "DELETE FROM users"   # jobs keep their history; the owners' keys are forgotten
h_eq 2 "$(h_psql -c "SELECT count(*) FROM jobs WHERE user_id IS NULL AND idempotency_key IS NULL")" \
  "deleted users' jobs"
h_psql -c "DELETE FROM jobs"
h_eq 0 "$(h_psql -c 'SELECT count(*) FROM tasks')" "tasks cascade with their job"

# --- every down undoes exactly its up --------------------------------------------------
mr downall down -all
h_eq 0 "$RC" "down -all: exit"
h_eq "$NMIG" "$(steps '/d ')" "down -all: steps"
h_eq "schema_migrations" "$(h_psql -c "SELECT string_agg(relname, ',') FROM pg_class
  WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f')")" \
  "tables left after down -all"
h_eq 0 "$(h_psql -c "SELECT count(*) FROM pg_type WHERE typnamespace = 'public'::regnamespace
  AND typname NOT IN ('schema_migrations', '_schema_migrations')")" "types left after down -all"
h_eq 0 "$(h_psql -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace")" \
  "functions left after down -all"
h_eq "" "$(version_of "$DATABASE_URL")" "no version after down -all"
for i in $(seq "$NMIG"); do
  before=$(catalog)
  mr "step-up-$i" up 1
  h_eq "0 1" "$RC $(steps '/u ')" "up 1 (step $i)"
  mr "step-down-$i" down 1
  h_eq "0 1" "$RC $(steps '/d ')" "down 1 (step $i)"
  h_eq "$before" "$(catalog)" "schema after up+down of step $i"
  mr "step-redo-$i" up 1
done
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "version after stepping up"
mr short up 3
h_eq 1 "$RC" "up 3 at the last version: exit"
h_contains "$OUT" "limit 3 short" "up 3 at the last version"

# --- down without N asks first -----------------------------------------------------------
echo n >"$H_DIR/no.txt"
M_STDIN=$H_DIR/no.txt mr ask-no down
h_eq 1 "$RC" "down answered n: exit"
h_contains "$OUT" "Are you sure you want to apply all down migrations? [y/N]" "down asks"
h_contains "$OUT" "Not applying all down migrations" "down answered n"
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "version after refusing down"
echo y >"$H_DIR/yes.txt"
M_STDIN=$H_DIR/yes.txt mr ask-yes down
h_eq "0 $NMIG" "$RC $(steps '/d ')" "down answered y"

# --- goto both ways ----------------------------------------------------------------------
mr goto2 goto 2
h_eq "0 2" "$RC $(steps '/u ')" "goto 2 from nothing"
mr gotolast goto "$LATEST"
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "goto last"
mr goto1 goto 1
h_eq "0 $((NMIG - 1))" "$RC $(steps '/d ')" "goto 1 from the last"
h_eq 1 "$(version_of "$DATABASE_URL")" "version after goto 1"
mr goto99 goto 9999
h_eq 1 "$RC" "goto a missing version: exit"
h_contains "$OUT" "no migration found for version 9999" "goto a missing version"
m source -source "file://$REAL" -database "$DATABASE_URL" up
h_eq "0 $((NMIG - 1))" "$RC $(steps '/u ')" "-source file:// alias"

# --- a broken migration: rolled back, dirty, refused, forced, fixed ------------------------
BROKEN=$H_DIR/broken
cp -r "$REAL" "$BROKEN"
printf 'CREATE TABLE broken_partial (x int);\nINSERT INTO broken_partial VALUES (1);\nSELECT *\n  FROM no_such_table;\n' \
  >"$BROKEN/9000_broken.up.sql"
echo 'DROP TABLE broken_partial;' >"$BROKEN/9000_broken.down.sql"
mb() { local name=$1; shift; m "$name" -path "$BROKEN" -database "$DATABASE_URL" "$@"; }
mb broken-up up
h_eq 1 "$RC" "broken up: exit"
h_contains "$OUT" "error: migration failed" "broken up: golang-migrate error"
h_contains "$OUT" "9000_broken.up.sql" "broken up: file named"
h_contains "$OUT" 'relation "no_such_table" does not exist' "broken up: PostgreSQL's message"
h_contains "$OUT" "in line 4" "broken up: line"
h_eq "9000 (dirty)" "$(version_of "$DATABASE_URL")" "version after the failure"
h_eq f "$(h_psql -c "SELECT to_regclass('broken_partial') IS NOT NULL")" "broken migration rolled back"
for cmd in "up" "down 1" "goto 1"; do
  # shellcheck disable=SC2086
  mb "dirty-$cmd" $cmd
  h_eq 1 "$RC" "$cmd while dirty: exit"
  h_contains "$OUT" "error: Dirty database version 9000. Fix and force version." "$cmd while dirty"
  h_contains "$OUT" "migrate force <version>" "$cmd while dirty: runbook advice"
  h_contains "$OUT" "force $LATEST" "$cmd while dirty: the version to force"
done
mb force force "$LATEST"
h_eq 0 "$RC" "force: exit"
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "version after force"
sed -i 's/no_such_table/broken_partial/' "$BROKEN/9000_broken.up.sql"
mb fixed up
h_eq "0 1" "$RC $(steps '9000/u broken')" "fixed migration applies"
h_eq 9000 "$(version_of "$DATABASE_URL")" "version after the fix"
mb undo-fixed down 1
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "down 1 undoes the fixed migration"
mb force-nil force -1
h_eq "" "$(version_of "$DATABASE_URL")" "force -1 clears the version"
mb force-back force "$LATEST"

# --- concurrent runs: the advisory lock serialises them --------------------------------------
for db in race serial; do h_psql -c "CREATE DATABASE $db"; done
url_of() { echo "postgres://postgres@127.0.0.1:$H_PG_PORT/$1?sslmode=disable"; }
RACE=$(url_of race)
pids=()
for i in 1 2 3; do
  "$MIG" -path "$REAL" -database "$RACE" up >"$H_DIR/race-$i.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || h_fail "a concurrent up failed: $(cat "$H_DIR"/race-*.log)"; done
h_eq "$NMIG" "$(cat "$H_DIR"/race-*.log | grep -c '/u ')" "concurrent ups: each migration applied once"
h_eq "$LATEST" "$(version_of "$RACE")" "concurrent ups: version"

SLOW=$H_DIR/slow
cp -r "$REAL" "$SLOW"
echo 'SELECT pg_sleep(2);' >"$SLOW/9001_slow.up.sql"
echo 'SELECT 1;' >"$SLOW/9001_slow.down.sql"
SERIAL=$(url_of serial)
"$MIG" -path "$SLOW" -database "$SERIAL" up >"$H_DIR/holder.log" 2>&1 &
holder=$!
lock_held() {
  [ "$(psql "$SERIAL" -qAtX -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" = 1 ]
}
h_wait_for 10 lock_held || h_fail "first migrate never took the lock"
"$MIG" -path "$SLOW" -database "$SERIAL" up >"$H_DIR/waiter.log" 2>&1 &
waiter=$!
m impatient -lock-timeout 1 -path "$SLOW" -database "$SERIAL" up
h_eq 1 "$RC" "lock timeout: exit"
h_contains "$OUT" "can't acquire database lock" "lock timeout"
wait "$holder" || h_fail "lock holder failed: $(cat "$H_DIR/holder.log")"
wait "$waiter" || h_fail "lock waiter failed: $(cat "$H_DIR/waiter.log")"
h_eq "$((NMIG + 1))" "$(grep -c '/u ' "$H_DIR/holder.log")" "lock holder applied everything"
h_eq "no change" "$(cat "$H_DIR/waiter.log")" "lock waiter found nothing to do"
h_eq "9001|f" "$(psql "$SERIAL" -qAtX -c 'SELECT version, dirty FROM schema_migrations')" "serialised version"

# --- errors: exit 1 with a message naming the problem; never the password ----------------------
CLOSED=$(svc_free_port)
SECRET=Sup3rS3cretPw
for url in "postgres://bob:$SECRET@127.0.0.1:$CLOSED/webencode?sslmode=disable" \
           "postgresql://bob@127.0.0.1:$CLOSED/webencode?password=$SECRET&sslmode=disable"; do
  for cmd in up version "force 1"; do
    # shellcheck disable=SC2086
    m badurl -verbose -path "$REAL" -database "$url" $cmd
    h_eq 1 "$RC" "$cmd with PostgreSQL down: exit"
    h_contains "$OUT" "cannot connect to the database" "$cmd with PostgreSQL down"
    case "$OUT" in *"$SECRET"*) h_fail "password printed: $OUT";; esac
  done
done
m scheme -path "$REAL" -database "mysql://u:$SECRET@h/db" up
h_eq 1 "$RC" "mysql URL: exit"
h_contains "$OUT" "unsupported URL scheme" "mysql URL"
case "$OUT" in *"$SECRET"*) h_fail "password printed: $OUT";; esac
m badpath -path "$H_DIR/nope" -database "$DATABASE_URL" up
h_eq 1 "$RC" "missing directory: exit"
h_contains "$OUT" "cannot read migrations directory $H_DIR/nope" "missing directory"
m unknown -path "$REAL" -database "$DATABASE_URL" frobnicate
h_eq 1 "$RC" "unknown command: exit"
h_contains "$OUT" 'unknown command "frobnicate"' "unknown command"
m nopath -database "$DATABASE_URL" up
h_eq 1 "$RC" "no -path: exit"
h_contains "$OUT" "-path" "no -path"
m nodb -path "$REAL" up
h_eq 1 "$RC" "no -database: exit"
h_contains "$OUT" "-database" "no -database"
mr badn up many
h_eq 1 "$RC" "bad N: exit"
h_contains "$OUT" "can't read limit argument N" "bad N"
m help -help
h_eq 0 "$RC" "-help: exit"
h_contains "$OUT" "Usage: migrate OPTIONS COMMAND" "-help"

# --- drop removes everything; up rebuilds ------------------------------------------------------
M_STDIN=$H_DIR/no.txt m drop-no -database "$DATABASE_URL" drop
h_eq 1 "$RC" "drop answered n: exit"
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "drop answered n changes nothing"
m drop -database "$DATABASE_URL" drop -f
h_eq 0 "$RC" "drop -f: exit"
h_eq 0 "$(h_psql -c "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)
  + (SELECT count(*) FROM pg_type WHERE typnamespace = 'public'::regnamespace)
  + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)")" "objects after drop"
h_migrate_up || h_fail "up after drop"
h_eq "$LATEST" "$(version_of "$DATABASE_URL")" "version after drop and up"
h_pass
