#!/usr/bin/env bash
# GET /v1/events (Server-Sent Events), with a strict client (sse_client.py):
#  - bad filters are 400 naming the parameter; no token is 401;
#  - a real job's events arrive in order, progress never goes back, the last
#    is job.completed; ?job_id= keeps another job's events out;
#  - two kernels on one NATS + database: a client on each sees every event
#    of a job, whichever kernel applied it;
#  - stream telemetry (live.telemetry.<id>) is relayed and filtered by
#    ?stream_id=; drain/undrain show up as worker.* events;
#  - 200 clients all receive one event;
#  - a client that never reads overflows its queue: it gets a final
#    "event: overflow" and is disconnected, the kernel carries on;
#  - SIGTERM with open streams: they end cleanly and the kernel exits;
#  - after NATS restarts, events flow again to a stream opened before.
. "$(dirname "$0")/../lib/harness.sh"
# segments long enough that a worker reports progress while encoding one
export SEGMENT_TARGET_S=${SEGMENT_TARGET_S:-6}
. "$WE_SRC/tests/lib/vod.sh"

SSE=(python3 "$WE_SRC/tests/lib/sse_client.py")
export RATE_LIMIT_RPS=0   # the 200 clients below share the harness's one token

# pub SUBJECT JSON [COUNT]: publishes on core NATS ("#" in JSON becomes the index).
pub() {
  PYTHONPATH=$WE_SRC/tests/lib python3 - "$H_NATS_PORT" "$@" <<'EOF'
import sys, nats_raw
nc = nats_raw.Nats(int(sys.argv[1]))
n = int(sys.argv[4]) if len(sys.argv) > 4 else 1
for i in range(n):
    nc.publish(sys.argv[2], sys.argv[3].replace("#", str(i)))
nc.flush()
nc.close()
EOF
}

# ev ID TYPE [DATA_JSON]: a synthetic event envelope, as kn_event_emit builds them.
ev() {
  local data=${3:-}
  printf '{"id":"%s","type":"%s","time":"now","resource":{"type":"test","id":"x"},"user_id":null,"data":%s}' \
    "$1" "$2" "${data:-"{}"}"
}

# collect NAME URL ARGS...: a background collector writing $H_DIR/NAME.jsonl
# and its summary to $H_DIR/NAME.sum; waits until its stream is open.
collect() {
  local name=$1 url=$2
  shift 2
  "${SSE[@]}" collect "$url" --out "$H_DIR/$name.jsonl" --ready "$H_DIR/$name.ready" \
    --comments "$H_DIR/$name.keepalives" "$@" >"$H_DIR/$name.sum" 2>>"$H_DIR/$name.log" &
  echo $! >"$H_DIR/sse-$name.pid"
  h_wait_for 20 test -e "$H_DIR/$name.ready" \
    || h_fail "collector $name did not open: $(cat "$H_DIR/$name.sum")"
}
# finish NAME: waits for a collector and checks it exited 0.
finish() {
  wait "$(cat "$H_DIR/sse-$1.pid")" || h_fail "collector $1 failed: $(cat "$H_DIR/$1.sum")"
  rm -f "$H_DIR/sse-$1.pid"
}
sum_field() { jq -r "$2" "$H_DIR/$1.sum"; }

vod_stack 1
h_wait_for 20 grep -q '"msg":"event relay subscribed"' "$H_DIR/kernel.log" || h_fail "kernel A relay"
vod_media a.mp4 12 1280x720
vod_media b.mp4 3

# ---- bad requests ---------------------------------------------------------------------------
for q in job_id=nope stream_id=42 worker_id=a.b 'types=job.*x' types= 'types=job.*,'; do
  h_req GET "/v1/events?$q"
  h_eq 400 "$H_STATUS" "GET /v1/events?$q"
  h_eq "${q%%=*}" "$(h_jq .error.details.parameter)" "parameter named for $q"
  h_contains "$(h_jq .error.message)" "${q%%=*}" "message for $q"
done
code=$(curl -q -sS -o /dev/null -w '%{http_code}' --max-time 5 "$H_KERNEL_URL/v1/events")
h_eq 401 "$code" "GET /v1/events without a token"

# ---- one kernel: a job's events in order; a job filter --------------------------------------
collect ua "$H_KERNEL_URL/v1/events?types=job.*" --until job.completed --count 2 --timeout 120
id1=$(vod_submit '{"source_url":"fs://in/a.mp4","profiles":["720p-h264"]}')
collect fa "$H_KERNEL_URL/v1/events?job_id=$id1" --until job.completed --timeout 120
id2=$(vod_submit '{"source_url":"fs://in/b.mp4","profiles":["720p-h264"]}')
finish ua
finish fa
python3 - "$H_DIR" "$id1" "$id2" <<'EOF' || h_fail "event checks (one kernel)"
import json, sys
d, id1, id2 = sys.argv[1:]
load = lambda n: [json.loads(l) for l in open(f"{d}/{n}.jsonl")]
about = lambda evs, j: [e for e in evs if e["data"]["resource"]["id"] == j]
ua, fa = load("ua"), load("fa")
bad = []
for j in (id1, id2):
    evs = about(ua, j)
    types = [e["event"] for e in evs]
    if not types or types[-1] != "job.completed":
        bad.append(f"job {j}: events {types} do not end with job.completed")
    prog = [e["data"]["data"]["progress"] for e in evs if e["event"] == "job.progress"]
    if prog != sorted(prog):
        bad.append(f"job {j}: progress went back: {prog}")
    # job.created comes from the API thread after its commit and can race the
    # job.started of a worker that took the probe at once: order it only
    # against job.completed
    life = [t for t in types if t in ("job.started", "job.progress", "job.completed")]
    if life != sorted(life, key=["job.started", "job.progress", "job.completed"].index):
        bad.append(f"job {j}: lifecycle out of order: {life}")
    if "job.created" not in types or "job.started" not in types:
        bad.append(f"job {j}: no job.created or job.started: {types}")
    for e in evs:
        fields = set(e["data"]["data"])
        if e["event"] == "job.progress" and fields != {"id", "status", "progress", "eta_s"}:
            bad.append(f"job.progress data fields: {fields}")
if not any(e["event"] == "job.progress" for e in about(ua, id1)):
    bad.append("no job.progress for the first job")
if not about(ua, id2):
    bad.append("the second job had no events while the filtered client listened")
others = [e for e in fa if e["data"]["resource"]["id"] != id1]
if others or not fa or fa[-1]["event"] != "job.completed":
    bad.append(f"?job_id= stream: {[(e['event'], e['data']['resource']['id']) for e in fa]}")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
EOF

# ---- a second kernel: every client sees every event ---------------------------------------
KB_PORT=$(svc_free_port)
PORT=$KB_PORT PLUGIN_DIR=$H_DIR/kplugins SSE_CLIENT_QUEUE=16 SSE_KEEPALIVE_S=1 SSE_MAX_CLIENTS=250 \
  "$WE_BIN/kernel" >>"$H_DIR/kernel-b.log" 2>&1 &
KB_PID=$!
echo $KB_PID >"$H_DIR/kernel-b.pid"
KB_URL=http://127.0.0.1:$KB_PORT
svc_wait_http "$KB_URL/v1/health" 30 || h_fail "kernel B did not answer /v1/health"
h_wait_for 20 grep -q '"msg":"event relay subscribed"' "$H_DIR/kernel-b.log" || h_fail "kernel B relay"

collect xa "$H_KERNEL_URL/v1/events?types=job.*" --until job.completed --timeout 120
collect xb "$KB_URL/v1/events?types=job.*" --until job.completed --timeout 120
id3=$(vod_submit '{"source_url":"fs://in/b.mp4","profiles":["720p-h264"]}')
finish xa
finish xb
python3 - "$H_DIR" "$id3" <<'EOF' || h_fail "event checks (two kernels)"
import json, sys
d, id3 = sys.argv[1:]
ids = lambda n: {json.loads(l)["id"] for l in open(f"{d}/{n}.jsonl")
                 if json.loads(l)["data"]["resource"]["id"] == id3}
a, b = ids("xa"), ids("xb")
if not a or a != b:
    print(f"FAIL: kernel A saw {len(a)} events, B {len(b)}; only A: {a - b}, only B: {b - a}")
    sys.exit(1)
EOF

# ---- stream telemetry and worker events, relayed by kernel B ----------------------------------
S=2b7e8f1c-3a4d-4e5f-8a9b-0c1d2e3f4a5b
S2=3b7e8f1c-3a4d-4e5f-8a9b-0c1d2e3f4a5b
collect tel "$KB_URL/v1/events?stream_id=$S&types=stream.telemetry" --until stream.telemetry \
  --timeout 30
pub "live.telemetry.$S2" '{"bitrate_kbps":1}'
pub "live.telemetry.$S" '{"bitrate_kbps":2500,"fps":30}'
finish tel
h_eq "stream.telemetry $S 2500" \
  "$(jq -r '"\(.event) \(.data.resource.id) \(.data.data.bitrate_kbps)"' "$H_DIR/tel.jsonl")" \
  "the one telemetry event relayed"

collect wk "$KB_URL/v1/events?worker_id=w1&types=worker.*" --until worker.undrained --timeout 30
h_req POST /v1/workers/w1/drain
h_eq 200 "$H_STATUS" "drain"
h_req POST /v1/workers/w1/undrain
h_eq 200 "$H_STATUS" "undrain"
finish wk
h_eq "worker.draining worker.drained worker.undrained" "$(jq -r .event "$H_DIR/wk.jsonl" | xargs)" \
  "worker events of a drain and undrain"

# ---- 200 clients, one event; SSE_MAX_CLIENTS -------------------------------------------------
"${SSE[@]}" many "$KB_URL/v1/events?types=test.*" --clients 200 --expect ping-1 --timeout 30 \
  --ready "$H_DIR/many.ready" --hold "$H_DIR/many.release" >"$H_DIR/many.sum" 2>>"$H_DIR/many.log" &
echo $! >"$H_DIR/sse-many.pid"
h_wait_for 20 test -e "$H_DIR/many.ready" || h_fail "200 clients did not all open"
pub ui.events.test.ping "$(ev ping-1 test.ping)"
h_wait_for 30 test -s "$H_DIR/many.sum" || h_fail "the 200 clients did not all get the event"
h_eq "200 200 0" "$(sum_field many '"\(.opened) \(.received) \(.non_200)"')" \
  "clients opened / received / refused"
# 200 open + 51 more on a kernel with SSE_MAX_CLIENTS=250: at least one is
# refused (more when streams of earlier clients are not reaped yet), with 503
"${SSE[@]}" many "$KB_URL/v1/events?types=test.*" --clients 51 --expect none --timeout 3 \
  >"$H_DIR/over.sum" 2>>"$H_DIR/over.log"
h_eq true "$(sum_field over '(.refused|keys) == ["503 WE-SYS-010"] and .opened + .non_200 == 51')" \
  "streams beyond SSE_MAX_CLIENTS are refused with 503 WE-SYS-010: $(cat "$H_DIR/over.sum")"
touch "$H_DIR/many.release"
finish many
# the kernel finds the gone peers at their keepalives (a write fails): every
# stream opened on kernel B so far (tel, wk, the 200 and the others) ends
gone=$((202 + $(sum_field over .opened)))
ended='"path":"/v1/events","status":200'
h_wait_for 30 bash -c "[ \$(grep -c '$ended' '$H_DIR/kernel-b.log') -ge $gone ]" \
  || h_fail "kernel B did not notice clients that left ($gone streams)"

# ---- a client that never reads overflows and is cut off -------------------------------------
"${SSE[@]}" stall "$KB_URL/v1/events" --ready "$H_DIR/stall.ready" --go "$H_DIR/stall.go" \
  --timeout 60 >"$H_DIR/stall.sum" 2>>"$H_DIR/stall.log" &
echo $! >"$H_DIR/sse-stall.pid"
h_wait_for 20 test -e "$H_DIR/stall.ready" || h_fail "stalled client did not open"
pad=$(head -c 3000 /dev/zero | tr '\0' x)
pub ui.events.test.flood "$(ev 'flood-#' test.flood "{\"pad\":\"$pad\"}")" 3000
h_wait_for 30 grep -q '"msg":"event stream overflowed; disconnecting the client"' \
  "$H_DIR/kernel-b.log" \
  || h_fail "kernel B never cut off the stalled client"
touch "$H_DIR/stall.go"
finish stall
h_eq "overflow eof" "$(sum_field stall '"\(.last) \(.ended)"')" "the stalled client's last event and end"
[ "$(sum_field stall .events)" -lt 3000 ] \
  || h_fail "the stalled client got every event: $(cat "$H_DIR/stall.sum")"
curl -fsS --max-time 5 "$KB_URL/v1/health" >/dev/null || h_fail "kernel B unhealthy after the overflow"
# a marker published after the flood: once it is through, so is the flood
collect mark "$KB_URL/v1/events?types=test.mark" --until test.mark --timeout 60
pub ui.events.test.mark "$(ev mark-1 test.mark)"
finish mark

# ---- SIGTERM with open streams ----------------------------------------------------------------
for n in t1 t2 t3; do collect "$n" "$KB_URL/v1/events?types=test.idle" --timeout 60; done
h_wait_for 20 bash -c "[ \"\$(cat '$H_DIR/t1.keepalives' 2>/dev/null || echo 0)\" -ge 1 ]" \
  || h_fail "no keepalive comment on an idle stream (SSE_KEEPALIVE_S=1): $(cat "$H_DIR/t1.sum")"
kill -TERM "$KB_PID"
for _ in $(seq 75); do kill -0 "$KB_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$KB_PID" 2>/dev/null && h_fail "kernel B still running 15 s after SIGTERM with open streams"
rc=0
wait "$KB_PID" || rc=$?
rm -f "$H_DIR/kernel-b.pid"
h_eq 0 "$rc" "kernel B exit status"
grep -q '"msg":"kernel stopped"' "$H_DIR/kernel-b.log" || h_fail "kernel B did not log its stop"
for n in t1 t2 t3; do
  finish "$n"
  h_eq "clean" "$(sum_field "$n" .ended)" "stream $n at kernel stop"
done

# ---- NATS restarts under an open stream: the relay resubscribes -------------------------------
collect rs "$H_KERNEL_URL/v1/events?types=test.after" --until test.after --timeout 60
h_stop_nats
h_start_nats
for i in $(seq 60); do   # until kernel A has reconnected (and resubscribed)
  pub ui.events.test.after "$(ev "after-$i" test.after)"
  kill -0 "$(cat "$H_DIR/sse-rs.pid")" 2>/dev/null || break
  sleep 0.5
done
finish rs
h_eq 1 "$(sum_field rs .events)" "events relayed after NATS restarted"
h_pass
