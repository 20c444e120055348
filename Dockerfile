# Switchboard container image.
#
#   docker build -t switchboard .
#   docker run --rm -p 3000:3000 -e JWT_SECRET="$(openssl rand -hex 32)" -e SEED_DEMO=true switchboard
#
# The image binds 0.0.0.0, so it needs a JWT_SECRET of its own (the public dev secret is refused
# off loopback) and seeds the demo data only when SEED_DEMO=true. docker-compose.yml runs two of
# these behind nginx with MongoDB and Redis. tests/compose.rs replays the builder stage below
# (its COPY lines and commands) to catch a build context that misses a workspace file.

# ---- builder ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# 1. Dependencies only: every workspace member's manifest, the lock file and the patched crates
#    under vendor/ (built as dependencies), with stub sources for the members, so this (slow)
#    layer is rebuilt only when a manifest, Cargo.lock or a vendored crate changes.
COPY Cargo.toml Cargo.lock ./
COPY handlers/Cargo.toml handlers/Cargo.toml
COPY handlers/core/Cargo.toml handlers/core/Cargo.toml
COPY benches/loadgen/Cargo.toml benches/loadgen/Cargo.toml
COPY vendor vendor
RUN mkdir -p src handlers/src handlers/core/src benches/loadgen/src \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > benches/loadgen/src/main.rs \
 && touch src/lib.rs handlers/src/lib.rs handlers/core/src/lib.rs \
 && cargo build --release --locked -p switchboard \
 && rm -rf src handlers/src handlers/core/src

# 2. The real sources. COPY keeps the files' original mtimes, which can be older than the stub
#    build above, so touch them to make cargo rebuild the three workspace crates. The load
#    generator keeps its stub: the image does not ship it.
COPY src src
COPY handlers/src handlers/src
COPY handlers/core/src handlers/core/src
# The admin console's files, compiled into the binary (src/http/console.rs).
COPY console console
RUN find src handlers/src handlers/core/src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p switchboard \
 && install -s -m 0755 target/release/switchboard /usr/local/bin/switchboard

# ---- runtime ---------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to MongoDB/Redis/integration endpoints (rustls reads the system roots).
# No curl: the compose healthcheck speaks HTTP through bash's /dev/tcp instead.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system switchboard \
 && useradd --system --gid switchboard --home-dir /app --no-create-home --shell /usr/sbin/nologin switchboard

COPY --from=builder /usr/local/bin/switchboard /usr/local/bin/switchboard
COPY seeds /app/seeds
# The embedded store's folder (used when MONGODB_URI is unset); mount a volume here to keep it.
RUN mkdir /data && chown switchboard:switchboard /data
VOLUME /data

WORKDIR /app
# No JWT_SECRET and no SEED_DEMO here: the operator sets both (see above).
ENV HOST=0.0.0.0 \
    PORT=3000 \
    SEEDS_DIR=/app/seeds \
    DATA_DIR=/data
EXPOSE 3000
USER switchboard

# Liveness/readiness checks live in docker-compose.yml (GET /health and /ready).
CMD ["switchboard", "serve"]
