#!/usr/bin/env bash
# Cluster A/B of two commits: like bench/ab.sh, but each run is the local cluster of
# `switchyard init --cluster` (2 proxies + 3 routers, separate processes on free
# loopback ports) and the CPU per message is summed over the five processes. Base and
# head alternate (base, head, base, head, ...) so that machine noise hits both; it
# prints the cluster CPU per message and throughput with the head/base ratio (below 1
# for CPU means head is cheaper) and the spread (min..max) of the per-round ratios.
#
#   bench/ab-cluster.sh                          # HEAD~1 vs work tree
#   BASE=23f6644 ROUNDS=4 DURATION=5s bench/ab-cluster.sh
#   SCENARIOS="rpc --callers 64" bench/ab-cluster.sh
#   BASE_BIN=a HEAD_BIN=b bench/ab-cluster.sh    # two prebuilt binaries
#   PROFILE=DIR ...                              # also a CPU profile of every node per run
#                                                # (DIR/<bin>-<round>-<node>.pprof)
#   STATS=DIR ...                                # /debug/stats of every node after each run
#   SPREAD=1 ...                                 # realm1 on one router (default: as init writes it)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-HEAD~1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-6s}
PORT=${PORT:-27100}
SCENARIOS=${SCENARIOS:-"pubsub --subscribers 10|pubsub --subscribers 100|rpc --callers 64"}
# shellcheck source=bench/ab.sh
source bench/ab.sh
ab_build # $D/base and $D/head, LOADGEN
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  git worktree remove --force "$D/base-src" >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap cleanup EXIT
ROUND=0

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

run() { # bin, loadgen args... ; prints "cluster-us-per-msg msgs-per-sec"
  local bin=$1; shift
  local c="$D/cl-$bin"
  rm -rf "$c"; "$D/$bin" init --cluster --masters 0 "$c" >/dev/null # static membership: no master process
  # Five free ports per run for the clients and links, five for the admin listeners.
  local p=$PORT; PORT=$((PORT + 10))
  local -A to=([127.0.0.1:8080]=$p [127.0.0.1:8090]=$((p+1)) [127.0.0.1:9201]=$((p+2)) [127.0.0.1:9202]=$((p+3)) [127.0.0.1:9203]=$((p+4)))
  for f in "$c"/*.yaml; do
    for a in "${!to[@]}"; do sed -i "s/$a/127.0.0.1:${to[$a]}/g" "$f"; done
    if [ -n "${SPREAD:-}" ]; then sed -i -E "s/^(\s*spread:\s*)[0-9]+/\1$SPREAD/" "$f"; fi
  done
  PIDS=(); local names=(router1 router2 router3 proxy1 proxy2) i=5
  for n in "${names[@]}"; do
    local role=${n%[0-9]}
    "$D/$bin" "$role" --config "$c/$n.yaml" --log-level warn --admin 127.0.0.1:$((p+i)) 2>"$c/$n.log" &
    PIDS+=($!); i=$((i+1))
    [ "$role" = router ] && wait_port $((p + i - 4))
  done
  wait_port $p; wait_port $((p+1)); sleep 2 # links up, routers see each other
  local pids; pids=$(IFS=,; echo "${PIDS[*]}")
  local curls=()
  if [ -n "${PROFILE:-}" ]; then
    mkdir -p "$PROFILE"; local secs=${DURATION%s}; i=5
    for n in "${names[@]}"; do
      (sleep 2; curl -s -o "$PROFILE/$bin-$ROUND-$n.pprof" "http://127.0.0.1:$((p+i))/debug/pprof/profile?seconds=$secs") &
      curls+=($!); i=$((i+1))
    done
  fi
  "$LOADGEN" loadgen "$@" --url ws://127.0.0.1:$p/ws,ws://127.0.0.1:$((p+1))/ws --duration "$DURATION" --warmup 2s \
    --router-pid "$pids" --json --progress=false > "$D/r.json"
  for pid in "${curls[@]}"; do wait "$pid" || true; done
  if [ -n "${STATS:-}" ]; then
    mkdir -p "$STATS"; i=5
    for n in "${names[@]}"; do curl -s -o "$STATS/$bin-$ROUND-$n.json" "http://127.0.0.1:$((p+i))/debug/stats"; i=$((i+1)); done
  fi
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  python3 -c "import json; r=json.load(open('$D/r.json')); print(r['router']['cpu_per_msg_us'], r['msgs_per_sec'])"
}

IFS='|' read -ra scs <<< "$SCENARIOS"
for sc in "${scs[@]}"; do
  base=(); head=()
  for r in $(seq "$ROUNDS"); do
    ROUND=$r
    # shellcheck disable=SC2086
    base+=("$(run base $sc)"); head+=("$(run head $sc)")
  done
  python3 - "$sc" "${base[@]}" "${head[@]}" <<'PY'
import statistics, sys
sc, runs = sys.argv[1], [tuple(map(float, a.split())) for a in sys.argv[2:]]
base, head = runs[:len(runs)//2], runs[len(runs)//2:]
med = lambda xs, i: statistics.median(x[i] for x in xs)
rr = [h[0]/b[0] for b, h in zip(base, head)]
print(f"{sc:26s} cluster us/msg base {med(base,0):.3f} head {med(head,0):.3f} ratio {med(head,0)/med(base,0):.3f}"
      f" (rounds {min(rr):.3f}..{max(rr):.3f})"
      f"   msgs/s base {med(base,1):.0f} head {med(head,1):.0f} ratio {med(head,1)/med(base,1):.3f}")
PY
done
