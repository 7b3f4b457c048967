#!/usr/bin/env bash
# encoder-ffmpeg plugin over the plugin protocol: probe against ffprobe,
# segment transcode, error codes, cancel/deadline/stdin-EOF/SIGKILL leave no
# ffmpeg behind. Media is generated at test time (lavfi) in the temp dir; the
# checks live in plugin_encoder_ffmpeg.py (see its docstring).
. "$(dirname "$0")/../lib/harness.sh"

WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
EXE="$WE_PLUGINS/encoder-ffmpeg/encoder-ffmpeg"
[ -x "$EXE" ] || h_fail "plugin not built: $EXE"
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  h_fail "ffmpeg/ffprobe not installed"
fi
export WE_SRC

timeout 120 /usr/bin/python3 "$WE_SRC/tests/integration/plugin_encoder_ffmpeg.py" \
  "$EXE" "$H_DIR" || h_fail "plugin_encoder_ffmpeg.py failed"

# valgrind: normal build only (valgrind and ASan do not mix)
if [ "${WE_SANITIZE:-OFF}" != ON ] && command -v valgrind >/dev/null; then
  timeout 120 /usr/bin/python3 "$WE_SRC/tests/integration/plugin_encoder_ffmpeg.py" \
    "$EXE" "$H_DIR" valgrind || h_fail "plugin_encoder_ffmpeg.py under valgrind failed"
fi
h_pass
