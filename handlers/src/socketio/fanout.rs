//! `Fanout` over socketioxide rooms. With the Redis adapter a room broadcast reaches every node;
//! with the local adapter, this node. A socket in several targeted rooms gets one copy
//! (socketioxide ≥ 0.18.9), and the JSON is encoded once per broadcast, not per socket.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};

use crate::core::error::AppError;
use crate::core::metrics::Metrics;
use crate::core::ports::{ConnId, Fanout};
use crate::core::topic::Topic;

pub struct SocketIoFanout<A: Adapter> {
    io: SocketIo<A>,
    metrics: Arc<Metrics>,
}

impl<A: Adapter> SocketIoFanout<A> {
    pub fn new(io: SocketIo<A>, metrics: Arc<Metrics>) -> Self {
        SocketIoFanout { io, metrics }
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
        // Starting from the sender's socket makes socketioxide skip it on every node. The sender
        // is always local: its event is being handled on this node.
        let sender = except
            .and_then(|id| id.parse::<Sid>().ok())
            .and_then(|sid| self.io.get_socket(sid));
        let res = match sender {
            Some(s) => s.to(rooms).emit(event, payload).await,
            None => self.io.to(rooms).emit(event, payload).await,
        };
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
        let res = self.io.to(rooms).except(except).emit(event, payload).await;
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
