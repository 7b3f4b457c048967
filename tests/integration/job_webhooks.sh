#!/usr/bin/env bash
# A job's webhook_urls (docs/webhooks.md "Per-job endpoints"), with local
# receivers (tests/lib/webhook_receiver.py) that verify every signature:
#  - a job with two webhook_urls gets one job-scoped webhook per URL and one
#    secret, shown in its 201 only (not in GET /v1/jobs/{id}, lists, logs);
#  - both endpoints receive job.created, job.started and job.completed of
#    that job, signed with that secret, and nothing of a job running beside it
#    (which an ordinary "*" webhook does receive);
#  - the endpoints are listed by /v1/webhooks with their job_id, secrets
#    masked, and their deliveries can be redelivered;
#  - a retry gets the same URLs and a new secret;
#  - without WEBHOOK_ALLOW_PRIVATE a private URL fails the submission (and a
#    retry) with 422 naming webhook_urls[i], and nothing is written;
#  - deleting a job deletes its webhooks and their deliveries.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

export WEBHOOK_ALLOW_PRIVATE=true WEBHOOK_RETRY_BASE_MS=200 WEBHOOK_MAX_AGE_S=60
export WEBHOOK_TIMEOUT_MS=2000 WEBHOOK_SWEEP_MS=500
S_ALL=all-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
h_secret "$S_ALL"

# recv NAME: a receiver whose secret is read from $H_DIR/NAME.secret (empty: 503)
recv() {
  : >"$H_DIR/$1.secret"
  touch "$H_DIR/$1.jsonl"
  /usr/bin/python3 "$WE_SRC/tests/lib/webhook_receiver.py" --secret-file "$H_DIR/$1.secret" \
    --out "$H_DIR/$1.jsonl" --port-file "$H_DIR/$1.port" >>"$H_DIR/recv-$1.log" 2>&1 &
  echo $! >"$H_DIR/recv-$1.pid"
  h_wait_for 10 test -s "$H_DIR/$1.port" || h_fail "receiver $1 did not start"
}
# set_secret NAME SECRET: atomically, so a request never reads half of it
set_secret() { printf '%s' "$2" >"$H_DIR/$1.tmp" && mv "$H_DIR/$1.tmp" "$H_DIR/$1.secret"; }
url() { echo "http://127.0.0.1:$(cat "$H_DIR/$1.port")/$2"; }
got() { jq -rs "$2" "$H_DIR/$1.jsonl"; }
# received NAME JOB N: waits until NAME accepted N deliveries about JOB
received() {
  h_wait_for 30 bash -c "[ \$(jq -s '[.[] | select(.answered == 200 and .body.resource.id == \"$2\")] | length' \
    '$H_DIR/$1.jsonl') -ge $3 ]" || h_fail "$1: fewer than $3 deliveries of job $2: $(cat "$H_DIR/$1.jsonl")"
}
count() { h_psql -c "SELECT count(*) FROM $1"; }

vod_stack 1
vod_media src.mp4 2 320x180 30
recv a
recv b
recv all
set_secret all "$S_ALL"
h_req POST /v1/webhooks "{\"url\":\"$(url all x)\",\"events\":[\"*\"],\"secret\":\"$S_ALL\"}"
h_eq 201 "$H_STATUS" "ordinary webhook ($H_BODY)"
WALL=$(h_jq .id)

# --- a job with two endpoints and a job without, side by side -------------------------------------
h_req POST /v1/jobs "{\"source_url\":\"fs://in/src.mp4\",\"profiles\":[\"480p-h264\"],
  \"webhook_urls\":[\"$(url a hook)\",\"$(url b hook)\"]}"
h_eq 201 "$H_STATUS" "submit with webhook_urls ($H_BODY)"
A=$(h_jq .id)
SEC=$(h_jq .webhook_secret)
h_secret "$SEC"
[[ $SEC =~ ^[0-9a-f]{64}$ ]] || h_fail "webhook_secret is not 32 random bytes in hex"
set_secret a "$SEC"
set_secret b "$SEC"
h_req POST /v1/jobs '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}'
h_eq 201 "$H_STATUS" "submit without webhook_urls"
B=$(h_jq .id)
h_eq false "$(h_jq 'has("webhook_secret")')" "no webhook_secret without webhook_urls"

h_req GET "/v1/jobs/$A"
h_eq false "$(h_jq 'has("webhook_secret")')" "GET /v1/jobs/{id} has no webhook_secret"
case $H_BODY in *"$SEC"*) h_fail "the secret is in GET /v1/jobs/{id}";; esac
h_req GET /v1/jobs
case $H_BODY in *"$SEC"*) h_fail "the secret is in GET /v1/jobs";; esac
h_eq "2|2|1|t" "$(h_psql -c "SELECT count(*), count(DISTINCT w.url), count(DISTINCT w.secret),
  bool_and(w.secret = '$SEC' AND w.active AND w.user_id IS NOT DISTINCT FROM j.user_id
  AND w.events = '{job.created,job.started,job.completed,job.failed,job.cancelled}')
  FROM webhooks w JOIN jobs j ON j.id = w.job_id WHERE w.job_id = '$A'")" "the job's webhooks rows"
URLS=$(printf '%s\n' "$(url a hook)" "$(url b hook)" | LC_ALL=C sort | paste -sd ' ')
h_eq "$URLS" "$(h_psql -c "SELECT string_agg(url, ' ' ORDER BY url COLLATE \"C\")
  FROM webhooks WHERE job_id = '$A'")" "one row per URL"
HA=$(h_psql -c "SELECT id FROM webhooks WHERE job_id = '$A' AND url = '$(url a hook)'")

h_req GET /v1/webhooks
h_eq 3 "$(h_jq .total)" "listed with the ordinary one"
h_eq "$A $A" "$(h_jq "[.items[] | select(.job_id != null) | .job_id] | join(\" \")")" "job_id in the list"
h_eq null "$(h_jq ".items[] | select(.id == \"$WALL\") | .job_id")" "ordinary webhook: job_id null"
h_eq '********' "$(h_jq '[.items[].secret] | unique | join(" ")')" "secrets masked in the list"
h_req GET "/v1/webhooks/$HA"
h_eq "$A ********" "$(h_jq '"\(.job_id) \(.secret)"')" "get a job's webhook"

vod_wait "$A" completed 120
vod_wait "$B" completed 120
received a "$A" 3
received b "$A" 3
received all "$B" 3  # B's events were queued by now: a and b would have them too
for r in a b; do
  h_eq "job.completed job.created job.started" \
    "$(got $r '[.[] | select(.answered == 200) | .event] | sort | join(" ")')" "$r: the job's events"
  h_eq true "$(got $r 'all(.sig_ok and .fresh)')" "$r: signed with the webhook_secret"
  h_eq "$A" "$(got $r '[.[].body.resource.id] | unique | join(" ")')" "$r: only job A"
done
h_eq 0 "$(h_psql -c "SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
  WHERE w.job_id IS NOT NULL AND d.payload #>> '{resource,id}' <> w.job_id::text")" \
  "no delivery of another resource to a job's webhook"
h_eq 6 "$(h_psql -c "SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
  WHERE w.job_id = '$A'")" "three deliveries per endpoint"
h_eq true "$(got all "[.[] | select(.event == \"job.completed\") | .body.resource.id] | (index(\"$A\") != null and index(\"$B\") != null)")" \
  "the ordinary webhook gets both jobs"

# deliveries of a job's webhook are listed and redeliverable like any
h_req GET "/v1/webhooks/$HA/deliveries"
h_eq "3 succeeded" "$(h_jq '"\(.total) \([.items[].status] | unique | join(" "))"')" "deliveries listed"
D=$(h_jq '.items[0].id')
h_req POST "/v1/webhooks/$HA/deliveries/$D/redeliver"
h_eq 202 "$H_STATUS" "redeliver ($H_BODY)"
h_wait_for 10 bash -c "[ \$(jq -s '[.[] | select(.delivery == \"$D\" and .answered == 200)] | length' '$H_DIR/a.jsonl') -eq 2 ]" \
  || h_fail "redelivery not received"

# --- a retry: the same URLs, a new secret ----------------------------------------------------------
set_secret a ""
set_secret b ""
h_req POST "/v1/jobs/$A/retry"
h_eq 201 "$H_STATUS" "retry ($H_BODY)"
R=$(h_jq .id)
SEC2=$(h_jq .webhook_secret)
h_secret "$SEC2"
[[ $SEC2 =~ ^[0-9a-f]{64}$ ]] || h_fail "the retry's webhook_secret is not 32 random bytes in hex"
[ "$SEC2" != "$SEC" ] || h_fail "the retry reused the secret"
set_secret a "$SEC2"
set_secret b "$SEC2"
h_eq "$URLS|$SEC2" "$(h_psql -c "SELECT string_agg(url, ' ' ORDER BY url COLLATE \"C\"),
  min(secret) FROM webhooks WHERE job_id = '$R'")" "the retry's webhooks"
vod_wait "$R" completed 120
received a "$R" 3
received b "$R" 3
h_eq true "$(got a 'all(.sig_ok and .fresh)')" "the retry's deliveries signed with its secret"

# --- deleting a job deletes its webhooks -----------------------------------------------------------
h_req DELETE "/v1/jobs/$A"
h_eq 204 "$H_STATUS" "delete job A ($H_BODY)"
h_eq "0|0" "$(h_psql -c "SELECT (SELECT count(*) FROM webhooks WHERE job_id = '$A'),
  (SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '$HA')")" "job A's webhooks and deliveries"
h_eq 2 "$(h_psql -c "SELECT count(*) FROM webhooks WHERE job_id = '$R'")" "the retry's webhooks stay"
h_req GET "/v1/webhooks/$HA"
h_eq 404 "$H_STATUS" "a deleted job's webhook"

# --- private addresses without WEBHOOK_ALLOW_PRIVATE ----------------------------------------------
h_stop_kernel
unset WEBHOOK_ALLOW_PRIVATE
PLUGIN_DIR=$H_DIR/kplugins h_start_kernel
jobs0=$(count jobs)
hooks0=$(count webhooks)
h_req POST /v1/jobs "{\"source_url\":\"fs://in/src.mp4\",\"profiles\":[\"480p-h264\"],
  \"webhook_urls\":[\"https://93.184.216.34/x\",\"$(url a hook)\"]}"
h_eq "422 WE-JOB-002 webhook_urls[1]" "$H_STATUS $(h_jq '"\(.error.code) \(.error.details.field)"')" \
  "a private URL refused ($H_BODY)"
h_contains "$(h_jq .error.message)" WEBHOOK_ALLOW_PRIVATE "the refusal names the variable"
h_req POST "/v1/jobs/$R/retry"
h_eq "422 webhook_urls[0]" "$H_STATUS $(h_jq .error.details.field)" "a retry with a private URL ($H_BODY)"
h_eq "$jobs0 $hooks0" "$(count jobs) $(count webhooks)" "nothing written"

for _ in $(seq 40); do  # the kernel's storage plugin may still be starting
  h_req DELETE "/v1/jobs/$R"
  [ "$H_STATUS" = 502 ] || break
  sleep 0.25
done
h_eq 204 "$H_STATUS" "delete the retry ($H_BODY)"
h_eq "1 0" "$(count webhooks) $(h_psql -c "SELECT count(*) FROM webhook_deliveries d
  JOIN webhooks w ON w.id = d.webhook_id WHERE w.job_id IS NOT NULL")" "only the ordinary webhook left"

# (neither secret in any log: checked by the harness, h_secret above)
h_pass
