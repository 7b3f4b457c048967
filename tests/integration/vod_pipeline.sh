#!/usr/bin/env bash
# The VOD pipeline end to end with the real binaries: one worker encodes a
# job as a single segment; two workers share a job (both encode segments);
# the stitched output has the same frame count, constant timestamp step and
# keyframe positions as a single-pass encode of the same profile, with
# continuous audio, and its size and sha256 are recorded; a multi-profile job
# makes one output per profile from one audio task.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

vod_stack 1
vod_media src.mp4 12 320x180 30      # keyframes every second: 12 possible cuts

# --- one worker: one segment, no split overhead
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
vod_wait "$id" completed 120
h_req GET "/v1/jobs/$id/tasks"
h_eq 1 "$(h_jq '[.items[] | select(.type == "video")] | length')" "segments with one worker"
h_eq 1 "$(h_jq '[.items[] | select(.type == "audio")] | length')" "audio tasks"
h_eq 1 "$(h_jq '[.items[] | select(.type == "stitch")] | length')" "stitch tasks"

# --- two workers: the job is split and both encode
vod_worker w2
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
vod_wait "$id" completed 180
h_req GET "/v1/jobs/$id"
h_eq 100 "$(h_jq '.progress | floor')" "progress at completion"
h_req GET "/v1/jobs/$id/tasks"
nseg=$(h_jq '[.items[] | select(.type == "video")] | length')
[ "$nseg" -ge 4 ] || h_fail "expected >= 4 segments, got $nseg"
h_eq 2 "$(h_jq '[.items[] | select(.type == "video") | .worker_id] | unique | length')" \
  "workers that encoded segments"
h_req GET "/v1/jobs/$id/outputs"
h_eq 1 "$(h_jq '.items | length')" "outputs"
key=$(h_jq '.items[0].key')
out=$STORAGE_FS_ROOT/$key
[ -s "$out" ] || h_fail "output $key missing"
h_eq "$(sha256sum "$out" | cut -d' ' -f1)" "$(h_jq '.items[0].sha256')" "recorded sha256"
h_eq "$(stat -c %s "$out")" "$(h_jq '.items[0].size_bytes')" "recorded size"

# single pass of the same profile, with the options the planner gave the segments
vargs=$(h_psql -c "SELECT params->'args' FROM tasks WHERE job_id = '$id' AND type = 'video' LIMIT 1" | jq -r '.[]')
aargs=$(h_psql -c "SELECT params->'args' FROM tasks WHERE job_id = '$id' AND type = 'audio' LIMIT 1" | jq -r '.[]')
mapfile -t VA <<<"$vargs"
mapfile -t AA <<<"$aargs"
ffmpeg -hide_banner -loglevel error -y -i "$STORAGE_FS_ROOT/in/src.mp4" "${VA[@]}" "$H_DIR/single_v.mp4"
ffmpeg -hide_banner -loglevel error -y -i "$STORAGE_FS_ROOT/in/src.mp4" "${AA[@]}" "$H_DIR/single_a.m4a"
ffmpeg -hide_banner -loglevel error -y -i "$H_DIR/single_v.mp4" -i "$H_DIR/single_a.m4a" -map 0:v -map 1:a \
  -c copy "$H_DIR/single.mp4"
h_eq "$(vod_frames "$H_DIR/single.mp4")" "$(vod_frames "$out")" "frame count vs single pass"
h_eq 360 "$(vod_frames "$out")" "frame count vs source (12 s x 30 fps)"
h_eq "$(vod_keyframes "$H_DIR/single.mp4" | tr '\n' ' ')" "$(vod_keyframes "$out" | tr '\n' ' ')" "keyframe positions"
h_eq 1 "$(vod_pts_steps "$out" | wc -l)" "one constant PTS step"
adur=$(ffprobe -v error -select_streams a:0 -show_entries stream=duration -of csv=p=0 "$out")
awk -v d="$adur" 'BEGIN { exit !(d > 11.9 && d < 12.1) }' || h_fail "audio duration $adur"
h_eq 1 "$(ffprobe -v error -select_streams a -show_entries stream=index -of csv=p=0 "$out" | wc -l)" "one audio stream"

# --- multi-profile: one output per profile, one audio task
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264","720p-h264"]}')
vod_wait "$id" completed 240
h_req GET "/v1/jobs/$id/outputs"
h_eq 2 "$(h_jq '.items | length')" "outputs of a two-profile job"
h_req GET "/v1/jobs/$id/tasks"
h_eq 1 "$(h_jq '[.items[] | select(.type == "audio")] | length')" "one audio task for the title"
h_eq 2 "$(h_jq '[.items[] | select(.type == "stitch")] | length')" "one stitch per profile"
h_eq 0 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND attempt > 1")" "no retries"
h_pass
