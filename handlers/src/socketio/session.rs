//! Connection set-up for the Socket.IO front end: the core opens the session (authentication,
//! the per-user cap, presence, the user's room; refusals reach the client as `connect_error`
//! with `message = "UNAUTHORIZED: <why>"`), then the ordered dispatcher is installed. All of it
//! runs in the connect middleware rather than the connect handler because socketioxide sends
//! CONNECT before it runs the (spawned) connect handler, and events a client emits right after
//! connecting would otherwise find no handler (see DESIGN.md §7).

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::core::Core;
use crate::core::hub::FrontEndId;
use crate::core::ports::Credentials;
use crate::core::session::{self, Refused};

use super::dispatch;
use super::limits::RefusalLog;

/// The core's session of a socket, plus what only the Socket.IO front end tracks.
#[derive(Debug)]
pub struct Session {
    core: session::Session,
    /// Events refused RATE_LIMITED and replies that could not be sent, for sampled WARN lines.
    rate_limited: Mutex<RefusalLog>,
    undelivered: Mutex<RefusalLog>,
}

impl Deref for Session {
    type Target = session::Session;

    fn deref(&self) -> &session::Session {
        &self.core
    }
}

impl Session {
    pub fn new(core: session::Session) -> Self {
        Session {
            core,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandshakeAuth {
    token: Option<String>,
    api_key: Option<String>,
}

/// The connect middleware for `/`: `raw` is the handshake's auth object.
pub async fn connect<A: Adapter>(
    core: Arc<Core>,
    front_end: FrontEndId,
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
    let opened = session::open(&core, front_end, s.id.to_string(), &creds).await?;
    // The socket enters socketioxide's namespace only after this middleware, so the hub could
    // not mirror the rooms joined while opening; do it now.
    for room in core.hub.topics_of(&opened.conn) {
        s.join(room);
    }
    let session = Arc::new(Session::new(opened));
    s.extensions.insert(session.clone());
    dispatch::install(&s, core.clone(), session.clone());
    s.on_disconnect(async move || {
        session::close(&core, &session).await;
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
