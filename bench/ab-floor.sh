#!/usr/bin/env bash
# Issue #15's table ("performance at the syscall floor"): RPC 64 callers at 1 and 8 calls
# in flight, RPC 1 caller beside the WebSocket echo baseline, pub/sub 1000 subscribers at
# 1k publications/s, 10 and 100 subscribers as fast as possible, joins. Builds the
# routers like bench/ab.sh (its ab_build: BASE, default the previous commit, and the work
# tree; or BASE_BIN and HEAD_BIN), then runs each row's `switchyard bench run` scenarios
# ROUNDS times, base and head alternating (base, head, base, head, ...) so that machine
# noise hits both, and prints per row base -> head of the medians and head/base (and
# head/base within each round: median and range): router CPU per operation, ops/s, p50, p99, and rpc-1's p50 / echo-1's p50 of the same run.
#
# The load generator and the echo server are LOADGEN's (LOADGEN_BIN, default the head
# build) in every run: only the router changes between sides.
#
#   bench/ab-floor.sh                                  # HEAD~1 vs work tree
#   BASE=676d7f7 ROUNDS=3 bench/ab-floor.sh            # head vs the commit before the work
#   RUNS="rpc-1 echo-1|rpc-64" DURATION=5s bench/ab-floor.sh   # some rows; one `bench run` per |
#   BASE_BIN=/tmp/sy HEAD_BIN=/tmp/sy LOADGEN_BIN=/tmp/sy-new bench/ab-floor.sh
#   KEEP=DIR ...                                       # keep every results.json and router log in DIR
#
# ROUNDS (default 3); DURATION: every scenario's window (default: each scenario's own,
# 10 s after a 2 s warm-up; idle-10k holds 3 s); `switchyard bench floor --runs` lists
# the default RUNS, `switchyard bench floor DIR` reprints a kept table.
set -euo pipefail
# shellcheck source=bench/ab.sh
source "$(dirname "$0")/ab.sh"
ab_build
ROUNDS=${ROUNDS:-3}
OUT=${KEEP:-$D/floor}
mkdir -p "$OUT"
if [ -n "${RUNS:-}" ]; then
  IFS='|' read -ra runs <<< "$RUNS"
else
  mapfile -t runs < <("$LOADGEN" bench floor --runs)
fi
extra=()
[ -n "${DURATION:-}" ] && extra+=(--duration "$DURATION")
for run in "${runs[@]}"; do
  tag=${run// /+}
  for r in $(seq "$ROUNDS"); do
    for side in base head; do
      echo "$(date +%T) round $r/$ROUNDS $side: bench run $run" >&2
      # shellcheck disable=SC2086
      "$LOADGEN" bench run $run --router-bin "$D/$side" --out "$OUT/$side/$r-$tag" "${extra[@]}" \
        > "$OUT/$side-$r-$tag.log" 2>&1 || { echo "bench run $run ($side) failed:" >&2; tail -5 "$OUT/$side-$r-$tag.log" >&2; }
    done
  done
done
echo
"$LOADGEN" bench floor "$OUT"
