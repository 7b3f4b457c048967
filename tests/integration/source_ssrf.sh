#!/usr/bin/env bash
# No SSRF through FFmpeg (issue 5 item 4): encoder-ffmpeg driven directly
# over the plugin protocol, with an origin server on 127.0.0.1 (http and
# https through CONNECT, a self-signed certificate made here) and a
# recorder on 127.0.0.2 that logs every connection. Allowed sources probe
# and transcode like the local file; a redirect to, or a source on, a
# refused address fails WE-JOB-010 without retry and the recorder sees
# nothing; other FFmpeg protocols are refused before anything is opened;
# the policy's settings (config and env) widen it. Then a short session
# under valgrind (normal build only). The checks live in source_ssrf.py.
. "$(dirname "$0")/../lib/harness.sh"

WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
EXE="$WE_PLUGINS/encoder-ffmpeg/encoder-ffmpeg"
[ -x "$EXE" ] || h_fail "plugin not built: $EXE"
for tool in ffmpeg ffprobe openssl; do
  command -v "$tool" >/dev/null || h_fail "$tool not installed"
done
export WE_SRC

timeout 120 /usr/bin/python3 "$WE_SRC/tests/integration/source_ssrf.py" "$EXE" "$H_DIR" ||
  h_fail "source_ssrf.py failed"

# valgrind: normal build only (valgrind and ASan do not mix)
if [ "${WE_SANITIZE:-OFF}" != ON ] && command -v valgrind >/dev/null; then
  timeout 120 /usr/bin/python3 "$WE_SRC/tests/integration/source_ssrf.py" "$EXE" "$H_DIR" \
    valgrind || h_fail "source_ssrf.py under valgrind failed"
fi
h_pass
