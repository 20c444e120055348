//! `Fanout` over socketioxide rooms. With the Redis adapter a room broadcast reaches every node;
//! with the local adapter, this node. A socket in several targeted rooms gets one copy
//! (socketioxide ≥ 0.18.9), and the JSON is encoded once per broadcast, not per socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
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

    fn worth_trying(&self) -> bool {
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
        }
    }

    fn sender(&self, except: Option<&ConnId>) -> Option<socketioxide::extract::SocketRef<A>> {
        // The sender is always local: its event is being handled on this node.
        except
            .and_then(|id| id.parse::<Sid>().ok())
            .and_then(|sid| self.io.get_socket(sid))
    }

    /// Through the adapter (every node), bounded in time; `None` when it failed, in which
    /// case nothing was delivered locally either (the adapter publishes before it delivers).
    async fn try_remote(
        &self,
        op: BroadcastOperators<A>,
        event: &str,
        payload: &Value,
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

    async fn publish_except_topics(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except_topics: &[Topic],
    ) -> Result<(), AppError> {
        let rooms: Vec<String> = topics.iter().map(Topic::room).collect();
        let except: Vec<String> = except_topics.iter().map(Topic::room).collect();
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
