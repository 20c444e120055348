# Sourced by benches/run.sh and benches/ab.sh: what both start servers with, so that a
# back-to-back comparison runs the servers exactly as the benchmark does.

# The load tool signs its dev tokens with this; both servers check them with it (32 bytes or
# more: Switchboard refuses shorter secrets).
BENCH_SECRET=bench-secret-0123456789abcdefghijklmn
# The admin API key of both servers (Switchboard's API_KEYS, the reference's API_KEY): the
# insforge-fanout scenario creates its channel definition with it.
BENCH_API_KEY=bench-api-key-0123456789abcdefghijklmn
# Switchboard's settings for load: the per-socket event and relay-byte rates, the per-user socket
# cap and the per-address connection cap are production guards that a load test (1,000 users
# on one chat, up to 40K connections from one address) would trip; the Node reference has none.
# SEED_DEMO: the load tool's seed is loaded with Redis or MongoDB configured too (those seed only
# when told to).
BENCH_SB_ENV=(RATE_LIMIT_PER_SEC=1000000 RATE_LIMIT_BURST=1000000 MAX_SOCKETS_PER_USER=100000
  RELAY_BYTES_PER_SEC=1073741824 RELAY_BYTES_BURST=1073741824 MAX_CONNECTIONS_PER_IP=0
  SEED_DEMO=true RUST_LOG=warn API_KEYS="$BENCH_API_KEY")

# target_dir: where cargo puts its builds: CARGO_TARGET_DIR when set (a relative one is taken
# from the repository root, where the scripts run cargo), else target/.
target_dir() {
  local d=${CARGO_TARGET_DIR:-target}
  case "$d" in /*) echo "$d" ;; *) echo "$ROOT/$d" ;; esac
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
# port_open PORT: true once something accepts connections on 127.0.0.1:PORT.
port_open() {
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.5).close()" 2>/dev/null
}

# The Pusher app of the pusher-* scenarios, on both Pusher servers: the load tool's defaults
# (app id `bench`, key `bench-key`) and BENCH_SECRET as its secret. Soketi lets clients send
# client events without a rate limit by default; Switchboard's per-connection default (Pusher's
# 10 per second) is a production guard like the rates above, raised for the same reason.
BENCH_PUSHER_APPS='[{"id":"bench","key":"bench-key","secret":"'"$BENCH_SECRET"'","projectId":"bench","clientEventsPerSecond":1000000}]'
BENCH_SOKETI_ENV=(SOKETI_DEFAULT_APP_ID=bench SOKETI_DEFAULT_APP_KEY=bench-key
  SOKETI_DEFAULT_APP_SECRET="$BENCH_SECRET" SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true
  SOKETI_HOST=127.0.0.1)

# soketi_install: benches/reference-soketi's packages, from its lock file, when missing.
soketi_install() {
  (cd "$ROOT/benches/reference-soketi" &&
    { [ -d node_modules/@soketi/soketi ] || npm ci --ignore-scripts --no-audit --no-fund --silent; })
}

# soketi_redis_env URL: Soketi's variables for the Redis of a redis:// URL (host and port only).
soketi_redis_env() {
  python3 - "$1" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
print(f"SOKETI_DB_REDIS_HOST={u.hostname or '127.0.0.1'} SOKETI_DB_REDIS_PORT={u.port or 6379}")
PY
}
