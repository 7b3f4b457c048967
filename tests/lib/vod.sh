# Helpers for the VOD pipeline's end-to-end tests: a kernel with storage-fs,
# workers with encoder-ffmpeg and storage-fs over one shared storage root,
# generated media, job submission and waiting. Source after harness.sh.

WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
export STORAGE_FS_ROOT=$H_DIR/storage
export SEGMENT_TARGET_S=${SEGMENT_TARGET_S:-2} SEGMENT_MIN_S=${SEGMENT_MIN_S:-1} SEGMENT_MAX_S=${SEGMENT_MAX_S:-10}
export WORKER_HEARTBEAT_MS=${WORKER_HEARTBEAT_MS:-500}
mkdir -p "$STORAGE_FS_ROOT/in"

# vod_plugin_dir NAME PLUGIN...: a private PLUGIN_DIR with copies of the built plugins.
vod_plugin_dir() {
  local d=$H_DIR/$1 p
  shift
  mkdir -p "$d"
  for p in "$@"; do cp -r "$WE_PLUGINS/$p" "$d/"; done
  echo "$d"
}

# vod_stack [N_WORKERS]: PostgreSQL, NATS, kernel (storage-fs), N workers.
vod_stack() {
  local n=${1:-1} i
  h_start_pg
  h_migrate_up
  h_start_nats
  PLUGIN_DIR=$(vod_plugin_dir kplugins storage-fs) h_start_kernel
  h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
  VOD_WPLUGINS=$(vod_plugin_dir wplugins encoder-ffmpeg storage-fs)
  for i in $(seq "$n"); do vod_worker "w$i"; done
}

# vod_worker ID: starts a worker and waits until the kernel sees it healthy.
vod_worker() {
  PLUGIN_DIR=$VOD_WPLUGINS h_start_worker "$1"
  h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/workers/$1 | grep -q '\"healthy\":true'" \
    || h_fail "worker $1 not healthy"
}

# vod_media NAME SECONDS [SIZE] [GOP]: an H.264+AAC mp4 under storage/in/.
vod_media() {
  local out=$STORAGE_FS_ROOT/in/$1 size=${3:-320x180} gop=${4:-30}
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=30:duration=$2" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$2" -c:v libx264 -preset ultrafast \
    -g "$gop" -keyint_min "$gop" -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 96k -shortest "$out"
}

# vod_submit JSON: submits, echoes the job id.
vod_submit() {
  h_req POST /v1/jobs "$1"
  [ "$H_STATUS" = 201 ] || h_fail "submit: $H_STATUS $H_BODY"
  h_jq .id
}

# vod_wait ID STATUS [TIMEOUT_S]: waits for the job to reach STATUS (fails on
# another terminal status).
vod_wait() {
  local id=$1 want=$2 t=${3:-120} i st
  for i in $(seq $((t * 4))); do
    st=$(curl -fsS "$H_KERNEL_URL/v1/jobs/$id" | jq -r .status)
    [ "$st" = "$want" ] && return 0
    case $st in completed|failed|cancelled)
      h_fail "job $id ended $st, expected $want: $(curl -fsS "$H_KERNEL_URL/v1/jobs/$id" | jq -c .error)";;
    esac
    sleep 0.25
  done
  h_fail "job $id still $st after ${t}s (expected $want)"
}

# vod_frames FILE: video frame count.
vod_frames() {
  ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"
}
# vod_keyframes FILE: keyframe PTS times, one per line.
vod_keyframes() {
  ffprobe -v error -select_streams v:0 -show_packets -show_entries packet=pts_time,flags -of csv=p=0 "$1" \
    | awk -F, '$2 ~ /K/ { print $1 }'
}
# vod_pts_steps FILE: the distinct PTS steps between consecutive video frames.
vod_pts_steps() {
  ffprobe -v error -select_streams v:0 -show_packets -show_entries packet=pts -of csv=p=0 "$1" \
    | sort -n | awk 'NR > 1 { print $1 - prev } { prev = $1 }' | sort -u
}
# vod_ffmpeg_pids JOB_ID: pids of ffmpeg processes working on the job (by
# their command line; pgrep -f would also match the shell that runs it).
vod_ffmpeg_pids() {
  local p
  for p in $(pgrep -x ffmpeg); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "jobs/$1/" && echo "$p"
  done
  return 0
}
