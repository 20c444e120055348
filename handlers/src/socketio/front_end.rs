//! The Socket.IO front end of the hub. The hub decides who is in which room; this front end
//! mirrors those rooms into socketioxide's (its delivery index: a socketioxide broadcast encodes
//! the packet once and writes it to every socket in the rooms, and a socket in several targeted
//! rooms gets one copy) and delivers the hub's broadcasts through them.
//!
//! Across nodes a broadcast takes one of two roads. With the room bus (the default with Redis)
//! the hub forwards it and every other node's hub hands it back here, so this front end only
//! ever delivers locally. With `ROOM_BUS=false` it goes through the socketioxide Redis adapter
//! (one publish per broadcast, awaited before local delivery), which reaches Socket.IO sockets
//! only; docs/performance.md has the measurements behind the bus.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};

use crate::core::error::AppError;
use crate::core::hub::remote::RemoteHealth;
use crate::core::hub::{Delivery, FrontEnd, Hub, Scope};
use crate::core::metrics::Metrics;

/// How long a broadcast waits for the adapter before delivering locally anyway.
const REMOTE_WAIT: Duration = Duration::from_millis(2500);

pub struct SocketIoFrontEnd<A: Adapter> {
    io: SocketIo<A>,
    metrics: Arc<Metrics>,
    remote: Arc<RemoteHealth>,
    /// Broadcasts made here reach the other nodes through the socketioxide adapter (Redis
    /// without the room bus).
    via_adapter: bool,
}

impl<A: Adapter> SocketIoFrontEnd<A> {
    pub fn new(io: SocketIo<A>, metrics: Arc<Metrics>, remote: Arc<RemoteHealth>) -> Self {
        SocketIoFrontEnd {
            io,
            metrics,
            remote,
            via_adapter: false,
        }
    }

    /// Without the room bus: broadcasts made here go through the adapter to every node.
    pub fn via_adapter(mut self) -> Self {
        self.via_adapter = true;
        self
    }

    fn socket(&self, conn: &str) -> Option<SocketRef<A>> {
        conn.parse::<Sid>()
            .ok()
            .and_then(|sid| self.io.get_socket(sid))
    }

    /// Through the adapter (every node), bounded in time; `None` when it failed, in which
    /// case nothing was delivered locally either (the adapter publishes before it delivers).
    async fn try_remote<T: Serialize + ?Sized>(
        &self,
        op: BroadcastOperators<A>,
        event: &str,
        payload: &T,
    ) -> Option<Result<(), AppError>> {
        if !self.remote.worth_trying() {
            return None;
        }
        match tokio::time::timeout(REMOTE_WAIT, op.emit(event, payload)).await {
            Ok(Err(BroadcastError::Adapter(e))) => {
                self.metrics.adapter_error();
                self.remote.down();
                tracing::warn!(event, error = %e, "adapter broadcast failed; delivering on this node only");
                None
            }
            Ok(res) => {
                self.remote.up();
                Some(self.outcome(event, res))
            }
            Err(_) => {
                self.metrics.adapter_error();
                self.remote.down();
                tracing::warn!(
                    event,
                    "adapter broadcast timed out; delivering on this node only"
                );
                None
            }
        }
    }

    fn outcome(&self, event: &str, res: Result<(), BroadcastError>) -> Result<(), AppError> {
        match res {
            Ok(()) => Ok(()),
            // Some sockets' outgoing buffers were full; the others got the event.
            Err(BroadcastError::Socket(errs)) => {
                tracing::warn!(event, failed = errs.len(), "broadcast skipped slow sockets");
                Ok(())
            }
            Err(e) => {
                self.metrics.adapter_error();
                Err(AppError::unavailable("redis", e))
            }
        }
    }
}

impl<A: Adapter> SocketIoFrontEnd<A> {
    async fn deliver_to_rooms(&self, _hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        // Starting from the sender's socket makes socketioxide skip it (on every node, for
        // the adapter road). The sender is always local: its event is handled on this node.
        let sender = d.except.and_then(|c| self.socket(c));
        if self.via_adapter && d.scope == Scope::Cluster {
            let op = match &sender {
                Some(s) => s.to(d.rooms.to_vec()),
                None => self.io.to(d.rooms.to_vec()),
            };
            let op = op.except(d.except_rooms.to_vec());
            if let Some(res) = self.try_remote(op, d.event, d.payload).await {
                return res;
            }
        }
        let op = match &sender {
            Some(s) => s.local().to(d.rooms.to_vec()),
            None => self.io.local().to(d.rooms.to_vec()),
        };
        let res = op
            .except(d.except_rooms.to_vec())
            .emit(d.event, d.payload)
            .await;
        match d.scope {
            // Another node's broadcast: nobody here waits for its outcome.
            Scope::Remote => {
                match res {
                    Ok(()) => {}
                    Err(BroadcastError::Socket(errs)) => {
                        tracing::warn!(
                            event = d.event,
                            failed = errs.len(),
                            "broadcast skipped slow sockets"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(event = d.event, error = %e, "remote broadcast not delivered")
                    }
                }
                Ok(())
            }
            _ => self.outcome(d.event, res),
        }
    }
}

/// What a Socket.IO client in a protocol channel gets for an event published there: the event
/// as `custom:<event>` with `{from, payload, room}`, `payload` unwrapped from a Pusher envelope
/// (`{"data": "<JSON text>", "user_id"?}`) and `from` its sender when known. An event already
/// named `custom:…` goes through unchanged.
fn channel_message(event: &str, payload: &RawValue, room: &str) -> Option<(String, Box<RawValue>)> {
    if event.starts_with("custom:") {
        return Some((event.to_owned(), payload.to_owned()));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope {
        data: String,
        #[serde(default)]
        user_id: Option<String>,
    }
    let (value, from) = match serde_json::from_str::<Envelope>(payload.get()) {
        Ok(e) => {
            let v = serde_json::from_str::<Value>(&e.data).unwrap_or(Value::String(e.data));
            (v, e.user_id.map(|u| serde_json::json!({ "userId": u })))
        }
        Err(_) => (serde_json::from_str::<Value>(payload.get()).ok()?, None),
    };
    let name = room.strip_prefix("channel:")?.split_once(':')?.1;
    let out = serde_json::json!({
        "from": from,
        "payload": value,
        "room": format!("channel:{name}"),
    });
    Some((
        format!("custom:{event}"),
        serde_json::value::to_raw_value(&out).ok()?,
    ))
}

#[async_trait]
impl<A: Adapter> FrontEnd for SocketIoFrontEnd<A> {
    fn protocol(&self) -> &'static str {
        "socket.io"
    }

    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        // Protocol channels (`custom:join {room: "channel:<name>"}`) get what any protocol
        // published there in the custom room shape, one emit per channel.
        if !d.rooms.is_empty() && d.rooms.iter().all(|r| r.starts_with("channel:")) {
            for room in d.rooms {
                let Some((event, payload)) = channel_message(d.event, d.payload, room) else {
                    continue;
                };
                let one = Delivery {
                    rooms: std::slice::from_ref(room),
                    except_rooms: d.except_rooms,
                    except: d.except,
                    event: &event,
                    payload: &payload,
                    scope: d.scope,
                    front_end: d.front_end,
                };
                self.deliver_to_rooms(hub, &one).await?;
            }
            return Ok(());
        }
        self.deliver_to_rooms(hub, d).await
    }

    fn send(&self, conn: &str, event: &str, payload: &Value) {
        // An unknown connection (closed meanwhile) is skipped.
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

    fn reaches_other_nodes(&self) -> bool {
        self.via_adapter
    }
}
