#!/usr/bin/env bash
# /metrics is valid Prometheus text (promtool check metrics) with the
# runbook's metric names, real values from the database (a job row inserted
# by hand shows up in webencode_jobs_total{status="queued"}, finished rows
# in the job and task duration histograms, a waiting task in the queue
# depth), request latency labelled by route pattern (never the raw URL),
# the connection pool and plugin series, and keeps answering with
# webencode_database_up 0 while PostgreSQL is down.
. "$(dirname "$0")/../lib/harness.sh"

h_start_pg
h_migrate_up
h_start_nats
DB_POOL_SIZE=6 h_start_kernel

curl -fsS "$H_KERNEL_URL/metrics" >"$H_DIR/m1.txt"
ctype=$(curl -sS -o /dev/null -w '%{content_type}' "$H_KERNEL_URL/metrics")
h_contains "$ctype" "text/plain; version=0.0.4" "metrics content type"

# Exposition format: every line is a comment (# HELP/# TYPE name ...) or
# `name{labels} value`; every sample's family has a TYPE line before it
# (a histogram's _bucket, _sum and _count samples belong to its family).
awk '
  /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* / { if ($2 == "TYPE") typed[$3] = $4; next }
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfa]+$/ {
    name = $1; sub(/\{.*/, "", name)
    base = name; sub(/_(bucket|sum|count)$/, "", base)
    if (!(name in typed) && typed[base] != "histogram") { print "untyped sample: " $0; bad = 1 }
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

metrics() { curl -fsS "$H_KERNEL_URL/metrics"; }
value() { awk -v m="$1" '$1 == m { print $2 }' "$2"; }

# request latency: by route pattern, unmatched URLs folded into one label
id=$(h_psql -c "SELECT id FROM jobs LIMIT 1")
curl -fsS -o /dev/null "$H_KERNEL_URL/v1/jobs/$id"
curl -s -o /dev/null "$H_KERNEL_URL/v1/no/such/$id"
metrics >"$H_DIR/m3.txt"
h_eq 1 "$(value 'webencode_http_request_duration_seconds_count{method="GET",route="/v1/jobs/{id}",code="2xx"}' "$H_DIR/m3.txt")" \
  "GET /v1/jobs/{id} observed once"
h_eq 1 "$(value 'webencode_http_request_duration_seconds_bucket{method="GET",route="/v1/jobs/{id}",code="2xx",le="+Inf"}' "$H_DIR/m3.txt")" \
  "+Inf bucket equals the count"
n=$(value 'webencode_http_request_duration_seconds_count{method="GET",route="unmatched",code="4xx"}' "$H_DIR/m3.txt")
[ "${n:-0}" -ge 2 ] || h_fail "unmatched 404s not observed (count [$n])"
! grep -q "$id" "$H_DIR/m3.txt" || h_fail "a raw URL leaked into a label"

# this kernel's pool and plugins
h_eq 6 "$(value webencode_db_pool_size "$H_DIR/m3.txt")" "pool size (DB_POOL_SIZE)"
grep -q '^webencode_db_pool_connections{state="in_use"} [0-9]' "$H_DIR/m3.txt" || h_fail "pool in_use missing"
grep -q '^webencode_db_pool_connections{state="idle"} [1-9]' "$H_DIR/m3.txt" || h_fail "no idle pool connection"
for f in webencode_plugin_up webencode_plugin_state webencode_plugin_restarts_total \
         webencode_nats_reconnects_total process_open_fds; do
  grep -q "^# TYPE $f " "$H_DIR/m3.txt" || h_fail "family $f missing"
done

# histograms from the database: a job submitted 100 s before it finished,
# a video task of 3 s; a waiting task on a capability no worker has
h_psql <<'SQL'
INSERT INTO jobs (id, source_url, profiles, status, created_at, started_at, finished_at)
VALUES ('00000000-0000-4000-8000-000000000001', 'fs://in.mp4', ARRAY['720p-h264'], 'completed',
        now() - interval '100 s', now() - interval '90 s', now());
INSERT INTO tasks (job_id, type, status, worker_id, started_at, finished_at)
VALUES ('00000000-0000-4000-8000-000000000001', 'video', 'completed', 'w', now() - interval '3 s', now());
INSERT INTO tasks (job_id, type, capability, seq) VALUES ('00000000-0000-4000-8000-000000000001', 'video', 'nvidia', 1);
SQL
metrics >"$H_DIR/m4.txt"
jb=webencode_job_duration_seconds_bucket tb=webencode_task_duration_seconds_bucket
h_eq 0 "$(value "$jb{status=\"completed\",le=\"60\"}" "$H_DIR/m4.txt")" "job of 100 s: not <= 60"
h_eq 1 "$(value "$jb{status=\"completed\",le=\"120\"}" "$H_DIR/m4.txt")" "job of 100 s: <= 120"
h_eq 1 "$(value 'webencode_job_duration_seconds_count{status="completed"}' "$H_DIR/m4.txt")" "job count"
h_eq 0 "$(value 'webencode_job_duration_seconds_count{status="failed"}' "$H_DIR/m4.txt")" "no failed job"
sum=$(value 'webencode_job_duration_seconds_sum{status="completed"}' "$H_DIR/m4.txt")
awk -v s="$sum" 'BEGIN { exit !(s >= 100 && s < 101) }' || h_fail "job duration sum [$sum], expected 100"
h_eq 0 "$(value "$tb{type=\"video\",le=\"2.5\"}" "$H_DIR/m4.txt")" "task of 3 s: not <= 2.5"
h_eq 1 "$(value "$tb{type=\"video\",le=\"5\"}" "$H_DIR/m4.txt")" "task of 3 s: <= 5"
h_eq 0 "$(value 'webencode_task_duration_seconds_count{type="probe"}' "$H_DIR/m4.txt")" "no probe task"
h_eq 1 "$(value 'webencode_tasks_queued{capability="nvidia"}' "$H_DIR/m4.txt")" "queued nvidia task"
h_eq 0 "$(value 'webencode_tasks_queued{capability="cpu"}' "$H_DIR/m4.txt")" "nothing queued for cpu"
if command -v promtool >/dev/null; then
  promtool check metrics <"$H_DIR/m4.txt" || h_fail "promtool check metrics failed"
else
  h_fail "promtool missing (scripts/deps.sh installs the prometheus package)"
fi

# database down: still 200, database_up 0
h_stop_pg
code=$(curl -s -o "$H_DIR/m2.txt" -w '%{http_code}' "$H_KERNEL_URL/metrics")
h_eq 200 "$code" "metrics with PostgreSQL down"
h_eq 0 "$(awk '$1 == "webencode_database_up" { print $2 }' "$H_DIR/m2.txt")" "database_up while down"
h_pass
