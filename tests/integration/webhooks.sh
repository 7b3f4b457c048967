#!/usr/bin/env bash
# Webhooks end to end (docs/webhooks.md), with local receivers
# (tests/lib/webhook_receiver.py) that verify every signature and timestamp:
#  - CRUD, validation naming the field, the secret write-only (shown once,
#    masked after, kept by a PUT without it or with the mask, never logged);
#  - a real job's job.created, job.started, job.completed, in that order,
#    signed, each event delivered once; a "*" webhook gets them too, and
#    job.failed (corrupt input) and job.cancelled;
#  - a receiver failing 3 times: 4 attempts, growing delays, last error kept;
#  - a receiver that always fails: failed after WEBHOOK_MAX_AGE_S;
#  - manual redelivery of a succeeded delivery; the test ping;
#  - private addresses refused at creation without WEBHOOK_ALLOW_PRIVATE, and
#    at send time for a webhook created while they were allowed;
#  - a delivery whose message was lost is re-published by the sweeper;
#  - kill -9 of the kernel between two attempts: the delivery still completes.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"

export WEBHOOK_ALLOW_PRIVATE=true WEBHOOK_RETRY_BASE_MS=200 WEBHOOK_MAX_AGE_S=3
export WEBHOOK_TIMEOUT_MS=2000 WEBHOOK_SWEEP_MS=500
S1=s1-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
S2=s2-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
h_secret "$S1"  # the harness fails the test if a log under $H_DIR contains one
h_secret "$S2"
h_secret a-brand-new-secret-0123

# recv NAME SECRET [ARGS...]: starts a receiver; its port is in $H_DIR/NAME.port
recv() {
  local name=$1 secret=$2
  shift 2
  touch "$H_DIR/$name.jsonl"
  /usr/bin/python3 "$WE_SRC/tests/lib/webhook_receiver.py" --secret "$secret" \
    --out "$H_DIR/$name.jsonl" --port-file "$H_DIR/$name.port" "$@" >>"$H_DIR/recv-$name.log" 2>&1 &
  echo $! >"$H_DIR/recv-$name.pid"
  h_wait_for 10 test -s "$H_DIR/$name.port" || h_fail "receiver $name did not start"
}
url() { echo "http://127.0.0.1:$(cat "$H_DIR/$1.port")/$2"; }
# got NAME JQ_FILTER: jq over the receiver's records (an array)
got() { jq -rs "$2" "$H_DIR/$1.jsonl"; }
# hook URL EVENTS_JSON [SECRET]: creates a webhook, echoes its id
hook() {
  h_req POST /v1/webhooks "{\"url\":\"$1\",\"events\":$2${3:+,\"secret\":\"$3\"}}"
  [ "$H_STATUS" = 201 ] || h_fail "create webhook $1: $H_STATUS $H_BODY"
  h_jq .id
}
# delivery ID COLUMNS: the delivery's columns, |-separated
delivery() { h_psql -c "SELECT $2 FROM webhook_deliveries WHERE id = '$1'"; }
# refused STATUS CODE FIELD BODY [METHOD PATH]
refused() {
  h_req "${5:-POST}" "${6:-/v1/webhooks}" "$4"
  h_eq "$1" "$H_STATUS" "status for $4"
  h_eq "$2" "$(h_jq .error.code)" "code for $4 ($H_BODY)"
  [ -z "$3" ] || h_eq "$3" "$(h_jq .error.details.field)" "field for $4 ($H_BODY)"
}
ping() {
  h_req POST "/v1/webhooks/$1/test"
  h_eq 202 "$H_STATUS" "test ping ($H_BODY)"
  h_jq .id
}

vod_stack 1
vod_media src.mp4 2 320x180 30
recv ok "$S1"

# --- CRUD, validation, the write-only secret ---------------------------------------------------
U=$(url ok hook)
refused 422 WE-SYS-031 url '{"events":["job.created"]}'
refused 422 WE-SYS-031 url '{"url":"ftp://x/y","events":["job.created"]}'
refused 422 WE-SYS-031 url "{\"url\":\"http://h/$(head -c 2100 /dev/zero | tr '\0' a)\",\"events\":[\"*\"]}"
refused 422 WE-SYS-031 url '{"url":"https://u:p@example.com/x","events":["*"]}'
refused 422 WE-SYS-031 url '{"url":"https://exa mple.com/x","events":["*"]}'
refused 422 WE-SYS-031 events "{\"url\":\"$U\"}"
refused 422 WE-SYS-031 events "{\"url\":\"$U\",\"events\":[]}"
refused 422 WE-SYS-031 "events[1]" "{\"url\":\"$U\",\"events\":[\"job.created\",\"job.exploded\"]}"
refused 422 WE-SYS-031 "events[1]" "{\"url\":\"$U\",\"events\":[\"job.created\",\"job.created\"]}"
refused 422 WE-SYS-031 "events[0]" "{\"url\":\"$U\",\"events\":[\"job.progress\"]}"
refused 422 WE-SYS-031 secret "{\"url\":\"$U\",\"events\":[\"*\"],\"secret\":\"short\"}"
refused 422 WE-SYS-031 secret "{\"url\":\"$U\",\"events\":[\"*\"],\"secret\":\"********\"}"
refused 422 WE-SYS-031 active "{\"url\":\"$U\",\"events\":[\"*\"],\"active\":\"yes\"}"
refused 422 WE-SYS-031 colour "{\"url\":\"$U\",\"events\":[\"*\"],\"colour\":1}"
refused 400 WE-SYS-004 "" '{"url":'

h_req POST /v1/webhooks "{\"url\":\"$U\",\"events\":[\"job.created\"]}"
h_eq 201 "$H_STATUS" "create with a generated secret"
GEN=$(h_jq .secret)
GEN_ID=$(h_jq .id)
h_secret "$GEN"
[[ $GEN =~ ^[0-9a-f]{64}$ ]] || h_fail "generated secret [$GEN] is not 32 random bytes in hex"
h_eq "$GEN" "$(h_psql -c "SELECT secret FROM webhooks WHERE id = '$GEN_ID'")" "stored secret"
h_req GET "/v1/webhooks/$GEN_ID"
h_eq 200 "$H_STATUS" "get"
h_eq '********' "$(h_jq .secret)" "secret masked on read"
h_eq '["job.created"]' "$(jq -c .events <<<"$H_BODY")" "events"
h_eq true "$(h_jq .active)" "active by default"
h_req PUT "/v1/webhooks/$GEN_ID" '{"events":["job.failed","job.cancelled"],"secret":"********"}'
h_eq 200 "$H_STATUS" "put with the mask ($H_BODY)"
h_eq '********' "$(h_jq .secret)" "secret masked on update"
h_eq '["job.failed","job.cancelled"]' "$(jq -c .events <<<"$H_BODY")" "events changed"
h_eq "$GEN" "$(h_psql -c "SELECT secret FROM webhooks WHERE id = '$GEN_ID'")" "mask keeps the secret"
h_req PUT "/v1/webhooks/$GEN_ID" '{"active":false}'
h_eq "$GEN" "$(h_psql -c "SELECT secret FROM webhooks WHERE id = '$GEN_ID'")" "no secret keeps it"
h_eq false "$(h_jq .active)" "deactivated"
h_req PUT "/v1/webhooks/$GEN_ID" '{"secret":"a-brand-new-secret-0123"}'
h_eq 200 "$H_STATUS" "rotate the secret"
h_eq "a-brand-new-secret-0123" "$(h_psql -c "SELECT secret FROM webhooks WHERE id = '$GEN_ID'")" "rotated"
refused 422 WE-SYS-031 body '{}' PUT "/v1/webhooks/$GEN_ID"
refused 404 WE-SYS-030 "" '{"active":true}' PUT /v1/webhooks/00000000-0000-0000-0000-000000000000
h_req GET /v1/webhooks
h_eq 1 "$(h_jq .total)" "list"
h_eq '********' "$(h_jq '.items[0].secret')" "secret masked in the list"
h_req DELETE "/v1/webhooks/$GEN_ID"
h_eq 204 "$H_STATUS" "delete"
h_req GET "/v1/webhooks/$GEN_ID"
h_eq 404 "$H_STATUS" "deleted webhook"
h_eq WE-SYS-030 "$(h_jq .error.code)" "deleted webhook code"
h_req GET /v1/webhooks/not-a-uuid
h_eq 404 "$H_STATUS" "malformed id"

# --- a real job: created, started, completed, in order, signed ------------------------------------
W1=$(hook "$U" '["job.created","job.started","job.completed"]' "$S1")
WALL=$(hook "$(url ok all)" '["*"]' "$S1")
JOB=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
vod_wait "$JOB" completed 120
h_wait_for 20 bash -c "[ \$(jq -s '[.[] | select(.path == \"/hook\" and .answered == 200)] | length' '$H_DIR/ok.jsonl') -ge 3 ]" \
  || h_fail "job events not delivered: $(cat "$H_DIR/ok.jsonl")"
h_eq "job.created job.started job.completed" "$(got ok '[.[] | select(.path == "/hook") | .event] | join(" ")')" \
  "events in order"
h_eq "true" "$(got ok 'all(.sig_ok and .fresh)')" "every signature and timestamp valid"
h_eq "$JOB $JOB $JOB" "$(got ok '[.[] | select(.path == "/hook") | .body.data.id] | join(" ")')" "the job's id in data"
h_eq "$(got ok '[.[] | select(.path == "/hook") | .event] | join(" ")')" \
  "$(got ok '[.[] | select(.path == "/hook") | .body.type] | join(" ")')" "X-WebEncode-Event = body type"
h_eq "true" "$(got ok '[.[] | select(.path == "/hook") | .event_id == .body.id] | all')" "X-WebEncode-Event-Id = body id"
h_eq 3 "$(got ok '[.[] | select(.path == "/hook") | .event_id] | unique | length')" "each event delivered once"
h_eq "completed 1" "$(got ok '.[] | select(.path == "/hook" and .event == "job.completed") | "\(.body.data.status) \(.body.data.outputs)"')" \
  "job.completed data"
h_eq "application/json WebEncode-Webhooks/" "$(got ok '.[0] | "\(.content_type) \(.user_agent | sub("[0-9.]+$"; ""))"')" "headers"
h_wait_for 10 bash -c "jq -s -e '[.[] | select(.path == \"/all\") | .event] | index(\"job.completed\")' '$H_DIR/ok.jsonl'" \
  || h_fail "the \"*\" webhook missed job.completed"
h_req GET "/v1/webhooks/$W1/deliveries"
h_eq 200 "$H_STATUS" "deliveries"
h_eq 3 "$(h_jq .total)" "deliveries total"
h_eq "succeeded succeeded succeeded" "$(h_jq '[.items[].status] | join(" ")')" "delivery statuses"
h_eq "1 1 1" "$(h_jq '[.items[].attempts] | join(" ")')" "one attempt each"
h_eq "job.completed" "$(h_jq '.items[0].event')" "newest first"
h_req GET "/v1/webhooks/$W1/deliveries?status=failed,pending"
h_eq 0 "$(h_jq .total)" "status filter"
h_req GET "/v1/webhooks/$W1/deliveries?limit=2"
h_eq 2 "$(h_jq '.items | length')" "first page"
CUR=$(h_jq .next_cursor)
h_req GET "/v1/webhooks/$W1/deliveries?limit=2&cursor=$CUR"
h_eq "job.created" "$(h_jq '[.items[].event] | join(" ")')" "second page"
h_eq null "$(h_jq .next_cursor)" "last page"
refused 400 WE-SYS-004 "" "" GET "/v1/webhooks/$W1/deliveries?status=lost"
refused 400 WE-SYS-004 "" "" GET "/v1/webhooks/$W1/deliveries?cursor=zzz"
refused 404 WE-SYS-030 "" "" GET /v1/webhooks/00000000-0000-0000-0000-000000000000/deliveries
# job.failed (corrupt input) and job.cancelled reach the "*" webhook, once each
head -c 200000 /dev/urandom >"$STORAGE_FS_ROOT/in/corrupt.mp4"
BAD=$(vod_submit '{"source_url":"fs://in/corrupt.mp4","profiles":["480p-h264"]}')
vod_wait "$BAD" failed 60
CAN=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')
h_req POST "/v1/jobs/$CAN/cancel"
h_eq 200 "$H_STATUS" "cancel"
h_wait_for 20 bash -c "jq -s -e '[.[] | select(.path == \"/all\" and .body.data.id == \"$CAN\" and .event == \"job.cancelled\")] | length == 1' '$H_DIR/ok.jsonl'" \
  || h_fail "job.cancelled not delivered"
h_wait_for 10 bash -c "jq -s -e '[.[] | select(.path == \"/all\" and .body.data.id == \"$BAD\" and .event == \"job.failed\")] | length == 1' '$H_DIR/ok.jsonl'" \
  || h_fail "job.failed not delivered"
h_eq "failed WE-JOB-010" "$(got ok ".[] | select(.path == \"/all\" and .event == \"job.failed\") | \"\(.body.data.status) \(.body.data.error_code)\"")" \
  "job.failed data"
h_eq 1 "$(got ok "[.[] | select(.path == \"/all\" and .body.data.id == \"$BAD\" and .event == \"job.created\")] | length")" \
  "job.created once"
# the receiver rejects what is not signed with its secret (the check can fail)
forged=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-WebEncode-Timestamp: $(date +%s)" \
  -H 'X-WebEncode-Signature: sha256=00' -d '{}' "$U")
h_eq 401 "$forged" "a forged request"

# --- manual redelivery of a succeeded delivery -----------------------------------------------------
D_CREATED=$(h_psql -c "SELECT id FROM webhook_deliveries WHERE webhook_id = '$W1'
  AND event = 'job.created' AND payload->'resource'->>'id' = '$JOB'")
h_req POST "/v1/webhooks/$W1/deliveries/$D_CREATED/redeliver"
h_eq 202 "$H_STATUS" "redeliver ($H_BODY)"
h_eq pending "$(h_jq .status)" "redelivery queued"
h_wait_for 10 bash -c "[ \$(jq -s '[.[] | select(.delivery == \"$D_CREATED\")] | length' '$H_DIR/ok.jsonl') -eq 2 ]" \
  || h_fail "redelivery not received"
h_wait_for 5 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status::text || ' ' || attempts::text FROM webhook_deliveries WHERE id = '$D_CREATED'\")\" = 'succeeded 2' ]" \
  || h_fail "redelivery: $(delivery "$D_CREATED" 'status, attempts')"
h_req POST "/v1/webhooks/$W1/deliveries/00000000-0000-0000-0000-000000000000/redeliver"
h_eq 404 "$H_STATUS" "redeliver an unknown delivery"
h_eq WE-SYS-032 "$(h_jq .error.code)" "unknown delivery code"
h_req POST "/v1/webhooks/$WALL/deliveries/$D_CREATED/redeliver"
h_eq 404 "$H_STATUS" "a delivery under another webhook"

# --- fails 3 times, then succeeds ------------------------------------------------------------------
recv flaky "$S2" --fail-first 3
W2=$(hook "$(url flaky in)" '["job.failed"]' "$S2")
D2=$(ping "$W2")
h_wait_for 20 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status FROM webhook_deliveries WHERE id = '$D2'\")\" = succeeded ]" \
  || h_fail "flaky delivery: $(delivery "$D2" '*')"
h_eq 4 "$(delivery "$D2" attempts)" "attempts = N + 1"
h_eq "HTTP 500: {\"status\": 500}" "$(delivery "$D2" last_error)" "last error kept"
h_eq 200 "$(delivery "$D2" last_status_code)" "last status"
h_eq "500 500 500 200" "$(got flaky '[.[].answered] | join(" ")')" "answers"
h_eq 1 "$(got flaky '[.[].delivery] | unique | length')" "one delivery id"
h_eq "webhook.test" "$(got flaky '.[0].event')" "test ping event"
h_eq true "$(got flaky '[.[] | .t] | [.[1] - .[0], .[2] - .[1], .[3] - .[2]] | (.[0] < .[1] and .[1] < .[2])')" \
  "retry delays grow ($(got flaky '[.[] | .t] | [.[1] - .[0], .[2] - .[1], .[3] - .[2]] | map(. * 1000 | floor) | join(" ")') ms)"
h_eq true "$(got flaky 'all(.sig_ok and .fresh)')" "retries signed afresh"

# --- always fails: failed after WEBHOOK_MAX_AGE_S ---------------------------------------------------
recv down "$S2" --status 503
W3=$(hook "$(url down x)" '["job.failed"]' "$S2")
D3=$(ping "$W3")
h_wait_for 30 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status FROM webhook_deliveries WHERE id = '$D3'\")\" = failed ]" \
  || h_fail "failing delivery: $(delivery "$D3" '*')"
n3=$(delivery "$D3" attempts)
[ "$n3" -ge 3 ] || h_fail "expected >= 3 attempts before giving up, got $n3"
h_eq "$n3" "$(got down 'length')" "every attempt reached the receiver"
h_eq "503|HTTP 503: {\"status\": 503}" "$(delivery "$D3" 'last_status_code, last_error')" "last failure"
h_eq 1 "$(h_psql -c "SELECT failure_count FROM webhooks WHERE id = '$W3'")" "failure_count"
h_eq t "$(h_psql -c "SELECT updated_at - created_at >= interval '2.9 seconds' FROM webhook_deliveries WHERE id = '$D3'")" \
  "retried until WEBHOOK_MAX_AGE_S"
h_req GET "/v1/webhooks/$W3/deliveries?status=failed"
h_eq "$D3" "$(h_jq '.items[0].id')" "failed delivery listed"
# a webhook disabled while a delivery waits for its retry: the delivery ends failed
W6=$(hook "$(url down y)" '["job.failed"]' "$S2")
D6=$(ping "$W6")
h_wait_for 10 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT attempts FROM webhook_deliveries WHERE id = '$D6'\")\" -ge 1 ]" \
  || h_fail "no first attempt: $(delivery "$D6" '*')"
h_req PUT "/v1/webhooks/$W6" '{"active":false}'
h_eq 200 "$H_STATUS" "disable"
h_wait_for 10 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status FROM webhook_deliveries WHERE id = '$D6'\")\" = failed ]" \
  || h_fail "disabled webhook's delivery: $(delivery "$D6" '*')"
h_eq "the webhook is disabled" "$(delivery "$D6" last_error)" "why it failed"

# --- private addresses without WEBHOOK_ALLOW_PRIVATE ----------------------------------------------
h_stop_kernel
unset WEBHOOK_ALLOW_PRIVATE
PLUGIN_DIR=$H_DIR/kplugins h_start_kernel
for u in "$U" http://localhost:9/x http://10.1.2.3/x http://169.254.169.254/latest/meta-data \
  'http://[::1]:9/x' 'http://[::ffff:127.0.0.1]/x' http://2130706433/x; do
  refused 422 WE-SYS-031 url "{\"url\":\"$u\",\"events\":[\"*\"]}"
  h_contains "$(h_jq .error.message)" WEBHOOK_ALLOW_PRIVATE "refusal names the variable"
done
# created while allowed, refused at send time (the address is checked at connect)
before=$(got ok length)
D4=$(ping "$W1")
h_wait_for 20 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status FROM webhook_deliveries WHERE id = '$D4'\")\" = failed ]" \
  || h_fail "send-time refusal: $(delivery "$D4" '*')"
h_contains "$(delivery "$D4" last_error)" "refused: the endpoint resolves to a loopback" "send-time refusal"
h_eq "$before" "$(got ok length)" "nothing reached the private receiver"

# --- the sweeper re-publishes a lost delivery; kill -9 between attempts ------------------------------
h_stop_kernel
export WEBHOOK_ALLOW_PRIVATE=true WEBHOOK_RETRY_BASE_MS=3000 WEBHOOK_MAX_AGE_S=120
PLUGIN_DIR=$H_DIR/kplugins h_start_kernel
LOST=$(h_psql -c "INSERT INTO webhook_deliveries (webhook_id, event_id, event, payload, next_attempt_at)
  VALUES ('$W1', gen_random_uuid(), 'job.created', '{\"id\":\"lost\",\"type\":\"job.created\"}',
  now() - interval '10 seconds') RETURNING id")
h_wait_for 20 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status FROM webhook_deliveries WHERE id = '$LOST'\")\" = succeeded ]" \
  || h_fail "lost delivery not swept: $(delivery "$LOST" '*')"
h_eq 1 "$(got ok "[.[] | select(.delivery == \"$LOST\")] | length")" "swept delivery received once"

recv phoenix "$S2" --fail-first 1
W5=$(hook "$(url phoenix p)" '["job.failed"]' "$S2")
D5=$(ping "$W5")
h_wait_for 20 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status::text || attempts::text FROM webhook_deliveries WHERE id = '$D5'\")\" = pending1 ]" \
  || h_fail "first attempt not recorded: $(delivery "$D5" '*')"
kill -KILL "$(cat "$H_DIR/kernel.pid")"
h_log "killed the kernel between two attempts"
for _ in $(seq 50); do kill -0 "$(cat "$H_DIR/kernel.pid")" 2>/dev/null || break; sleep 0.1; done
PLUGIN_DIR=$H_DIR/kplugins h_start_kernel
h_wait_for 45 bash -c "[ \"\$(psql '$DATABASE_URL' -qAtX -c \"SELECT status FROM webhook_deliveries WHERE id = '$D5'\")\" = succeeded ]" \
  || h_fail "delivery after kill -9: $(delivery "$D5" '*')"
h_eq 2 "$(delivery "$D5" attempts)" "attempts across the restart"
h_eq "500 200" "$(got phoenix '[.[].answered] | join(" ")')" "answers across the restart"

# (no secret in any log: checked by the harness, h_secret above)
h_pass
