#!/usr/bin/env bash
# SIGTERM on a worker drains it, like POST /v1/workers/{id}/drain, then it
# exits: it takes no new task, its heartbeats say "draining", the running
# task finishes and is reported, and the worker leaves (status offline).
# When the task does not finish within WORKER_STOP_GRACE_S, its FFmpeg is
# killed and the task handed back (the dispatch message is nak'ed), so the
# next worker runs the same attempt at once — no lease expiry, no retry.
# Each FFmpeg is paused with SIGSTOP while the test looks, so nothing
# depends on how fast this machine encodes.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

# Leases and redelivery far beyond this test's length: only a nak can hand a
# task on before the test ends.
export TASK_LEASE_S=900 DISPATCH_ACK_WAIT_S=900 WORKER_SLOTS=1
vod_stack 0
vod_media src.mp4 30 640x360 30

export -f vod_ffmpeg_pids
# ffmpeg_of JOB: waits for an FFmpeg of the job to run, pauses it, prints its pid.
ffmpeg_of() {
  local p
  h_wait_for 60 bash -c "[ -n \"\$(vod_ffmpeg_pids '$1')\" ]" ||
    h_fail "no FFmpeg ran for job $1"
  p=$(vod_ffmpeg_pids "$1" | head -1)
  kill -STOP "$p"
  echo "$p"
}
running_task() { h_psql -c "SELECT id FROM tasks WHERE job_id = '$1' AND status = 'running' AND worker_id = '$2'"; }
wait_exit() { h_wait_for "$2" bash -c "! kill -0 $1 2>/dev/null" || h_fail "$3 still running"; }
# lines of LOG after the first line matching PATTERN
after() { sed -n "/$2/,\$p" "$1"; }

# --- 1. SIGTERM with a long grace: the running task finishes, nothing new starts
WORKER_STOP_GRACE_S=300 vod_worker w1
w1=$(cat "$H_DIR/worker-w1.pid")
a=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
ff=$(ffmpeg_of "$a")
h_wait_for 20 bash -c "[ -n \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT id FROM tasks WHERE job_id = '$a' AND status = 'running' AND worker_id = 'w1'\")\" ]" \
  || h_fail "no task of job A running on w1"
task=$(running_task "$a" w1)
kill -TERM "$w1"
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/workers/w1 | jq -e '.status == \"draining\" and .running == 1'" \
  || h_fail "w1 not shown draining after SIGTERM: $(curl -fsS "$H_KERNEL_URL/v1/workers/w1")"
h_wait_for 10 grep -q '"msg":"stopping: no new tasks; waiting for running ones"' "$H_DIR/worker-w1.log" \
  || h_fail "w1 did not log the stop"
kill -0 "$w1" 2>/dev/null || h_fail "w1 exited with a task running"
kill -0 "$ff" 2>/dev/null || h_fail "w1's FFmpeg was killed within the grace"
kill -CONT "$ff"
wait_exit "$w1" 120 "w1"
rm -f "$H_DIR/worker-w1.pid"
h_eq "completed|w1|1" "$(h_psql -c "SELECT status, worker_id, attempt FROM tasks WHERE id = '$task'")" "the task w1 ran"
h_eq 0 "$(after "$H_DIR/worker-w1.log" 'stopping: no new tasks' | grep -c '"msg":"task started"' || true)" "tasks started after SIGTERM"
after "$H_DIR/worker-w1.log" 'stopping: no new tasks' | grep -q "\"msg\":\"task completed\",\"task_id\":\"$task\"" \
  || h_fail "w1 did not report its task after SIGTERM"
grep -q '"msg":"worker stopped","worker_id":"w1","exit_code":0' "$H_DIR/worker-w1.log" || h_fail "w1 did not stop cleanly"
h_eq offline "$(curl -fsS "$H_KERNEL_URL/v1/workers/w1" | jq -r .status)" "w1 after exit"
left=$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$a' AND status <> 'completed'")
[ "$left" -ge 1 ] || h_fail "job A has nothing left for the next worker"
h_log "job A: $left tasks left for the next worker"

# --- 2. SIGTERM with a short grace: FFmpeg killed, the task handed back
WORKER_STOP_GRACE_S=2 vod_worker w2
w2=$(cat "$H_DIR/worker-w2.pid")
vod_wait "$a" completed 180
b=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
ff=$(ffmpeg_of "$b")   # paused: it cannot finish within the grace
h_wait_for 20 bash -c "[ -n \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT id FROM tasks WHERE job_id = '$b' AND status = 'running' AND worker_id = 'w2'\")\" ]" \
  || h_fail "no task of job B running on w2"
task=$(running_task "$b" w2)
attempt=$(h_psql -c "SELECT attempt FROM tasks WHERE id = '$task'")
kill -TERM "$w2"
wait_exit "$w2" 60 "w2"
rm -f "$H_DIR/worker-w2.pid"
kill -0 "$ff" 2>/dev/null && h_fail "w2's FFmpeg $ff survived the worker"
grep -q '"msg":"stop grace over: cancelling running tasks"' "$H_DIR/worker-w2.log" || h_fail "w2 did not cancel at the end of the grace"
grep -q "\"msg\":\"task cancelled\",\"task_id\":\"$task\".*\"reason\":\"worker stopping\"" "$H_DIR/worker-w2.log" \
  || h_fail "w2 did not hand back task $task"
vod_worker w3
vod_wait "$b" completed 180
h_eq "completed|$attempt|w3" "$(h_psql -c "SELECT status, attempt, worker_id FROM tasks WHERE id = '$task'")" \
  "the handed-back task: same attempt, run by w3"
grep -q "\"msg\":\"task started\",\"task_id\":\"$task\"" "$H_DIR/worker-w3.log" || h_fail "w3 did not run the handed-back task"
grep -q 'task lease expired' "$H_DIR/kernel.log" && h_fail "a lease expired: the task was not handed back"
h_eq 0 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id IN ('$a', '$b') AND (attempt > 1 OR status = 'failed')")" "retried or failed tasks"
for j in "$a" "$b"; do
  h_eq 1 "$(h_psql -c "SELECT count(*) FROM job_outputs WHERE job_id = '$j'")" "outputs of $j"
  h_eq 900 "$(vod_frames "$STORAGE_FS_ROOT/$(h_psql -c "SELECT storage_key FROM job_outputs WHERE job_id = '$j'")")" "frames of $j"
done
h_pass
