#!/usr/bin/env bash
# Measures what PGO gains: builds the router with -pgo=off and with
# cmd/switchyard/default.pgo, then runs the same loadgen scenarios against each,
# alternating (off, pgo, off, pgo) so that machine noise hits both, and prints the
# ratio of router CPU per message (pgo / off; below 1 means PGO is cheaper).
# The load generator is the same -pgo=off binary in every run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8s}
PORT=${PORT:-18850}
D=$(mktemp -d)
go build -pgo=off -o "$D/off" ./cmd/switchyard
go build -pgo=cmd/switchyard/default.pgo -o "$D/pgo" ./cmd/switchyard

run() { # bin, loadgen args... ; prints router cpu us per msg
  local bin=$1; shift
  PORT=$((PORT + 1))
  "$D/$bin" start --listen 127.0.0.1:$PORT --rawsocket '' --log-level warn &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  "$D/off" loadgen "$@" --url ws://127.0.0.1:$PORT/ws --duration "$DURATION" --warmup 2s \
    --router-pid $pid --json --progress=false > "$D/r.json"
  kill -INT $pid; wait $pid
  python3 -c "import json; r=json.load(open('$D/r.json')); print(r['router']['cpu_per_msg_us'], r['msgs_per_sec'])"
}

for sc in "pubsub --subscribers 100" "rpc --callers 64"; do
  off=(); pgo=()
  for _ in 1 2 3; do
    off+=("$(run off $sc)"); pgo+=("$(run pgo $sc)")
  done
  python3 - "$sc" "${off[@]}" "${pgo[@]}" <<'PY'
import sys
sc, runs = sys.argv[1], [tuple(map(float, a.split())) for a in sys.argv[2:]]
off, pgo = runs[:len(runs)//2], runs[len(runs)//2:]
mean = lambda xs, i: sum(x[i] for x in xs) / len(xs)
print(f"{sc:26s} router us/msg off {mean(off,0):.3f} pgo {mean(pgo,0):.3f} ratio {mean(pgo,0)/mean(off,0):.3f}"
      f"   msgs/s off {mean(off,1):.0f} pgo {mean(pgo,1):.0f} ratio {mean(pgo,1)/mean(off,1):.3f}")
PY
done
