#!/usr/bin/env bash
# Measures what PGO gains: builds the router with -pgo=off and with
# cmd/switchyard/default.pgo, then runs bench/ab.sh against the two binaries
# (alternating off, pgo, off, pgo ... so that machine noise hits both) and prints router
# CPU per message and throughput with the ratio pgo/off (below 1 for CPU: PGO is
# cheaper). The load generator is the -pgo=off binary in every run.
set -euo pipefail
cd "$(dirname "$0")/.."
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
go build -pgo=off -o "$D/off" ./cmd/switchyard
go build -pgo=cmd/switchyard/default.pgo -o "$D/pgo" ./cmd/switchyard
BASE_BIN="$D/off" HEAD_BIN="$D/pgo" LOADGEN_BIN="$D/off" \
  SCENARIOS=${SCENARIOS:-"pubsub --subscribers 100|rpc --callers 64"} \
  DURATION=${DURATION:-8s} PORT=${PORT:-18850} bench/ab.sh
