#!/usr/bin/env bash
# The alert rules (deploy/prometheus/alerts.yml) are valid, carry the
# runbook's four alerts with its severities, and pass their unit tests
# (alerts_test.yml: each alert fires on its condition and stays silent just
# below it); the unit tests catch a changed threshold; the sample
# prometheus.yml is a valid configuration. Needs only promtool.
. "$(dirname "$0")/../lib/harness.sh"

command -v promtool >/dev/null || h_fail "promtool missing (scripts/deps.sh installs prometheus)"
P=$WE_SRC/deploy/prometheus

promtool check rules "$P/alerts.yml" >"$H_DIR/check.log" 2>&1 \
  || { cat "$H_DIR/check.log" >&2; h_fail "promtool check rules"; }
h_contains "$(cat "$H_DIR/check.log")" "SUCCESS: 4 rules found" "four rules"
promtool test rules "$P/alerts_test.yml" >"$H_DIR/test.log" 2>&1 \
  || { cat "$H_DIR/test.log" >&2; h_fail "promtool test rules"; }
(cd "$H_DIR" && cp "$P/prometheus.yml" "$P/alerts.yml" . && promtool check config prometheus.yml) \
  >"$H_DIR/config.log" 2>&1 || { cat "$H_DIR/config.log" >&2; h_fail "promtool check config"; }

# names and severities as the runbook has them
python3 - "$P/alerts.yml" <<'PY' || h_fail "alert names or severities differ from the runbook"
import sys, yaml
rules = {r["alert"]: r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]}
want = {"NoHealthyWorkers": ("critical", "No Healthy Workers", "webencode_workers_healthy", "== 0"),
        "JobQueueBacklog": ("warning", "Job Queue Backlog", 'webencode_jobs_total{status="queued"}', "> 100"),
        "HighErrorRate": ("warning", "High Error Rate", "rate(webencode_errors_total[5m])", "> 0.1"),
        "DatabaseConnectionPool": ("warning", "Database Connection Pool", "pg_stat_activity_count", "> 0.8")}
assert set(rules) == set(want), sorted(rules)
for name, (sev, summary, metric, cond) in want.items():
    r = rules[name]
    assert r["labels"]["severity"] == sev, (name, r["labels"])
    assert r["annotations"]["summary"] == summary, (name, r["annotations"])
    assert metric in r["expr"] and cond in r["expr"], (name, r["expr"])
assert "postgres_exporter" in rules["DatabaseConnectionPool"]["annotations"]["description"]
PY

# the unit tests notice a threshold that moved
mkdir -p "$H_DIR/mut"
cp "$P/alerts_test.yml" "$H_DIR/mut/"
sed 's/ > 100$/ > 200/' "$P/alerts.yml" >"$H_DIR/mut/alerts.yml"
! cmp -s "$P/alerts.yml" "$H_DIR/mut/alerts.yml" || h_fail "mutation did not apply"
if promtool test rules "$H_DIR/mut/alerts_test.yml" >/dev/null 2>&1; then
  h_fail "alerts_test.yml passes with the backlog threshold at 200"
fi
h_pass
