//! What the accept loop enforces before a connection reaches HTTP: a cap on open connections,
//! overall and per client address, a deadline for a new connection's first byte, and a calm
//! back-off when `accept` fails (out of file descriptors). Without them 200 connections that
//! trickled headers or sent nothing stayed open for good, and with a 200-descriptor limit
//! `/health` stopped answering.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// The accept loop's limits (docs/security.md, "Limits").
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections at once; 0: no cap.
    pub max_total: usize,
    /// Open connections per client address; 0: no cap.
    pub max_per_ip: usize,
    /// For the first byte of a connection and for each request's headers.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_total: 100_000,
            max_per_ip: 1_000,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Counts open connections; a [`Slot`] is one of them, given back when dropped (when the
/// connection's task ends, whichever way).
#[derive(Debug)]
pub struct Gate {
    limits: ConnectionLimits,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was closed at once.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerIp,
}

impl Gate {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Gate {
            limits,
            counts: Mutex::default(),
        })
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut c = self.counts();
        if self.limits.max_total > 0 && c.total >= self.limits.max_total {
            return Err(Refusal::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if self.limits.max_per_ip > 0 && *n >= self.limits.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            gate: self.clone(),
            ip,
        })
    }
}

#[derive(Debug)]
pub struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Waits for a new connection's first byte. hyper's header-read timeout starts only once the
/// HTTP/1 parser runs, and the version sniffing before it waits for bytes without a deadline,
/// so a connection that never sends anything would otherwise stay open for good.
pub async fn first_byte(tcp: &TcpStream, within: Duration) -> bool {
    let mut one = [0u8; 1];
    matches!(
        tokio::time::timeout(within, tcp.peek(&mut one)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// How the accept loop waits after a failed `accept` (EMFILE, ENFILE, ENOBUFS...): the error
/// persists until connections close, so retrying at once spins a core and logs a line each
/// time. Doubles from 100 ms to 1 s, and logs at most one WARN line per 10 s.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    failures: u32,
    last_warn: Option<Instant>,
    unreported: u64,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const WARN_EVERY: Duration = Duration::from_secs(10);

impl AcceptBackoff {
    /// Records a failure; returns how long to wait and, when due, the failures to report.
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let wait = BACKOFF_FIRST
            .saturating_mul(1u32 << self.failures.min(4))
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        self.unreported = self.unreported.saturating_add(1);
        let due = self
            .last_warn
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
        let report = due.then(|| {
            self.last_warn = Some(now);
            std::mem::take(&mut self.unreported)
        });
        (wait, report)
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn caps_count_open_connections_and_free_them_on_drop() {
        let gate = Gate::new(ConnectionLimits {
            max_total: 3,
            max_per_ip: 2,
            ..ConnectionLimits::default()
        });
        let a1 = gate.admit(ip(1)).expect("first");
        let a2 = gate.admit(ip(1)).expect("second");
        assert_eq!(gate.admit(ip(1)).err(), Some(Refusal::PerIp));
        let b1 = gate.admit(ip(2)).expect("other address");
        assert_eq!(gate.admit(ip(3)).err(), Some(Refusal::Total));
        drop(a1);
        let a3 = gate.admit(ip(1)).expect("freed");
        drop((a2, a3, b1));
        assert!(gate.counts().per_ip.is_empty());
        assert_eq!(gate.counts().total, 0);
    }

    #[test]
    fn zero_means_no_cap() {
        let gate = Gate::new(ConnectionLimits {
            max_total: 0,
            max_per_ip: 0,
            ..ConnectionLimits::default()
        });
        let slots: Vec<_> = (0..100)
            .map(|_| gate.admit(ip(1)).expect("no cap"))
            .collect();
        assert_eq!(slots.len(), 100);
    }

    #[test]
    fn accept_failures_back_off_and_warn_once_per_interval() {
        let t0 = Instant::now();
        let mut b = AcceptBackoff::default();
        let (wait, report) = b.failed(t0);
        assert_eq!((wait, report), (BACKOFF_FIRST, Some(1)));
        let mut waits = Vec::new();
        for i in 1..100u64 {
            let (w, r) = b.failed(t0 + Duration::from_millis(i));
            assert_eq!(r, None);
            waits.push(w);
        }
        assert_eq!(waits[0], Duration::from_millis(200));
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX));
        assert_eq!(b.failed(t0 + WARN_EVERY).1, Some(100));
        b.succeeded();
        assert_eq!(b.failed(t0 + WARN_EVERY).0, BACKOFF_FIRST);
    }
}

/// Lets a handler end the HTTP connection its request arrived on. A streaming response whose
/// client stopped reading is no longer polled (the connection waits to write), so ending the
/// stream is not enough to free it: the accept loop drops the connection instead. Requests
/// outside Socket.IO carry one in their extensions.
#[derive(Debug, Clone, Default)]
pub struct CloseConnection(Arc<tokio::sync::Notify>);

impl CloseConnection {
    pub fn close(&self) {
        self.0.notify_one();
    }

    /// Puts a handle in the request's extensions; not on Socket.IO requests, whose parts
    /// engineioxide keeps for the socket's life.
    pub fn attach<B>(&self, mut req: axum::http::Request<B>) -> axum::http::Request<B> {
        if !req.uri().path().starts_with("/socket.io") {
            req.extensions_mut().insert(self.clone());
        }
        req
    }

    pub async fn closed(&self) {
        self.0.notified().await;
    }
}
