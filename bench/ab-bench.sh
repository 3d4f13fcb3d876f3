#!/usr/bin/env bash
# Go benchmark A/B of two test binaries of one package: runs base and head alternately
# (base, head, base, head, ...) so that machine noise hits both, and prints, for every
# benchmark and metric, the medians and the head/base ratio with the spread (min..max) of
# the per-round ratios. Build the binaries with `go test -c` at each commit.
#
#   git stash; go test -c -o /tmp/base.test ./link; git stash pop; go test -c -o /tmp/head.test ./link
#   (cd link && ../bench/ab-bench.sh /tmp/base.test /tmp/head.test 'PingPong' 20000x 5)
#
# args: base-binary head-binary bench-regexp [benchtime] [rounds]; run it in the
# package's directory (tests read testdata relative to it).
set -euo pipefail
BASE=$1 HEAD=$2 RE=$3 BT=${4:-1s} ROUNDS=${5:-5}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
for r in $(seq "$ROUNDS"); do
  for side in base head; do
    bin=$BASE; [ "$side" = head ] && bin=$HEAD
    "$bin" -test.run '^$' -test.bench "$RE" -test.benchtime "$BT" -test.benchmem 2>&1 |
      grep '^Benchmark' | sed "s/^/$side $r /" >> "$D/out"
  done
done
python3 - "$D/out" <<'PY'
import collections, statistics, sys
vals = collections.defaultdict(dict)  # (bench, unit) -> {(side, round): value}
for line in open(sys.argv[1]):
    f = line.split()
    side, rnd, name = f[0], f[1], f[2]
    rest = f[4:]
    for v, unit in zip(rest[0::2], rest[1::2]):
        try:
            vals[(name, unit)][(side, rnd)] = float(v)
        except ValueError:
            pass
for (name, unit), d in vals.items():
    rounds = sorted({r for _, r in d})
    b = [d[("base", r)] for r in rounds if ("base", r) in d and ("head", r) in d]
    h = [d[("head", r)] for r in rounds if ("base", r) in d and ("head", r) in d]
    if not b or statistics.median(b) == 0:
        continue
    rr = [y / x for x, y in zip(b, h) if x]
    print(f"{name:45s} {unit:16s} base {statistics.median(b):12.1f} head {statistics.median(h):12.1f}"
          f"  ratio {statistics.median(h)/statistics.median(b):.3f} (rounds {min(rr):.3f}..{max(rr):.3f})")
PY
