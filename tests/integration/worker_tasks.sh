#!/usr/bin/env bash
# The worker's task runner alone against a real nats-server (no kernel, no
# database): dispatch consumption with free slots only, started/completed/
# failed events, progress, InProgress, probe/video/audio/stitch through the
# encoder and storage plugins, Term of garbage, jobs.cancel, re-binding a
# lost durable, SIGTERM within and beyond WORKER_STOP_GRACE_S. The test
# plays the kernel through tests/lib/nats_raw.py; the checks live in
# worker_tasks.py (see its docstring).
. "$(dirname "$0")/../lib/harness.sh"

WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
[ -x "$WE_BIN/worker" ] || h_fail "worker not built: $WE_BIN/worker"
for p in encoder-ffmpeg storage-fs; do
  [ -x "$WE_PLUGINS/$p/$p" ] || h_fail "plugin not built: $WE_PLUGINS/$p/$p"
done
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  h_fail "ffmpeg/ffprobe not installed"
fi

h_start_nats
export WE_SRC WE_BIN WE_PLUGINS
# the http:// probe reads from a test server on 127.0.0.1: encoder-ffmpeg's
# egress policy must allow that address (tests/integration/source_ssrf.sh)
export SOURCE_ALLOW_CIDRS=127.0.0.1/32
timeout 280 /usr/bin/python3 "$WE_SRC/tests/integration/worker_tasks.py" "$H_NATS_PORT" "$H_DIR" \
  || h_fail "worker_tasks.py failed"
h_pass
