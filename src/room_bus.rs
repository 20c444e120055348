//! The room bus: how a room broadcast reaches the other nodes. A node's hub delivers a broadcast
//! to its own front ends at once and queues it here; one task per node sends whatever has queued
//! as one Redis PUBLISH, and every other node hands each broadcast of the batch to its hub, which
//! delivers it to every front end (protocol) with connections in those rooms.
//!
//! Why not the socketioxide Redis adapter's own broadcast: it publishes every broadcast on its
//! own and awaits Redis before delivering even locally, so each `message:send` held its socket's
//! event queue for a Redis round trip and cost a publish, a reply and two task wake-ups. On two
//! nodes many-rooms ran at 13.6K delivered/s against 37K on one node without Redis
//! (docs/performance.md). The adapter stays for what needs it (rooms, remote socket operations);
//! only room broadcasts take the bus.
//!
//! Order: one publisher task, one connection, FIFO queue — broadcasts from one node reach every
//! other node in the order they were made, so a socket's messages stay in order everywhere.
//! Loss: a batch Redis refuses (down, timed out) is logged and counted; local delivery already
//! happened, and the messages themselves are persisted before they are broadcast.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use switchboard_handlers::core::hub::Hub;
use switchboard_handlers::core::hub::remote::{RemoteHealth, RemoteRooms, RoomBroadcast};
use switchboard_handlers::core::metrics::Metrics;

/// Broadcasts waiting for the publisher. When it is full, senders wait (backpressure on their
/// sockets' event queues) up to `QUEUE_WAIT`, then give up on the other nodes. Its size bounds
/// how far delivery on other nodes can fall behind the acks: measured on two-node many-rooms,
/// 16K gave p50 860 ms (the queue stayed full), 1K cost a sixth of the throughput, 4K neither.
const QUEUE: usize = 4096;
const QUEUE_WAIT: Duration = Duration::from_millis(2500);
/// Per PUBLISH: enough to amortise the round trip, small enough for Redis's output buffers.
const MAX_BATCH: usize = 512;
const MAX_BATCH_BYTES: usize = 1 << 20;
/// PUBLISHes out at once on the connection (one at a time measured 24K delivered/s, four 36K).
const MAX_PUBLISHES: usize = 4;

#[derive(Serialize)]
struct BatchOut<'a> {
    /// The sending node: it skips its own batches (it delivered them already).
    n: &'a str,
    b: &'a [RoomBroadcast],
}

#[derive(Deserialize)]
struct BatchIn {
    n: String,
    b: Vec<RoomBroadcast>,
}

fn channel(prefix: &str) -> String {
    format!("{prefix}#rooms")
}

pub struct RedisRooms {
    tx: mpsc::Sender<RoomBroadcast>,
    health: Arc<RemoteHealth>,
    metrics: Arc<Metrics>,
    /// Queued or being published; `flush` waits for zero.
    pending: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

#[async_trait]
impl RemoteRooms for RedisRooms {
    async fn forward(&self, broadcast: RoomBroadcast) {
        if !self.health.worth_trying() {
            return;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        match tokio::time::timeout(QUEUE_WAIT, self.tx.send(broadcast)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => self.done(1), // publisher gone: shutting down
            Err(_) => {
                self.done(1);
                self.metrics.adapter_error();
                self.health.down();
                tracing::warn!(
                    "room bus full (Redis not keeping up); broadcast delivered on this node only"
                );
            }
        }
    }
}

impl RedisRooms {
    fn done(&self, n: usize) {
        done(&self.pending, &self.idle, n);
    }

    /// Waits (at most `wait`) until everything queued so far has been handed to Redis: called
    /// on shutdown after the sockets are closed, so their last broadcasts still go out.
    pub async fn flush(&self, wait: Duration) {
        let drained = async {
            loop {
                let notified = self.idle.notified();
                if self.pending.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(wait, drained).await.is_err() {
            tracing::warn!(
                pending = self.pending.load(Ordering::Acquire),
                "room broadcasts not sent to the other nodes before exit"
            );
        }
    }
}

fn done(pending: &AtomicUsize, idle: &Notify, n: usize) {
    if pending.fetch_sub(n, Ordering::AcqRel) == n {
        idle.notify_waiters();
    }
}

/// Starts the bus: this node's publisher, and a subscriber that hands the other nodes'
/// broadcasts to this node's hub (every front end).
pub async fn start(
    url: &str,
    prefix: &str,
    client: crate::redis::Client,
    hub: Arc<Hub>,
    health: Arc<RemoteHealth>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Arc<RedisRooms>> {
    let node = switchboard_handlers::core::ids::new_object_id();
    let ch = channel(prefix);
    let subscriber = crate::redis::subscriber(url, "room bus").await?;
    let messages = subscriber
        .subscribe(&ch, crate::redis::PUBSUB_BUFFER)
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to {ch}: {e}"))?;
    tokio::spawn(receive(messages, node.clone(), hub));

    let (tx, rx) = mpsc::channel(QUEUE);
    let bus = Arc::new(RedisRooms {
        tx,
        health: health.clone(),
        metrics: metrics.clone(),
        pending: Arc::default(),
        idle: Arc::default(),
    });
    tokio::spawn(publish(
        rx,
        Publisher {
            client,
            channel: ch,
            node,
            health,
            metrics,
            pending: bus.pending.clone(),
            idle: bus.idle.clone(),
        },
    ));
    Ok(bus)
}

struct Publisher {
    client: crate::redis::Client,
    channel: String,
    node: String,
    health: Arc<RemoteHealth>,
    metrics: Arc<Metrics>,
    pending: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

/// Each PUBLISH carries everything that queued while the previous ones were out, so batches grow
/// with the load and an idle node sends each broadcast at once. Up to `MAX_PUBLISHES` are out
/// at a time on the one connection: commands are written in the order they are first polled,
/// which is the order the batches were made.
async fn publish(mut rx: mpsc::Receiver<RoomBroadcast>, p: Publisher) {
    let mut out = FuturesUnordered::new();
    let mut open = true;
    while open || !out.is_empty() {
        tokio::select! {
            biased;
            Some(n) = out.next(), if !out.is_empty() => done(&p.pending, &p.idle, n),
            first = rx.recv(), if open && out.len() < MAX_PUBLISHES => match first {
                Some(first) => out.push(publish_batch(&p, take_batch(first, &mut rx))),
                None => open = false,
            },
        }
    }
}

fn take_batch(first: RoomBroadcast, rx: &mut mpsc::Receiver<RoomBroadcast>) -> Vec<RoomBroadcast> {
    let mut bytes = first.payload.get().len();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match rx.try_recv() {
            Ok(b) => {
                bytes += b.payload.get().len();
                batch.push(b);
            }
            Err(_) => break,
        }
    }
    batch
}

/// Publishes one batch; returns how many broadcasts it held.
async fn publish_batch(p: &Publisher, batch: Vec<RoomBroadcast>) -> usize {
    let n = batch.len();
    let body = match serde_json::to_vec(&BatchOut {
        n: &p.node,
        b: &batch,
    }) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "room broadcast batch not encodable");
            return n;
        }
    };
    drop(batch);
    match p.client.publish(&p.channel, body).await {
        Ok(()) => p.health.up(),
        Err(e) => {
            p.metrics.adapter_error();
            p.health.down();
            tracing::warn!(error = %e, broadcasts = n, "room broadcasts not sent to the other nodes (Redis)");
        }
    }
    n
}

/// Delivers the other nodes' batches, in the order Redis hands them over.
async fn receive(messages: crate::redis::Messages, me: String, hub: Arc<Hub>) {
    let me: Arc<str> = me.into();
    crate::redis::consume(messages, "room bus", move |m| {
        let (me, hub) = (me.clone(), hub.clone());
        async move {
            match serde_json::from_slice::<BatchIn>(&m.payload) {
                Ok(batch) if *batch.n != *me => {
                    for b in &batch.b {
                        hub.deliver_remote(b).await;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable batch on the room bus"),
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_with_payloads_untouched() {
        let b = RoomBroadcast {
            rooms: vec!["chat:1".into(), "chat:2".into()],
            except_rooms: vec![],
            except: None,
            event: "message:new".into(),
            payload: serde_json::value::to_raw_value(
                &serde_json::json!({"text": "hé \"x\"", "n": 1}),
            )
            .expect("encodable"),
        };
        let sent = b.payload.get().to_owned();
        let body = serde_json::to_vec(&BatchOut {
            n: "node-a",
            b: &[b],
        })
        .expect("encodable");
        let back: BatchIn = serde_json::from_slice(&body).expect("decodable");
        assert_eq!(back.n, "node-a");
        assert_eq!(back.b.len(), 1);
        assert_eq!(back.b[0].rooms, ["chat:1", "chat:2"]);
        assert!(back.b[0].except_rooms.is_empty());
        assert_eq!(back.b[0].event, "message:new");
        assert_eq!(back.b[0].payload.get(), sent);
    }
}
