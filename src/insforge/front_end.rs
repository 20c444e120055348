//! The `/insforge` namespace in the hub. Like the main namespace's front end it mirrors hub
//! rooms into socketioxide's (its delivery index) and delivers with one room broadcast per
//! channel; unlike it, a broadcast is shaped for InsForge first: messages published here pass
//! as they are, anything else published on the channel (another protocol's event) becomes an
//! InsForge message (`wire::foreign`), and a channel that no enabled definition admits any
//! longer receives nothing. A change of a channel's presence set (any protocol's members)
//! becomes `presence:join` when a member appears and `presence:leave` when it is gone.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::{Delivery, FrontEnd, Hub};
use switchboard_handlers::core::ids::ProjectId;

use super::NAMESPACE;
use super::definitions::Definitions;
use super::wire;
use crate::channel_members::change::{self, PresenceChange};

pub struct InsforgeFrontEnd<A: Adapter> {
    io: SocketIo<A>,
    definitions: Arc<Definitions>,
}

impl<A: Adapter> InsforgeFrontEnd<A> {
    pub fn new(io: SocketIo<A>, definitions: Arc<Definitions>) -> Self {
        InsforgeFrontEnd { io, definitions }
    }

    fn socket(&self, conn: &str) -> Option<SocketRef<A>> {
        let sid = conn.parse::<Sid>().ok()?;
        self.io.of(NAMESPACE)?.get_socket(sid)
    }

    async fn emit<T: Serialize + ?Sized>(
        &self,
        room: &str,
        except: Option<&str>,
        event: &str,
        payload: &T,
    ) {
        let sender = except.and_then(|c| self.socket(c));
        let op = match (&sender, self.io.of(NAMESPACE)) {
            (Some(s), _) => s.local().to(room.to_owned()),
            (None, Some(ns)) => ns.local().to(room.to_owned()),
            (None, None) => return,
        };
        match op.emit(event, payload).await {
            Ok(()) => {}
            Err(BroadcastError::Socket(errs)) => {
                tracing::warn!(
                    event,
                    failed = errs.len(),
                    "insforge broadcast skipped slow sockets"
                );
            }
            Err(e) => tracing::warn!(event, error = %e, "insforge broadcast failed"),
        }
    }
}

impl<A: Adapter> InsforgeFrontEnd<A> {
    /// A presence change to the channel's sockets (but `except`), for its members' first and
    /// last connections.
    async fn presence(&self, room: &str, channel: &str, d: &Delivery<'_>) {
        let Some(change) = PresenceChange::read(d.payload) else {
            return;
        };
        for s in change.leaves.iter().filter(|s| s.edge) {
            let payload = wire::presence_event(channel, s.info.insforge_leaving(&s.key));
            self.emit(room, d.except, "presence:leave", &payload).await;
        }
        for s in change.joins.iter().filter(|s| s.edge) {
            let payload = wire::presence_event(channel, s.info.insforge_member(&s.key));
            self.emit(room, d.except, "presence:join", &payload).await;
        }
    }
}

/// The project and channel of a hub room of the given kind (`channel:` or
/// `channel-presence:`): the project part is escaped, so the first `:` ends it.
pub fn split_room<'r>(room: &'r str, prefix: &str) -> Option<(ProjectId, &'r str)> {
    let (project, name) = room.strip_prefix(prefix)?.split_once(':')?;
    let project = project.replace("%3A", ":").replace("%25", "%");
    Some((ProjectId::try_from(project).ok()?, name))
}

#[async_trait]
impl<A: Adapter> FrontEnd for InsforgeFrontEnd<A> {
    fn protocol(&self) -> &'static str {
        "insforge"
    }

    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        for room in d.rooms {
            let one = Delivery {
                rooms: std::slice::from_ref(room),
                ..*d
            };
            if hub.members_in(&one).is_empty() {
                continue;
            }
            if let Some((_, name)) = split_room(room, "channel-presence:") {
                if d.event == change::EVENT {
                    self.presence(room, name, d).await;
                }
                continue;
            }
            let Some((project, name)) = split_room(room, "channel:") else {
                continue;
            };
            // Another protocol's event named like a protocol event would be taken for one.
            if wire::is_reserved_event(d.event) {
                continue;
            }
            match self.definitions.admitting(&project, name).await {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(channel = name, error = %e, "insforge delivery skipped: definitions unavailable");
                    continue;
                }
            }
            if wire::is_insforge_message(d.payload) {
                self.emit(room, d.except, d.event, d.payload).await;
            } else {
                let payload = wire::foreign(name, d.payload);
                self.emit(room, d.except, d.event, &payload).await;
            }
        }
        Ok(())
    }

    fn send(&self, conn: &str, event: &str, payload: &Value) {
        let Some(s) = self.socket(conn) else {
            return;
        };
        if let Err(e) = s.emit(event, payload) {
            tracing::warn!(event, error = %e, "delivery to a slow or closed socket skipped");
        }
    }

    fn joined(&self, conn: &str, room: &str) {
        if let Some(s) = self.socket(conn) {
            s.join(room.to_owned());
        }
    }

    fn left(&self, conn: &str, room: &str) {
        if let Some(s) = self.socket(conn) {
            s.leave(room.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_split_into_project_and_channel() {
        let (p, name) = split_room("channel:demo:order:1", "channel:").expect("room");
        assert_eq!((p.as_str(), name), ("demo", "order:1"));
        let (p, name) = split_room("channel:a%3Ab:c", "channel:").expect("room");
        assert_eq!((p.as_str(), name), ("a:b", "c"));
        assert!(split_room("chat:x", "channel:").is_none());
    }
}
