#!/usr/bin/env bash
# The VOD pipeline under failures: kill -9 a worker in the middle of a
# segment — its task's lease expires, the task is retried elsewhere, and the
# job completes exactly once; restart the kernel mid-job — the job completes.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

export TASK_LEASE_S=8
vod_stack 2
vod_media src.mp4 20 640x360 30

# --- kill -9 a worker mid-segment
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["1080p-hevc"]}')
h_wait_for 60 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = 'video' AND status = 'running'\") -ge 1 ]" \
  || h_fail "no segment running"
victim=$(h_psql -c "SELECT worker_id FROM tasks WHERE job_id = '$id' AND type = 'video' AND status = 'running' LIMIT 1")
kill -KILL "$(cat "$H_DIR/worker-$victim.pid")"
rm -f "$H_DIR/worker-$victim.pid"
h_log "killed worker $victim"
vod_wait "$id" completed 300
h_eq 1 "$(h_psql -c "SELECT count(*) FROM job_outputs WHERE job_id = '$id'")" "exactly one output"
h_eq 1 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = 'stitch'")" "exactly one stitch"
retried=$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND attempt > 1")
[ "$retried" -ge 1 ] || h_fail "the killed worker's task was not retried"
grep -q 'task lease expired' "$H_DIR/kernel.log" || h_fail "lease expiry not logged"
out=$STORAGE_FS_ROOT/$(h_psql -c "SELECT storage_key FROM job_outputs WHERE job_id = '$id'")
h_eq 600 "$(vod_frames "$out")" "frames after a worker loss"

# --- kernel restarted mid-job
vod_worker w3
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
h_wait_for 60 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = 'video'\") -ge 1 ]" \
  || h_fail "job not planned"
h_stop_kernel
sleep 2
PLUGIN_DIR=$H_DIR/kplugins h_start_kernel
vod_wait "$id" completed 300
h_eq 1 "$(h_psql -c "SELECT count(*) FROM job_outputs WHERE job_id = '$id'")" "one output after a kernel restart"
h_pass
