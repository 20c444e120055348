//! What the hub hands to the cross-node bus, and whether that bus is usable. The bus itself
//! (Redis) lives in the binary crate; on every other node it hands each broadcast back to
//! [`super::Hub::deliver_remote`], which delivers it to every front end there.

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::time::Timestamp;

/// A room broadcast on its way to the other nodes: which rooms, which rooms to skip, and the
/// event with its payload already encoded (receivers copy it into their frames, never parse it).
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomBroadcast {
    #[serde(rename = "r")]
    pub rooms: Vec<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub except_rooms: Vec<String>,
    /// A connection to skip wherever it lives (a Pusher trigger's `socket_id` may name a
    /// connection of another node).
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
    #[serde(rename = "e")]
    pub event: String,
    #[serde(rename = "p")]
    pub payload: Box<RawValue>,
}

/// Carries room broadcasts to the other nodes. `forward` returns once the broadcast is queued
/// (or dropped because the bus is down), never after a network round trip, so a connection's
/// next event is not held up by Redis.
#[async_trait]
pub trait RemoteRooms: Send + Sync {
    async fn forward(&self, broadcast: RoomBroadcast);
}

/// Whether the cross-node transport (Redis) is usable. While it is not, broadcasts go to this
/// node's connections only, at once, instead of each waiting for a Redis timeout: local
/// delivery never depends on Redis. Down is retried every `RETRY_AFTER_MS`, and a Redis
/// reconnect marks it up.
#[derive(Debug, Default)]
pub struct RemoteHealth {
    /// Milliseconds since the epoch when it went down; 0 while up.
    down_since: AtomicI64,
}

const RETRY_AFTER_MS: i64 = 5_000;

impl RemoteHealth {
    pub fn up(&self) {
        self.down_since.store(0, Ordering::Relaxed);
    }

    pub fn down(&self) {
        let now = Timestamp::now().millis();
        let _ = self
            .down_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn worth_trying(&self) -> bool {
        let since = self.down_since.load(Ordering::Relaxed);
        since == 0 || Timestamp::now().millis() - since > RETRY_AFTER_MS
    }
}
