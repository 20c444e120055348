//! Counters every front end updates and `/metrics` renders in Prometheus text format. Kept
//! in-process and dependency-free: a few atomics and two small maps behind mutexes that are held
//! for a hash lookup only.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::error::ErrorCode;

/// Upper bounds (seconds) of the handler latency histogram.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    connections: AtomicI64,
    connections_total: AtomicU64,
    refused_total: AtomicU64,
    events: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    latency: Mutex<Histogram>,
    adapter_errors: AtomicU64,
    database_errors: AtomicU64,
    tcp_refused: AtomicU64,
    accept_errors: AtomicU64,
}

/// Only names of events the server knows become label values; anything else is counted under
/// one label, so a client sending random event names cannot grow the map without bound.
pub const UNKNOWN_EVENT_LABEL: &str = "_unknown";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn disconnected(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn refused(&self) {
        self.refused_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A TCP connection closed on accept by MAX_CONNECTIONS or MAX_CONNECTIONS_PER_IP (its log
    /// lines are sampled, so this is the full count).
    pub fn tcp_refused(&self) {
        self.tcp_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed `accept` (out of file descriptors and the like).
    pub fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// One handled event. The label is `'static` because only the event table's names and
    /// [`UNKNOWN_EVENT_LABEL`] are labels (`crate::event_label`).
    pub fn event(&self, label: &'static str, took: Duration) {
        *lock(&self.events).entry(label).or_default() += 1;
        let secs = took.as_secs_f64();
        let mut h = lock(&self.latency);
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn error(&self, code: ErrorCode) {
        *lock(&self.errors).entry(code.as_str()).or_default() += 1;
    }

    pub fn adapter_error(&self) {
        self.adapter_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed reply: counted by code, and as a database error when MongoDB was the cause.
    pub fn failure(&self, e: &super::error::AppError) {
        self.error(e.code());
        if matches!(
            e,
            super::error::AppError::Unavailable {
                service: "mongodb",
                ..
            }
        ) {
            self.database_error();
        }
    }

    /// A MongoDB operation failed (a request's, or the change feed's).
    pub fn database_error(&self) {
        self.database_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP switchboard_connections Open Socket.IO connections on this node."
        );
        let _ = writeln!(out, "# TYPE switchboard_connections gauge");
        let _ = writeln!(out, "switchboard_connections {}", self.connections());
        let _ = writeln!(out, "# TYPE switchboard_connections_total counter");
        let _ = writeln!(
            out,
            "switchboard_connections_total {}",
            self.connections_total.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE switchboard_connections_refused_total counter");
        let _ = writeln!(
            out,
            "switchboard_connections_refused_total {}",
            self.refused_total.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_events_total Client events handled, by event name."
        );
        let _ = writeln!(out, "# TYPE switchboard_events_total counter");
        for (ev, n) in lock(&self.events).iter() {
            let _ = writeln!(out, "switchboard_events_total{{event=\"{ev}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP switchboard_errors_total Error replies, by contract code."
        );
        let _ = writeln!(out, "# TYPE switchboard_errors_total counter");
        let errors = lock(&self.errors);
        for code in ErrorCode::ALL {
            let n = errors.get(code.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "switchboard_errors_total{{code=\"{}\"}} {n}",
                code.as_str()
            );
        }
        drop(errors);
        let _ = writeln!(
            out,
            "# HELP switchboard_handler_seconds Event handling latency."
        );
        let _ = writeln!(out, "# TYPE switchboard_handler_seconds histogram");
        let h = lock(&self.latency);
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "switchboard_handler_seconds_bucket{{le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "switchboard_handler_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "switchboard_handler_seconds_sum {}", h.sum);
        let _ = writeln!(out, "switchboard_handler_seconds_count {}", h.count);
        drop(h);
        let _ = writeln!(out, "# TYPE switchboard_adapter_errors_total counter");
        let _ = writeln!(
            out,
            "switchboard_adapter_errors_total {}",
            self.adapter_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_database_errors_total MongoDB operations that failed (requests and the change feed)."
        );
        let _ = writeln!(out, "# TYPE switchboard_database_errors_total counter");
        let _ = writeln!(
            out,
            "switchboard_database_errors_total {}",
            self.database_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_tcp_refused_total TCP connections closed on accept by MAX_CONNECTIONS or MAX_CONNECTIONS_PER_IP."
        );
        let _ = writeln!(out, "# TYPE switchboard_tcp_refused_total counter");
        let _ = writeln!(
            out,
            "switchboard_tcp_refused_total {}",
            self.tcp_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_accept_errors_total Failed accepts (out of file descriptors and the like)."
        );
        let _ = writeln!(out, "# TYPE switchboard_accept_errors_total counter");
        let _ = writeln!(
            out,
            "switchboard_accept_errors_total {}",
            self.accept_errors.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.connected();
        m.event("subscribe:project", Duration::from_micros(300));
        m.error(ErrorCode::Forbidden);
        m.tcp_refused();
        m.accept_failed();
        m.accept_failed();
        let t = m.render();
        assert!(t.contains("switchboard_tcp_refused_total 1"));
        assert!(t.contains("switchboard_accept_errors_total 2"));
        assert!(t.contains("switchboard_connections 1"));
        assert!(t.contains("switchboard_events_total{event=\"subscribe:project\"} 1"));
        assert!(t.contains("switchboard_errors_total{code=\"FORBIDDEN\"} 1"));
        assert!(t.contains("switchboard_handler_seconds_bucket{le=\"0.0005\"} 1"));
    }
}
