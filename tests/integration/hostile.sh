#!/usr/bin/env bash
# Hostile requests (issue 5): for every route of src/kernel/routes.c that
# takes an {id} or a body — path traversal and garbage in ids; bodies that
# are not JSON objects, nest deeper than MAX_JSON_DEPTH, exceed
# MAX_BODY_BYTES, hold bad UTF-8, NULs or duplicate keys; injection strings
# (SQL, shell, format, CRLF, HTML) in every string field of every body;
# numbers for strings and the other way round, 1e400, -0, 2^64; SSRF
# sources; Content-Type lies; wrong methods; absurd query strings — each
# gets a 4xx with a well-formed error envelope, the kernel stays up, no
# shell payload runs, and the database is unchanged (audit_log aside, which
# records refusals by design). Where a hostile string is a legitimate value
# (job metadata, a profile's name, a token's name, a password…) it must
# round-trip exactly; those resources are excluded by id, then deleted.
# The checks live in tests/lib/hostile.py; it prints how many requests it sent.
. "$(dirname "$0")/../lib/harness.sh"
WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}

export PLUGIN_DIR=$H_DIR/plugins STORAGE_FS_ROOT=$H_DIR/storage
export SOURCE_ALLOW_DIRS=$H_DIR/media
export RATE_LIMIT_RPS=0 RATE_LIMIT_IP_RPS=0 LOG_LEVEL=info
mkdir -p "$PLUGIN_DIR" "$STORAGE_FS_ROOT/in" "$H_DIR/media"
cp -r "$WE_PLUGINS/storage-fs" "$WE_PLUGINS/auth-basic" "$PLUGIN_DIR/"
echo media >"$STORAGE_FS_ROOT/in/hostile.mp4"

h_start_pg
h_migrate_up
h_psql -c "INSERT INTO profiles (id, name, is_system, config) VALUES
  ('720p-h264', '720p H.264', true, '{}') ON CONFLICT (id) DO NOTHING"
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
for p in auth-basic storage-fs; do
  h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/plugins/$p | jq -e '.state == \"healthy\"'" \
    || h_fail "$p not healthy"
done

WE_URL=$H_KERNEL_URL H_DIR=$H_DIR WE_SRC=$WE_SRC timeout 240 python3 "$WE_SRC/tests/lib/hostile.py" \
  || h_fail "hostile requests: see above"
kill -0 "$(cat "$H_DIR/kernel.pid")" || h_fail "the kernel died"
h_pass
