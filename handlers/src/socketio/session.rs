//! Connection set-up: authenticate in the connect middleware (refusals reach the client as
//! `connect_error` with `message = "UNAUTHORIZED: <why>"`), join `user:<id>`, and install the
//! ordered dispatcher. Everything is installed here rather than in the connect handler because
//! socketioxide sends CONNECT before it runs the (spawned) connect handler, and events a client
//! emits right after connecting would otherwise find no handler (see DESIGN.md §7).

use std::fmt;
use std::sync::{Arc, Mutex};

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

/// Per-socket state that outlives single events.
#[derive(Debug)]
pub struct Session {
    pub actor: Actor,
    active_project: Mutex<Option<ProjectId>>,
}

impl Session {
    pub fn new(actor: Actor) -> Self {
        Session {
            actor,
            active_project: Mutex::new(None),
        }
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
    let max = core.limits.max_sockets_per_user;
    if actor.is_user() {
        // Counted cluster-wide in the presence store; if it cannot answer, let the user in.
        if let Ok(n) = core.presence.connections(&actor.id).await
            && n >= max as u64
        {
            core.metrics.refused();
            return Err(Refused::TooManySockets(max));
        }
    }
    if actor.is_user() {
        s.join(Topic::User(actor.id.clone()).room());
    }
    let session = Arc::new(Session::new(actor));
    s.extensions.insert(session.clone());
    dispatch::install(&s, core.clone(), session.clone());
    core.metrics.connected();
    let conn = s.id.to_string();
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
