#!/usr/bin/env bash
# Starts (or stops) the local example cluster on loopback: the processes that
# `switchyard init --cluster` describes (a master, 2 proxies, 3 routers), each a
# background process with its log and pid file under $DIR.
#
#   cluster/local.sh start   # build, write the example config if missing, start, print URLs
#   cluster/local.sh stop    # stop every process started from $DIR
#   cluster/local.sh status  # which processes run (and the master's view of the cluster)
#
# DIR (default .cluster) holds the config files, logs (NAME.log) and pids (NAME.pid).
# MASTERS (default 1) is the number of master replicas written the first time (3: a
# replicated master; 0: no master, the nodes list the routers).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-.cluster}
BIN=${BIN:-bin/switchyard}
MASTERS=${MASTERS:-1}

nodes() { ls "$DIR"/*.yaml 2>/dev/null | xargs -n1 basename | sed 's/\.yaml$//' | sort; }
role_of() { case "$1" in master*) echo master ;; router*) echo router ;; *) echo proxy ;; esac; }
# in start order: masters, routers, proxies
ordered() { nodes | grep '^master' || true; nodes | grep '^router' || true; nodes | grep -v '^master\|^router' || true; }
running() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

start() {
  go build -o "$BIN" ./cmd/switchyard
  if ! ls "$DIR"/*.yaml >/dev/null 2>&1; then
    "$BIN" init --cluster --masters "$MASTERS" "$DIR"
  fi
  # The masters first (the nodes register there), then the routers, so that proxies
  # find their links up.
  for n in $(ordered); do
    if running "$n"; then echo "$n already running (pid $(cat "$DIR/$n.pid"))"; continue; fi
    # Text logs: a person reads these files (and the URL lines below are grepped from them).
    "$BIN" "$(role_of "$n")" --config "$DIR/$n.yaml" --log-format text >"$DIR/$n.log" 2>&1 &
    echo $! >"$DIR/$n.pid"
  done
  sleep 1
  local failed=0
  for n in $(nodes); do
    if ! running "$n"; then echo "$n failed to start; its log:"; cat "$DIR/$n.log"; failed=1; fi
  done
  [ $failed -eq 0 ] || { stop; exit 1; }
  echo "cluster running from $DIR (logs: $DIR/NAME.log; stop with: make cluster-stop)"
  for n in $(nodes | grep -v '^master\|^router'); do
    # A node following a master opens its listeners once the master answered.
    for _ in $(seq 100); do grep -q 'listener0=' "$DIR/$n.log" && break; sleep 0.1; done
    grep -o 'listener[0-9]*="[^"]*"' "$DIR/$n.log" | sed "s/^/  $n: /"
  done
  if ls "$DIR"/master*.yaml >/dev/null 2>&1; then
    echo "  cluster status: $BIN cluster status --config $(ls "$DIR"/master*.yaml | head -1)"
  fi
}

stop() {
  # Proxies and routers first (they leave the map), the masters last.
  for n in $(ordered | tac); do
    if running "$n"; then kill "$(cat "$DIR/$n.pid")" && echo "stopped $n"; fi
    rm -f "$DIR/$n.pid"
  done
}

status() {
  for n in $(ordered); do
    if running "$n"; then echo "$n: running (pid $(cat "$DIR/$n.pid"))"; else echo "$n: stopped"; fi
  done
  for m in $(nodes | grep '^master' || true); do
    if running "$m"; then "$BIN" cluster status --config "$DIR/$m.yaml" || true; break; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
