#!/usr/bin/env bash
# Event stream benchmark (a measurement, not a pass/fail test): opens N idle
# SSE clients (default 1,000) on one kernel backed by private PostgreSQL and
# NATS, and prints the kernel's resident memory before, with the clients
# connected, and per client; then publishes one event on ui.events.* and
# prints how long it took to reach all N clients (p50/p99/max, measured by
# the client from the publish time in the event), ROUNDS times in a row.
# Usage: bench/sse.sh [CLIENTS] [ROUNDS]   (defaults 1000, 5)
set -euo pipefail
N=${1:-1000}
ROUNDS=${2:-5}
export H_KEEP=0
. "$(dirname "$0")/../tests/lib/harness.sh"
export LOG_LEVEL=info

# each client is one socket on both sides: raise the soft limit for this
# shell and what it starts (the kernel also lifts its own towards the hard one)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((N + 100)) ] || h_fail "ulimit -n is $(ulimit -n); need more than $((N + 100))"

export RATE_LIMIT_RPS=0   # every client uses the harness's one token
h_start_pg
h_migrate_up
h_start_nats
h_start_kernel
h_wait_for 20 grep -q '"msg":"event relay subscribed"' "$H_DIR/kernel.log" || h_fail "relay not subscribed"
sleep 1
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$H_DIR/kernel.pid")/status"; }
before=$(rss_kb)

SSE=(python3 "$WE_SRC/tests/lib/sse_client.py")
pub_ping() {
  PYTHONPATH=$WE_SRC/tests/lib python3 - "$H_NATS_PORT" "$1" <<'EOF'
import json, socket, sys, time, nats_raw
nc = nats_raw.Nats(int(sys.argv[1]))
# without it Nagle holds the PUB behind the unacknowledged SUB: +40 ms
nc.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
ev = {"id": sys.argv[2], "type": "bench.ping", "time": "", "resource": {"type": "bench", "id": "x"},
      "user_id": None, "data": {"sent_at": time.time()}}
nc.publish("ui.events.bench.ping", json.dumps(ev))
nc.flush()
nc.close()
EOF
}

ids=$(seq -f 'ping-%g' 1 "$ROUNDS" | paste -sd,)
"${SSE[@]}" many "$H_KERNEL_URL/v1/events?types=bench.*" --clients "$N" --expect "$ids" \
  --timeout 300 --ready "$H_DIR/ready" --progress "$H_DIR/progress" --hold "$H_DIR/release" \
  >"$H_DIR/many.sum" &
echo $! >"$H_DIR/many.pid"
h_wait_for 120 test -e "$H_DIR/ready" || h_fail "clients did not all open"
sleep 2   # let the streams go idle (suspended)
with=$(rss_kb)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(cat "$H_DIR/kernel.pid")/stat"; }
c0=$(cpu_ticks)
sleep 5
idle_cpu=$(( ($(cpu_ticks) - c0) * 1000 / $(getconf CLK_TCK) ))
echo "== $N idle SSE clients on one kernel (HTTP_THREADS=${HTTP_THREADS:-4}, $(nproc) cores shared with the client)"
echo "kernel RSS before: ${before} kB; with $N idle streams: ${with} kB;" \
  "per client: $(( (with - before) * 1024 / N )) bytes"
echo "kernel CPU over 5 s with $N idle streams: ${idle_cpu} ms"
# one event at a time, the next once every client has the previous one
for r in $(seq "$ROUNDS"); do
  pub_ping "ping-$r"
  h_wait_for 60 bash -c "[ \"\$(cat '$H_DIR/progress' 2>/dev/null)\" = $r ]" || h_fail "ping-$r not delivered to all"
done
while ! [ -s "$H_DIR/many.sum" ]; do sleep 0.1; done
echo "kernel RSS after $ROUNDS events to every client: $(rss_kb) kB"
jq -r '.rounds[] | "\(.id): \(.received) clients; delivery latency min \(.min_ms) ms, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, max \(.max_ms) ms"' "$H_DIR/many.sum"
touch "$H_DIR/release"
wait "$(cat "$H_DIR/many.pid")"
rm -f "$H_DIR/many.pid"
# a suspended stream notices a gone peer when written to: the second
# keepalive after the peer left fails (the first only draws a reset)
sleep $(( 2 * ${SSE_KEEPALIVE_S:-15} + 2 ))
echo "kernel RSS $(( 2 * ${SSE_KEEPALIVE_S:-15} + 2 )) s after the clients left: $(rss_kb) kB;" \
  "open descriptors: $(ls "/proc/$(cat "$H_DIR/kernel.pid")/fd" | wc -l)"
h_pass
