#!/usr/bin/env bash
# The runbook's "NATS Cluster Failure": nats-server restarted with a clean
# data directory in the middle of a job. The kernel re-creates the streams,
# finds tasks whose dispatch messages went with the old store and sends them
# again (same attempt); workers reconnect; the job completes exactly once.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

export WORKER_SLOTS=1 SEGMENT_TARGET_S=2 SEGMENT_MIN_S=1 TASK_LEASE_S=30 DISPATCH_ACK_WAIT_S=600
vod_stack 2
vod_media src.mp4 12 320x180 30

id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
waiting() {
  [ "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = 'video' AND status = 'dispatched'")" -ge 2 ]
}
h_wait_for 60 waiting || h_fail "no dispatched tasks waiting: $(h_psql -c "SELECT type, status FROM tasks WHERE job_id = '$id'")"
before=$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND status = 'dispatched'")
h_log "$before tasks waiting in the queue; restarting NATS with a clean data directory"

h_stop_nats
rm -rf "$H_DIR/nats/js"
h_start_nats
h_wait_for 30 grep -q 'dispatching waiting tasks again' "$H_DIR/kernel.log" ||
  h_fail "the kernel did not re-dispatch the waiting tasks"

vod_wait "$id" completed 240
h_eq 1 "$(h_psql -c "SELECT count(*) FROM job_outputs WHERE job_id = '$id'")" "exactly one output"
h_eq 1 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = 'stitch'")" "exactly one stitch"
out=$STORAGE_FS_ROOT/$(h_psql -c "SELECT storage_key FROM job_outputs WHERE job_id = '$id'")
h_eq 360 "$(vod_frames "$out")" "frames after the NATS reset"
h_pass
