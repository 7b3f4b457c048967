#!/usr/bin/env bash
# An HLS ladder end to end with the real binaries: a job with the system
# `hls-ladder` profile encodes each rendition on one segment plan (two
# workers), stitches each, and one package task writes the master playlist,
# a VOD variant playlist per rendition (full duration and frame count,
# segments present, #EXTINF sequences identical across variants: keyframes
# aligned) and one audio group every variant references. job_outputs and
# GET /v1/jobs/{id}/outputs hold the three rendition files and the
# playlist.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

# hls_frames PLAYLIST: video frames of an HLS playlist (ffprobe lists the
# stream under its program too, so vod_frames' csv would print it twice).
hls_frames() {
  ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of json "$1" \
    | jq -r '.streams[0].nb_read_frames'
}

vod_stack 2
vod_media src.mp4 12 640x360 60      # keyframes every 2 s, as the presets' gop_s

id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["hls-ladder"]}')
vod_wait "$id" completed 240

# --- tasks: renditions on one segment plan, one stitch each, one package
h_req GET "/v1/jobs/$id/tasks"
h_eq 3 "$(h_jq '[.items[] | select(.type == "stitch")] | length')" "one stitch per rendition"
h_eq 1 "$(h_jq '[.items[] | select(.type == "package")] | length')" "exactly one package task"
h_eq 1 "$(h_jq '[.items[] | select(.type == "audio")] | length')" "one audio task for the title"
h_eq "hls-ladder.1080p-h264 hls-ladder.480p-h264 hls-ladder.720p-h264" \
  "$(h_jq '[.items[] | select(.type == "video") | .profile] | unique | join(" ")')" "rendition task profiles"
h_eq 1 "$(h_psql -c "SELECT count(DISTINCT s) FROM (SELECT string_agg(start_sec::text || '+' ||
  duration_sec::text, ',' ORDER BY seq) AS s FROM tasks WHERE job_id = '$id' AND type = 'video'
  GROUP BY profile) x")" "the same segment boundaries for every rendition"
h_eq "hls-ladder" "$(h_psql -c "SELECT profile FROM tasks WHERE job_id = '$id' AND type = 'package'")" \
  "package task profile"

# --- outputs
h_eq "3 1" "$(h_psql -c "SELECT count(*) FILTER (WHERE kind = 'video' AND profile LIKE 'hls-ladder.%')
  || ' ' || count(*) FILTER (WHERE kind = 'playlist' AND profile = 'hls-ladder') FROM job_outputs
  WHERE job_id = '$id'")" "job_outputs: 3 video rows + 1 playlist row"
h_req GET "/v1/jobs/$id/outputs"
h_eq 4 "$(h_jq '.items | length')" "outputs listed"
mkey=$(h_jq '.items[] | select(.kind == "playlist") | .key')
h_eq "jobs/$id/hls-ladder/master.m3u8" "$mkey" "playlist key"
h_eq "application/vnd.apple.mpegurl" "$(h_jq '.items[] | select(.kind == "playlist") | .content_type')" \
  "playlist content type"
master=$STORAGE_FS_ROOT/$mkey
[ -s "$master" ] || h_fail "master playlist $mkey missing"
h_eq "$(sha256sum "$master" | cut -d' ' -f1)" "$(h_jq '.items[] | select(.kind == "playlist") | .sha256')" \
  "recorded sha256 of the master"
h_eq "$(stat -c %s "$master")" "$(h_jq '.items[] | select(.kind == "playlist") | .size_bytes')" \
  "recorded size of the master"
for k in $(h_jq '.items[] | select(.kind == "video") | .key'); do
  [ -s "$STORAGE_FS_ROOT/$k" ] || h_fail "rendition output $k missing"
done

# --- the master: 3 video variants, one audio group they all reference
h_eq 3 "$(grep -c '^#EXT-X-STREAM-INF:.*BANDWIDTH=.*RESOLUTION=' "$master")" \
  "video variants with BANDWIDTH and RESOLUTION"
h_eq 1 "$(grep -c '^#EXT-X-MEDIA:TYPE=AUDIO' "$master")" "one audio rendition"
group=$(sed -n 's/^#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="\([^"]*\)".*/\1/p' "$master")
[ -n "$group" ] || h_fail "audio rendition without a group: $(cat "$master")"
h_eq 3 "$(grep '^#EXT-X-STREAM-INF:.*RESOLUTION=' "$master" | grep -c "AUDIO=\"$group\"")" \
  "every video variant references the audio group"
# no upscaling: every rendition of a 640x360 source is at most 640x360
for res in $(grep -o 'RESOLUTION=[0-9]*x[0-9]*' "$master" | cut -d= -f2); do
  w=${res%x*} h=${res#*x}
  [ "$w" -le 640 ] && [ "$h" -le 360 ] || h_fail "variant resolution $res above the source's"
done

# --- every variant playlist (and the audio one): VOD, segments present
dir=$(dirname "$master")
variants=$(grep -A1 '^#EXT-X-STREAM-INF:.*RESOLUTION=' "$master" | grep -v '^#' | grep -v '^--')
audio_uri=$(sed -n 's/^#EXT-X-MEDIA:TYPE=AUDIO.*URI="\([^"]*\)".*/\1/p' "$master")
h_eq 3 "$(echo "$variants" | wc -l)" "variant URIs"
first_extinf=
for v in $variants $audio_uri; do
  pl=$dir/$v
  [ -s "$pl" ] || h_fail "variant playlist $v missing"
  grep -q '^#EXT-X-ENDLIST' "$pl" || h_fail "$v is not a finished (VOD) playlist"
  grep -q '^#EXT-X-PLAYLIST-TYPE:VOD' "$pl" || h_fail "$v lacks #EXT-X-PLAYLIST-TYPE:VOD"
  for s in $(grep -v '^#' "$pl" | grep .); do
    [ -s "$(dirname "$pl")/$s" ] || h_fail "segment $s of $v missing"
  done
done
for v in $variants; do
  pl=$dir/$v
  extinf=$(grep '^#EXTINF' "$pl" | tr '\n' ' ')
  [ -n "$first_extinf" ] || first_extinf=$extinf
  h_eq "$first_extinf" "$extinf" "segment durations of $v vs the first variant (aligned keyframes)"
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$pl")
  awk -v d="$dur" 'BEGIN { exit !(d > 11.9 && d < 12.1) }' || h_fail "$v duration $dur, expected 12 s"
  h_eq 360 "$(hls_frames "$pl")" "frames of $v (12 s x 30 fps)"
done
adur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$dir/$audio_uri")
awk -v d="$adur" 'BEGIN { exit !(d > 11.9 && d < 12.1) }' || h_fail "audio rendition duration $adur"
h_eq 0 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND attempt > 1")" "no retries"

# --- ladders that cannot be packaged fail at planning, naming why
h_req POST /v1/profiles '{"id":"gop3","name":"GOP 3 s","config":{"video":{"codec":"libx264","crf":28,"gop_s":3},"audio":null,"container":"mp4"}}'
h_eq 201 "$H_STATUS" "POST gop3: $H_BODY"
h_req POST /v1/profiles '{"id":"mixed-ladder","name":"Mixed","config":{"packaging":"hls","renditions":["480p-h264","gop3"]}}'
h_eq 201 "$H_STATUS" "POST mixed-ladder: $H_BODY"
h_req POST /v1/profiles '{"id":"dash-ladder","name":"DASH","config":{"packaging":"dash","renditions":["480p-h264"]}}'
h_eq 201 "$H_STATUS" "POST dash-ladder: $H_BODY"
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["mixed-ladder"]}')
vod_wait "$id" failed 60
h_req GET "/v1/jobs/$id"
h_eq WE-JOB-020 "$(h_jq .error.code)" "misaligned ladder: error code"
h_contains "$(h_jq .error.message)" "renditions 480p-h264 and gop3 have different keyframe intervals" \
  "misaligned ladder: message"
h_eq 0 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = 'video'")" \
  "misaligned ladder: no video task planned"
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["dash-ladder"]}')
vod_wait "$id" failed 60
h_req GET "/v1/jobs/$id"
h_eq WE-JOB-024 "$(h_jq .error.code)" "DASH ladder: error code"
h_contains "$(h_jq .error.message)" "DASH packaging is not implemented" "DASH ladder: message"
h_pass
