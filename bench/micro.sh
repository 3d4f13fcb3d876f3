#!/usr/bin/env bash
# make bench: the go test -bench micro-benchmarks (codec, engine, netpoll) with -count,
# and a benchstat comparison against the previous commit measured in the same run
# (HEAD~1 when the work tree is clean, HEAD when it has changes), so the ratio is not
# hostage to a noisy shared machine on another day.
# Env: COUNT (default 6), BENCHTIME (default 200ms), BASE (a commit), PKGS, BENCH (regexp).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-200ms}
BENCH=${BENCH:-.}
PKGS=${PKGS:-./codec/... ./engine/... ./netpoll/...}
if [ -z "${BASE:-}" ]; then
  if git diff --quiet HEAD -- . ; then BASE=HEAD~1; else BASE=HEAD; fi
fi
OUT=bench/out/micro
mkdir -p "$OUT"
WT=$(mktemp -d)
git worktree add -q --detach "$WT" "$BASE"
trap 'git worktree remove --force "$WT"' EXIT

run() { # dir, output file
  (cd "$1" && go test -run '^$' -bench "$BENCH" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" $PKGS) \
    | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' > "$2" || true
}
echo "benchmarks of $BASE ($(git rev-parse --short "$BASE")) -> $OUT/base.txt" >&2
run "$WT" "$OUT/base.txt"
echo "benchmarks of the work tree -> $OUT/head.txt" >&2
run . "$OUT/head.txt"
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da \
  base="$OUT/base.txt" head="$OUT/head.txt"
