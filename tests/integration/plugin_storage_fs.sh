#!/usr/bin/env bash
# plugins/storage-fs through the plugin protocol (no kernel): put/get/stat/
# list with pagination/delete and prefix delete/checksum/local_path/browse;
# traversal keys and symbolic-link escapes refused by every method with
# WE-STO-001 and nothing read, written or created outside the root; browse
# confined to the root and browse_roots; concurrent puts of one key; the
# configuration rules; run by hand without the magic cookie it exits 1.
# The checks live in plugin_storage_fs.py.
. "$(dirname "$0")/../lib/harness.sh"

EXE=${WE_PLUGINS:-$WE_SRC/plugins}/storage-fs/storage-fs
[ -x "$EXE" ] || h_fail "storage-fs is not built: $EXE"

# Run by hand (no magic cookie): says what it is on stderr, exits 1.
set +e
env -u WEBENCODE_PLUGIN "$EXE" </dev/null >"$H_DIR/bare.out" 2>"$H_DIR/bare.err"
rc=$?
set -e
h_eq 1 "$rc" "exit status without the magic cookie"
h_contains "$(cat "$H_DIR/bare.err")" "storage-fs" "self-description"
h_eq "" "$(cat "$H_DIR/bare.out")" "stdout without the magic cookie"

WE_SRC=$WE_SRC /usr/bin/python3 "$WE_SRC/tests/integration/plugin_storage_fs.py" "$EXE" "$H_DIR" \
  >"$H_DIR/checks.out" 2>&1 || { cat "$H_DIR/checks.out" >&2; h_fail "storage-fs checks failed"; }
cat "$H_DIR/checks.out" >&2
h_pass
