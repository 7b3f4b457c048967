#!/usr/bin/env bash
# /v1/jobs without workers: a submission writes the job, its probe task, the
# task's outbox row and a log line, and answers 201 with the job; an
# Idempotency-Key makes repeats (also concurrent ones) return the same job;
# every bad body, source URL (scheme, key, file:// outside SOURCE_ALLOW_DIRS
# or through a link, loopback/private/link-local hosts, credentials),
# profile, header or query parameter is a 4xx naming it and writes nothing;
# SQL in inputs is stored as data; list filters, search and keyset
# pagination; get, tasks, logs, outputs with download URLs from storage-fs;
# cancel (then 409), retry (retry_of; a running job is cancelled first),
# delete (files and rows gone; a storage failure keeps everything: 502);
# malformed ids are 404; the database down is 503; responses match
# docs/openapi.yaml; SOURCE_ALLOW_PRIVATE=true lets private hosts through.
. "$(dirname "$0")/../lib/harness.sh"
WE_PLUGINS=${WE_PLUGINS:-$WE_SRC/plugins}

export PLUGIN_DIR=$H_DIR/plugins STORAGE_FS_ROOT=$H_DIR/storage
export SOURCE_ALLOW_DIRS="$H_DIR/nowhere:$H_DIR/media"
mkdir -p "$PLUGIN_DIR" "$STORAGE_FS_ROOT" "$H_DIR/media" "$H_DIR/outside"
cp -r "$WE_PLUGINS/storage-fs" "$PLUGIN_DIR/"
echo media >"$H_DIR/media/in.mp4"
echo secret >"$H_DIR/outside/in.mp4"
ln -s "$H_DIR/outside/in.mp4" "$H_DIR/media/link.mp4"

h_start_pg
h_migrate_up
# the system profiles come from a migration; make sure the ones used here exist
h_psql -c "INSERT INTO profiles (id, name, is_system, config) VALUES
  ('720p-h264', '720p H.264', true, '{}'), ('480p-h264', '480p H.264', true, '{}')
  ON CONFLICT (id) DO NOTHING"
h_start_nats
h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"

# req METHOD PATH [BODY [curl args...]]: like h_req, with extra curl arguments
# (headers); a BODY starting with @ names a file.
req() {
  local m=$1 p=$2 b=${3-}
  shift $(($# < 3 ? $# : 3))
  H_STATUS=$(curl -sS -o "$H_DIR/resp.body" -w '%{http_code}' -X "$m" ${b:+--data-binary "$b"} \
    -H 'Content-Type: application/json' --max-time 20 "$@" "$H_KERNEL_URL$p") || H_STATUS=000
  H_BODY=$(cat "$H_DIR/resp.body" 2>/dev/null || true)
}
jqc() { jq -c "$1" <<<"$H_BODY"; }
jobs_count() { h_psql -c "SELECT count(*) FROM jobs"; }
body() { jq -cn --arg s "$1" --argjson p "${2:-[\"720p-h264\"]}" '{source_url: $s, profiles: $p}'; }
submit() { # submit SOURCE [PROFILES_JSON]: expects 201, prints nothing, sets JOB
  req POST /v1/jobs "$(body "$@")"
  h_eq 201 "$H_STATUS" "submit $1: $H_BODY"
  JOB=$(h_jq .id)
}

# --- submit ---------------------------------------------------------------------
req POST /v1/jobs '{"source_url":"fs://in/a.mp4","profiles":["720p-h264","480p-h264"],
  "priority":5,"metadata":{"title":"First"},"publish_targets":[{"platform":"x"}],
  "webhook_urls":["https://93.184.216.34/a"]}'  # a public literal: no DNS needed
h_eq 201 "$H_STATUS" "POST /v1/jobs: $H_BODY"
A=$(h_jq .id)
h_secret "$(h_jq .webhook_secret)"  # the job's webhook secret (tests/integration/job_webhooks.sh)
h_eq queued "$(h_jq .status)" "new job status"
h_eq fs://in/a.mp4 "$(h_jq .source_url)" "source_url"
h_eq '["720p-h264","480p-h264"]' "$(jqc .profiles)" "profiles in order"
h_eq 5 "$(h_jq .priority)" "priority"
h_eq First "$(h_jq .metadata.title)" "metadata"
h_eq 0 "$(h_jq .progress)" "progress"
h_eq null "$(h_jq .eta_seconds)" "eta_seconds"
h_eq null "$(h_jq .error)" "error"
h_eq null "$(h_jq .probe)" "probe"
h_eq null "$(h_jq .retry_of)" "retry_of"
h_eq null "$(h_jq .finished_at)" "finished_at"
h_eq 1 "$(h_jq .task_counts.total)" "task_counts.total"
[[ $(h_jq .created_at) =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z$ ]] ||
  h_fail "created_at not RFC 3339 UTC: $(h_jq .created_at)"
h_eq "queued|5|{720p-h264,480p-h264}|[{\"platform\": \"x\"}]|{https://93.184.216.34/a}" \
  "$(h_psql -c "SELECT status, priority, profiles, publish_targets, webhook_urls FROM jobs WHERE id='$A'")" \
  "job row"
h_eq "probe|cpu|1|3|fs://in/a.mp4" \
  "$(h_psql -c "SELECT type, capability, attempt, max_attempts, params->>'input' FROM tasks WHERE job_id='$A'")" \
  "probe task"
h_contains "pending dispatched" "$(h_psql -c "SELECT status FROM tasks WHERE job_id='$A'")" "probe task status"
h_eq "1|jobs.dispatch.cpu|$A|probe" \
  "$(h_psql -c "SELECT o.attempt, o.subject, o.payload->>'job_id', o.payload->>'type'
                FROM task_outbox o JOIN tasks t ON t.id = o.task_id WHERE t.job_id='$A'")" "outbox row"
h_eq "job submitted" "$(h_psql -c "SELECT message FROM job_logs WHERE job_id='$A'")" "job log"

# --- idempotency ------------------------------------------------------------------
before=$(jobs_count)
req POST /v1/jobs "$(body fs://in/b.mp4)" -H 'Idempotency-Key: key-1'
h_eq 201 "$H_STATUS" "first submission with a key"
K1=$(h_jq .id)
first_keys=$(jqc 'keys')
req POST /v1/jobs "$(body fs://in/b.mp4)" -H 'Idempotency-Key: key-1'
h_eq 200 "$H_STATUS" "repeat with the same key"
h_eq "$K1" "$(h_jq .id)" "repeat returns the same job"
h_eq "$first_keys" "$(jqc 'keys')" "repeat has the same body shape"
h_eq 1 "$(h_psql -c "SELECT count(*) FROM jobs WHERE idempotency_key='key-1'")" "one row for key-1"
req POST /v1/jobs "$(body fs://in/b.mp4)" -H 'Idempotency-Key: key-2'
h_eq 201 "$H_STATUS" "another key"
[ "$(h_jq .id)" != "$K1" ] || h_fail "a different key returned the same job"
h_eq $((before + 2)) "$(jobs_count)" "jobs after the idempotent submissions"
# concurrent submissions with one key meet at the unique index: one job
racers=()
for i in 1 2 3 4 5 6; do
  curl -sS -o "$H_DIR/race.$i" -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
    -H 'Idempotency-Key: race' --data-binary "$(body fs://in/race.mp4)" "$H_KERNEL_URL/v1/jobs" \
    >"$H_DIR/race.$i.status" &
  racers+=($!)
done
wait "${racers[@]}"
h_eq 1 "$(cat "$H_DIR"/race.*.status | grep -c 201)" "one 201 among racing submissions"
h_eq 5 "$(cat "$H_DIR"/race.*.status | grep -c 200)" "five 200s among racing submissions"
h_eq 1 "$(jq -r .id "$H_DIR"/race.[0-9] | sort -u | wc -l)" "racing submissions got one job"
h_eq 1 "$(h_psql -c "SELECT count(*) FROM jobs WHERE idempotency_key='race'")" "one row for the race"

# --- refusals: 4xx naming the problem, nothing written ---------------------------------
long_key=$(printf 'k%.0s' $(seq 256))
profiles17=$(jq -cn '[range(17) | "p\(.)"]')
python3 -c 'import json; print(json.dumps({"source_url": "fs://a.mp4", "profiles": ["720p-h264"],
  "metadata": {"blob": "x" * 17000}}))' >"$H_DIR/huge.json"
python3 -c 'print("{\"source_url\":\"fs://a.mp4\",\"profiles\":[\"720p-h264\"],\"metadata\":{\"a\":"
  + "[" * 5000 + "]" * 5000 + "}}")' >"$H_DIR/deep.json"
inj="'; DROP TABLE jobs;--"
refused() { # STATUS CODE NEEDLE BODY [curl args]
  local st=$1 code=$2 needle=$3 b=$4 n
  shift 4
  n=$(jobs_count)
  req POST /v1/jobs "$b" "$@"
  h_eq "$st" "$H_STATUS" "status for $b ($H_BODY)"
  h_eq "$code" "$(h_jq .error.code)" "code for $b"
  h_contains "$(h_jq .error.message)" "$needle" "message for $b"
  h_eq "$n" "$(jobs_count)" "jobs after $b"
}
src() { body "$1"; }
S='"source_url":"fs://in/a.mp4"'
P='"profiles":["720p-h264"]'
refused 400 WE-SYS-004 "malformed JSON" '{"source_url":'
refused 400 WE-SYS-004 "JSON object" '[1,2]'
refused 400 WE-SYS-004 "required" ''
n=$(jobs_count)
H_STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' \
  --data-binary "$(src fs://a.mp4)" "$H_KERNEL_URL/v1/jobs")
h_eq "415|$n" "$H_STATUS|$(jobs_count)" "a body that is not application/json"
refused 422 WE-JOB-002 "source_url: required" "{$P}"
refused 422 WE-JOB-002 "profiles: required" "{$S}"
refused 422 WE-JOB-002 "source_url" "{\"source_url\":42,$P}"
refused 422 WE-JOB-002 "source_url" "{\"source_url\":\"\",$P}"
refused 422 WE-JOB-002 "source_url" "{\"source_url\":\"fs://a b.mp4\",$P}"
refused 422 WE-JOB-002 "profiles" "{$S,\"profiles\":\"720p-h264\"}"
refused 422 WE-JOB-002 "profiles" "{$S,\"profiles\":[]}"
refused 422 WE-JOB-002 "profiles[0]" "{$S,\"profiles\":[7]}"
refused 422 WE-JOB-002 "profiles" "{$S,\"profiles\":$profiles17}"
refused 422 WE-JOB-002 "listed twice" "{$S,\"profiles\":[\"720p-h264\",\"720p-h264\"]}"
refused 422 WE-JOB-003 '"nope-4k"' "{$S,\"profiles\":[\"720p-h264\",\"nope-4k\"]}"
refused 422 WE-JOB-003 "DROP TABLE" "$(jq -cn --arg p "720p$inj" '{source_url:"fs://a.mp4", profiles:[$p]}')"
refused 422 WE-JOB-002 "priorty, colour" "{$S,$P,\"priorty\":5,\"colour\":1}"
refused 422 WE-JOB-002 "priority" "{$S,$P,\"priority\":101}"
refused 422 WE-JOB-002 "priority" "{$S,$P,\"priority\":-101}"
refused 422 WE-JOB-002 "priority" "{$S,$P,\"priority\":\"5\"}"
refused 422 WE-JOB-002 "priority" "{$S,$P,\"priority\":1.5}"
refused 422 WE-JOB-002 "metadata" "{$S,$P,\"metadata\":[1]}"
refused 422 WE-JOB-002 "metadata: larger than 16384" "@$H_DIR/huge.json"
refused 400 WE-SYS-004 "nests deeper than" "@$H_DIR/deep.json"
refused 422 WE-JOB-002 "publish_targets[0]" "{$S,$P,\"publish_targets\":[1]}"
refused 422 WE-JOB-002 "webhook_urls[0]" "{$S,$P,\"webhook_urls\":[\"ftp://x/y\"]}"
refused 422 WE-JOB-002 "webhook_urls" "{$S,$P,\"webhook_urls\":$(jq -cn '[range(11) | "https://h/\(.)"]')}"
refused 422 WE-JOB-002 "capability" "{$S,$P,\"capability\":\"a.b\"}"
refused 422 WE-JOB-002 "capability" "{$S,$P,\"capability\":\"\"}"
refused 422 WE-JOB-003 "nope" "$(jq -cn --arg v "$inj" '{source_url:"fs://a.mp4", profiles:["nope"], metadata:{x:$v}}')"
refused 400 WE-JOB-004 "Idempotency-Key" "$(src fs://a.mp4)" -H "Idempotency-Key: $long_key"
# source URLs
refused 422 WE-JOB-002 "unsupported scheme" "$(src ftp://host/a.mp4)"
refused 422 WE-JOB-002 "unsupported scheme" "$(src /etc/passwd)"
refused 422 WE-JOB-002 "relative" "$(src fs:///etc/passwd)"
refused 422 WE-JOB-002 "relative" "$(src fs://in/../../etc/passwd)"
refused 422 WE-JOB-002 "relative" "$(src fs://in//a.mp4)"
refused 422 WE-JOB-002 "relative" "$(src fs://in/./a.mp4)"
refused 422 WE-JOB-002 "1 to 1024" "$(src fs://)"
refused 422 WE-JOB-002 "letters, digits" "$(src 'fs://in\a.mp4')"
refused 422 WE-JOB-002 "source_url" "$(src "fs://$inj")"
refused 422 WE-JOB-002 "letters, digits" "$(src "fs://${inj// /}")"
refused 422 WE-JOB-002 "letters, digits" "$(src "fs://in/\$(reboot).mp4")"
refused 422 WE-JOB-002 "no storage plugin serves s3" "$(src s3://bucket/in/a.mp4)"
refused 422 WE-JOB-002 "bucket" "$(src s3://B/in/a.mp4)"
refused 422 WE-JOB-002 "SOURCE_ALLOW_DIRS" "$(src file:///etc/passwd)"
refused 422 WE-JOB-002 "SOURCE_ALLOW_DIRS" "$(src "file://$H_DIR/outside/in.mp4")"
refused 422 WE-JOB-002 "SOURCE_ALLOW_DIRS" "$(src "file://$H_DIR/media/../outside/in.mp4")"
refused 422 WE-JOB-002 "SOURCE_ALLOW_DIRS" "$(src "file://$H_DIR/media/link.mp4")"
refused 422 WE-JOB-002 "SOURCE_ALLOW_DIRS" "$(src "file://$H_DIR/media/missing.mp4")"
refused 422 WE-JOB-002 "SOURCE_ALLOW_DIRS" "$(src "file://$H_DIR/media")"
refused 422 WE-JOB-002 "absolute path" "$(src file://localhost/etc/passwd)"
for u in http://127.0.0.1/x.mp4 http://10.0.0.1/x http://169.254.169.254/ http://172.16.5.4/x \
  http://192.168.1.1/x http://0.0.0.0/x 'http://[::1]/x' 'http://[::ffff:127.0.0.1]/x' \
  'http://[fe80::1]/x' 'http://[fd00::1]/x' http://2130706433/x http://0x7f.1/x \
  http://localhost:8080/x https://224.0.0.1/x; do
  refused 422 WE-JOB-002 "SOURCE_ALLOW_PRIVATE" "$(src "$u")"
done
refused 422 WE-JOB-002 "credentials" "$(src https://user:pw@example.com/a.mp4)"
refused 422 WE-JOB-002 "credentials" "$(src https://user@93.184.216.34/a.mp4)"
refused 422 WE-JOB-002 "host[:port]" "$(src http:///x)"
refused 422 WE-JOB-002 "host[:port]" "$(src http://93.184.216.34:99999/x)"
refused 422 WE-JOB-002 "host[:port]" "$(src 'http://a%2eb/x')"
refused 422 WE-JOB-002 "host[:port]" "$(src 'http://[::1/x')"
h_psql -c "SELECT 1 FROM jobs LIMIT 1" >/dev/null || h_fail "jobs table damaged"

# --- accepted sources; SQL in inputs is data -----------------------------------------------
submit "file://$H_DIR/media/in.mp4"
h_eq "file://$(realpath "$H_DIR/media/in.mp4")" "$(h_jq .source_url)" "file:// stored canonical"
submit http://93.184.216.34/in.mp4
submit "fs://in/My-Clip_(2024)_[final].mp4"
req POST /v1/jobs "$(jq -cn --arg v "$inj" '{source_url:"fs://in/a.mp4", profiles:["480p-h264"],
  metadata:{note:$v, title:"Needle_100%"}}')"
h_eq 201 "$H_STATUS" "SQL in metadata is accepted as data"
NEEDLE=$(h_jq .id)
h_eq "$inj" "$(h_jq .metadata.note)" "metadata round-trips"
h_eq "$inj" "$(h_psql -c "SELECT metadata->>'note' FROM jobs WHERE id='$NEEDLE'")" "metadata stored as given"
req POST /v1/jobs '{"source_url":"fs://in/gpu.mp4","profiles":["720p-h264"],"capability":"nvidia-test"}'
h_eq 201 "$H_STATUS" "capability override"
GPU=$(h_jq .id)
h_eq nvidia-test "$(h_psql -c "SELECT capability FROM tasks WHERE job_id='$GPU'")" "probe capability"
h_eq jobs.dispatch.nvidia-test "$(h_psql -c "SELECT o.subject FROM task_outbox o JOIN tasks t
  ON t.id = o.task_id WHERE t.job_id='$GPU'")" "outbox subject"
gpu_waiting() {
  curl -fsS "$H_KERNEL_URL/v1/jobs/$GPU" |
    jq -e '.wait_reason == "no healthy worker with capability nvidia-test"'
}
h_wait_for 15 gpu_waiting || h_fail "no wait_reason for a capability nobody has"

# --- get, tasks, logs ------------------------------------------------------------------
req GET "/v1/jobs/$A"
h_eq 200 "$H_STATUS" "GET job"
h_eq "$A" "$(h_jq .id)" "GET id"
h_eq '{"cancelled":0,"completed":0,"failed":0,"total":1}' \
  "$(jqc '.task_counts | {cancelled, completed, failed, total}')" "task_counts"
for bad in not-a-uuid "$A"x 00000000-0000-0000-0000-00000000000g "${A//-/}" "%27%3B"; do
  req GET "/v1/jobs/$bad"
  h_eq 404 "$H_STATUS" "GET /v1/jobs/$bad"
  h_eq WE-JOB-001 "$(h_jq .error.code)" "code for a malformed id"
done
req GET /v1/jobs/00000000-0000-4000-8000-000000000000
h_eq 404 "$H_STATUS" "unknown job"
req GET "/v1/jobs/$A/tasks"
h_eq 200 "$H_STATUS" "GET tasks"
h_eq "probe|cpu|1|3|null" "$(h_jq '.items[0] | "\(.type)|\(.capability)|\(.attempt)|\(.max_attempts)|\(.profile)"')" \
  "task item"
req GET /v1/jobs/00000000-0000-4000-8000-000000000000/tasks
h_eq 404 "$H_STATUS" "tasks of an unknown job"
h_psql -c "INSERT INTO job_logs (job_id, level, message)
  SELECT '$A', 'info', 'line ' || g FROM generate_series(1, 5) g"
req GET "/v1/jobs/$A/logs?limit=4"
h_eq 200 "$H_STATUS" "GET logs"
h_eq "job submitted" "$(h_jq '.items[0].message')" "first log line"
h_eq 4 "$(h_jq '.items | length')" "logs limit"
next=$(h_jq .next_after)
h_eq "$next" "$(h_jq '.items[-1].id')" "next_after is the last id"
req GET "/v1/jobs/$A/logs?after=$next"
h_eq "$(h_psql -c "SELECT string_agg(message, ',' ORDER BY id) FROM job_logs WHERE job_id='$A' AND id > $next")" \
  "$(h_jq '[.items[].message] | join(",")')" "logs after"
last=$(h_jq .next_after)
req GET "/v1/jobs/$A/logs?after=$last"
h_eq "0|$last" "$(h_jq '"\(.items | length)|\(.next_after)"')" "nothing new: same next_after"
for q in after=-1 after=x limit=0 limit=1001; do
  req GET "/v1/jobs/$A/logs?$q"
  h_eq 400 "$H_STATUS" "logs ?$q"
  h_eq WE-JOB-004 "$(h_jq .error.code)" "logs ?$q code"
done

# --- outputs ---------------------------------------------------------------------------
sha=$(printf 'out' | sha256sum | cut -d' ' -f1)
mkdir -p "$STORAGE_FS_ROOT/jobs/$A/720p-h264"
printf 'out' >"$STORAGE_FS_ROOT/jobs/$A/720p-h264/output.mp4"
h_psql -c "INSERT INTO job_outputs (job_id, profile, kind, storage_plugin, storage_key, size_bytes,
  checksum_sha256, content_type) VALUES
  ('$A', '720p-h264', 'video', 'storage-fs', 'jobs/$A/720p-h264/output.mp4', 3, '$sha', 'video/mp4'),
  ('$A', '480p-h264', 'video', 'storage-gone', 'jobs/$A/480p-h264/output.mp4', 3, '$sha', NULL)"
req GET "/v1/jobs/$A/outputs"
h_eq 200 "$H_STATUS" "GET outputs"
h_eq "storage-gone|null" "$(h_jq '.items[0] | "\(.storage_plugin)|\(.url)"')" "output of a missing plugin"
h_eq "720p-h264|video|jobs/$A/720p-h264/output.mp4|3|$sha|video/mp4" \
  "$(h_jq '.items[1] | "\(.profile)|\(.kind)|\(.key)|\(.size_bytes)|\(.sha256)|\(.content_type)"')" "output item"
h_eq "file://$STORAGE_FS_ROOT/jobs/$A/720p-h264/output.mp4" "$(h_jq '.items[1].url')" "download URL"

# --- list -------------------------------------------------------------------------------
total=$(jobs_count)
req GET /v1/jobs
h_eq 200 "$H_STATUS" "GET /v1/jobs"
h_eq "$total" "$(h_jq .total)" "total"
h_eq null "$(h_jq .next_cursor)" "one page"
h_eq "$(h_psql -c "SELECT string_agg(id::text, ',' ORDER BY created_at DESC, id DESC) FROM jobs")" \
  "$(h_jq '[.items[].id] | join(",")')" "newest first"
seen=""
cursor=""
pages=0
while :; do
  req GET "/v1/jobs?limit=3${cursor:+&cursor=$cursor}"
  h_eq 200 "$H_STATUS" "page $pages"
  h_eq "$total" "$(h_jq .total)" "total on page $pages"
  seen="$seen$(h_jq '.items[].id')"$'\n'
  pages=$((pages + 1))
  cursor=$(h_jq '.next_cursor // empty')
  [ -n "$cursor" ] || break
  [ $pages -lt 50 ] || h_fail "pagination does not end"
done
h_eq "$total" "$(grep -c . <<<"$seen")" "pages cover every job"
h_eq "$total" "$(grep . <<<"$seen" | sort -u | wc -l)" "no job twice across pages"
h_eq $(((total + 2) / 3)) "$pages" "page count"
req GET "/v1/jobs?q=needle_100%25"
h_eq "1|$NEEDLE" "$(h_jq '"\(.total)|\(.items[0].id)"')" "search in metadata, case-insensitive"
req GET "/v1/jobs?q=needle_100%25%25"
h_eq 0 "$(h_jq .total)" "% is literal in search"
req GET "/v1/jobs?q=le_1"
h_eq 1 "$(h_jq .total)" "_ is literal in search"
req GET "/v1/jobs?q=MY-CLIP"
h_eq 1 "$(h_jq .total)" "search in source_url"
req GET "/v1/jobs?q=%27%3B%20DROP%20TABLE"
h_eq 1 "$(h_jq .total)" "search for SQL is a search"
req GET "/v1/jobs?profile=480p-h264"
h_eq "$(h_psql -c "SELECT count(*) FROM jobs WHERE '480p-h264' = ANY(profiles)")" "$(h_jq .total)" \
  "profile filter"
req GET "/v1/jobs?status=queued,cancelled&created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00%2B01:00"
h_eq "$total" "$(h_jq .total)" "status and time filters"
req GET "/v1/jobs?created_after=2999-01-01T00:00:00Z"
h_eq "0|0|null" "$(h_jq '"\(.total)|\(.items | length)|\(.next_cursor)"')" "nothing after 2999"
for q in status=queued,bogus status=QUEUED created_after=yesterday created_before=2024-13-01T00:00:00Z \
  limit=0 limit=201 limit=ten cursor=garbage "cursor=$(printf 'x|y' | base64)" \
  "q=$(printf 'q%.0s' $(seq 201))"; do
  req GET "/v1/jobs?$q"
  h_eq 400 "$H_STATUS" "GET /v1/jobs?$q"
  h_eq WE-JOB-004 "$(h_jq .error.code)" "code for ?$q"
  h_contains "$(h_jq .error.message)" "${q%%=*}" "message names ${q%%=*}"
done

# --- cancel, retry ----------------------------------------------------------------------
req POST "/v1/jobs/$K1/cancel"
h_eq 200 "$H_STATUS" "cancel"
h_eq cancelled "$(h_jq .status)" "cancelled"
[ "$(h_jq .finished_at)" != null ] || h_fail "finished_at not set on cancel"
h_eq 0 "$(h_psql -c "SELECT count(*) FROM tasks WHERE job_id='$K1' AND status <> 'cancelled'")" \
  "tasks cancelled"
req POST "/v1/jobs/$K1/cancel"
h_eq 409 "$H_STATUS" "cancel twice"
h_eq WE-JOB-005 "$(h_jq .error.code)" "cancel twice code"
h_eq "job is already cancelled" "$(h_jq .error.message)" "cancel twice message"
req POST /v1/jobs/00000000-0000-4000-8000-000000000000/cancel
h_eq 404 "$H_STATUS" "cancel an unknown job"
req POST /v1/jobs/nope/cancel
h_eq 404 "$H_STATUS" "cancel a malformed id"
req POST "/v1/jobs/$K1/retry"
h_eq 201 "$H_STATUS" "retry a cancelled job"
R1=$(h_jq .id)
h_eq "$K1|queued|fs://in/b.mp4|[\"720p-h264\"]" \
  "$(h_jq '"\(.retry_of)|\(.status)|\(.source_url)|\(.profiles | tojson)"')" "retry copies the job"
req POST "/v1/jobs/$A/retry"
h_eq 201 "$H_STATUS" "retry a queued job"
RA=$(h_jq .id)
h_secret "$(h_jq .webhook_secret)"
h_eq "$A|5|First|2" "$(h_jq '"\(.retry_of)|\(.priority)|\(.metadata.title)|\(.profiles | length)"')" \
  "retry keeps priority, metadata, profiles"
h_eq cancelled "$(h_psql -c "SELECT status FROM jobs WHERE id='$A'")" "a retried running job is cancelled"
h_eq '[{"platform": "x"}]|{https://93.184.216.34/a}' \
  "$(h_psql -c "SELECT publish_targets, webhook_urls FROM jobs WHERE id='$RA'")" "retry keeps targets and hooks"
h_contains "$(h_psql -c "SELECT message FROM job_logs WHERE job_id='$A'")" "retried as job $RA" "old job's log"
req POST "/v1/jobs/$GPU/retry"
h_eq nvidia-test "$(h_psql -c "SELECT capability FROM tasks WHERE job_id='$(h_jq .id)'")" \
  "retry keeps the capability override"
req POST /v1/jobs/00000000-0000-4000-8000-000000000000/retry
h_eq 404 "$H_STATUS" "retry an unknown job"

# --- delete -----------------------------------------------------------------------------
req DELETE "/v1/jobs/$A"
h_eq 502 "$H_STATUS" "delete with outputs in a missing storage plugin"
h_eq WE-STO-500 "$(h_jq .error.code)" "storage failure code"
h_eq 1 "$(h_psql -c "SELECT count(*) FROM jobs WHERE id='$A'")" "the job stays after a storage failure"
h_eq 2 "$(h_psql -c "SELECT count(*) FROM job_outputs WHERE job_id='$A'")" "its outputs stay"
h_psql -c "DELETE FROM job_outputs WHERE job_id='$A' AND storage_plugin='storage-gone'"
req DELETE "/v1/jobs/$A"
h_eq 204 "$H_STATUS" "delete"
h_eq "" "$H_BODY" "204 without a body"
h_eq 0 "$(h_psql -c "SELECT (SELECT count(*) FROM jobs WHERE id='$A') + (SELECT count(*) FROM tasks
  WHERE job_id='$A') + (SELECT count(*) FROM job_logs WHERE job_id='$A')")" "rows gone"
[ ! -e "$STORAGE_FS_ROOT/jobs/$A" ] || h_fail "stored files not deleted"
h_eq null "$(h_psql -c "SELECT coalesce(retry_of::text, 'null') FROM jobs WHERE id='$RA'")" \
  "the retry stands alone once the original is gone"
req GET "/v1/jobs/$A"
h_eq 404 "$H_STATUS" "GET a deleted job"
req DELETE "/v1/jobs/$A"
h_eq 404 "$H_STATUS" "delete twice"
req DELETE "/v1/jobs/$R1"
h_eq 204 "$H_STATUS" "delete a queued job (cancelled first)"
req DELETE /v1/jobs/not-a-uuid
h_eq 404 "$H_STATUS" "delete a malformed id"

# --- the spec ---------------------------------------------------------------------------
h_psql -c "INSERT INTO job_outputs (job_id, profile, kind, storage_plugin, storage_key, size_bytes,
  checksum_sha256) VALUES ('$NEEDLE', '480p-h264', 'video', 'storage-gone', 'jobs/x/y.mp4', 3, '$sha')"
submit fs://in/spec.mp4
SPEC=$JOB
/usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$WE_SRC/docs/openapi.yaml" \
  "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" \
  "GET /v1/jobs" "GET /v1/jobs/$NEEDLE" "GET /v1/jobs/$RA/tasks" "GET /v1/jobs/$RA/logs" \
  "GET /v1/jobs/$NEEDLE/outputs" "GET /v1/jobs/nope" "GET /v1/jobs/nope/tasks" \
  "GET /v1/jobs/nope/logs" "GET /v1/jobs/nope/outputs" "POST /v1/jobs" \
  "POST /v1/jobs/$SPEC/cancel" "POST /v1/jobs/$SPEC/cancel" "POST /v1/jobs/$SPEC/retry" \
  "POST /v1/jobs/nope/retry" "DELETE /v1/jobs/$NEEDLE" "DELETE /v1/jobs/nope" \
  || h_fail "openapi check failed"

# --- the database down: 503 ----------------------------------------------------------------
n=$(jobs_count)
h_stop_pg
req GET /v1/jobs
h_eq 503 "$H_STATUS" "list with the database down"
h_eq WE-SYS-006 "$(h_jq .error.code)" "code with the database down"
req POST /v1/jobs "$(body fs://in/down.mp4)"
h_eq 503 "$H_STATUS" "submit with the database down"
req GET "/v1/jobs/$RA"
h_eq 503 "$H_STATUS" "get with the database down"
/usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$WE_SRC/docs/openapi.yaml" \
  "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" "GET /v1/jobs" "GET /v1/jobs/$RA/tasks" \
  || h_fail "503 responses do not match the spec"
h_restart_pg
h_wait_for 20 h_psql -c "SELECT 1" || h_fail "PostgreSQL did not come back"
h_eq "$n" "$(jobs_count)" "nothing written while the database was down"

# --- SOURCE_ALLOW_PRIVATE=true ----------------------------------------------------------------
h_stop_kernel
SOURCE_ALLOW_PRIVATE=true h_start_kernel
submit http://127.0.0.1:9/x.mp4
refused 422 WE-JOB-002 "credentials" "$(src http://u:p@127.0.0.1/x.mp4)"
h_pass
