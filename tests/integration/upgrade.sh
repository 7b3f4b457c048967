#!/usr/bin/env bash
# scripts/upgrade, the runbook's upgrade procedure, against a running stack
# (PostgreSQL, NATS, kernel, two one-slot workers) with jobs in flight:
#  1. new binaries and plugins (the build under test, copied and marked so
#     they differ): the kernel is restarted (new pid, new binary), migrate up
#     is a no-op at head, the plugins are replaced, each worker is drained,
#     restarted once on the new binary and takes tasks again; every job
#     completes exactly once (one output per profile, one stitch, no task
#     completed twice, no task failed, every frame there).
#  2. a pending migration (the latest migration undone with `migrate down 1`)
#     behind a broken one in a private migrations directory: the script stops
#     the kernel, applies the pending one, refuses to go on at the broken one
#     and names the step; `migrate force <version>` (the runbook's fix for a
#     dirty schema) and the script again with the real directory: the kernel
#     comes back and the jobs submitted before complete.
#  3. the script refuses, changing nothing, when a check fails.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

export WORKER_SLOTS=1
UPGRADE=$WE_SRC/scripts/upgrade
REAL=$WE_SRC/pkg/db/migrations
LATEST=$(find "$REAL" -maxdepth 1 -name '*.up.sql' -printf '%f\n' | sed 's/_.*//' | sort -n | tail -1)
LATEST=$((10#$LATEST))

# The "installed" binaries run from bin-old; bin-new and plugins-new are the
# same build with a marker appended (ELF ignores trailing bytes), so the
# running processes show which one they were started from.
mkdir -p "$H_DIR/bin-old" "$H_DIR/bin-new" "$H_DIR/plugins-new"
for b in kernel worker migrate; do
  cp "$WE_BIN/$b" "$H_DIR/bin-old/"
  cp "$WE_BIN/$b" "$H_DIR/bin-new/"
  printf 'upgrade-test %s' "$$" >>"$H_DIR/bin-new/$b"
done
for p in storage-fs encoder-ffmpeg; do
  cp -r "$WE_PLUGINS/$p" "$H_DIR/plugins-new/"
  printf 'upgrade-test %s' "$$" >>"$H_DIR/plugins-new/$p/$p"
done
WE_BIN=$H_DIR/bin-old
sha() { sha256sum "$1" | cut -d' ' -f1; }
pidf() { cat "$H_DIR/$1.pid"; }
# plugin_exe PARENT_PID NAME: sha256 of the running plugin NAME under PARENT_PID
plugin_exe() {
  local c
  for c in $(pgrep -P "$1"); do
    [ "$(basename "$(readlink "/proc/$c/exe")")" = "$2" ] && { sha "/proc/$c/exe"; return; }
  done
  echo "none"
}
# upgrade ARGS...: scripts/upgrade against this stack; output in upgrade-N.log, RC.
UPN=0
upgrade() {
  UPN=$((UPN + 1))
  set +e
  WE_ROOT=$H_DIR RUN_DIR=$H_DIR LOG_DIR=$H_DIR BIN_DIR=$H_DIR/bin-old \
    PLUGIN_DIR=$H_DIR/kplugins WORKER_PLUGIN_DIR=$H_DIR/wplugins \
    KERNEL_URL=$H_KERNEL_URL WORKER_STOP_TIMEOUT_S=60 MIGRATIONS=${MIGRATIONS:-$REAL} \
    "$UPGRADE" "$@" >"$H_DIR/upgrade-$UPN.out" 2>&1
  RC=$?
  set -e
  OUT=$(cat "$H_DIR/upgrade-$UPN.out")
  h_log "scripts/upgrade $* -> exit $RC"
  sed 's/^/    /' "$H_DIR/upgrade-$UPN.out" >&2
}
# exactly_once JOB: one output per profile, one stitch, every frame.
exactly_once() {
  local id=$1
  h_eq "1|1" "$(h_psql -c "SELECT count(*), count(DISTINCT profile) FROM job_outputs WHERE job_id = '$id'")" "outputs of $id"
  h_eq 1 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = 'stitch'")" "stitch tasks of $id"
  h_eq 600 "$(vod_frames "$STORAGE_FS_ROOT/$(h_psql -c "SELECT storage_key FROM job_outputs WHERE job_id = '$id'")")" "frames of $id"
}
no_task_twice() {
  h_eq "" "$(h_psql -c "SELECT task_id FROM task_events_applied WHERE event = 'completed' GROUP BY task_id HAVING count(*) > 1")" "tasks completed twice"
  h_eq 0 "$(h_psql -c "SELECT count(*) FROM tasks WHERE status = 'failed'")" "failed tasks"
}

vod_stack 2
vod_media src.mp4 20 320x180 30
h_eq "$LATEST" "$("$WE_BIN/migrate" -database "$DATABASE_URL" version)" "schema at head"

# --- 1. the upgrade with jobs in flight -------------------------------------------
JOBS=()
for i in 1 2 3 4; do JOBS+=("$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')"); done
h_wait_for 60 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(DISTINCT worker_id) FROM tasks WHERE status = 'running' AND type = 'video'\") -ge 2 ]" \
  || h_fail "both workers never busy at once"
k0=$(pidf kernel) w10=$(pidf worker-w1) w20=$(pidf worker-w2)
inflight=$(h_psql -c "SELECT count(*) FROM jobs WHERE status <> 'completed'")
[ "$inflight" -ge 1 ] || h_fail "no job in flight before the upgrade"
h_log "before the upgrade: $inflight of 4 jobs in flight, $(h_psql -c "SELECT count(*) FROM tasks WHERE status = 'completed'") tasks completed"

upgrade --new-bin "$H_DIR/bin-new" --new-plugins "$H_DIR/plugins-new"
h_eq 0 "$RC" "upgrade: exit"
h_log "after the upgrade: $(h_psql -c "SELECT count(*) FROM jobs WHERE status <> 'completed'") of 4 jobs still in flight"
h_contains "$OUT" "no change" "migrate up at head"
h_contains "$OUT" "schema version $LATEST -> $LATEST" "schema version unchanged"
h_contains "$OUT" "2 worker(s) restarted" "summary"
h_eq "$LATEST" "$("$WE_BIN/migrate" -database "$DATABASE_URL" version)" "schema after the upgrade"

# the kernel: a new process, from the new binary, with the new storage plugin
k1=$(pidf kernel)
[ "$k1" != "$k0" ] || h_fail "kernel pid unchanged ($k0)"
kill -0 "$k0" 2>/dev/null && h_fail "old kernel $k0 still running"
h_eq "$(sha "$H_DIR/bin-new/kernel")" "$(sha "/proc/$k1/exe")" "kernel binary"
h_eq 2 "$(grep -c '"msg":"kernel started"' "$H_DIR/kernel.log")" "kernel starts"
h_eq "$(sha "$H_DIR/plugins-new/storage-fs/storage-fs")" "$(sha "$H_DIR/kplugins/storage-fs/storage-fs")" "kernel's storage-fs replaced"
h_eq "$(sha "$H_DIR/plugins-new/storage-fs/storage-fs")" "$(plugin_exe "$k1" storage-fs)" "kernel runs the new storage-fs"

# each worker: restarted once, new binary, new encoder plugin, healthy and undrained
for w in w1 w2; do
  old=$([ $w = w1 ] && echo "$w10" || echo "$w20")
  new=$(pidf "worker-$w")
  [ "$new" != "$old" ] || h_fail "worker $w pid unchanged"
  h_eq "$(sha "$H_DIR/bin-new/worker")" "$(sha "/proc/$new/exe")" "worker $w binary"
  h_eq 2 "$(grep -c '"msg":"worker starting"' "$H_DIR/worker-$w.log")" "starts of worker $w"
  h_eq "$(sha "$H_DIR/plugins-new/encoder-ffmpeg/encoder-ffmpeg")" "$(plugin_exe "$new" encoder-ffmpeg)" "worker $w runs the new encoder"
  h_req GET "/v1/workers/$w"
  h_eq "healthy|false" "$(h_jq '"\(.status)|\(.draining)"')" "worker $w after the upgrade"
  h_contains "$OUT" "worker $w draining" "drain of $w"
done

for id in "${JOBS[@]}"; do vod_wait "$id" completed 240; exactly_once "$id"; done
no_task_twice

# --- 2. a pending migration, behind a broken one -----------------------------------------
MIG2=$H_DIR/migrations
mkdir -p "$MIG2"
cp "$REAL"/*.sql "$MIG2/"
printf 'SELECT no_such_function();\n' >"$MIG2/9999_broken.up.sql"
printf 'SELECT 1;\n' >"$MIG2/9999_broken.down.sql"
J2=()
for i in 1 2; do J2+=("$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')"); done
h_wait_for 60 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM tasks WHERE status = 'running' AND type = 'video'\") -ge 1 ]" \
  || h_fail "phase 2: no segment running"
k1=$(pidf kernel)
# The latest migration undone with data in place, while the kernel is stopped
# (KERNEL_STOP_CMD: stop it, then migrate down 1, so the upgrade finds the
# schema one behind, as after deploying a release with a new migration).
KERNEL_STOP_CMD="kill -TERM $k1; while kill -0 $k1 2>/dev/null; do sleep 0.1; done; rm -f $H_DIR/kernel.pid;
  '$WE_BIN/migrate' -path '$REAL' -database '$DATABASE_URL' down 1" \
KERNEL_START_CMD="true" MIGRATIONS=$MIG2 upgrade --skip-workers
h_eq 1 "$RC" "upgrade over a broken migration: exit"
h_contains "$OUT" "step 2 (migrate) failed" "the failing step is named"
h_contains "$OUT" "migrate -path $MIG2 -database \$DATABASE_URL force <last good version>" "the way out"
h_contains "$OUT" "$LATEST/u " "the pending migration applied before the broken one"
kill -0 "$k1" 2>/dev/null && h_fail "kernel still running after step 1"
[ -e "$H_DIR/kernel.pid" ] && h_fail "a kernel was started after a failed migration"
h_eq "9999 (dirty)" "$("$WE_BIN/migrate" -database "$DATABASE_URL" version 2>&1)" "schema dirty at the broken migration"
"$WE_BIN/migrate" -path "$MIG2" -database "$DATABASE_URL" force "$LATEST" >>"$H_DIR/migrate.log" 2>&1
h_eq "$LATEST" "$("$WE_BIN/migrate" -database "$DATABASE_URL" version)" "after migrate force $LATEST"
# and the latest undone again, so the real run below has one to apply
"$WE_BIN/migrate" -path "$REAL" -database "$DATABASE_URL" down 1 >>"$H_DIR/migrate.log" 2>&1
h_eq "$((LATEST - 1))" "$("$WE_BIN/migrate" -database "$DATABASE_URL" version)" "after down 1"

upgrade --skip-workers
h_eq 0 "$RC" "upgrade after the repair: exit"
h_contains "$OUT" "kernel is not running" "kernel found stopped"
h_contains "$OUT" "schema version $((LATEST - 1)) -> $LATEST" "pending migration applied"
h_eq "$LATEST" "$("$WE_BIN/migrate" -database "$DATABASE_URL" version)" "schema at head again"
k2=$(pidf kernel)
[ "$k2" != "$k1" ] || h_fail "no new kernel"
for id in "${J2[@]}"; do vod_wait "$id" completed 240; exactly_once "$id"; done
no_task_twice

# --- 3. refusals change nothing ------------------------------------------------------
w1=$(pidf worker-w1)
upgrade --new-plugins "$H_DIR/nowhere"
h_eq 1 "$RC" "bad --new-plugins: exit"
h_contains "$OUT" "step 0 (checks) failed: --new-plugins $H_DIR/nowhere holds no <id>/plugin.toml" "bad --new-plugins: message"
upgrade --workers "w1 ghost" --skip-kernel
h_eq 1 "$RC" "unknown worker: exit"
h_contains "$OUT" "worker ghost has no local pid file" "unknown worker: message"
h_eq "$k2|$w1" "$(pidf kernel)|$(pidf worker-w1)" "nothing restarted by a refused upgrade"
h_req GET /v1/workers/w1
h_eq healthy "$(h_jq .status)" "w1 not drained by a refused upgrade"
h_pass
