#!/usr/bin/env bash
# Metrics of a small cluster after a real job: two kernels on one PostgreSQL
# and NATS report the same cluster-wide values (the runbook's gauges, the
# job and task duration histograms, the queue depth); the worker's own
# /metrics (WORKER_METRICS_PORT) counts the tasks it ran and follows a
# drain; kernel and worker output pass `promtool check metrics`; every
# expression of the Grafana dashboard parses, and every metric it and the
# alert rules use exists in the real output (pg_* come from
# postgres_exporter).
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

command -v promtool >/dev/null || h_fail "promtool missing (scripts/deps.sh installs prometheus)"

vod_stack 0
WMET_PORT=$(svc_free_port)
WORKER_METRICS_PORT=$WMET_PORT vod_worker w1
W_URL=http://127.0.0.1:$WMET_PORT
grep -q '"msg":"metrics endpoint listening"' "$H_DIR/worker-w1.log" || h_fail "worker metrics not started"

# a second kernel on the same database and NATS
K2_PORT=$(svc_free_port)
PORT=$K2_PORT PLUGIN_DIR=$H_DIR/kplugins "$WE_BIN/kernel" >>"$H_DIR/kernel2.log" 2>&1 &
echo $! >"$H_DIR/kernel2.pid"
K2_URL=http://127.0.0.1:$K2_PORT
svc_wait_http "$K2_URL/v1/health" 30 || h_fail "kernel 2 did not answer /v1/health"

# --- a real job
vod_media in.mp4 4
id=$(vod_submit '{"source_url":"fs://in/in.mp4","profiles":["480p-h264"]}')
vod_wait "$id" completed 90

curl -fsS "$H_KERNEL_URL/metrics" >"$H_DIR/k1.txt"
curl -fsS "$K2_URL/metrics" >"$H_DIR/k2.txt"
curl -fsS "$H_KERNEL_URL/metrics" >"$H_DIR/k1b.txt"
curl -fsS "$W_URL/metrics" >"$H_DIR/w1.txt"
value() { awk -v m="$1" '$1 == m { print $2 }' "$2"; }

# --- promtool
for f in k1 k2 w1; do
  promtool check metrics <"$H_DIR/$f.txt" >"$H_DIR/promtool-$f.log" 2>&1 \
    || { cat "$H_DIR/promtool-$f.log" >&2; h_fail "promtool check metrics: $f"; }
done

# --- the kernels agree
cluster() {
  grep -E '^webencode_(workers_healthy|workers|tasks_processing|tasks_queued|streams_live|errors_total|jobs_total|job_duration_seconds_[a-z]+|task_duration_seconds_[a-z]+)[ {]' "$1" | sort
}
cluster "$H_DIR/k1.txt" >"$H_DIR/c1"
cluster "$H_DIR/k2.txt" >"$H_DIR/c2"
cluster "$H_DIR/k1b.txt" >"$H_DIR/c1b"
diff "$H_DIR/c1" "$H_DIR/c1b" >/dev/null || h_fail "cluster state changed between scrapes"
diff -u "$H_DIR/c1" "$H_DIR/c2" >&2 || h_fail "the two kernels disagree (diff above)"
[ "$(wc -l <"$H_DIR/c1")" -gt 100 ] || h_fail "too few cluster series: $(wc -l <"$H_DIR/c1")"
for f in k1 k2; do
  h_eq 1 "$(value 'webencode_jobs_total{status="completed"}' "$H_DIR/$f.txt")" "$f: completed jobs"
  h_eq 1 "$(value webencode_workers_healthy "$H_DIR/$f.txt")" "$f: healthy workers"
  h_eq 1 "$(value 'webencode_job_duration_seconds_count{status="completed"}' "$H_DIR/$f.txt")" \
    "$f: job duration samples"
done
tasks() { h_psql -c "SELECT count(*) FROM tasks WHERE job_id = '$id' AND type = '$1' AND status = 'completed'"; }
for t in probe video audio stitch; do
  n=$(tasks $t)
  [ "$n" -ge 1 ] || h_fail "no completed $t task"
  h_eq "$n" "$(value "webencode_task_duration_seconds_count{type=\"$t\"}" "$H_DIR/k1.txt")" "$t duration samples"
done
h_eq 0 "$(value webencode_tasks_processing "$H_DIR/k1.txt")" "tasks processing after the job"

# --- request histogram on the kernel that served the API
h_eq 1 "$(value 'webencode_http_request_duration_seconds_count{method="POST",route="/v1/jobs",code="2xx"}' "$H_DIR/k1.txt")" \
  "POST /v1/jobs observed"
n=$(value 'webencode_http_request_duration_seconds_count{method="GET",route="/v1/jobs/{id}",code="2xx"}' "$H_DIR/k1.txt")
[ "${n:-0}" -ge 1 ] || h_fail "GET /v1/jobs/{id} not observed"
! grep -q "$id" "$H_DIR/k1.txt" || h_fail "a job id leaked into a label"

# --- the worker's own metrics
ran=$(h_psql -c "SELECT count(*) FROM tasks WHERE worker_id = 'w1' AND status = 'completed'")
h_eq "$ran" "$(value 'webencode_worker_tasks_total{result="completed"}' "$H_DIR/w1.txt")" "worker's completed tasks"
h_eq 0 "$(value 'webencode_worker_tasks_total{result="failed"}' "$H_DIR/w1.txt")" "worker's failed tasks"
h_eq 1 "$(value webencode_worker_slots "$H_DIR/w1.txt")" "worker slots"
h_eq 0 "$(value webencode_worker_tasks_running "$H_DIR/w1.txt")" "tasks running after the job"
h_eq 0 "$(value webencode_worker_ffmpeg_processes "$H_DIR/w1.txt")" "ffmpeg processes after the job"
h_eq 1 "$(value webencode_worker_nats_connected "$H_DIR/w1.txt")" "worker NATS"
h_eq 1 "$(value 'webencode_plugin_up{plugin="encoder-ffmpeg",type="encoder"}' "$H_DIR/w1.txt")" "worker's encoder up"
h_eq 0 "$(value webencode_worker_draining "$H_DIR/w1.txt")" "not draining"
h_req POST /v1/workers/w1/drain
h_eq 200 "$H_STATUS" "drain w1"
draining() { [ "$(curl -fsS "$W_URL/metrics" | awk '$1 == "webencode_worker_draining" { print $2 }')" = 1 ]; }
h_wait_for 10 draining || h_fail "webencode_worker_draining not 1 after a drain"

# --- the dashboard and the alert rules use real metrics, in valid PromQL
python3 - "$WE_SRC" "$H_DIR" <<'PY' || h_fail "dashboard/alert check failed"
import json, re, sys, yaml
src, d = sys.argv[1], sys.argv[2]
fams = {}
for f in ("k1.txt", "w1.txt"):
    for line in open(f"{d}/{f}"):
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            fams[m.group(1)] = m.group(2)
dash = json.load(open(f"{src}/docs/grafana-dashboard.json"))
assert any(i.get("name") == "DS_PROMETHEUS" for i in dash["__inputs"]), "no DS_PROMETHEUS input"
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert len(exprs) >= 20, f"only {len(exprs)} dashboard expressions"
for p in dash["panels"]:
    if p["type"] != "row":
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
rules = yaml.safe_load(open(f"{src}/deploy/prometheus/alerts.yml"))
alerts = [r["expr"] for g in rules["groups"] for r in g["rules"]]
assert len(alerts) == 4, alerts
bad = []
for e in exprs + alerts:
    for name in set(re.findall(r"\b((?:webencode|process|pg)_[a-z0-9_]+)", e)):
        if name.startswith("pg_"):
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in fams and fams.get(base) != "histogram":
            bad.append(name)
if bad:
    sys.exit(f"metrics used but not exported: {sorted(set(bad))}")
# every expression parses: as recording rules, checked by promtool
with open(f"{d}/dash_rules.yml", "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)]}]}, f)
PY
promtool check rules "$H_DIR/dash_rules.yml" >"$H_DIR/promtool-dash.log" 2>&1 \
  || { cat "$H_DIR/promtool-dash.log" >&2; h_fail "a dashboard expression is not valid PromQL"; }
h_pass
