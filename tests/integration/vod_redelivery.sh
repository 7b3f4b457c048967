#!/usr/bin/env bash
# Bounded redelivery: a dispatch message that is delivered DISPATCH_MAX_DELIVER
# times without an ack (here a fake worker that takes it and never answers)
# triggers JetStream's max-deliveries advisory; the kernel fails the task and
# the job with WE-WRK-003 and removes the message from the work queue.
. "$(dirname "$0")/../lib/harness.sh"
. "$WE_SRC/tests/lib/vod.sh"
export DISPATCH_ACK_WAIT_S=1 DISPATCH_MAX_DELIVER=2

h_start_pg
h_migrate_up
h_start_nats
PLUGIN_DIR=$(vod_plugin_dir kplugins storage-fs) h_start_kernel
h_wait_for 20 bash -c "curl -fsS $H_KERNEL_URL/v1/system/health" || h_fail "kernel not ready"
vod_media src.mp4 2 320x180 30
id=$(vod_submit '{"source_url":"fs://in/src.mp4","profiles":["480p-h264"]}')

/usr/bin/python3 - "$H_NATS_PORT" "$id" <<'PY' || h_fail "fake worker failed"
import json, sys, time, os
sys.path.insert(0, os.path.join(os.environ["WE_SRC"], "tests/lib"))
from nats_raw import Nats as NatsRaw
nc = NatsRaw(int(sys.argv[1]))
seen = 0
deadline = time.time() + 20
while seen < 2 and time.time() < deadline:
    for m in nc.pull("WEBENCODE_WORK", "dispatch-cpu", batch=1, expires_s=1.0):
        body = json.loads(m.data)
        assert body["job_id"] == sys.argv[2], body
        seen += 1          # taken, never acked: redelivered after AckWait
# keep asking, as real workers do: the server notices the exhausted message
# (and announces it) when it would redeliver it to a waiting pull request
extra = 0
for _ in range(4):
    extra += len(nc.pull("WEBENCODE_WORK", "dispatch-cpu", batch=1, expires_s=1.0))
print(f"fake worker: {seen} deliveries, {extra} after the limit")
sys.exit(0 if seen == 2 and extra == 0 else 1)
PY

failed() { curl -fsS "$H_KERNEL_URL/v1/jobs/$id" | jq -e '.status == "failed"'; }
h_wait_for 15 failed || h_fail "job not failed after max deliveries: $(curl -fsS "$H_KERNEL_URL/v1/jobs/$id")"
h_req GET "/v1/jobs/$id"
h_eq WE-WRK-003 "$(h_jq .error.code)" "error code"
h_contains "$(h_jq .error.message)" "delivered 2 times" "error message"
grep -q 'dispatch message exhausted its deliveries' "$H_DIR/kernel.log" || h_fail "not logged"
msgs=$(curl -fsS "http://127.0.0.1:$H_NATS_MON/jsz?streams=true" \
  | jq '[.account_details[].stream_detail[] | select(.name == "WEBENCODE_WORK")][0].state.messages')
h_eq 0 "$msgs" "messages left in the work queue"
h_pass
