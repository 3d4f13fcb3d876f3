#!/usr/bin/env bash
# End-to-end benchmark: builds switchyard and runs `switchyard bench run` (a fresh router
# process per scenario, loopback WebSocket/JSON, 64-byte payloads). Same as `make bench-e2e`.
# Usage: bench/e2e.sh [SCENARIO ...|all] [bench run flags]   (all scenarios: about 2-3 minutes; run it on a quiet machine)
set -eu
cd "$(dirname "$0")/.."
SY=${SY:-bin/switchyard}
mkdir -p "$(dirname "$SY")"
go build -o "$SY" ./cmd/switchyard
exec "$SY" bench run "${@:-all}"
