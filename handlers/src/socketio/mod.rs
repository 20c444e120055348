//! Glue shared by the namespace files: connection set-up, the ordered dispatcher with its single
//! reply path, payload decoding, per-socket limits and the Socket.IO front end of the hub.

pub mod dispatch;
pub mod front_end;
pub mod limits;
pub mod payload;
pub mod reply;
pub mod session;

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::core::Core;
use crate::core::error::AppError;
use crate::core::ports::ConnId;
use crate::core::topic::Topic;
pub use session::Session;

/// What an event handler gets: the sender's socket, its session and the core.
pub struct Ctx<A: Adapter> {
    pub socket: SocketRef<A>,
    pub session: Arc<Session>,
    pub core: Arc<Core>,
}

impl<A: Adapter> Ctx<A> {
    pub fn conn_id(&self) -> ConnId {
        self.session.conn.clone()
    }

    /// Refuses (before any state changes) when the socket is at its room limit and `topic`
    /// would be a new room.
    pub fn room_capacity(&self, topic: &Topic) -> Result<(), AppError> {
        self.core.hub.can_join(&self.session.conn, topic)
    }

    /// Joins `topic` through the hub (which mirrors it into socketioxide's rooms).
    pub fn join(&self, topic: &Topic) -> Result<(), AppError> {
        self.core.hub.join(&self.session.conn, topic)
    }

    /// Leaves `topic`; true when the socket was in it.
    pub fn leave(&self, topic: &Topic) -> bool {
        self.core.hub.leave(&self.session.conn, topic)
    }

    pub fn is_in(&self, topic: &Topic) -> bool {
        self.core.hub.is_member(&self.session.conn, topic)
    }

    /// An event to the sender only. A full outgoing buffer is logged, not an error of the
    /// request: the ack still tells the client the outcome.
    pub fn emit<T: serde::Serialize + ?Sized>(&self, event: &str, payload: &T) {
        if let Err(e) = self.socket.emit(event, payload) {
            tracing::warn!(event, error = %e, "emit to sender failed");
        }
    }
}
