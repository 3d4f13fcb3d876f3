#!/usr/bin/env bash
set -u
# The foundation issue's end-to-end figures, one line per scenario: pubsub 1/10/100
# subscribers, rpc 1 and 64 callers and 8x8 in flight, 10,000 idle sessions, against a
# fresh router each over loopback WebSocket/JSON, 64-byte payloads. JSON lands in $OUT.
# Usage: bench/foundation.sh    ROUTER_FLAGS="--loops 1" bench/foundation.sh
cd "$(dirname "$0")/.."
SY=${SY:-/tmp/switchyard-e2e}
go build -o "$SY" ./cmd/switchyard || exit 1
OUT=${OUT:-/tmp/switchyard-e2e-out}; mkdir -p $OUT
PORT=${PORT:-18100}
run() { # name, loadgen args...
  name=$1; shift
  PORT=$((PORT+1)); URL=ws://127.0.0.1:$PORT/ws
  "$SY" start --listen 127.0.0.1:$PORT --rawsocket '' --log-level warn ${ROUTER_FLAGS:-} > $OUT/$name.router.log 2>&1 &
  PID=$!
  for i in $(seq 50); do ss -ltn | grep -q ":$PORT " && break; sleep 0.1; done
  sleep 0.5
  echo "== $name  (loadavg $(cut -d' ' -f1-3 /proc/loadavg))  "$SY" loadgen $* --url $URL --router-pid PID"
  "$SY" loadgen "$@" --url $URL --router-pid $PID --json --progress=false > $OUT/$name.json
  python3 -c "
import json,sys; r=json.load(open('$OUT/$name.json')); l=r.get('latency') or {}; ro=r.get('router') or {}
print('  %-8s sent=%d delivered=%d err=%d lost=%d  %.0f/s  p50=%.0fus p99=%.0fus  routerCPU=%.0f%% %.2fus/msg  rss=%.1fMiB perSess=%.0fB  loadgenCPU=%.0f%%  host=%.0f%%' % (
 r['scenario'], r['sent'], r['delivered'], r['errors'], r['lost'], r['msgs_per_sec'], l.get('p50_us',0), l.get('p99_us',0),
 ro.get('cpu_percent',0), ro.get('cpu_per_msg_us',0), ro.get('rss_bytes',0)/2**20, ro.get('rss_per_session_bytes',0),
 100*r['loadgen_cpu_seconds']/(r['elapsed_ns']/1e9), r['host_cpu_busy_percent']))
print('  errors:', r.get('error_samples')) if r.get('error_samples') else None
"
  kill -TERM $PID; wait $PID 2>/dev/null
  echo "  TIME_WAIT on :$PORT after stop: $(ss -tan state time-wait "( sport = :$PORT )" | tail -n +2 | wc -l)"
}
run pubsub-1   pubsub --subscribers 1   --duration 10s --warmup 2s
run pubsub-10  pubsub --subscribers 10  --duration 10s --warmup 2s
run pubsub-100 pubsub --subscribers 100 --duration 10s --warmup 2s
run rpc-1      rpc --callers 1  --duration 10s --warmup 2s
run rpc-64     rpc --callers 64 --duration 10s --warmup 2s
run rpc-8x8    rpc --callers 8 --inflight 8 --duration 10s --warmup 2s
run connect-10k connect --sessions 10000 --concurrency 64 --duration 3s
