#!/usr/bin/env bash
# End-to-end A/B of two commits: builds the router at BASE (default: the previous
# commit) and at the work tree, then runs the same loadgen scenarios against each,
# alternating (base, head, base, head, ...) so that machine noise hits both, and prints
# router CPU per message and throughput with the head/base ratio (below 1 for CPU means
# head is cheaper). The load generator is the work tree's binary in every run.
#
#   bench/ab.sh                      # HEAD~1 vs work tree
#   BASE=19f51aa ROUNDS=4 bench/ab.sh
#   SCENARIOS="pubsub --subscribers 10|rpc --callers 64" bench/ab.sh
#   BASE_BIN=a HEAD_BIN=b [LOADGEN_BIN=c] bench/ab.sh   # two prebuilt routers
#
# Sourced (bench/ab-floor.sh), it only defines ab_build and ab_run.
set -euo pipefail

# ab_build makes $D (removed on exit) with the routers $D/base and $D/head (built from
# BASE and the work tree, or copied from BASE_BIN and HEAD_BIN) and sets LOADGEN
# (LOADGEN_BIN, else $D/head).
ab_build() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  BASE=${BASE:-HEAD~1}
  D=$(mktemp -d)
  trap 'git worktree remove --force "$D/base-src" >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
  if [ -n "${BASE_BIN:-}" ] && [ -n "${HEAD_BIN:-}" ]; then
    # Two prebuilt routers (e.g. profiles/pgo-ab.sh: the same commit without and with PGO).
    cp "$BASE_BIN" "$D/base"; cp "$HEAD_BIN" "$D/head"
    echo "base $BASE_BIN, head $HEAD_BIN"
  else
    git worktree add --detach "$D/base-src" "$BASE" >/dev/null 2>&1
    (cd "$D/base-src" && go build -o "$D/base" ./cmd/switchyard)
    go build -o "$D/head" ./cmd/switchyard
    echo "base $(git rev-parse --short "$BASE"), head $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + work tree')"
  fi
  LOADGEN=${LOADGEN_BIN:-$D/head}
}

ab_run() { # bin, loadgen args... ; prints "router-us-per-msg msgs-per-sec"
  local bin=$1; shift
  PORT=$((PORT + 1))
  "$D/$bin" start --listen 127.0.0.1:$PORT --rawsocket '' --log-level warn &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  "$LOADGEN" loadgen "$@" --url ws://127.0.0.1:$PORT/ws --duration "$DURATION" --warmup 2s \
    --router-pid $pid --json --progress=false > "$D/r.json"
  kill -INT $pid; wait $pid
  python3 -c "import json; r=json.load(open('$D/r.json')); print(r['router']['cpu_per_msg_us'], r['msgs_per_sec'])"
}

ab_main() {
  ROUNDS=${ROUNDS:-3}
  DURATION=${DURATION:-6s}
  PORT=${PORT:-18950}
  SCENARIOS=${SCENARIOS:-"pubsub --subscribers 10|pubsub --subscribers 100|rpc --callers 64"}
  ab_build
  IFS='|' read -ra scs <<< "$SCENARIOS"
  for sc in "${scs[@]}"; do
    base=(); head=()
    for _ in $(seq "$ROUNDS"); do
      # shellcheck disable=SC2086
      base+=("$(ab_run base $sc)"); head+=("$(ab_run head $sc)")
    done
    python3 - "$sc" "${base[@]}" "${head[@]}" <<'PY'
import statistics, sys
sc, runs = sys.argv[1], [tuple(map(float, a.split())) for a in sys.argv[2:]]
base, head = runs[:len(runs)//2], runs[len(runs)//2:]
med = lambda xs, i: statistics.median(x[i] for x in xs)
print(f"{sc:26s} router us/msg base {med(base,0):.3f} head {med(head,0):.3f} ratio {med(head,0)/med(base,0):.3f}"
      f"   msgs/s base {med(base,1):.0f} head {med(head,1):.0f} ratio {med(head,1)/med(base,1):.3f}")
PY
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ab_main "$@"
fi
