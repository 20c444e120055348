//! A connection's life, the same for every front end: authenticate (token, API key, or
//! anonymous where a protocol allows it), admit under the per-user connection cap, open it in
//! the hub and the live-data registry, join the user's own room, announce presence; and on close
//! undo all of it. A front end calls [`open`] when a client connects and [`close`] when it goes.

use std::fmt;
use std::sync::Mutex;

use crate::Core;
use crate::access::Actor;
use crate::hub::FrontEndId;
use crate::ids::ProjectId;
use crate::ports::{ConnId, Credentials};
use crate::topic::Topic;

/// One open connection of any front end.
#[derive(Debug)]
pub struct Session {
    pub conn: ConnId,
    pub actor: Actor,
    pub front_end: FrontEndId,
    active_project: Mutex<Option<ProjectId>>,
}

impl Session {
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

/// Why a connection was refused. The Socket.IO front end sends the `Display` form as the
/// `connect_error` message; other protocols map the variant to their own refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Unauthorized(String),
    /// The user already holds the maximum number of connections in the cluster.
    TooManyConnections(usize),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Unauthorized(why) => write!(f, "UNAUTHORIZED: {why}"),
            Refused::TooManyConnections(max) => {
                write!(f, "RATE_LIMITED: at most {max} connections per user")
            }
        }
    }
}

/// Authenticates and admits a connection; on success it is open everywhere (hub, live data,
/// presence) and in its user's room. Every refusal is counted. The session is returned by
/// value so a front end can keep it inside its own per-connection state (one allocation per
/// idle connection, not two).
pub async fn open(
    core: &Core,
    front_end: FrontEndId,
    conn: ConnId,
    creds: &Credentials,
) -> Result<Session, Refused> {
    let actor = match core.auth.authenticate(creds).await {
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
    open_as(core, front_end, conn, actor).await
}

/// [`open`] for an actor the front end established itself (a protocol's anonymous or
/// app-key connections).
pub async fn open_as(
    core: &Core,
    front_end: FrontEndId,
    conn: ConnId,
    actor: Actor,
) -> Result<Session, Refused> {
    if actor.is_user() && !admit(core, &actor, &conn).await {
        core.metrics.refused();
        return Err(Refused::TooManyConnections(
            core.limits.max_sockets_per_user,
        ));
    }
    core.hub.open(&conn, front_end);
    if actor.is_user() {
        // A fresh connection is in no room yet, so the room limit cannot refuse this one.
        let _ = core.hub.join(&conn, &Topic::User(actor.id.clone()));
    }
    // Before any event of the connection is handled: only open connections subscribe to data.
    core.live.open_conn(&conn);
    core.metrics.connected();
    crate::presence::connected(core, &actor, &conn).await;
    Ok(Session {
        conn,
        actor,
        front_end,
        active_project: Mutex::new(None),
    })
}

/// The connection is gone: out of every room, its data subscriptions and typing indicators
/// dropped, presence updated (offline when it was the user's last connection).
pub async fn close(core: &Core, session: &Session) {
    core.metrics.disconnected();
    core.hub.close(&session.conn);
    core.live.remove_conn(&session.conn);
    crate::presence::disconnected(core, &session.actor, &session.conn).await;
    core.typing
        .connection_closed(core, &session.actor.id, &session.conn)
        .await;
}

/// The per-user connection cap, counted cluster-wide by the presence store, which records the
/// connection in the same atomic step. When the store cannot answer (Redis down), the
/// connection is let in if the user holds fewer than the cap on this node: a Redis blip must
/// not refuse every login, and one node still cannot be flooded (docs/security.md).
async fn admit(core: &Core, actor: &Actor, conn: &ConnId) -> bool {
    let max = core.limits.max_sockets_per_user;
    match core
        .presence
        .admit_connection(&actor.id, conn, max as u64)
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
