#!/usr/bin/env bash
# Probe benchmark: every video keyframe of a 10-minute 30 fps 640x360 H.264
# + AAC MP4 (18000 video packets), read by the encoder-ffmpeg plugin
# (libavformat, packets only; timed per call on a running plugin, as the
# worker uses it) and by
#   ffprobe -v error -select_streams v:0 -show_packets \
#           -show_entries packet=pts_time,flags -of csv=p=0
# (timed per process, as a worker shelling out would). Prints the mean of
# RUNS runs each (after one warm-up), checks both found the same keyframes,
# and prints the ratio.
# Usage: bench/probe.sh [MEDIA_FILE]   (default: generate one in a temp dir,
#        ~1-2 min with -preset ultrafast; RUNS=5; PLUGIN=path to the plugin)
set -euo pipefail
WE_SRC=$(cd "$(dirname "$0")/.." && pwd)
PLUGIN=${PLUGIN:-${WE_PLUGINS:-$WE_SRC/plugins}/encoder-ffmpeg/encoder-ffmpeg}
RUNS=${RUNS:-5}
[ -x "$PLUGIN" ] || { echo "plugin not built: $PLUGIN (set PLUGIN=…)" >&2; exit 1; }

TMP=$(mktemp -d -t we-bench-probe.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
MEDIA=${1:-}
if [ -z "$MEDIA" ]; then
  MEDIA=$TMP/src.mp4
  echo "== generating a 10-minute 640x360 30 fps H.264 + AAC file (ultrafast)"
  start=$(date +%s%N)
  ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=30:duration=600 \
    -f lavfi -i sine=frequency=440:duration=600 -c:v libx264 -preset ultrafast -g 60 \
    -c:a aac -b:a 96k -shortest "$MEDIA"
  echo "   $(( ($(date +%s%N) - start) / 1000000 )) ms, $(stat -c %s "$MEDIA") bytes"
fi
MEDIA=$(realpath "$MEDIA")

WE_SRC="$WE_SRC" /usr/bin/python3 - "$PLUGIN" "$MEDIA" "$RUNS" <<'PY'
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from plugin_rpc import Plugin

exe, media, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
FFPROBE = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_packets",
           "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", media]

def ffprobe_keyframes():
    out = subprocess.run(FFPROBE, check=True, capture_output=True, text=True).stdout
    rows = [l.split(",") for l in out.splitlines() if l.strip()]
    return sorted(float(r[0]) for r in rows if "K" in r[1]), len(rows)

def timed(fn):
    fn()  # warm-up: page cache, plugin thread pool
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t)
    return r, sum(times) / len(times), min(times), max(times)

p = Plugin(exe, config={"work_dir": os.path.dirname(media)}, plugin_id="encoder-ffmpeg")
(res, p_mean, p_min, p_max) = timed(lambda: p.call("encoder.probe", {"url": media}, timeout=120))
p.close()
t = time.perf_counter()
Plugin(exe, config={}, plugin_id="encoder-ffmpeg").close()
start_s = time.perf_counter() - t
((kf, n), f_mean, f_min, f_max) = timed(ffprobe_keyframes)

same = len(kf) == len(res["keyframes_s"]) and all(
    abs(a - b) <= 1e-6 + 1e-9 for a, b in zip(kf, res["keyframes_s"]))
print(f"== {os.path.basename(media)}: {res['duration_s']:.1f} s, {res['frame_count']} video "
      f"packets, {len(res['keyframes_s'])} keyframes; lists identical: {same}")
print(f"plugin encoder.probe  mean {p_mean * 1000:8.1f} ms  (min {p_min * 1000:.1f}, max "
      f"{p_max * 1000:.1f}; {runs} runs; plugin start+handshake+stop {start_s * 1000:.0f} ms)")
print(f"ffprobe -show_packets mean {f_mean * 1000:8.1f} ms  (min {f_min * 1000:.1f}, max "
      f"{f_max * 1000:.1f}; {runs} runs)")
print(f"ratio ffprobe/plugin: {f_mean / p_mean:.2f}x")
if not same or n != res["frame_count"]:
    sys.exit("keyframe lists or packet counts differ")
PY
