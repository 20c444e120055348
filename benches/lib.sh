# Sourced by benches/run.sh and benches/ab.sh: what both start servers with, so that a
# back-to-back comparison runs the servers exactly as the benchmark does.

# The load tool signs its dev tokens with this; both servers check them with it.
BENCH_SECRET=bench-secret-0123456789abcdef
# Switchboard's settings for load: the per-socket rate limit and per-user socket cap are
# production guards that a load test of 1,000 users on one chat would trip.
BENCH_SB_ENV=(RATE_LIMIT_PER_SEC=1000000 RATE_LIMIT_BURST=1000000 MAX_SOCKETS_PER_USER=100000
  RUST_LOG=warn)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
# port_open PORT: true once something accepts connections on 127.0.0.1:PORT.
port_open() {
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.5).close()" 2>/dev/null
}
