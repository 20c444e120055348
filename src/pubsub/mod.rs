//! HTTP pub/sub (the "plate" Pub/Sub API): publish with one HTTP call, subscribe with
//! Server-Sent Events or a plain WebSocket, by channel or by pattern, or through a temporary
//! client path. docs/protocols/pubsub.md has the routes, frames and errors.
//!
//! A plate is a Switchboard project and a channel of plate `p` is the hub topic
//! `Channel(p, name)`, shared with Pusher, Supabase Realtime and the REST emit route.
//! Modules: `routes` (the paths), `auth`, `target` (plate, channel, reserved ids), `publish`,
//! `sse`, `ws`, `client_paths` and `tokens` (temporary paths), `patterns` (globs),
//! `front_end` (the hub's delivery to subscribers), `error` (every refusal).

pub mod auth;
pub mod client_paths;
pub mod error;
pub mod front_end;
pub mod patterns;
pub mod publish;
pub mod routes;
pub mod sse;
pub mod target;
pub mod tokens;
pub mod ws;

use std::sync::Arc;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::access::Actor;
use switchboard_handlers::core::hub::FrontEndId;
use switchboard_handlers::core::session::Refused;

use error::PubSubError;
use front_end::PubSubFrontEnd;
use tokens::TokenStore;

use crate::http::rate_limit::KeyedLimiter;

pub use routes::router;

/// What every handler shares.
pub struct PubSub {
    pub core: Arc<Core>,
    pub front_end: Arc<PubSubFrontEnd>,
    pub id: FrontEndId,
    pub tokens: TokenStore,
    /// Publishes and client paths of user tokens, per user (RATE_LIMIT_PER_SEC and
    /// RATE_LIMIT_BURST, a Socket.IO socket's event rate). API keys are servers: not limited.
    pub user_rate: KeyedLimiter,
}

impl PubSub {
    fn check_rate(&self, actor: &Actor) -> Result<(), PubSubError> {
        if !actor.is_user() {
            return Ok(());
        }
        self.user_rate
            .take(actor.id.as_str(), std::time::Instant::now())
            .map_err(|wait| PubSubError::RateLimited(wait.as_millis() as u64))
    }
}

/// A session the core refused (the per-user connection cap).
fn refused(r: Refused) -> PubSubError {
    match r {
        Refused::Unauthorized(_) => PubSubError::InvalidAuthorization,
        Refused::TooManyConnections(_) => PubSubError::TooMany(r.to_string()),
    }
}
