#!/usr/bin/env bash
# Sluice next to the tool users compare it with, in one go, on one machine, under the same load.
#
#   Prometheus Alertmanager (Debian's prometheus-alertmanager, in memory, routing to a webhook sink on loopback)
#   Sluice (SQLite, durability full, `sluice sim` as Slack), plain route and grouped route (group_by = ["service"])
#
# Load: wrk, concurrency 32, every request carrying NEW alerts (each its own dedup key / label set), 1 and 10 per
# request; per system and size a fresh process, a warm-up, then RUNS runs of SECONDS s. Prints one table (median
# run; p99 from wrk) with the ratio to Alertmanager's rate in the same size. Loopback only; every process it starts
# is stopped when it ends, and the whole script is bounded in time (LIMIT seconds).
#
# Usage: bench/peers.sh   (SLUICE_BIN=path to skip the release build; RUNS, SECONDS_PER_RUN, WARMUP, LIMIT,
#                          WITH_ALERTMANAGER=0 for Sluice alone)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
WARMUP=${WARMUP:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
LIMIT=${LIMIT:-1200}
# WITH_ALERTMANAGER=0 measures Sluice alone (e.g. two builds one after the other, with SLUICE_BIN).
WITH_ALERTMANAGER=${WITH_ALERTMANAGER:-1}

if [ -z "${PEERS_BOUNDED:-}" ]; then
  export PEERS_BOUNDED=1
  exec timeout --signal=TERM --kill-after=10 "$LIMIT" "$0" "$@"
fi

need() {
  command -v "$1" >/dev/null && return 0
  echo "peers: installing $2" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null) \
    || { echo "peers: could not install $2" >&2; exit 1; }
}
need wrk wrk
[ "$WITH_ALERTMANAGER" = 1 ] && need prometheus-alertmanager prometheus-alertmanager
need python3 python3

if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release --locked -p sluice --bin sluice >&2
  SLUICE_BIN=target/release/sluice
fi
SLUICE_BIN=$(realpath "$SLUICE_BIN")

WORK=$(mktemp -d /tmp/sluice-peers.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "peers: nothing answers on 127.0.0.1:$1" >&2
  exit 1
}
rss_mb() { echo $(( $(ps -o rss= -p "$1") / 1024 )); }

# wrk script: a body of N new alerts per request, unique across threads and requests.
lua() { # $1 = am | sluice, $2 = alerts per request
  cat <<LUA
local n, kind, counter = $2, "$1", 0  -- counter: requests sent by this thread
local id, run = 0, "0"
function setup(thread) id = id + 1; thread:set("tid", id) end
-- Every wrk run gets its own tag (the argument after the URL): the warm-up and each measured run send keys no run
-- sent before, so every alert is new, as the table says, and none is a duplicate of the last run's.
function init(args) run = args[1] or "0" end
local function alert(k)
  local key = string.format("%s-t%d-%d-%d", run, tid or 0, counter, k)
  local svc = "api-" .. (counter * n + k) % 50
  if kind == "am" then
    return string.format('{"labels":{"alertname":"HighErrorRate","service":"%s","instance":"%s"},'
      .. '"annotations":{"summary":"5xx ratio 4.2%% over 5m"}}', svc, key)
  end
  return string.format('{"title":"High error rate on %s","text":"5xx ratio 4.2%% over 5m","severity":"warning",'
    .. '"status":"firing","source":"bench","service":"%s","dedup_key":"%s","labels":{"instance":"%s"}}',
    svc, svc, key, key)
end
function request()
  counter = counter + 1
  local parts = {}
  for k = 1, n do parts[k] = alert(k) end
  local body = "[" .. table.concat(parts, ",") .. "]"
  return wrk.format("POST", nil, nil, body)
end
LUA
}

# Runs wrk; prints "requests/s p99_ms errors".
load() { # $1 url, $2 script, $3 seconds, $4.. headers
  local url=$1 script=$2 secs=$3; shift 3
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency -s "$script" "$@" "$url" "r$(date +%s%N)" 2>&1)
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {e += $5} /Socket errors:/ {gsub(",", ""); e += $4 + $6 + $8 + $10}
                END {print e + 0}' <<<"$out")
  case "$p99" in
    *us) p99=$(awk -v v="${p99%us}" 'BEGIN {printf "%.2f", v/1000}') ;;
    *ms) p99=${p99%ms} ;;
    *s) p99=$(awk -v v="${p99%s}" 'BEGIN {printf "%.0f", v*1000}') ;;
  esac
  echo "$rps $p99 $errors"
}

# Measures one system: warm-up, RUNS runs; prints "alerts/s p99_ms errors" of the median run.
measure() { # $1 url, $2 kind, $3 alerts per request, $4.. headers
  local url=$1 kind=$2 n=$3; shift 3
  local script="$WORK/$kind-$n.lua"
  lua "$kind" "$n" >"$script"
  load "$url" "$script" "$WARMUP" "$@" >/dev/null
  local results=()
  for _ in $(seq 1 "$RUNS"); do
    read -r rps p99 errors < <(load "$url" "$script" "$SECONDS_PER_RUN" "$@")
    results+=("$(awk -v r="$rps" -v n="$n" 'BEGIN {printf "%.0f", r*n}') $p99 $errors")
    echo "peers:   run: ${results[-1]} (alerts/s p99_ms errors)" >&2
  done
  printf '%s\n' "${results[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}

start_alertmanager() {
  local sink port
  sink=$(free_port); port=$(free_port)
  python3 - "$sink" >/dev/null 2>&1 <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
  PIDS+=($!)
  mkdir -p "$WORK/am"
  cat >"$WORK/am/alertmanager.yml" <<YML
route:
  receiver: sink
  group_by: [service]
  group_wait: 30s
  group_interval: 5m
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:$sink/
YML
  prometheus-alertmanager --config.file="$WORK/am/alertmanager.yml" --storage.path="$WORK/am/data" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn >"$WORK/am/log" 2>&1 &
  AM_PID=$!; PIDS+=("$AM_PID")
  wait_port "$sink"; wait_port "$port"
  AM_URL="http://127.0.0.1:$port/api/v2/alerts"
}

start_sim() {
  local port; port=$(free_port)
  "$SLUICE_BIN" sim --listen "127.0.0.1:$port" --channel bench >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$port"
  SIM="127.0.0.1:$port"
}

start_sluice() { # $1 = plain | grouped
  local port dir grouping=""
  port=$(free_port); dir="$WORK/sluice-$1-$RANDOM"; mkdir -p "$dir"
  [ "$1" = grouped ] && grouping=', group_by = ["service"], group_wait = "30s", group_interval = "5m"'
  printf 'xoxb-sim-token' >"$dir/token"; printf 'bench-key' >"$dir/key"
  cat >"$dir/sluice.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
log_format = "json"
[storage]
url = "sqlite://$dir/sluice.db"
durability = "full"
[slack]
api_base = "http://$SIM/api/"
bot_token_file = "token"
team_id = "T0SIM"
[[api_key]]
name = "bench"
key_file = "key"
[routing]
default = { channels = ["bench"]$grouping }
TOML
  (cd "$dir" && SLUICE_LOG=warn exec "$SLUICE_BIN" serve --config sluice.toml >"$dir/log" 2>&1) &
  SLUICE_PID=$!; PIDS+=("$SLUICE_PID")
  wait_port "$port"
  SLUICE_URL="http://127.0.0.1:$port/v1/events"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

echo "peers: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(prometheus-alertmanager --version 2>&1 | head -1)" >&2
start_sim
ROWS=()
for n in 1 10; do
  am_rate=""
  if [ "$WITH_ALERTMANAGER" = 1 ]; then
    echo "peers: Alertmanager, $n new alert(s) per request" >&2
    start_alertmanager
    read -r am_rate am_p99 am_err < <(measure "$AM_URL" am "$n" -H "Content-Type: application/json")
    ROWS+=("Alertmanager (in memory)|$n|$am_rate|$am_p99|$(rss_mb "$AM_PID")|$am_err|1.00")
    stop "$AM_PID"
  fi
  for route in plain grouped; do
    [ "$route" = grouped ] && [ "$n" = 1 ] && continue
    echo "peers: Sluice ($route route), $n new alert(s) per request" >&2
    start_sluice "$route"
    read -r rate p99 err < <(measure "$SLUICE_URL" sluice "$n" -H "Content-Type: application/json" \
      -H "Authorization: Bearer bench-key")
    ratio=-
    [ -n "$am_rate" ] && ratio=$(awk -v a="$rate" -v b="$am_rate" 'BEGIN {printf "%.2f", a/b}')
    ROWS+=("Sluice, SQLite full, $route route|$n|$rate|$p99|$(rss_mb "$SLUICE_PID")|$err|$ratio")
    stop "$SLUICE_PID"
  done
done

echo
echo "wrk -t$THREADS -c$CONNECTIONS, new alerts, warm-up ${WARMUP}s, median of $RUNS × ${SECONDS_PER_RUN}s"
echo
echo "| system | alerts/request | alerts/s | p99 (ms) | RSS after (MB) | errors | × Alertmanager |"
echo "|---|---|---|---|---|---|---|"
for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
