//! Live tail: admins watching the broadcasts of one room as they pass
//! (`GET /api/projects/{p}/tail`). Each watcher is a connection of its own hub front end
//! ("tail") that joins the room, so it receives exactly what the hub delivers on this node —
//! broadcasts made here and those the room bus brings from the other nodes — and no other front
//! end has to copy anything for it.
//!
//! A watcher has a bounded queue of ready SSE frames; one that falls behind is dropped (its
//! stream ends, the console reconnects), so a stalled viewer never holds memory or delays a
//! broadcast.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use axum::body::Bytes;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::{Delivery, FrontEnd, FrontEndId, Hub};
use switchboard_handlers::core::time::Timestamp;
use switchboard_handlers::core::topic::Topic;

/// Frames queued for one watcher before it counts as too slow and is dropped.
pub const QUEUE: usize = 256;
/// Watchers on one node at once: each costs a hub connection and a copy of every frame.
pub const MAX_WATCHERS: usize = 64;

struct Watcher {
    room: String,
    tx: mpsc::Sender<Bytes>,
}

/// The tail front end of this node.
pub struct Tail {
    id: OnceLock<FrontEndId>,
    node: u32,
    next: AtomicU64,
    watchers: Mutex<HashMap<Arc<str>, Watcher>>,
}

/// One watcher's frames; dropping it leaves the room and closes the hub connection.
pub struct Watch {
    pub frames: mpsc::Receiver<Bytes>,
    guard: WatchGuard,
}

struct WatchGuard {
    tail: Arc<Tail>,
    hub: Arc<Hub>,
    conn: Arc<str>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.tail.forget(&self.conn);
        self.hub.close(&self.conn);
    }
}

impl Watch {
    /// The watcher's connection id (shown in the stream's first frame).
    pub fn conn(&self) -> &str {
        &self.guard.conn
    }
}

#[derive(Serialize)]
struct Frame<'a> {
    room: &'a str,
    event: &'a str,
    payload: &'a RawValue,
    at: Timestamp,
}

impl Default for Tail {
    fn default() -> Self {
        Tail {
            id: OnceLock::new(),
            node: rand::random(),
            next: AtomicU64::new(0),
            watchers: Mutex::default(),
        }
    }
}

impl Tail {
    fn watchers(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Watcher>> {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the front end in the hub (once, at start-up).
    pub fn register(self: &Arc<Self>, hub: &Hub) -> Result<(), AppError> {
        let id = hub.register(self.clone())?;
        let _ = self.id.set(id);
        Ok(())
    }

    /// A new watcher of `topic` on this node.
    pub fn watch(self: &Arc<Self>, hub: &Arc<Hub>, topic: &Topic) -> Result<Watch, AppError> {
        let id = *self
            .id
            .get()
            .ok_or_else(|| AppError::internal("the tail front end is not registered"))?;
        let conn: Arc<str> = Arc::from(format!(
            "tail.{:x}.{}",
            self.node,
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        let (tx, rx) = mpsc::channel(QUEUE);
        {
            let mut w = self.watchers();
            if w.len() >= MAX_WATCHERS {
                return Err(AppError::RateLimited);
            }
            w.insert(
                conn.clone(),
                Watcher {
                    room: topic.room(),
                    tx,
                },
            );
        }
        // From here the guard undoes both the entry and the hub connection, whatever happens.
        let guard = WatchGuard {
            tail: self.clone(),
            hub: hub.clone(),
            conn: conn.clone(),
        };
        hub.open(&conn, id);
        hub.join(&conn, topic)?;
        Ok(Watch { frames: rx, guard })
    }

    fn forget(&self, conn: &str) {
        self.watchers().remove(conn);
    }

    /// Ends every watcher's stream (graceful shutdown: SSE streams never end by themselves).
    pub fn drain(&self) {
        self.watchers().clear();
    }

    /// Watchers on this node.
    pub fn watching(&self) -> usize {
        self.watchers().len()
    }
}

/// One SSE `message` frame. Payloads that arrive pretty-printed from elsewhere are re-encoded
/// compactly, since a raw newline would end the SSE `data:` line.
fn sse_frame(room: &str, event: &str, payload: &RawValue) -> Option<Bytes> {
    let mut json = serde_json::to_string(&Frame {
        room,
        event,
        payload,
        at: Timestamp::now(),
    })
    .ok()?;
    if json.contains('\n') {
        let v: Value = serde_json::from_str(&json).ok()?;
        json = serde_json::to_string(&v).ok()?;
    }
    Some(Bytes::from(format!("event: message\ndata: {json}\n\n")))
}

#[async_trait]
impl FrontEnd for Tail {
    fn protocol(&self) -> &'static str {
        "tail"
    }

    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        let members = hub.members_in(d);
        if members.is_empty() {
            return Ok(());
        }
        let mut too_slow = Vec::new();
        {
            let watchers = self.watchers();
            for conn in &members {
                let Some(w) = watchers.get(conn) else {
                    continue;
                };
                let Some(frame) = sse_frame(&w.room, d.event, d.payload) else {
                    continue;
                };
                if w.tx.try_send(frame).is_err() {
                    too_slow.push(conn.clone());
                }
            }
        }
        if !too_slow.is_empty() {
            tracing::info!(
                watchers = too_slow.len(),
                "live tail watchers fell behind and were dropped"
            );
            let mut watchers = self.watchers();
            for conn in too_slow {
                watchers.remove(&conn);
            }
        }
        Ok(())
    }

    /// Watchers get broadcasts only; there are no per-connection deliveries for them.
    fn send(&self, _conn: &str, _event: &str, _payload: &Value) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_handlers::core::ids::ProjectId;

    fn project() -> Topic {
        Topic::Project(ProjectId::try_from("demo".to_owned()).expect("valid id"))
    }

    #[tokio::test]
    async fn a_watcher_sees_broadcasts_of_its_room_and_leaves_on_drop() {
        use switchboard_handlers::core::ports::Fanout;
        let hub = Arc::new(Hub::new(16));
        let tail = Arc::new(Tail::default());
        tail.register(&hub).expect("registered");
        let mut watch = tail.watch(&hub, &project()).expect("watching");
        assert_eq!(hub.member_count(&project()), 1);
        hub.publish(&[project()], "ping", &serde_json::json!({ "a": 1 }), None)
            .await
            .expect("published");
        let frame = watch.frames.try_recv().expect("a frame");
        let text = std::str::from_utf8(&frame).expect("utf-8");
        assert!(text.starts_with("event: message\ndata: {\"room\":\"project:demo\",\"event\":\"ping\",\"payload\":{\"a\":1},"));
        drop(watch);
        assert_eq!(hub.member_count(&project()), 0);
        assert_eq!(tail.watching(), 0);
    }

    #[tokio::test]
    async fn a_watcher_that_stops_reading_is_dropped() {
        use switchboard_handlers::core::ports::Fanout;
        let hub = Arc::new(Hub::new(16));
        let tail = Arc::new(Tail::default());
        tail.register(&hub).expect("registered");
        let watch = tail.watch(&hub, &project()).expect("watching");
        for _ in 0..=QUEUE {
            hub.publish(&[project()], "ping", &Value::Null, None)
                .await
                .expect("published");
        }
        assert_eq!(tail.watching(), 0, "dropped once its queue was full");
        drop(watch);
    }

    #[test]
    fn pretty_payloads_become_one_data_line() {
        let raw = RawValue::from_string("{\n  \"a\": 1\n}".to_owned()).expect("raw json");
        let frame = sse_frame("r", "e", &raw).expect("a frame");
        assert_eq!(frame.iter().filter(|b| **b == b'\n').count(), 3);
    }
}
