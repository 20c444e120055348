//! The `switchboard` program: configuration, the MongoDB and Redis adapters, authentication, the
//! HTTP API and start-up wiring around the application crate `switchboard_handlers`.
//!
//! Layout: `config` (every setting), `app` (composition root and `serve`), `connections` (what the accept loop enforces), `handshake` (what a Socket.IO handshake request keeps), `auth` (JWT and API
//! keys), `mongo` (store), `redis` (adapter and cluster client), `http` (REST and the admin console), `tail` (live tail of a room), `admin_ui` (the Socket.IO Admin UI's `/admin` namespace), `node_stats` (what each node reports for the admin views), `raw_ws`, `pusher`, `supabase` and `pubsub` (protocol front ends over the hub), `outbound` (integrations' HTTP client), `seed` (demo
//! data), `cli` (subcommands), `contracts` (the generated client contracts), `telemetry`, `shutdown`.

pub mod admin_ui;
pub mod app;
pub mod auth;
pub mod bus;
pub mod channel_members;
pub mod cli;
pub mod config;
pub mod connections;
pub mod contracts;
pub mod embedded;
pub mod handshake;
pub mod http;
pub mod insforge;
pub mod mongo;
pub mod node_stats;
pub mod outbound;
pub mod outbox;
pub mod portable;
pub mod presence;
pub mod pubsub;
pub mod pusher;
pub mod raw_ws;
pub mod redis;
pub mod room_bus;
pub mod seed;
pub mod shutdown;
pub mod supabase;
pub mod tail;
pub mod telemetry;
pub mod ws_limits;

pub use app::{App, build, serve};
