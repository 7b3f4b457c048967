#!/usr/bin/env bash
# VOD benchmark, side by side in one run (issue: "bench/vod"):
#  1. a 1080p -> 720p H.264 job through WebEncode with one worker vs the same
#     encode as one ffmpeg command alone (wall time ratio);
#  2. the same job split across two workers: CPU-seconds of all FFmpeg work
#     (probe, segments, audio, stitch) over the single pass's CPU-seconds;
#  3. dispatch latency from POST /v1/jobs to the first task running (p50, p99
#     over N submissions).
# Usage: bench/vod.sh [SOURCE_SECONDS=30] [LATENCY_SAMPLES=20]
set -euo pipefail
DUR=${1:-30}
N=${2:-20}
. "$(dirname "$0")/../tests/lib/harness.sh"
export LOG_LEVEL=info SEGMENT_TARGET_S=${SEGMENT_TARGET_S:-8} SEGMENT_MIN_S=2 SEGMENT_MAX_S=60
. "$WE_SRC/tests/lib/vod.sh"

vod_stack 1
h_log "generating a ${DUR}s 1080p source"
vod_media src.mp4 "$DUR" 1920x1080 60
SRC=$STORAGE_FS_ROOT/in/src.mp4
TICK=$(getconf CLK_TCK)

# CPU seconds used so far by the encoder plugin processes and the ffmpeg
# children they reaped (utime + stime + cutime + cstime of /proc/PID/stat).
enc_cpu() {
  local p sum=0 f
  for p in $(pgrep -x encoder-ffmpeg); do
    read -r -a f <"/proc/$p/stat"
    sum=$((sum + f[13] + f[14] + f[15] + f[16]))
  done
  echo "$sum"
}
now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

run_job() {   # run_job -> prints "wall_s cpu_s job_id"
  local c0 c1 t0 t1 id
  c0=$(enc_cpu); t0=$(now)
  id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["720p-h264"]}')
  vod_wait "$id" completed 1800
  t1=$(now); sleep 0.5; c1=$(enc_cpu)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $(awk -v a="$c0" -v b="$c1" -v t="$TICK" 'BEGIN { printf "%.3f", (b - a) / t }') $id"
}

# --- 1. one worker vs ffmpeg alone
read -r we_wall we_cpu id1 < <(run_job)
vargs=$(h_psql -c "SELECT params->'args' FROM tasks WHERE job_id = '$id1' AND type = 'video' LIMIT 1" \
  | jq -r '.[] ' | grep -v -x -E -- '-an|-sn|-dn')
aargs=$(h_psql -c "SELECT params->'args' FROM tasks WHERE job_id = '$id1' AND type = 'audio' LIMIT 1" \
  | jq -r '.[]' | grep -v -x -E -- '-vn|-sn|-dn')
mapfile -t VA <<<"$vargs"
mapfile -t AA <<<"$aargs"
TIMEFORMAT='%R %U %S'
{ time ffmpeg -hide_banner -loglevel error -y -i "$SRC" "${VA[@]}" "${AA[@]}" -movflags +faststart \
    "$H_DIR/alone.mp4" ; } 2>"$H_DIR/alone.time"
read -r ff_wall ff_u ff_s <"$H_DIR/alone.time"
ff_cpu=$(awk -v u="$ff_u" -v s="$ff_s" 'BEGIN { printf "%.3f", u + s }')

# --- 2. two workers
vod_worker w2
read -r two_wall two_cpu id2 < <(run_job)
nseg=$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id2' AND type = 'video'")
nw=$(h_psql -c "SELECT count(DISTINCT worker_id) FROM tasks WHERE job_id = '$id2' AND type = 'video'")

# --- 3. dispatch latency: POST -> probe task running (jobs cancelled once it ran)
vod_media tiny.mp4 2 320x180 30
for i in $(seq "$N"); do
  id=$(vod_submit '{"source_url":"fs://in/tiny.mp4","profiles":["480p-h264"]}')
  h_wait_for 30 bash -c "[ -n \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT started_at FROM tasks WHERE job_id = '$id' AND type = 'probe' AND started_at IS NOT NULL\")\" ]" \
    || h_fail "probe of job $i never started"
  h_req POST "/v1/jobs/$id/cancel"
done
read -r p50 p99 < <(h_psql -F ' ' -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM (SELECT
  extract(epoch FROM t.started_at - j.created_at) * 1000 AS ms FROM jobs j JOIN tasks t ON t.job_id = j.id
  AND t.type = 'probe' WHERE j.source_url = 'fs://in/tiny.mp4') x")

echo "== VOD benchmark: ${DUR}s 1920x1080 30 fps H.264+AAC -> 720p-h264, $(nproc) cores"
printf '%-44s %8s s wall  %8s s CPU\n' "ffmpeg alone (same options, one process)" "$ff_wall" "$ff_cpu"
printf '%-44s %8s s wall  %8s s CPU   wall ratio %s\n' "WebEncode, 1 worker (1 segment)" "$we_wall" "$we_cpu" "$(ratio "$we_wall" "$ff_wall")"
printf '%-44s %8s s wall  %8s s CPU   CPU ratio %s (%s segments on %s workers)\n' \
  "WebEncode, 2 workers (split + stitch)" "$two_wall" "$two_cpu" "$(ratio "$two_cpu" "$ff_cpu")" "$nseg" "$nw"
echo "dispatch latency POST -> first task running over $N jobs: p50 ${p50} ms, p99 ${p99} ms"
echo "(two workers share this machine's cores, so their wall time is not a speed-up measure here)"
h_pass
