//! Connection set-up: authenticate in the connect middleware (refusals reach the client as
//! `connect_error` with `message = "UNAUTHORIZED: <why>"`), join `user:<id>`, and install the
//! ordered dispatcher. Everything is installed here rather than in the connect handler because
//! socketioxide sends CONNECT before it runs the (spawned) connect handler, and events a client
//! emits right after connecting would otherwise find no handler (see DESIGN.md §7).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::core::Core;
use crate::core::access::Actor;
use crate::core::ids::ProjectId;
use crate::core::ports::Credentials;
use crate::core::topic::Topic;

use super::dispatch;
use super::limits::RefusalLog;

/// Per-socket state that outlives single events.
#[derive(Debug)]
pub struct Session {
    pub actor: Actor,
    active_project: Mutex<Option<ProjectId>>,
    /// Events refused RATE_LIMITED and replies that could not be sent, for sampled WARN lines.
    rate_limited: Mutex<RefusalLog>,
    undelivered: Mutex<RefusalLog>,
}

impl Session {
    pub fn new(actor: Actor) -> Self {
        Session {
            actor,
            active_project: Mutex::new(None),
            rate_limited: Mutex::default(),
            undelivered: Mutex::default(),
        }
    }

    /// Counts a RATE_LIMITED refusal; `Some(n)` when a WARN line summing up `n` is due.
    pub fn note_rate_limited(&self, now: Instant) -> Option<u64> {
        self.rate_limited
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(now)
    }

    /// Counts a reply that could not be sent; `Some(n)` when a WARN line is due.
    pub fn note_undelivered(&self, now: Instant) -> Option<u64> {
        self.undelivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(now)
    }

    pub fn active_project(&self) -> Option<ProjectId> {
        self.active_project
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_active_project(&self, p: Option<ProjectId>) {
        *self
            .active_project
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = p;
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandshakeAuth {
    token: Option<String>,
    api_key: Option<String>,
}

/// Why a connection was refused; rendered as the `connect_error` message.
#[derive(Debug)]
pub enum Refused {
    Unauthorized(String),
    /// The user already holds the maximum number of sockets in the cluster.
    TooManySockets(usize),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Unauthorized(why) => write!(f, "UNAUTHORIZED: {why}"),
            Refused::TooManySockets(max) => {
                write!(f, "RATE_LIMITED: at most {max} connections per user")
            }
        }
    }
}

/// The connect middleware for `/`: `raw` is the handshake's auth object.
pub async fn connect<A: Adapter>(
    core: Arc<Core>,
    s: SocketRef<A>,
    raw: Result<serde_json::Value, ParserError>,
) -> Result<(), Refused> {
    let creds = match parse_auth(raw) {
        Ok(c) => c,
        Err(e) => {
            core.metrics.refused();
            return Err(Refused::Unauthorized(format!("malformed auth object: {e}")));
        }
    };
    let actor = match core.auth.authenticate(&creds).await {
        Ok(a) => a,
        Err(e) => {
            core.metrics.refused();
            tracing::debug!(error = %e, "connection refused");
            let why = e.to_string();
            let why = why
                .strip_prefix("unauthorized: ")
                .unwrap_or(&why)
                .to_owned();
            return Err(Refused::Unauthorized(why));
        }
    };
    let conn = s.id.to_string();
    if actor.is_user() && !admit(&core, &actor, &conn).await {
        core.metrics.refused();
        return Err(Refused::TooManySockets(core.limits.max_sockets_per_user));
    }
    if actor.is_user() {
        s.join(Topic::User(actor.id.clone()).room());
    }
    let session = Arc::new(Session::new(actor));
    s.extensions.insert(session.clone());
    // Before any event of the socket is handled: only open connections subscribe to data.
    core.live.open_conn(&conn);
    dispatch::install(&s, core.clone(), session.clone());
    core.metrics.connected();
    crate::core::presence::connected(&core, &session.actor, &conn).await;
    s.on_disconnect(async move || {
        core.metrics.disconnected();
        core.live.remove_conn(&conn);
        crate::core::presence::disconnected(&core, &session.actor, &conn).await;
        core.typing
            .connection_closed(&core, &session.actor.id, &conn)
            .await;
    });
    Ok(())
}

/// The per-user socket cap, counted cluster-wide by the presence store, which records the
/// socket in the same atomic step. When the store cannot answer (Redis down), the socket is let
/// in if the user holds fewer than the cap on this node: a Redis blip must not refuse every
/// login, and one node still cannot be flooded (docs/security.md).
async fn admit(core: &Core, actor: &Actor, conn: &str) -> bool {
    let max = core.limits.max_sockets_per_user;
    let conn = conn.to_owned();
    match core
        .presence
        .admit_connection(&actor.id, &conn, max as u64)
        .await
    {
        Ok(admitted) => admitted,
        Err(e) => {
            let here = core.local_conns.count_of(&actor.id);
            tracing::warn!(error = %e, here, max, "presence unavailable: the socket cap counts this node's sockets only");
            here < max
        }
    }
}

/// Unknown fields are ignored and absent ones are `None`: the authenticator decides what is
/// missing, so the refusal names the real problem.
fn parse_auth(raw: Result<serde_json::Value, ParserError>) -> Result<Credentials, String> {
    let v = raw.map_err(|e| e.to_string())?;
    let a = if v.is_null() {
        HandshakeAuth::default()
    } else {
        serde_json::from_value::<HandshakeAuth>(v).map_err(|e| e.to_string())?
    };
    Ok(Credentials {
        token: a.token,
        api_key: a.api_key,
    })
}
