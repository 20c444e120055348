# Sourced by benches/run.sh and benches/ab.sh: what both start servers with, so that a
# back-to-back comparison runs the servers exactly as the benchmark does.

# The load tool signs its dev tokens with this; both servers check them with it (32 bytes or
# more: Switchboard refuses shorter secrets).
BENCH_SECRET=bench-secret-0123456789abcdefghijklmn
# Switchboard's settings for load: the per-socket event and relay-byte rates, the per-user socket
# cap and the per-address connection cap are production guards that a load test (1,000 users
# on one chat, up to 40K connections from one address) would trip; the Node reference has none.
# SEED_DEMO: the load tool's seed is loaded with Redis or MongoDB configured too (those seed only
# when told to).
BENCH_SB_ENV=(RATE_LIMIT_PER_SEC=1000000 RATE_LIMIT_BURST=1000000 MAX_SOCKETS_PER_USER=100000
  RELAY_BYTES_PER_SEC=1073741824 RELAY_BYTES_BURST=1073741824 MAX_CONNECTIONS_PER_IP=0
  SEED_DEMO=true RUST_LOG=warn)

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
