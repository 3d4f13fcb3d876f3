#!/usr/bin/env bash
# Starts (or stops) the local example cluster on loopback: the nodes that
# `switchyard init --cluster` describes (2 proxies, 3 routers by default), each a
# background process with its log and pid file under $DIR.
#
#   cluster/local.sh start   # build, write the example config if missing, start, print URLs
#   cluster/local.sh stop    # stop every node started from $DIR
#   cluster/local.sh status  # which nodes run
#
# DIR (default .cluster) holds the config files, logs (NAME.log) and pids (NAME.pid).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-.cluster}
BIN=${BIN:-bin/switchyard}

nodes() { ls "$DIR"/*.yaml 2>/dev/null | xargs -n1 basename | sed 's/\.yaml$//' | sort; }
role_of() { case "$1" in router*) echo router ;; *) echo proxy ;; esac; }
running() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

start() {
  go build -o "$BIN" ./cmd/switchyard
  if ! ls "$DIR"/*.yaml >/dev/null 2>&1; then
    "$BIN" init --cluster "$DIR"
  fi
  # Routers first, so that proxies find their links up.
  for n in $(nodes | grep '^router') $(nodes | grep -v '^router'); do
    if running "$n"; then echo "$n already running (pid $(cat "$DIR/$n.pid"))"; continue; fi
    "$BIN" "$(role_of "$n")" --config "$DIR/$n.yaml" >"$DIR/$n.log" 2>&1 &
    echo $! >"$DIR/$n.pid"
  done
  sleep 1
  local failed=0
  for n in $(nodes); do
    if ! running "$n"; then echo "$n failed to start; its log:"; cat "$DIR/$n.log"; failed=1; fi
  done
  [ $failed -eq 0 ] || { stop; exit 1; }
  echo "cluster running from $DIR (logs: $DIR/NAME.log; stop with: make cluster-stop)"
  for n in $(nodes | grep -v '^router'); do
    grep -o 'listener[0-9]*="[^"]*"' "$DIR/$n.log" | sed "s/^/  $n: /"
  done
}

stop() {
  for n in $(nodes); do
    if running "$n"; then kill "$(cat "$DIR/$n.pid")" && echo "stopped $n"; fi
    rm -f "$DIR/$n.pid"
  done
}

status() {
  for n in $(nodes); do
    if running "$n"; then echo "$n: running (pid $(cat "$DIR/$n.pid"))"; else echo "$n: stopped"; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
