//! `Fanout` over socketioxide rooms. A socket in several targeted rooms gets one copy
//! (socketioxide ≥ 0.18.9), and the JSON is encoded once per broadcast, not per socket.
//!
//! Across nodes a room broadcast takes one of two roads. With a [`RemoteRooms`] bus (the server's
//! batched Redis room bus) it is delivered on this node at once and queued for the others, which
//! receive it in batches and deliver it with [`deliver_remote`]. Without one it goes through the
//! socketioxide adapter (Redis: one publish per broadcast, awaited before local delivery; local:
//! this node only). docs/performance.md has the measurements behind the bus.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};

use crate::core::error::AppError;
use crate::core::metrics::Metrics;
use crate::core::ports::{ConnId, Fanout};
use crate::core::topic::Topic;

pub struct SocketIoFanout<A: Adapter> {
    io: SocketIo<A>,
    metrics: Arc<Metrics>,
    remote: Arc<RemoteHealth>,
    bus: Option<Arc<dyn RemoteRooms>>,
}

/// A room broadcast on its way to the other nodes: which rooms, which rooms to skip, and the
/// event with its payload already encoded (receivers copy it into the packet, never parse it).
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomBroadcast {
    #[serde(rename = "r")]
    pub rooms: Vec<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub except_rooms: Vec<String>,
    #[serde(rename = "e")]
    pub event: String,
    #[serde(rename = "p")]
    pub payload: Box<RawValue>,
}

/// Carries room broadcasts to the other nodes. `forward` returns once the broadcast is queued
/// (or dropped because the bus is down), never after a network round trip, so a socket's next
/// event is not held up by Redis.
#[async_trait]
pub trait RemoteRooms: Send + Sync {
    async fn forward(&self, broadcast: RoomBroadcast);
}

/// Delivers a broadcast that another node forwarded to this node's sockets in its rooms.
pub async fn deliver_remote<A: Adapter>(io: &SocketIo<A>, b: &RoomBroadcast) {
    let op = io
        .local()
        .to(b.rooms.clone())
        .except(b.except_rooms.clone());
    match op.emit(&b.event, &*b.payload).await {
        Ok(()) => {}
        Err(BroadcastError::Socket(errs)) => {
            tracing::warn!(event = %b.event, failed = errs.len(), "broadcast skipped slow sockets");
        }
        Err(e) => tracing::warn!(event = %b.event, error = %e, "remote broadcast not delivered"),
    }
}

/// Whether the cross-node adapter (Redis) is usable. While it is not, broadcasts go to this
/// node's sockets only, at once, instead of each waiting for a Redis timeout: local delivery
/// never depends on Redis. Down is retried every `RETRY_AFTER`, and a Redis reconnect marks it up.
#[derive(Debug, Default)]
pub struct RemoteHealth {
    /// Milliseconds since the epoch when it went down; 0 while up.
    down_since: AtomicI64,
}

/// How long a broadcast waits for the adapter before delivering locally anyway.
const REMOTE_WAIT: Duration = Duration::from_millis(2500);
const RETRY_AFTER_MS: i64 = 5_000;

impl RemoteHealth {
    pub fn up(&self) {
        self.down_since.store(0, Ordering::Relaxed);
    }

    pub fn down(&self) {
        let now = crate::core::time::Timestamp::now().millis();
        let _ = self
            .down_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn worth_trying(&self) -> bool {
        let since = self.down_since.load(Ordering::Relaxed);
        since == 0 || crate::core::time::Timestamp::now().millis() - since > RETRY_AFTER_MS
    }
}

impl<A: Adapter> SocketIoFanout<A> {
    pub fn new(io: SocketIo<A>, metrics: Arc<Metrics>, remote: Arc<RemoteHealth>) -> Self {
        SocketIoFanout {
            io,
            metrics,
            remote,
            bus: None,
        }
    }

    /// Room broadcasts reach the other nodes through `bus` instead of the adapter.
    pub fn with_bus(mut self, bus: Arc<dyn RemoteRooms>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// This node's sockets now, the other nodes' through the bus.
    async fn through_bus(
        &self,
        bus: &dyn RemoteRooms,
        rooms: Vec<String>,
        except_rooms: Vec<String>,
        sender: Option<&ConnId>,
        event: &str,
        payload: &RawValue,
    ) -> Result<(), AppError> {
        let local = match self.sender(sender) {
            Some(s) => s.local().to(rooms.clone()),
            None => self.io.local().to(rooms.clone()),
        };
        let res = local
            .except(except_rooms.clone())
            .emit(event, payload)
            .await;
        bus.forward(RoomBroadcast {
            rooms,
            except_rooms,
            event: event.to_owned(),
            payload: payload.to_owned(),
        })
        .await;
        self.outcome(event, res)
    }

    fn sender(&self, except: Option<&ConnId>) -> Option<socketioxide::extract::SocketRef<A>> {
        // The sender is always local: its event is being handled on this node.
        except
            .and_then(|id| id.parse::<Sid>().ok())
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
}

#[async_trait]
impl<A: Adapter> Fanout for SocketIoFanout<A> {
    async fn publish(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except: Option<&ConnId>,
    ) -> Result<(), AppError> {
        if self.bus.is_some() {
            // Encoded once: the local packet and the bus copy it.
            let payload = serde_json::value::to_raw_value(payload).map_err(AppError::internal)?;
            return self.publish_encoded(topics, event, &payload, except).await;
        }
        self.publish_any(topics, event, payload, except).await
    }

    async fn publish_encoded(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &RawValue,
        except: Option<&ConnId>,
    ) -> Result<(), AppError> {
        if let Some(bus) = &self.bus {
            let rooms: Vec<String> = topics.iter().map(Topic::room).collect();
            return self
                .through_bus(bus.as_ref(), rooms, Vec::new(), except, event, payload)
                .await;
        }
        self.publish_any(topics, event, payload, except).await
    }

    async fn publish_except_topics(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except_topics: &[Topic],
    ) -> Result<(), AppError> {
        let rooms: Vec<String> = topics.iter().map(Topic::room).collect();
        let except: Vec<String> = except_topics.iter().map(Topic::room).collect();
        if let Some(bus) = &self.bus {
            let payload = serde_json::value::to_raw_value(payload).map_err(AppError::internal)?;
            return self
                .through_bus(bus.as_ref(), rooms, except, None, event, &payload)
                .await;
        }
        let op = self.io.to(rooms.clone()).except(except.clone());
        if let Some(res) = self.try_remote(op, event, payload).await {
            return res;
        }
        let res = self
            .io
            .local()
            .to(rooms)
            .except(except)
            .emit(event, payload)
            .await;
        self.outcome(event, res)
    }

    async fn publish_local(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
    ) -> Result<(), AppError> {
        let rooms: Vec<String> = topics.iter().map(Topic::room).collect();
        let res = self.io.local().to(rooms).emit(event, payload).await;
        self.outcome(event, res)
    }
}

impl<A: Adapter> SocketIoFanout<A> {
    /// Without a bus: through the adapter (every node with Redis), else this node.
    async fn publish_any<T: Serialize + ?Sized + Sync>(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &T,
        except: Option<&ConnId>,
    ) -> Result<(), AppError> {
        let rooms: Vec<String> = topics.iter().map(Topic::room).collect();
        // Starting from the sender's socket makes socketioxide skip it on every node.
        let sender = self.sender(except);
        let op = match &sender {
            Some(s) => s.to(rooms.clone()),
            None => self.io.to(rooms.clone()),
        };
        if let Some(res) = self.try_remote(op, event, payload).await {
            return res;
        }
        let local = match &sender {
            Some(s) => s.local().to(rooms),
            None => self.io.local().to(rooms),
        };
        let res = local.emit(event, payload).await;
        self.outcome(event, res)
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

/// `LocalSink` over this node's sockets. An unknown connection (closed meanwhile) is skipped.
pub struct SocketIoSink<A: Adapter> {
    io: SocketIo<A>,
}

impl<A: Adapter> SocketIoSink<A> {
    pub fn new(io: SocketIo<A>) -> Self {
        SocketIoSink { io }
    }
}

impl<A: Adapter> crate::core::ports::LocalSink for SocketIoSink<A> {
    fn send(&self, conn: &ConnId, event: &str, payload: &Value) {
        let Some(s) = conn
            .parse::<Sid>()
            .ok()
            .and_then(|sid| self.io.get_socket(sid))
        else {
            return;
        };
        if let Err(e) = s.emit(event, payload) {
            tracing::warn!(event, error = %e, "delivery to a slow or closed socket skipped");
        }
    }
}
