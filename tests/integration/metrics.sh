#!/usr/bin/env bash
# /metrics is valid Prometheus text with the runbook's metric names, real
# values from the database (a job row inserted by hand shows up in
# webencode_jobs_total{status="queued"}), and keeps answering with
# webencode_database_up 0 while PostgreSQL is down.
. "$(dirname "$0")/../lib/harness.sh"

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel

curl -fsS "$H_KERNEL_URL/metrics" >"$H_DIR/m1.txt"
ctype=$(curl -sS -o /dev/null -w '%{content_type}' "$H_KERNEL_URL/metrics")
h_contains "$ctype" "text/plain; version=0.0.4" "metrics content type"

# Exposition format: every line is a comment (# HELP/# TYPE name ...) or
# `name{labels} value`; every sample's family has a TYPE line before it.
awk '
  /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* / { if ($2 == "TYPE") typed[$3] = 1; next }
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfa]+$/ {
    name = $1; sub(/\{.*/, "", name)
    if (!(name in typed)) { print "untyped sample: " $0; bad = 1 }
    next }
  { print "bad line: " $0; bad = 1 }
  END { exit bad }' "$H_DIR/m1.txt" || h_fail "metrics are not valid exposition format"

for m in webencode_workers_healthy webencode_tasks_processing webencode_streams_live \
         webencode_errors_total webencode_database_up webencode_nats_connected; do
  grep -q "^$m " "$H_DIR/m1.txt" || h_fail "metric $m missing"
done
for s in queued processing stitching uploading completed failed cancelled; do
  grep -q "^webencode_jobs_total{status=\"$s\"} 0$" "$H_DIR/m1.txt" || h_fail "jobs_total{status=$s} not 0"
done
h_eq 1 "$(awk '$1 == "webencode_database_up" { print $2 }' "$H_DIR/m1.txt")" "database_up"

# real values: a queued job appears in the counter
h_psql -c "INSERT INTO jobs (source_url, profiles) VALUES ('fs://in.mp4', ARRAY['720p-h264'])"
v=$(curl -fsS "$H_KERNEL_URL/metrics" | awk '$1 == "webencode_jobs_total{status=\"queued\"}" { print $2 }')
h_eq 1 "$v" "queued jobs after insert"
# HTTP counters move
before=$(curl -fsS "$H_KERNEL_URL/metrics" | awk '$1 == "webencode_http_requests_total{code=\"4xx\"}" { print $2 }')
curl -s -o /dev/null "$H_KERNEL_URL/v1/missing"
after=$(curl -fsS "$H_KERNEL_URL/metrics" | awk '$1 == "webencode_http_requests_total{code=\"4xx\"}" { print $2 }')
h_eq $((before + 1)) "$after" "4xx counter"

# database down: still 200, database_up 0
h_stop_pg
code=$(curl -s -o "$H_DIR/m2.txt" -w '%{http_code}' "$H_KERNEL_URL/metrics")
h_eq 200 "$code" "metrics with PostgreSQL down"
h_eq 0 "$(awk '$1 == "webencode_database_up" { print $2 }' "$H_DIR/m2.txt")" "database_up while down"
h_pass
