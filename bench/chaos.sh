#!/usr/bin/env bash
# The figures behind "nothing lost, nothing posted twice, order kept" (issue 15), on SQLite and on PostgreSQL.
#
#   crash  (default): RATE events/s for SECONDS s over CHANNELS channels, the server SIGKILLed KILLS times at random
#          moments and restarted at once; every acknowledged event must reach the simulator exactly once, in order
#          per channel.
#   outage: the same load while Slack answers 503 to everything for 60 s, then 429 (Retry-After 2 s) to everything
#          for 20 s: the same three counts, and no call to a rate key before its Retry-After ran out.
#   abuse:  100 events/s beside 1,024 slow bodies, 500 slowloris and 5,000 idle connections (the server's default
#          limits): valid requests all answered 202, p99 under 100 ms during the abuse, RSS bounded.
# Prints one table row per backend and fails if a promise was broken.
#
# Loopback only (the Slack simulator runs in-process); bounded in time (LIMIT seconds, then everything is stopped).
# PostgreSQL runs when SLUICE_CHAOS_POSTGRES_URL (or SLUICE_TEST_POSTGRES_URL) names a database it may fill.
#
# Usage: bench/chaos.sh [crash|outage|abuse]   (RATE, SECONDS_PER_RUN, CHANNELS, KILLS, LIMIT; SLUICE_BIN_DIR to
#        skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${1:-crash}
case "$SCENARIO" in
  crash) RATE=${RATE:-300}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-180} ;;
  outage) RATE=${RATE:-300}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-120} ;;
  abuse) RATE=${RATE:-100}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-60} ;;
  *) echo "usage: bench/chaos.sh [crash|outage|abuse]" >&2; exit 2 ;;
esac
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
  "$BIN/sluice-chaos" --scenario "$SCENARIO" --sluice "$BIN/sluice" --rate "$RATE" --seconds "$SECONDS_PER_RUN" --channels "$CHANNELS" \
    --kills "$KILLS" "$@"
}

case "$SCENARIO" in
  crash) echo "| backend | load | kills | acknowledged | refused while down | lost | posted twice | out of order | drained |" ;;
  outage) echo "| backend | load | fault | acknowledged | refused | Slack's answers | lost | posted twice | out of order | early calls | drained |" ;;
  abuse) echo "| backend | load | abuse | valid requests | memory | limits | lost | posted twice | out of order |" ;;
esac
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
