#!/usr/bin/env bash
# Captures CPU profiles of the router under representative load (make profile):
# pub/sub fan-out to 100 subscribers and RPC with 64 callers, over loopback
# WebSocket/JSON with 64-byte payloads. Writes profiles/cpu-pubsub.pprof,
# profiles/cpu-rpc.pprof, their merge profiles/merged.pprof (the PGO input) and the
# top of each into profiles/NOTES.md.
# Env: DURATION (default 15s), PORT (default 18800).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
PORT=${PORT:-18800}
BIN=$(mktemp -d)/switchyard
go build -o "$BIN" ./cmd/switchyard

capture() { # name, loadgen args...
  local name=$1; shift
  PORT=$((PORT + 1))
  "$BIN" start --listen 127.0.0.1:$PORT --rawsocket '' --log-level warn \
    --cpuprofile "profiles/cpu-$name.pprof" &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  "$BIN" loadgen "$@" --url ws://127.0.0.1:$PORT/ws --duration "$DURATION" --warmup 2s \
    --router-pid $pid --progress=false > "profiles/loadgen-$name.txt"
  kill -INT $pid
  wait $pid
}

capture pubsub pubsub --subscribers 100
capture rpc rpc --callers 64
go tool pprof -proto profiles/cpu-pubsub.pprof profiles/cpu-rpc.pprof > profiles/merged.pprof 2>/dev/null

{
  echo "# Captured CPU profiles"
  echo
  echo "Captured by \`make profile\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown),"
  echo "$(go version | cut -d' ' -f3), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))."
  echo "Load: loopback WebSocket/JSON, 64-byte payloads, $DURATION per scenario."
  for name in pubsub rpc; do
    echo
    echo "## $name: \`switchyard loadgen $(head -c0 /dev/null)$( [ $name = pubsub ] && echo 'pubsub --subscribers 100' || echo 'rpc --callers 64')\`"
    echo
    echo '```'
    grep -E '^(throughput|router cpu|loadgen cpu)' "profiles/loadgen-$name.txt" || true
    echo '```'
    echo
    echo "Top functions (flat), \`go tool pprof -top profiles/cpu-$name.pprof\`:"
    echo
    echo '```'
    go tool pprof -top -nodecount 15 "profiles/cpu-$name.pprof" 2>/dev/null | tail -n +5
    echo '```'
  done
} > profiles/NOTES.md
rm -f profiles/loadgen-*.txt
echo "wrote profiles/cpu-pubsub.pprof profiles/cpu-rpc.pprof profiles/merged.pprof profiles/NOTES.md"
