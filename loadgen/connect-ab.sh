#!/usr/bin/env bash
# A/B of the connect scenario's own cost: two loadgen builds (BASE, default the commit
# before the event loops, and the work tree) join the same sessions against the same
# target, alternating (base, head, base, head, ...) so that machine noise hits both, and
# the medians are printed with the head/base ratio. Each run gets a fresh target process
# (built from the work tree): the no-op sink (TARGET=sink) or a switchyard node
# (TARGET=router). Figures: loadgen CPU us per join (loadgen_cpu_seconds / joins, over
# the joining window), joins/s, the target's CPU us per join, join latency p50.
#
#   loadgen/connect-ab.sh                                  # sink, ws://, 15000 sessions, 3 rounds
#   TARGET=router URL_KIND=rs ROUNDS=5 loadgen/connect-ab.sh
#   BASE_BIN=a HEAD_BIN=b loadgen/connect-ab.sh            # two prebuilt binaries
#   EXTRA="--rate 20000" loadgen/connect-ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-$(git log --format=%h -1 --grep='^loadgen connect: joins run on a few epoll' HEAD)~1}
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-15000}
TARGET=${TARGET:-sink}
URL_KIND=${URL_KIND:-ws}
PORT=${PORT:-19300}
EXTRA=${EXTRA:-}
# shellcheck source=bench/ab.sh
source bench/ab.sh
ab_build # $D/base and $D/head (BASE_BIN and HEAD_BIN: two prebuilt binaries)
echo "target $TARGET, $URL_KIND://, $SESSIONS sessions $EXTRA"

run() { # loadgen binary; prints "lg-us-per-join joins-per-sec target-us-per-join p50-us errors"
  local bin=$1
  PORT=$((PORT + 1))
  if [ "$TARGET" = sink ]; then
    "$D/head" loadgen sink --listen 127.0.0.1:$PORT 2>/dev/null &
  else
    "$D/head" start --listen 127.0.0.1:$PORT --log-level warn 2>/dev/null &
  fi
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  local url=ws://127.0.0.1:$PORT/ws
  [ "$URL_KIND" = rs ] && url=rs://127.0.0.1:$PORT
  # shellcheck disable=SC2086
  "$D/$bin" loadgen connect --url "$url" --sessions "$SESSIONS" --duration 1s $EXTRA \
    --router-pid $pid --json --progress=false > "$D/r.json"
  kill -INT $pid; wait $pid || true
  python3 -c "
import json; r=json.load(open('$D/r.json')); n=max(r['delivered'],1)
print(r['loadgen_cpu_seconds']/n*1e6, r['msgs_per_sec'], r['router']['cpu_per_msg_us'], (r.get('latency') or {}).get('p50_us',0), r['errors'])"
}

base=(); head=()
for _ in $(seq "$ROUNDS"); do
  base+=("$(run base)"); head+=("$(run head)")
done
python3 - "${base[@]}" "${head[@]}" <<'PY'
import statistics, sys
runs = [tuple(map(float, a.split())) for a in sys.argv[1:]]
base, head = runs[:len(runs)//2], runs[len(runs)//2:]
for name, xs in (("base", base), ("head", head)):
    print(name, "runs:", "; ".join(f"lg {x[0]:.1f} us/join, {x[1]:.0f} joins/s, target {x[2]:.1f} us/join, p50 {x[3]/1000:.1f} ms, errors {x[4]:.0f}" for x in xs))
med = lambda xs, i: statistics.median(x[i] for x in xs)
names = ["loadgen us/join", "joins/s", "target us/join", "p50 us"]
for i, n in enumerate(names):
    b, h = med(base, i), med(head, i)
    print(f"{n:16s} base {b:10.1f}  head {h:10.1f}  head/base {h/b if b else float('nan'):.3f}")
PY
