#!/usr/bin/env bash
# Back-to-back comparison of server builds on one single-node scenario, for trying a change:
#
#   benches/ab.sh [--rounds N] SCENARIO TARGET...
#
# SCENARIO: fanout16 fanout64 fanout-40k rooms rooms-5k idle, or cross-rooms cross-fanout (two
# nodes of the target on one Redis, every message crossing nodes; needs SB_TEST_REDIS_URL, e.g.
# under `scripts/test --run`) — as in benches/run.sh; the Pusher ones: pusher-fanout
# pusher-channels pusher-channels-each pusher-idle, pusher-cross-channels pusher-cross-fanout.
# TARGET: a Switchboard binary (copy target/release/switchboard aside before rebuilding), or
# `node` for the reference server, `soketi` for Soketi (Pusher scenarios), or `floor:N` for
# `loadgen floor --split N` (the least work a fan-out server can do, written from N tasks: what
# the machine itself allows; fan-out only).
# Targets run interleaved (A B A B …, N rounds, default 3), each on a fresh server; one line
# per run: delivered/s, latency p50/p99 (and p99 at the kernel's arrival stamp), lost, and the
# CPU seconds the server and the load tool used (whole run, connection setup included). The
# CPU split matters on a small machine: the load tool shares the cores with the server.
#
# This machine's speed drifts by more than most changes move a figure: trust only differences
# that hold across interleaved rounds. benches/run.sh is the reference measurement.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=3
if [ "${1:-}" = --rounds ]; then ROUNDS=$2; shift 2; fi
[ $# -ge 2 ] || { sed -n 2,20p "$0" >&2; exit 2; }
SCENARIO=$1; shift
case "$SCENARIO" in
  fanout16) ARGS=(fanout --inflight 16 --messages 2000) ;;
  fanout64) ARGS=(fanout --inflight 64 --messages 2000) ;;
  fanout-40k) ARGS=(fanout --rate 40 --messages 400) ;;
  rooms) ARGS=(rooms --inflight 4 --messages 100) ;;
  rooms-5k) ARGS=(rooms --rate 5000 --messages 25) ;;
  idle) ARGS=(idle --connections 5000) ;; # --pid is added per run
  cross-rooms) ARGS=(rooms --inflight 4 --messages 100) ;;
  cross-fanout) ARGS=(fanout --inflight 16 --messages 1000) ;;
  pusher-fanout) ARGS=(pusher-fanout --inflight 16 --messages 2000) ;;
  pusher-channels|pusher-cross-channels) ARGS=(pusher-channels --inflight 4 --messages 100) ;;
  pusher-channels-each) ARGS=(pusher-channels --inflight 4 --messages 100 --write-each) ;;
  pusher-idle) ARGS=(pusher-idle --connections 5000) ;;
  pusher-cross-fanout) ARGS=(pusher-fanout --inflight 16 --messages 1000) ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac

cd "$ROOT"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
# LOADGEN=path runs another build of the load tool (to compare load tools); default: this tree's.
if [ -z "${LOADGEN:-}" ]; then
  cargo build --release --quiet -p switchboard-loadgen
  LOADGEN=$(target_dir)/release/loadgen
fi
for t in "$@"; do
  if [ "$t" = node ]; then
    (cd benches/reference && { [ -d node_modules/socket.io ] || npm ci --no-audit --no-fund --silent; })
  elif [ "$t" = soketi ]; then
    soketi_install
  elif [[ "$t" == floor:* ]]; then
    [[ "${t#floor:}" =~ ^[1-9][0-9]*$ ]] || { echo "floor:N needs a task count" >&2; exit 2; }
  elif [ ! -x "$t" ]; then
    echo "not an executable: $t" >&2; exit 2
  fi
done

SECRET=$BENCH_SECRET
STATE=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-ab.XXXXXX")
SERVER=""
SERVER2=""
NODES=1
case "$SCENARIO" in
  cross-*|pusher-cross-*)
    NODES=2
    [ -n "${SB_TEST_REDIS_URL:-}" ] || { echo "$SCENARIO needs SB_TEST_REDIS_URL (run under scripts/test --run)" >&2; exit 2; } ;;
esac
cleanup() {
  for pid in $SERVER $SERVER2; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$STATE"
}
trap cleanup EXIT
"$LOADGEN" seed --out "$STATE/seeds" 2>/dev/null

# CPU seconds (user + system) a live process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# start TARGET [VAR=value…]: one server on a free port; sets PID and PORT.
start() {
  local target=$1; shift
  PORT=$(free_port)
  if [ "$target" = node ]; then
    (cd benches/reference && exec env PORT="$PORT" JWT_SECRET="$SECRET" "$@" node server.mjs) \
      >>"$STATE/server.log" 2>&1 &
  elif [ "$target" = soketi ]; then
    (cd benches/reference-soketi && exec env SOKETI_PORT="$PORT" SOKETI_METRICS_SERVER_PORT="$(free_port)" \
      "${BENCH_SOKETI_ENV[@]}" "$@" node node_modules/@soketi/soketi/bin/server.js start) \
      >>"$STATE/server.log" 2>&1 &
  elif [[ "$target" == floor* ]]; then
    "$LOADGEN" floor --port "$PORT" --split "${target#floor:}" >>"$STATE/server.log" 2>&1 &
  else
    env HOST=127.0.0.1 PORT="$PORT" JWT_SECRET="$SECRET" SEEDS_DIR="$STATE/seeds" \
      "${BENCH_SB_ENV[@]}" "$@" "$target" >>"$STATE/server.log" 2>&1 &
  fi
  PID=$!
  local deadline=$((SECONDS + 30))
  until port_open "$PORT"; do
    [ $SECONDS -ge $deadline ] && { echo "$target did not listen; log:" >&2; tail -n 20 "$STATE/server.log" >&2; exit 1; }
    sleep 0.1
  done
}

one_run() {
  local target=$1 url
  if [ "$NODES" = 2 ]; then
    local prefix="ab$RANDOM$RANDOM" redis=$SB_TEST_REDIS_URL env
    [ "$target" = node ] && redis=${SB_TEST_REDIS_URL%%\?*}
    env=(REDIS_URL="$redis" REDIS_PREFIX="$prefix")
    if [ "$target" = soketi ]; then
      read -ra env <<<"$(soketi_redis_env "$SB_TEST_REDIS_URL")"
      env+=(SOKETI_ADAPTER_DRIVER=redis SOKETI_ADAPTER_REDIS_PREFIX="$prefix")
    elif [[ "$SCENARIO" == pusher-* ]]; then
      env+=(PUSHER_APPS="$BENCH_PUSHER_APPS")
    fi
    start "$target" "${env[@]}"; SERVER=$PID; url="http://127.0.0.1:$PORT"
    start "$target" "${env[@]}"; SERVER2=$PID; url="$url,http://127.0.0.1:$PORT"
  elif [[ "$SCENARIO" == pusher-* ]] && [ "$target" != soketi ]; then
    start "$target" PUSHER_APPS="$BENCH_PUSHER_APPS"; SERVER=$PID; url="http://127.0.0.1:$PORT"
  else
    start "$target"; SERVER=$PID; url="http://127.0.0.1:$PORT"
  fi
  sleep 0.5 # as benches/run.sh: let the server settle after it starts listening
  local before after line
  before=$(cpu_s "$SERVER")
  [ -n "$SERVER2" ] && before=$(python3 -c "print($before + $(cpu_s "$SERVER2"))")
  local extra=()
  case "$SCENARIO" in idle|pusher-idle) extra=(--pid "$SERVER") ;; esac
  line=$(/usr/bin/time -f "%U %S" -o "$STATE/lg.time" \
    "$LOADGEN" "${ARGS[@]}" "${extra[@]}" --url "$url" --secret "$SECRET" --label ab)
  after=$(cpu_s "$SERVER")
  [ -n "$SERVER2" ] && after=$(python3 -c "print($after + $(cpu_s "$SERVER2"))")
  for pid in $SERVER $SERVER2; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
  SERVER=""; SERVER2=""
  python3 - "$target" "$before" "$after" "$(cat "$STATE/lg.time")" "$line" <<'EOF'
import json, os, sys
target, before, after, lg, line = sys.argv[1:]
r = json.loads(line)
u, s = (float(x) for x in lg.split())
if "bytesPerConn" in r:
    print(f"{os.path.basename(target):>16}  {r['bytesPerConn']:>9,.0f} bytes per idle connection"
          f"  ({r.get('connections', '?')} connections)")
    sys.exit(0)
print(f"{os.path.basename(target):>16}  {r['deliveredPerSec']:>11,.0f}/s  p50 {r['p50Ms']:>8.2f} ms"
      f"  p99 {r['p99Ms']:>8.2f} ms  lost {r['lost']}  server CPU {float(after) - float(before):6.2f} s"
      f"  load tool CPU {u + s:6.2f} s"
      + (f"  arrival p99 {r['arrival']['p99Ms']:.2f} ms" if "arrival" in r else ""))
EOF
}

echo "$SCENARIO, $ROUNDS rounds, $(nproc) CPUs, $(date -u +%FT%TZ)"
for _ in $(seq "$ROUNDS"); do
  for t in "$@"; do one_run "$t"; done
done
