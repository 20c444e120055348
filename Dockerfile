# Switchboard container image.
#
#   docker build -t switchboard .
#   docker run --rm -p 3000:3000 switchboard            # embedded store, single node
#
# docker-compose.yml runs two of these behind nginx with MongoDB and Redis.

# ---- builder ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# 1. Dependencies only: the manifests and the lock file with stub sources, so this (slow) layer
#    is rebuilt only when a manifest or Cargo.lock changes, not on every source edit.
COPY Cargo.toml Cargo.lock ./
COPY handlers/Cargo.toml handlers/Cargo.toml
RUN mkdir -p src handlers/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs handlers/src/lib.rs \
 && cargo build --release --locked -p switchboard \
 && rm -rf src handlers/src

# 2. The real sources. COPY keeps the files' original mtimes, which can be older than the stub
#    build above, so touch them to make cargo rebuild the two workspace crates.
COPY src src
COPY handlers/src handlers/src
RUN find src handlers/src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p switchboard \
 && install -m 0755 target/release/switchboard /usr/local/bin/switchboard

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

WORKDIR /app
ENV HOST=0.0.0.0 \
    PORT=3000 \
    SEEDS_DIR=/app/seeds
EXPOSE 3000
USER switchboard

# Liveness/readiness checks live in docker-compose.yml (GET /health and /ready).
CMD ["switchboard", "serve"]
