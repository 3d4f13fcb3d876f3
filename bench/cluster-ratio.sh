#!/usr/bin/env bash
# Issue #10's figure, repeated: cluster CPU per message over the single node's, each
# ratio taken within one `switchyard bench run --cluster` (the single node and the local
# cluster of `init --cluster` measured one right after the other), ROUNDS such runs, and
# per scenario every round's ratio with their median. One run's ratio moves by 20-40% on a
# shared 2-core machine; the median over rounds is the figure to quote. The last column
# is the two proxies' CPU alone over the single node's: the part no router work can take
# back.
#
#   bench/cluster-ratio.sh                          # 5 rounds of fanout-10 fanout-100 rpc-64
#   ROUNDS=3 RUNS="rpc-64" DURATION=5s bench/cluster-ratio.sh
#   BIN=/path/to/switchyard KEEP=DIR bench/cluster-ratio.sh   # a prebuilt binary; keep the runs
#   EXTRA="--cluster-spread 1" bench/cluster-ratio.sh  # more `bench run` flags
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-"fanout-10 fanout-100 rpc-64"}
DURATION=${DURATION:-5s}
D=${KEEP:-$(mktemp -d)}
mkdir -p "$D"
if [ -z "${BIN:-}" ]; then
  BIN=$D/switchyard
  go build -o "$BIN" ./cmd/switchyard
fi
for r in $(seq "$ROUNDS"); do
  echo "$(date +%T) round $r/$ROUNDS: bench run $RUNS --cluster" >&2
  # shellcheck disable=SC2086
  "$BIN" bench run $RUNS --cluster --duration "$DURATION" ${EXTRA:-} --out "$D/round-$r" >/dev/null
done
python3 - "$D" "$ROUNDS" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
ratios, single, cluster, proxies = {}, {}, {}, {}
for r in range(1, rounds + 1):
    for run in json.load(open(f"{d}/round-{r}/results.json"))["runs"]:
        s = run["switchyard"]["result"]["router"]["cpu_per_msg_us"]
        cl = run.get("cluster", {})
        c = cl.get("result", {}).get("router", {}).get("cpu_per_msg_us")
        if not s or not c:
            continue
        name = run["scenario"]
        ratios.setdefault(name, []).append(c / s)
        single.setdefault(name, []).append(s)
        cluster.setdefault(name, []).append(c)
        # The proxies' own share (by node name): what the cluster costs before any router
        # work, against the whole single node.
        res, role = cl["result"], {n["pid"]: n["name"] for n in cl.get("nodes") or []}
        px = sum(p["cpu_seconds"] for p in res["router"].get("processes") or []
                 if role.get(p["pid"], "").startswith("proxy"))
        if role and res.get("delivered"):
            proxies.setdefault(name, []).append(px / res["delivered"] * 1e6 / s)
print("| scenario | single CPU/msg (median) | cluster CPU/msg (median) | cluster/single per round | median | proxies alone/single (median) | goal |")
print("| --- | --: | --: | --- | --: | --: | --: |")
for name, rs in ratios.items():
    per = ", ".join(f"{x:.2f}" for x in rs)
    px = f"{statistics.median(proxies[name]):.2f}x" if name in proxies else "–"
    print(f"| {name} | {statistics.median(single[name]):.2f} µs | {statistics.median(cluster[name]):.2f} µs | {per} | {statistics.median(rs):.2f}x | {px} | 1.3x |")
PY
echo "runs kept in $D" >&2
