//! What `server_stats` reports as `aggregatedEvents`: connections, disconnections, and the
//! packets and bytes of Socket.IO events in and out, counted with relaxed atomics and taken
//! (read and reset) every stats period. Events are counted only while an Admin UI is connected
//! somewhere in the cluster (`watched`); connections always (one add per connection).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Bytes of a Socket.IO event frame on the wire besides its name and payload, as the package
/// measures it (engine.io message data `2["event",payload]`).
const FRAME_OVERHEAD: usize = 6;

#[derive(Default)]
pub struct Traffic {
    /// An Admin UI is connected to some node (refreshed every stats period).
    pub watched: AtomicBool,
    connections: AtomicU64,
    disconnections: AtomicU64,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AggregatedEvent {
    pub timestamp: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub count: u64,
}

impl Traffic {
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn disconnection(&self) {
        self.disconnections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inbound(&self, packets: u64, bytes: u64) {
        self.packets_in.fetch_add(packets, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One event frame sent to one socket.
    pub fn outbound(&self, event: &str, payload: &str) {
        let bytes = event.len() + payload.len() + FRAME_OVERHEAD;
        self.packets_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The counts since the last call, stamped `at` (ms, whole seconds as the package does),
    /// leaving out the kinds that did not happen.
    pub fn take(&self, at: i64) -> Vec<AggregatedEvent> {
        [
            ("rawConnection", &self.connections),
            ("rawDisconnection", &self.disconnections),
            ("packetsIn", &self.packets_in),
            ("bytesIn", &self.bytes_in),
            ("packetsOut", &self.packets_out),
            ("bytesOut", &self.bytes_out),
        ]
        .into_iter()
        .filter_map(|(kind, n)| {
            let count = n.swap(0, Ordering::Relaxed);
            (count > 0).then_some(AggregatedEvent {
                timestamp: at / 1000 * 1000,
                kind,
                count,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_once_and_only_those_that_happened() {
        let t = Traffic::default();
        t.connection();
        t.inbound(2, 30);
        t.outbound("chat", r#"{"a":1}"#);
        t.outbound("chat", r#"{"a":1}"#);
        let got = t.take(1_700_000_000_999);
        let kinds: Vec<(&str, u64)> = got.iter().map(|e| (e.kind, e.count)).collect();
        assert_eq!(
            kinds,
            [
                ("rawConnection", 1),
                ("packetsIn", 2),
                ("bytesIn", 30),
                ("packetsOut", 2),
                // 2["chat",{"a":1}] is 17 bytes.
                ("bytesOut", 34),
            ]
        );
        assert!(got.iter().all(|e| e.timestamp == 1_700_000_000_000));
        assert!(t.take(0).is_empty(), "taken means reset");
    }
}
