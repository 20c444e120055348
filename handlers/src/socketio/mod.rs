//! Glue shared by the namespace files: connection set-up, the ordered dispatcher with its single
//! reply path, payload decoding, per-socket limits and the Socket.IO implementation of `Fanout`.

pub mod dispatch;
pub mod fanout;
pub mod limits;
pub mod payload;
pub mod reply;
pub mod session;

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::core::Core;
use crate::core::ports::ConnId;
pub use session::Session;

/// What an event handler gets: the sender's socket, its session and the core.
pub struct Ctx<A: Adapter> {
    pub socket: SocketRef<A>,
    pub session: Arc<Session>,
    pub core: Arc<Core>,
}

impl<A: Adapter> Ctx<A> {
    pub fn conn_id(&self) -> ConnId {
        self.socket.id.to_string()
    }

    /// Refuses (before any state changes) when the socket is at its room limit and `room` would
    /// be a new one.
    pub fn room_capacity(&self, room: &str) -> Result<(), crate::core::error::AppError> {
        let rooms = self.socket.rooms();
        let max = self.core.limits.max_rooms_per_socket;
        if rooms.len() >= max && !rooms.iter().any(|r| r.as_ref() == room) {
            return Err(crate::core::error::AppError::invalid(format!(
                "a socket may be in at most {max} rooms; leave one first"
            )));
        }
        Ok(())
    }

    /// An event to the sender only. A full outgoing buffer is logged, not an error of the
    /// request: the ack still tells the client the outcome.
    pub fn emit<T: serde::Serialize + ?Sized>(&self, event: &str, payload: &T) {
        if let Err(e) = self.socket.emit(event, payload) {
            tracing::warn!(event, error = %e, "emit to sender failed");
        }
    }
}
