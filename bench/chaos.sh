#!/usr/bin/env bash
# The crash soak behind "nothing lost, nothing posted twice, order kept" (issue 15), on SQLite and on PostgreSQL.
#
#   sluice-chaos: RATE events/s for SECONDS s over CHANNELS channels, the server SIGKILLed KILLS times at random
#   moments and restarted at once; then every acknowledged event must reach the simulator exactly once, in order per
#   channel. Prints one table row per backend and fails if anything was lost, doubled or reordered.
#
# Loopback only (the Slack simulator runs in-process); bounded in time (LIMIT seconds, then everything is stopped).
# PostgreSQL runs when SLUICE_CHAOS_POSTGRES_URL (or SLUICE_TEST_POSTGRES_URL) names a database it may fill.
#
# Usage: bench/chaos.sh        (RATE, SECONDS_PER_RUN, CHANNELS, KILLS, LIMIT; SLUICE_BIN_DIR to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-300}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-180}
CHANNELS=${CHANNELS:-400}
KILLS=${KILLS:-10}
LIMIT=${LIMIT:-3600}

if [ -z "${CHAOS_BOUNDED:-}" ]; then
  export CHAOS_BOUNDED=1
  exec timeout --signal=TERM --kill-after=10 "$LIMIT" "$0" "$@"
fi

if [ -z "${SLUICE_BIN_DIR:-}" ]; then
  cargo build --release --locked -p sluice --bin sluice --bin sluice-chaos >&2
  SLUICE_BIN_DIR=target/release
fi
BIN=$(realpath "$SLUICE_BIN_DIR")

run() {
  "$BIN/sluice-chaos" --sluice "$BIN/sluice" --rate "$RATE" --seconds "$SECONDS_PER_RUN" --channels "$CHANNELS" \
    --kills "$KILLS" "$@"
}

echo "| backend | load | kills | acknowledged | refused while down | lost | posted twice | out of order | drained |"
status=0
run || status=1
PG=${SLUICE_CHAOS_POSTGRES_URL:-${SLUICE_TEST_POSTGRES_URL:-}}
if [ -n "$PG" ]; then
  # A database of its own, dropped afterwards.
  db="sluice_chaos_$$"
  admin="${PG%/*}/postgres"
  psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
  run --database-url "${PG%/*}/$db" || status=1
  psql "$admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null || true
else
  echo "chaos: SKIPPED PostgreSQL (set SLUICE_CHAOS_POSTGRES_URL=postgres://…/test)" >&2
fi
exit $status
