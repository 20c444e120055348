#!/usr/bin/env bash
# Switchboard against the Node socket.io 4.8 reference (benches/reference) and, for the Pusher
# protocol, against Soketi (benches/reference-soketi); same scenarios, same machine, alternating
# A B A B for several rounds; prints the medians and the Switchboard/reference ratio of every
# figure. Every server is started fresh on 127.0.0.1 for each run.
#
#   benches/run.sh                 3 rounds (about 10 minutes on 2 cores)
#   benches/run.sh --rounds 5
#   benches/run.sh --only rooms,persist    some scenarios (fanout16 fanout64 fanout-40k rooms
#                                          rooms-5k idle cross-rooms cross-rooms-5k cross-fanout
#                                          persist persist-embedded insforge-fanout, and the Pusher ones: pusher-fanout
#                                          pusher-channels pusher-channels-each pusher-idle
#                                          pusher-cross-channels pusher-cross-fanout;
#                                          `pusher` = all six; and
#                                          HTTP pub/sub, Switchboard only: sse-fanout
#                                          sse-idle, compared with Switchboard's own
#                                          fanout16 and idle of the same run; Supabase
#                                          Realtime, Switchboard only: phoenix-fanout
#                                          phoenix-rooms, beside its fanout16 and rooms)
#   benches/run.sh --only pusher --servers soketi   the Soketi side alone (sb node soketi floor)
#   benches/run.sh --smoke         a few seconds against Switchboard only (CI keeps the tool working)
#
# Needs Redis (cross-node) and MongoDB (persisted sends): run through scripts/test, which starts
# both; this script re-executes itself that way when SB_TEST_REDIS_URL is unset.
# Results: one JSON line per run in $BENCH_OUT (default <cargo target dir>/bench/results.jsonl).
# Binaries are taken from CARGO_TARGET_DIR when it is set, as cargo builds them there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=3
SMOKE=0
ONLY=""
SERVERS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "${SB_TEST_REDIS_URL:-}" ] || [ -z "${SB_TEST_MONGODB_URI:-}" ]; then
  args=(--rounds "$ROUNDS"); [ -n "$ONLY" ] && args+=(--only "$ONLY")
  [ -n "$SERVERS" ] && args+=(--servers "$SERVERS"); [ "$SMOKE" = 1 ] && args=(--smoke)
  exec "$ROOT/scripts/test" --run "$ROOT/benches/run.sh" "${args[@]}"
fi

# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
SECRET=$BENCH_SECRET
STATE=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
TARGET_DIR=$(target_dir)
OUT=${BENCH_OUT:-$TARGET_DIR/bench/results.jsonl}
mkdir -p "$(dirname "$OUT")"
PIDS=()
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$STATE"
}
trap cleanup EXIT

wait_port() {
  local deadline=$((SECONDS + 30))
  until port_open "$1"; do
    [ $SECONDS -ge $deadline ] && { log "nothing listens on $1; logs:"; tail -n 30 "$STATE"/*.log >&2; exit 1; }
    sleep 0.1
  done
}

if [ "$SMOKE" = 1 ]; then
  SB=${SB_BIN:-$TARGET_DIR/debug/switchboard}
  LOADGEN=$TARGET_DIR/debug/loadgen
  [ -x "$LOADGEN" ] || cargo build --quiet -p switchboard-loadgen
else
  PUSHER_SCENARIOS=pusher-fanout,pusher-channels,pusher-channels-each,pusher-idle,pusher-cross-channels,pusher-cross-fanout
  if [ -n "$ONLY" ]; then
    expanded=""
    IFS=, read -ra parts <<<"$ONLY"
    for part in "${parts[@]}"; do
      [ "$part" = pusher ] && part=$PUSHER_SCENARIOS
      expanded+="${expanded:+,}$part"
    done
    ONLY=$expanded
  fi
  server_wanted() { [ -z "$SERVERS" ] || [[ ",$SERVERS," == *",$1,"* ]]; }
  log "building release binaries"
  if server_wanted sb; then
    cargo build --release --quiet -p switchboard -p switchboard-loadgen
  else
    cargo build --release --quiet -p switchboard-loadgen
  fi
  SB=$TARGET_DIR/release/switchboard
  LOADGEN=$TARGET_DIR/release/loadgen
  if server_wanted node; then
    (cd benches/reference && { [ -d node_modules/socket.io ] || npm ci --no-audit --no-fund --silent; })
  fi
  if server_wanted soketi && { [ -z "$ONLY" ] || [[ "$ONLY" == *pusher* ]]; }; then soketi_install; fi
fi
"$LOADGEN" seed --out "$STATE/seeds" 2>/dev/null

RUN_PIDS=()
# start_sb NAME [extra env...]: a fresh Switchboard; echoes its URL, sets LAST_PID.
start_sb() {
  local name=$1 port store=(STORE=memory); shift
  port=$(free_port)
  # In memory unless the run picks a store: servers started together must not share ./data.
  [[ " $* " == *" MONGODB_URI="* || " $* " == *" STORE="* ]] && store=()
  env HOST=127.0.0.1 PORT="$port" JWT_SECRET="$SECRET" SEEDS_DIR="$STATE/seeds" \
    "${store[@]}" "${BENCH_SB_ENV[@]}" "$@" "$SB" >"$STATE/$name.log" 2>&1 &
  LAST_PID=$!; RUN_PIDS+=($!); PIDS+=($!)
  wait_port "$port"
  URL="http://127.0.0.1:$port"
}
# start_floor NAME: `loadgen floor`, the least work a fan-out server can do (benches/loadgen/src/floor.rs).
start_floor() {
  local name=$1 port
  port=$(free_port)
  "$LOADGEN" floor --port "$port" --split "${FLOOR_SPLIT:-1}" >"$STATE/$name.log" 2>&1 &
  LAST_PID=$!; RUN_PIDS+=($!); PIDS+=($!)
  wait_port "$port"
  URL="http://127.0.0.1:$port"
}
start_node() {
  local name=$1 port; shift
  port=$(free_port)
  (cd benches/reference && exec env PORT="$port" JWT_SECRET="$SECRET" API_KEY="$BENCH_API_KEY" "$@" node server.mjs) \
    >"$STATE/$name.log" 2>&1 &
  LAST_PID=$!; RUN_PIDS+=($!); PIDS+=($!)
  wait_port "$port"
  URL="http://127.0.0.1:$port"
}
# start_soketi NAME [extra env...]: a fresh Soketi (benches/reference-soketi); as start_node.
start_soketi() {
  local name=$1 port mport; shift
  port=$(free_port); mport=$(free_port)
  # SOKETI_METRICS_SERVER_PORT: Soketi always opens its /usage server (9601 by default), which
  # two nodes on one machine would both want.
  (cd benches/reference-soketi && exec env SOKETI_PORT="$port" SOKETI_METRICS_SERVER_PORT="$mport" \
    "${BENCH_SOKETI_ENV[@]}" "$@" node node_modules/@soketi/soketi/bin/server.js start) \
    >"$STATE/$name.log" 2>&1 &
  LAST_PID=$!; RUN_PIDS+=($!); PIDS+=($!)
  wait_port "$port"
  # Without a uWebSockets.js binary for this Node, the override falls back to a JavaScript
  # server: not Soketi's speed, so not a reference (benches/reference-soketi/README.md).
  if grep -q "not compatible with your Node.js build" "$STATE/$name.log"; then
    log "Soketi runs on uWebSockets.js's JavaScript fallback (no binary for node $(node --version)); refusing to measure it"
    exit 1
  fi
  URL="http://127.0.0.1:$port"
}
# fresh_mongo: a MongoDB-compatible server of its own (SecantusDB, empty storage); sets MONGO_URI.
fresh_mongo() {
  local port dir
  port=$(free_port); dir=$(mktemp -d "$STATE/mongo.XXXX")
  "${SB_SECANTUSD:?run through scripts/test}" --host 127.0.0.1 --port "$port" --storage-path "$dir" \
    >"$dir.log" 2>&1 &
  RUN_PIDS+=($!); PIDS+=($!)
  local deadline=$((SECONDS + 90))
  until port_open "$port"; do
    [ $SECONDS -ge $deadline ] && { log "SecantusDB did not start"; tail -n 20 "$dir.log" >&2; exit 1; }
    sleep 0.2
  done
  MONGO_URI="mongodb://127.0.0.1:$port/?directConnection=true"
}
stop_all() {
  for p in "${RUN_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${RUN_PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  RUN_PIDS=()
}
# lg NAME ARGS…: one loadgen run, its JSON line renamed to scenario NAME and kept in $OUT.
lg() {
  local name=$1; shift
  "$LOADGEN" "$@" --secret "$SECRET" | sed "s/\"scenario\":\"[a-z-]*\"/\"scenario\":\"$name\"/" | tee -a "$OUT"
}

if [ "$SMOKE" = 1 ]; then
  log "smoke: loadgen against Switchboard for a few seconds"
  start_sb smoke
  res=$(lg fanout fanout --url "$URL" --label smoke --subscribers 20 --messages 50 --inflight 8 --max-secs 20)
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==1000, r'
  res=$(lg rooms rooms --url "$URL" --label smoke --pairs 10 --messages 20 --inflight 4 --max-secs 20)
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==400, r'
  # Two nodes on one Redis: every message crosses nodes (pairs are split). A burst like this
  # once lost most messages in the adapter's pub/sub buffer; lost must stay 0.
  stop_all
  prefix="smoke$RANDOM$RANDOM"
  start_sb smoke-a REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix"; ua=$URL
  start_sb smoke-b REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix"; ub=$URL
  res=$(lg cross-rooms rooms --url "$ua,$ub" --label smoke --pairs 200 --messages 20 --inflight 4 --max-secs 60)
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==8000, r'
  stop_all
  start_sb smoke
  res=$(lg insforge-fanout insforge-fanout --url "$URL" --label smoke --subscribers 20 --messages 50 --inflight 8 --max-secs 20 --api-key "$BENCH_API_KEY")
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==1000 and r["sendFailures"]==0 and r["serverErrors"]==0, r'
  res=$(lg phoenix-fanout phoenix-fanout --url "$URL" --label smoke --subscribers 20 --messages 50 --inflight 8 --max-secs 20)
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==1000 and r["sendFailures"]==0, r'
  res=$(lg phoenix-rooms phoenix-rooms --url "$URL" --label smoke --pairs 10 --messages 20 --inflight 4 --max-secs 20)
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==400 and r["sendFailures"]==0, r'
  res=$(lg idle idle --url "$URL" --label smoke --pid "$LAST_PID" --connections 50 --settle-secs 1)
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["connections"]==50, r'
  stop_all
  # The Pusher front end (Switchboard builds that have it): the same load tool speaking protocol
  # 7, fan-out over the HTTP API and client events in pairs, one node and two.
  # (Help text captured first: `grep -q` closing the pipe early would fail it under pipefail.)
  sb_help=$("$SB" --help 2>/dev/null || true)
  if [[ "$sb_help" == *PUSHER_APPS* ]]; then
    start_sb smoke PUSHER_APPS="$BENCH_PUSHER_APPS"
    res=$(lg pusher-fanout pusher-fanout --url "$URL" --label smoke --subscribers 20 --messages 50 --inflight 8 --max-secs 20)
    echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==1000 and r["sendFailures"]==0, r'
    res=$(lg pusher-channels pusher-channels --url "$URL" --label smoke --pairs 10 --messages 20 --max-secs 20)
    echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==400, r'
    stop_all
    prefix="smoke$RANDOM$RANDOM"
    start_sb smoke-a REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix" PUSHER_APPS="$BENCH_PUSHER_APPS"; ua=$URL
    start_sb smoke-b REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix" PUSHER_APPS="$BENCH_PUSHER_APPS"; ub=$URL
    res=$(lg pusher-cross-channels pusher-channels --url "$ua,$ub" --label smoke --pairs 50 --messages 20 --max-secs 60)
    echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==2000, r'
    stop_all
  else
    log "smoke: this Switchboard has no Pusher front end (no PUSHER_APPS); Pusher scenarios skipped"
  fi
  FLOOR_SPLIT=2 start_floor smoke-floor
  res=$(lg fanout fanout --url "$URL" --label smoke-floor --subscribers 20 --messages 20 --rate 200 --max-secs 20)
  echo "$res" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["lost"]==0 and r["delivered"]==400, r'
  stop_all
  log "smoke passed"
  exit 0
fi

: >"$OUT"
# one_run SERVER SCENARIO: SERVER is sb, node, soketi (pusher-* only) or floor (fanout-40k only).
one_run() {
  local who=$1 scenario=$2 u1 u2 prefix
  prefix="bench$RANDOM$RANDOM"
  case "$scenario" in
    pusher-cross-*)
      if [ "$who" = sb ]; then
        start_sb "$who-a" REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix" PUSHER_APPS="$BENCH_PUSHER_APPS"; u1=$URL
        start_sb "$who-b" REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix" PUSHER_APPS="$BENCH_PUSHER_APPS"; u2=$URL
      else
        local redis_env
        read -ra redis_env <<<"$(soketi_redis_env "$SB_TEST_REDIS_URL")"
        start_soketi "$who-a" SOKETI_ADAPTER_DRIVER=redis SOKETI_ADAPTER_REDIS_PREFIX="$prefix" "${redis_env[@]}"; u1=$URL
        start_soketi "$who-b" SOKETI_ADAPTER_DRIVER=redis SOKETI_ADAPTER_REDIS_PREFIX="$prefix" "${redis_env[@]}"; u2=$URL
      fi
      URL="$u1,$u2" ;;
    pusher-*)
      if [ "$who" = sb ]; then start_sb "$who" PUSHER_APPS="$BENCH_PUSHER_APPS"; else start_soketi "$who"; fi ;;
    cross-rooms|cross-rooms-5k|cross-fanout)
      if [ "$who" = sb ]; then
        start_sb "$who-a" REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix"; u1=$URL
        start_sb "$who-b" REDIS_URL="$SB_TEST_REDIS_URL" REDIS_PREFIX="$prefix"; u2=$URL
      else
        local plain=${SB_TEST_REDIS_URL%%\?*}
        start_node "$who-a" REDIS_URL="$plain" REDIS_PREFIX="$prefix"; u1=$URL
        start_node "$who-b" REDIS_URL="$plain" REDIS_PREFIX="$prefix"; u2=$URL
      fi
      URL="$u1,$u2" ;;
    persist)
      # SecantusDB slows down as it accumulates data and history (measured: 1,367 inserts/s
      # fresh, 88/s after a few runs), so each side gets a fresh server of its own.
      fresh_mongo; local m1=$MONGO_URI
      "$LOADGEN" driver --mongo-uri "$m1" --db "${prefix}_driver" --concurrency 128 --inserts 4000 --label driver | tee -a "$OUT"
      stop_all
      fresh_mongo
      # shellcheck disable=SC2086 # PERSIST_ENV: extra VAR=value words for this server
      start_sb "$who" MONGODB_URI="$MONGO_URI" MONGODB_DB="$prefix" ${PERSIST_ENV:-} ;;
    persist-embedded)
      # The same sends on the embedded store (DATA_DIR), in a fresh folder of its own.
      # shellcheck disable=SC2086
      start_sb "$who" STORE=embedded DATA_DIR="$STATE/data-$prefix" ${PERSIST_ENV:-} ;;
    *)
      case "$who" in sb) start_sb "$who" ;; node) start_node "$who" ;; *) start_floor "$who" ;; esac ;;
  esac
  sleep 0.5
  case "$scenario" in
    fanout16) lg fanout16 fanout --url "$URL" --label "$who" --inflight 16 --messages 2000 ;;
    fanout64) lg fanout64 fanout --url "$URL" --label "$who" --inflight 64 --messages 2000 ;;
    fanout-40k) lg fanout-40k fanout --url "$URL" --label "$who" --rate 40 --messages 400 ;;
    rooms) lg rooms rooms --url "$URL" --label "$who" --inflight 4 --messages 100 ;;
    rooms-5k) lg rooms-5k rooms --url "$URL" --label "$who" --rate 5000 --messages 25 ;;
    idle) lg idle idle --url "$URL" --label "$who" --pid "$LAST_PID" --connections 5000 ;;
    cross-rooms) lg cross-rooms rooms --url "$URL" --label "$who" --inflight 4 --messages 100 ;;
    cross-rooms-5k) lg cross-rooms-5k rooms --url "$URL" --label "$who" --rate 5000 --messages 25 ;;
    cross-fanout) lg cross-fanout fanout --url "$URL" --label "$who" --inflight 16 --messages 1000 ;;
    # fanout16 over the InsForge namespace: realtime:publish, no acks (the publisher's window is
    # its own messages delivered back to it). Switchboard needs a channel definition (created
    # with the API key), stores every message and counts its audience; the reference does not.
    insforge-fanout)
      local define=(); [ "$who" = sb ] && define=(--api-key "$BENCH_API_KEY")
      lg insforge-fanout insforge-fanout --url "$URL" --label "$who" --inflight 16 --messages 2000 "${define[@]}" ;;
    persist)
      lg persist persist --url "$URL" --label "$who" --senders 16 --inflight 8 --messages 250 ;;
    persist-embedded)
      lg persist-embedded persist --url "$URL" --label "$who" --senders 16 --inflight 8 --messages 250 ;;
    # The Pusher scenarios mirror fanout16, rooms, idle, cross-rooms and cross-fanout: HTTP API
    # triggers stand for the publisher's acknowledged sends, client events in private channels
    # for the pairs' sends (windowed by their partner's deliveries: the protocol has no acks).
    pusher-fanout) lg pusher-fanout pusher-fanout --url "$URL" --label "$who" --inflight 16 --messages 2000 ;;
    pusher-channels) lg pusher-channels pusher-channels --url "$URL" --label "$who" --inflight 4 --messages 100 ;;
    # The same with one write per client event: on two cores the load tool then needs more CPU
    # per event than Switchboard does (docs/performance.md, "Pusher protocol").
    pusher-channels-each) lg pusher-channels-each pusher-channels --url "$URL" --label "$who" --inflight 4 --messages 100 --write-each ;;
    pusher-idle) lg pusher-idle pusher-idle --url "$URL" --label "$who" --pid "$LAST_PID" --connections 5000 ;;
    pusher-cross-channels) lg pusher-cross-channels pusher-channels --url "$URL" --label "$who" --inflight 4 --messages 100 ;;
    pusher-cross-fanout) lg pusher-cross-fanout pusher-fanout --url "$URL" --label "$who" --inflight 16 --messages 1000 ;;
    # Supabase Realtime (Phoenix channels, vsn 1.0.0): fanout16 and rooms with acked broadcasts.
    phoenix-fanout) lg phoenix-fanout phoenix-fanout --url "$URL" --label "$who" --inflight 16 --messages 2000 ;;
    phoenix-rooms) lg phoenix-rooms phoenix-rooms --url "$URL" --label "$who" --inflight 4 --messages 100 ;;
    # HTTP pub/sub: fanout16 and idle with an HTTP publisher and SSE subscribers.
    sse-fanout) lg sse-fanout sse-fanout --url "$URL" --label "$who" --inflight 16 --messages 2000 ;;
    sse-idle) lg sse-idle sse-idle --url "$URL" --label "$who" --pid "$LAST_PID" --connections 5000 ;;
  esac
  stop_all
}

SCENARIOS=(fanout16 fanout64 fanout-40k rooms rooms-5k idle cross-rooms cross-rooms-5k cross-fanout persist persist-embedded
  insforge-fanout pusher-fanout pusher-channels pusher-channels-each pusher-idle pusher-cross-channels pusher-cross-fanout sse-fanout sse-idle
  phoenix-fanout phoenix-rooms)
wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
for round in $(seq 1 "$ROUNDS"); do
  for s in "${SCENARIOS[@]}"; do
    wanted "$s" || continue
    if [ "$s" = persist ]; then
      server_wanted sb || continue
      log "round $round: persist — bare driver, then switchboard"; one_run sb persist >/dev/null
      continue
    fi
    if [ "$s" = persist-embedded ]; then
      server_wanted sb || continue
      log "round $round: persist-embedded — switchboard on the embedded store"; one_run sb "$s" >/dev/null
      continue
    fi
    # Each scenario's reference: Soketi for the Pusher protocol, Node socket.io otherwise;
    # none for HTTP pub/sub and Supabase Realtime (the Node reference speaks neither: their
    # figures sit beside Switchboard's own Socket.IO ones).
    ref=node; [[ "$s" == pusher-* ]] && ref=soketi; [[ "$s" == sse-* || "$s" == phoenix-* ]] && ref=none
    if server_wanted sb; then log "round $round: $s — switchboard"; one_run sb "$s" >/dev/null; fi
    if [ "$ref" != none ] && server_wanted "$ref"; then log "round $round: $s — $ref"; one_run "$ref" "$s" >/dev/null; fi
    # The machine's own bound on the fixed-rate tail: a stand-in that only writes the frames.
    if [ "$s" = fanout-40k ] && server_wanted floor; then
      log "round $round: $s — floor";     one_run floor "$s" >/dev/null
    fi
  done
done

python3 - "$OUT" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(r, key):  # "a.b" reads a nested field
    for k in key.split("."):
        r = r.get(k) if isinstance(r, dict) else None
    return r
def med(scen, label, key):
    v = [get(r, key) for r in rows if r["scenario"] == scen and r["label"] == label]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
figs = [
    ("fan-out, 16 in flight: delivered/s", "fanout16", "deliveredPerSec", "fanout"),
    ("fan-out, 64 in flight: delivered/s", "fanout64", "deliveredPerSec", "fanout"),
    ("fan-out at 40K deliveries/s: p99 ms", "fanout-40k", "p99Ms", "fanout"),
    ("  same, p99 ms at the kernel's arrival stamp", "fanout-40k", "arrival.p99Ms", "fanout"),
    ("  same, p99 ms of `loadgen floor` (writes only) in Switchboard's column", "fanout-40k", "p99Ms", "floor"),
    ("many rooms: delivered/s", "rooms", "deliveredPerSec", "rooms"),
    ("many rooms at 5K msg/s: p99 ms", "rooms-5k", "p99Ms", "rooms"),
    ("idle: bytes per connection", "idle", "bytesPerConn", "idle"),
    ("2 nodes, many rooms: delivered/s", "cross-rooms", "deliveredPerSec", "rooms"),
    ("2 nodes, many rooms: p99 ms", "cross-rooms", "p99Ms", "rooms"),
    ("2 nodes, many rooms at 5K msg/s: p99 ms", "cross-rooms-5k", "p99Ms", "rooms"),
    ("2 nodes, fan-out 16 in flight: delivered/s", "cross-fanout", "deliveredPerSec", "fanout"),
]
fmt = lambda x: "—" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.2f}")
def table(figs, ref, ref_name):
    present = [f for f in figs if any(r["scenario"] == f[1] for r in rows)]
    if not present:
        return
    print(f"| figure | Switchboard | {ref_name} | Switchboard/{ref_name} |\n|---|---|---|---|")
    for name, scen, key, who in present:
        a, b = med(scen, "floor" if who == "floor" else "sb", key), med(scen, ref, key)
        ratio = f"{a / b:.2f}" if a is not None and b else "—"
        print(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} |")
    print()
table(figs, "node", "Node")
table([
    ("Pusher fan-out, 16 HTTP triggers in flight: delivered/s", "pusher-fanout", "deliveredPerSec", "x"),
    ("  same, p99 ms", "pusher-fanout", "p99Ms", "x"),
    ("Pusher many channels (client events): delivered/s", "pusher-channels", "deliveredPerSec", "x"),
    ("  same, p99 ms", "pusher-channels", "p99Ms", "x"),
    ("Pusher many channels, one write per client event: delivered/s", "pusher-channels-each", "deliveredPerSec", "x"),
    ("  same, p99 ms", "pusher-channels-each", "p99Ms", "x"),
    ("Pusher idle: bytes per connection", "pusher-idle", "bytesPerConn", "x"),
    ("Pusher 2 nodes, many channels: delivered/s", "pusher-cross-channels", "deliveredPerSec", "x"),
    ("  same, p99 ms", "pusher-cross-channels", "p99Ms", "x"),
    ("Pusher 2 nodes, fan-out 16 in flight: delivered/s", "pusher-cross-fanout", "deliveredPerSec", "x"),
], "soketi", "Soketi")
# The InsForge namespace against the main namespace's fan-out of the same run (issue #23:
# within 20%, i.e. ≥ 0.8×) and against the reference's /insforge (≥ 5×).
if any(r["scenario"] == "insforge-fanout" for r in rows):
    print("| InsForge /insforge, 16 in flight | Switchboard | Node | Switchboard/Node | Switchboard main-namespace fanout16 | InsForge/main |\n|---|---|---|---|---|---|")
    for name, key in (("delivered/s", "deliveredPerSec"), ("p50 ms", "p50Ms"), ("p99 ms", "p99Ms")):
        a, b, m = med("insforge-fanout", "sb", key), med("insforge-fanout", "node", key), med("fanout16", "sb", key)
        r1 = f"{a / b:.2f}" if a is not None and b else "—"
        r2 = f"{a / m:.2f}" if a is not None and m else "—"
        print(f"| {name} | {fmt(a)} | {fmt(b)} | {r1} | {fmt(m)} | {r2} |")
    print()
def sse_table():
    figs = [
        ("fan-out, 16 in flight: delivered/s", "sse-fanout", "fanout16", "deliveredPerSec"),
        ("  same, p50 ms", "sse-fanout", "fanout16", "p50Ms"),
        ("  same, p99 ms", "sse-fanout", "fanout16", "p99Ms"),
        ("idle: bytes per connection", "sse-idle", "idle", "bytesPerConn"),
    ]
    present = [f for f in figs if any(r["scenario"] == f[1] for r in rows)]
    if not present:
        return
    print("| figure (Switchboard) | HTTP pub/sub (SSE) | Socket.IO | SSE/Socket.IO |\n|---|---|---|---|")
    for name, sse, sio, key in present:
        a, b = med(sse, "sb", key), med(sio, "sb", key)
        ratio = f"{a / b:.2f}" if a is not None and b else "—"
        print(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} |")
    for sse in ("sse-fanout", "sse-idle"):
        runs = sorted(get(r, "deliveredPerSec" if sse == "sse-fanout" else "bytesPerConn")
                      for r in rows if r["scenario"] == sse and r["label"] == "sb")
        if runs:
            print(f"{sse} runs (sorted): " + " / ".join(fmt(x) for x in runs if x is not None))
    print()
sse_table()
def phoenix_table():
    figs = [
        ("fan-out, 16 in flight: delivered/s", "phoenix-fanout", "fanout16", "deliveredPerSec"),
        ("  same, p50 ms", "phoenix-fanout", "fanout16", "p50Ms"),
        ("  same, p99 ms", "phoenix-fanout", "fanout16", "p99Ms"),
        ("many rooms (500 pairs), 4 in flight: delivered/s", "phoenix-rooms", "rooms", "deliveredPerSec"),
        ("  same, p50 ms", "phoenix-rooms", "rooms", "p50Ms"),
        ("  same, p99 ms", "phoenix-rooms", "rooms", "p99Ms"),
    ]
    present = [f for f in figs if any(r["scenario"] == f[1] for r in rows)]
    if not present:
        return
    print("| figure (Switchboard) | Supabase Realtime (Phoenix) | Socket.IO | Phoenix/Socket.IO |\n|---|---|---|---|")
    for name, phx, sio, key in present:
        a, b = med(phx, "sb", key), med(sio, "sb", key)
        ratio = f"{a / b:.2f}" if a is not None and b else "—"
        print(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} |")
    print()
phoenix_table()
s, d = med("persist", "sb", "sendsPerSec"), med("driver", "driver", "insertsPerSec")
p = med("persist", "sb", "p99Ms")
if s and d:
    print(f"| persisted message:send: sends/s (vs bare driver inserts/s) | {s:,.0f} | {d:,.0f} (driver) | {s / d:.2f} |")
    print(f"| persisted message:send: p99 ack ms | {p:.2f} | — | — |")
e, ep = med("persist-embedded", "sb", "sendsPerSec"), med("persist-embedded", "sb", "p99Ms")
if e:
    vs = f"{s:,.0f} (MongoDB) | {e / s:.2f}" if s else "— | —"
    print(f"| persisted message:send, embedded store: sends/s (vs MongoDB) | {e:,.0f} | {vs} |")
    print(f"| persisted message:send, embedded store: p99 ack ms | {ep:.2f} | — | — |")
lost = sum(r.get("lost", 0) for r in rows)
errs = sum(r.get("serverErrors", 0) + r.get("sendFailures", 0) for r in rows)
print(f"\nruns: {len(rows)}, messages lost over all runs: {lost}, send failures and server errors: {errs}")
PY
