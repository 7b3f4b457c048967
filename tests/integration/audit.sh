#!/usr/bin/env bash
# The audit trail (issue 5 item 8, issue 6 item 4):
# - state-changing requests through the API are recorded with the right
#   actor, user id, action, resource, result and client IP, success or not;
#   a request refused by auth (bad token 401, wrong role 403) is "denied";
#   GETs are not audited; no token or secret ends up in a record;
# - the same records are in the 90-day WEBENCODE_EVENTS stream on
#   audit.<type>.<verb>, each once, with Nats-Msg-Id = the record id;
# - GET /v1/audit filters (user by name or id, action exact and prefix,
#   resource, result, since/until), pagination, admin only; CSV export
#   parsed with Python's csv, with a formula-looking cell neutralised;
# - NATS stopped: mutations are still recorded, and published once it is back;
#   PostgreSQL stopped: the record waits in the kernel and is written when it is back.
. "$(dirname "$0")/../lib/harness.sh"

WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}
export PLUGIN_DIR=$H_DIR/plugins
mkdir -p "$PLUGIN_DIR" "$H_DIR/storage/in"
cp -r "$WE_PLUGINS/auth-basic" "$WE_PLUGINS/storage-fs" "$PLUGIN_DIR/"
export STORAGE_FS_ROOT=$H_DIR/storage
export RATE_LIMIT_IP_RPS=1000 RATE_LIMIT_IP_BURST=1000

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/plugins/auth-basic | jq -e '.state == \"healthy\"'" \
  || h_fail "auth-basic not healthy"

# as TOKEN METHOD PATH [BODY]: a request with that bearer token (no .curlrc).
as() {
  local tok=$1 m=$2 p=$3 b=${4:-}
  H_STATUS=$(curl -q -sS -o "$H_DIR/resp.body" -w '%{http_code}' -X "$m" ${b:+--data-binary "$b"} \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $tok" -A "audit-test/1.0" \
    -H "X-Request-Id: ${RID:-}" --max-time 10 "$H_KERNEL_URL$p") || H_STATUS=000
  H_BODY=$(cat "$H_DIR/resp.body")
}
# audit_count WHERE: rows of audit_log matching the SQL condition.
audit_count() { h_psql -c "SELECT count(*) FROM audit_log WHERE $1"; }
wait_rows() { # wait_rows N WHERE WHAT
  h_wait_for 10 bash -c "[ \$(psql '$DATABASE_URL' -qAtX -c \"SELECT count(*) FROM audit_log WHERE $2\") -ge $1 ]" \
    || h_fail "$3: expected $1 audit row(s) where $2, got $(audit_count "$2")"
}

# ---- an operator user with an API token (created by the bootstrap admin) ------------
RID=setup-user as "$H_TOKEN" POST /v1/users '{"username":"op-alice","password":"correct-horse-battery","role":"operator"}'
h_eq 201 "$H_STATUS" "create operator: $H_BODY"
OP_UID=$(h_jq .user_id)
as "$H_TOKEN" POST /v1/tokens "{\"user_id\":\"$OP_UID\",\"name\":\"ci\"}"
h_eq 201 "$H_STATUS" "token for the operator: $H_BODY"
OP_TOK=$(h_jq .token)
wait_rows 1 "action = 'user.create' AND result = 'success' AND resource_id = '$OP_UID'" "user.create"
wait_rows 1 "action = 'token.create' AND result = 'success'" "token.create"

# ---- mutations as the operator -------------------------------------------------------
RID=aud-job-1 as "$OP_TOK" POST /v1/jobs '{"source_url":"fs://in/a.mp4","profiles":["480p-h264"]}'
h_eq 201 "$H_STATUS" "operator submits: $H_BODY"
JOB=$(h_jq .id)
RID=aud-cancel-1 as "$OP_TOK" POST "/v1/jobs/$JOB/cancel"
h_eq 200 "$H_STATUS" "operator cancels: $H_BODY"
RID=aud-bad-1 as "$OP_TOK" POST /v1/jobs '{"source_url":"fs://in/a.mp4","profiles":[]}'
h_eq 422 "$H_STATUS" "invalid submission"
RID=aud-forbidden as "$OP_TOK" POST /v1/profiles '{"id":"p-x","name":"x","config":{}}'
h_eq 403 "$H_STATUS" "operator may not create profiles"
RID=aud-badtok as "we_not_a_real_token_at_all" POST /v1/jobs '{"source_url":"fs://in/a.mp4","profiles":["480p-h264"]}'
h_eq 401 "$H_STATUS" "bad token"
RID=aud-get as "$OP_TOK" GET "/v1/jobs/$JOB"
h_eq 200 "$H_STATUS" "operator reads"

sel="SELECT actor, coalesce(user_id::text, '-'), action, coalesce(resource_type, '-'),
     coalesce(resource_id, '-'), result, host(client_ip), details->>'status'
     FROM audit_log WHERE request_id = "
wait_rows 5 "request_id IN ('aud-job-1', 'aud-cancel-1', 'aud-bad-1', 'aud-forbidden', 'aud-badtok')" "operator's requests"
h_eq "op-alice|$OP_UID|job.create|job|$JOB|success|127.0.0.1|201" \
  "$(h_psql -c "$sel 'aud-job-1'")" "job.create record"
h_eq "op-alice|$OP_UID|job.cancel|job|$JOB|success|127.0.0.1|200" \
  "$(h_psql -c "$sel 'aud-cancel-1'")" "job.cancel record"
h_eq "op-alice|$OP_UID|job.create|job|-|failure|127.0.0.1|422" \
  "$(h_psql -c "$sel 'aud-bad-1'")" "failed job.create record"
h_eq "op-alice|$OP_UID|profile.create|profile|-|denied|127.0.0.1|403" \
  "$(h_psql -c "$sel 'aud-forbidden'")" "403 record"
h_eq "anonymous|-|job.create|job|-|denied|127.0.0.1|401" \
  "$(h_psql -c "$sel 'aud-badtok'")" "401 record"
h_eq 0 "$(audit_count "request_id = 'aud-get'")" "GET not audited"
h_eq "audit-test/1.0|POST|/v1/jobs/$JOB/cancel|operator|auth-basic" \
  "$(h_psql -c "SELECT user_agent, details->>'method', details->>'path', details->>'role', details->>'via'
                FROM audit_log WHERE request_id = 'aud-cancel-1'")" "user agent and details"

# ---- the bootstrap admin --------------------------------------------------------------
RID=aud-prof as "$H_TOKEN" POST /v1/profiles \
  '{"id":"aud-720p","name":"Audit 720p","config":{"video":{"codec":"libx264","width":1280,"height":720,"crf":20,"preset":"fast","gop_s":2},"audio":{"codec":"aac","bitrate_kbps":160},"container":"mp4"}}'
[ "$H_STATUS" = 201 ] || h_fail "admin creates a profile: $H_STATUS $H_BODY"
RID=aud-prof-del as "$H_TOKEN" DELETE /v1/profiles/aud-720p
h_eq 204 "$H_STATUS" "admin deletes the profile"
wait_rows 2 "request_id IN ('aud-prof', 'aud-prof-del')" "admin's requests"
h_eq "bootstrap|-|profile.create|profile|aud-720p|success|127.0.0.1|201" \
  "$(h_psql -c "$sel 'aud-prof'")" "profile.create by bootstrap"
h_eq "bootstrap|-|profile.delete|profile|aud-720p|success|127.0.0.1|204" \
  "$(h_psql -c "$sel 'aud-prof-del'")" "profile.delete by bootstrap"

# ---- nothing secret is recorded ---------------------------------------------------------
for secret in "$OP_TOK" "$H_TOKEN" "correct-horse-battery" "we_not_a_real_token_at_all"; do
  h_eq 0 "$(h_psql -c "SELECT count(*) FROM audit_log WHERE concat_ws('|', actor, user_agent,
        resource_id, details::text) LIKE '%' || \$\$${secret}\$\$ || '%'")" "a secret in the audit log"
done

# ---- GET /v1/audit -----------------------------------------------------------------------
q() { h_req GET "/v1/audit$1"; [ "$H_STATUS" = 200 ] || h_fail "GET /v1/audit$1: $H_STATUS $H_BODY"; }
q "?user=op-alice"
h_eq 4 "$(h_jq '.items | length')" "records of op-alice by name"
h_eq "true" "$(h_jq '[.items[] | .actor == "op-alice"] | all')" "only op-alice"
q "?user=$OP_UID&action=job.create"
h_eq 2 "$(h_jq '.items | length')" "op-alice's job.create by user id"
q "?action=job."
h_eq 4 "$(h_jq '.items | length')" "action prefix job."
q "?action=job.*&result=denied"
h_eq "aud-badtok" "$(h_jq '.items[0].request_id')" "prefix job.* and denied"
q "?resource_type=job&resource_id=$JOB"
h_eq "job.cancel job.create" "$(h_jq '[.items[].action] | join(" ")')" "a job's history, newest first"
q "?result=denied"
h_eq 2 "$(h_jq '.items | length')" "denied records"
first=$(h_psql -c "SELECT to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM audit_log")
q "?until=$first"
h_eq 0 "$(h_jq '.items | length')" "until excludes its instant"
q "?since=$first&limit=500"
h_eq "$(audit_count true)" "$(h_jq '.items | length')" "since includes everything"
q "?since=2999-01-01T00:00:00Z"
h_eq 0 "$(h_jq '.items | length')" "since in the future"
# pagination: pages of 2 cover every record once, newest first
total=$(audit_count true)
seen=() cursor=""
for _ in $(seq 50); do
  q "?limit=2${cursor:+&cursor=$cursor}"
  while read -r id; do seen+=("$id"); done < <(h_jq '.items[].id')
  cursor=$(h_jq '.next_cursor // empty')
  [ -n "$cursor" ] || break
done
h_eq "$total" "${#seen[@]}" "records over all pages"
h_eq "$total" "$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)" "distinct records over all pages"
h_eq "$(h_psql -c "SELECT id FROM audit_log ORDER BY created_at DESC, id DESC LIMIT 1")" "${seen[0]}" "newest first"
for bad in "limit=0" "limit=501" "result=maybe" "since=yesterday" "action=JOB" "cursor=zzz" "format=xml"; do
  h_req GET "/v1/audit?$bad"
  h_eq 400 "$H_STATUS" "GET /v1/audit?$bad"
  h_eq WE-SYS-004 "$(h_jq .error.code)" "error code for $bad"
done
as "$OP_TOK" GET /v1/audit
h_eq 403 "$H_STATUS" "operator may not read the audit log"

# ---- CSV export ----------------------------------------------------------------------------
curl -q -sS -X POST -A '=HYPERLINK("http://evil.example","x")' -H "Authorization: Bearer $OP_TOK" \
  -H 'X-Request-Id: aud-formula' -H 'Content-Type: application/json' -o /dev/null \
  --data-binary '{"source_url":"fs://in/a.mp4","profiles":["480p-h264"]}' "$H_KERNEL_URL/v1/jobs"
wait_rows 1 "request_id = 'aud-formula'" "formula request"
curl -fsS -D "$H_DIR/csv.hdr" -o "$H_DIR/audit.csv" "$H_KERNEL_URL/v1/audit?format=csv&user=op-alice"
grep -qi '^content-type: text/csv' "$H_DIR/csv.hdr" || h_fail "CSV content type: $(cat "$H_DIR/csv.hdr")"
grep -qi '^content-disposition: attachment; filename="audit-.*\.csv"' "$H_DIR/csv.hdr" \
  || h_fail "CSV Content-Disposition: $(cat "$H_DIR/csv.hdr")"
curl -fsS -H 'Accept: text/csv' -o "$H_DIR/audit2.csv" "$H_KERNEL_URL/v1/audit?user=op-alice"
cmp -s "$H_DIR/audit.csv" "$H_DIR/audit2.csv" || h_fail "Accept: text/csv differs from format=csv"
/usr/bin/python3 - "$H_DIR/audit.csv" "$JOB" <<'PY' || h_fail "CSV export check failed"
import csv, json, sys
raw = open(sys.argv[1], newline="", encoding="utf-8").read()
assert "\r\n" in raw, "RFC 4180 line ends"
rows = list(csv.reader(raw.splitlines(keepends=True)))
header, body = rows[0], rows[1:]
assert header == ["id", "created_at", "actor", "user_id", "action", "resource_type", "resource_id",
                  "result", "client_ip", "user_agent", "request_id", "details"], header
assert len(body) == 5, f"{len(body)} rows"
rec = {r[10]: dict(zip(header, r)) for r in body}
f = rec["aud-formula"]
assert f["user_agent"] == "'=HYPERLINK(\"http://evil.example\",\"x\")", f["user_agent"]
c = rec["aud-cancel-1"]
assert (c["action"], c["resource_id"], c["result"], c["client_ip"]) == \
    ("job.cancel", sys.argv[2], "success", "127.0.0.1"), c
assert json.loads(c["details"])["status"] == 200, c["details"]
assert all(not r[i].startswith(("=", "+", "-", "@")) for r in body for i in range(len(r)))
print("csv ok:", len(body), "rows")
PY
curl -fsS -o "$H_DIR/page.csv" -D "$H_DIR/page.hdr" "$H_KERNEL_URL/v1/audit?format=csv&limit=1"
grep -qi '^x-next-cursor: ' "$H_DIR/page.hdr" || h_fail "CSV page without X-Next-Cursor"
h_eq 2 "$(wc -l <"$H_DIR/page.csv")" "CSV page of one record (header + 1)"

# ---- the JetStream copy -------------------------------------------------------------------
# stream_ids: "<Nats-Msg-Id> <subject> <id in the document>" per message of audit.>
stream_ids() {
  /usr/bin/python3 - "$H_NATS_PORT" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests", "lib"))
from nats_raw import Nats
nc = Nats(int(sys.argv[1]))
name = "chk" + os.urandom(4).hex()
nc.consumer_create("WEBENCODE_EVENTS", name, "audit.>")
while True:
    msgs = nc.pull("WEBENCODE_EVENTS", name, batch=500, expires_s=0.5)
    for m in msgs:
        print(m.headers.get("Nats-Msg-Id"), m.subject, json.loads(m.data)["id"])
    if not msgs:
        break
nc.consumer_delete("WEBENCODE_EVENTS", name)
nc.close()
PY
}
all_published() { [ "$(audit_count "published_at IS NULL")" = 0 ]; }
h_wait_for 15 all_published || h_fail "records not published: $(audit_count "published_at IS NULL")"
stream_ids >"$H_DIR/stream.txt"
h_eq "$(audit_count true)" "$(wc -l <"$H_DIR/stream.txt")" "one stream message per record"
h_eq 0 "$(awk '$1 != $3' "$H_DIR/stream.txt" | wc -l)" "Nats-Msg-Id is the record id"
cancel_id=$(h_psql -c "SELECT id FROM audit_log WHERE request_id = 'aud-cancel-1'")
h_contains "$(cat "$H_DIR/stream.txt")" "$cancel_id audit.job.cancel $cancel_id" "job.cancel on audit.job.cancel"
h_psql -c "SELECT id FROM audit_log ORDER BY id" >"$H_DIR/table.txt"
awk '{print $1}' "$H_DIR/stream.txt" | sort >"$H_DIR/stream.sorted"
cmp -s "$H_DIR/table.txt" "$H_DIR/stream.sorted" || h_fail "stream and table hold different records"

# ---- NATS down: recorded now, published later ------------------------------------------------
h_stop_nats
RID=aud-outage-1 as "$OP_TOK" POST "/v1/jobs/$JOB/retry"
RID=aud-outage-2 as "$H_TOKEN" POST /v1/workers/nobody/drain
wait_rows 2 "request_id IN ('aud-outage-1', 'aud-outage-2')" "records while NATS is down"
h_eq "worker.drain|nobody|failure" \
  "$(h_psql -c "SELECT action, resource_id, result FROM audit_log WHERE request_id = 'aud-outage-2'")" \
  "drain record"
sleep 1
h_eq 2 "$(audit_count "published_at IS NULL")" "unpublished while NATS is down"
h_start_nats
h_wait_for 30 all_published || h_fail "records not published after NATS came back"
stream_ids >"$H_DIR/stream2.txt"
h_eq "$(audit_count true)" "$(wc -l <"$H_DIR/stream2.txt")" "every record in the stream once after the outage"
h_contains "$(cat "$H_DIR/stream2.txt")" "audit.worker.drain" "the outage's drain record in the stream"

# ---- PostgreSQL down: the record waits in the kernel and is written when it is back -----------
h_stop_pg
RID=aud-dbdown as "$OP_TOK" POST "/v1/jobs/$JOB/cancel"
status_down=$H_STATUS
[ "$status_down" -ge 400 ] || h_fail "a cancel with the database down answered $status_down"
h_restart_pg
wait_rows 1 "request_id = 'aud-dbdown'" "the record of a request made while the database was down"
h_eq "job.cancel|failure|$status_down" \
  "$(h_psql -c "SELECT action, result, details->>'status' FROM audit_log WHERE request_id = 'aud-dbdown'")" \
  "record made while the database was down"
h_wait_for 15 all_published || h_fail "the record made while the database was down is not published"
h_pass
