//! Per-socket rate limiting (contract: 100 events/s sustained, bursts of 200; a socket that keeps
//! offering more than twice the sustained rate for 10 s is disconnected), the byte budget of
//! events relayed to other sockets, and the sampled log of refusals. Runs synchronously in
//! arrival order, before an event is queued.

use std::time::{Duration, Instant};

/// How long a socket may keep offering more than twice the sustained rate.
pub const ABUSE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Limit,
    /// Limited continuously for the whole abuse window: close the socket.
    Disconnect,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Start of the current one-second window and events offered in it.
    window_start: Instant,
    window_count: u32,
    /// Since when every full one-second window offered more than twice the rate.
    abusive_since: Option<Instant>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        RateLimiter {
            rate: f64::from(rate_per_sec),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
            window_start: now,
            window_count: 0,
            abusive_since: None,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);

        let window = now.saturating_duration_since(self.window_start);
        if window >= Duration::from_secs(1) {
            let heavy = f64::from(self.window_count) > 2.0 * self.rate * window.as_secs_f64();
            if !heavy {
                self.abusive_since = None;
            } else if self.abusive_since.is_none() {
                self.abusive_since = Some(self.window_start);
            }
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count = self.window_count.saturating_add(1);

        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        match self.abusive_since {
            Some(since) if now.saturating_duration_since(since) >= ABUSE_WINDOW => {
                Verdict::Disconnect
            }
            _ => Verdict::Limit,
        }
    }
}

/// A token bucket in bytes for events relayed to other sockets: the event limiter counts
/// events, so 60 events of 250 KiB passed as easily as 60 small ones and reached every member
/// of a room as 15 MB at once.
#[derive(Debug)]
pub struct ByteBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl ByteBucket {
    pub fn new(bytes_per_sec: usize, burst: usize, now: Instant) -> Self {
        ByteBucket {
            rate: bytes_per_sec as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: now,
        }
    }

    /// Takes `bytes` if the budget has them. An event larger than the whole burst costs the
    /// whole burst, so it passes once the bucket is full instead of never.
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let cost = (bytes as f64).min(self.burst);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// How often one socket's refusals may reach the log at WARN.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One socket's refused events, for the log: each refusal is logged at debug, and WARN gets
/// the first one and then at most one summary per interval (a socket over the rate used to
/// write a WARN line per refused event, ≈80 a second for as long as it liked).
#[derive(Debug, Default)]
pub struct RefusalLog {
    last_warn: Option<Instant>,
    /// Refusals since the last WARN line.
    unreported: u64,
}

impl RefusalLog {
    /// Counts a refusal; `Some(n)` when it is time for a WARN line summing up `n` refusals.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.unreported = self.unreported.saturating_add(1);
        let due = self
            .last_warn
            .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_LOG_INTERVAL);
        if !due {
            return None;
        }
        self.last_warn = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_limit_then_refill() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(100, 200, t0);
        for _ in 0..200 {
            assert_eq!(r.check(t0), Verdict::Allow);
        }
        assert_eq!(r.check(t0), Verdict::Limit);
        let t1 = t0 + Duration::from_millis(100);
        let allowed = (0..20).filter(|_| r.check(t1) == Verdict::Allow).count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn sustained_abuse_disconnects_but_bursts_do_not() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(100, 200, t0);
        // 300 events/s (3x the rate) for 12 s, in 10 ms steps.
        let mut verdict = Verdict::Allow;
        let mut at = None;
        for step in 0..1200u32 {
            let now = t0 + Duration::from_millis(u64::from(step) * 10);
            for _ in 0..3 {
                verdict = r.check(now);
                if verdict == Verdict::Disconnect {
                    at = Some(step);
                    break;
                }
            }
            if at.is_some() {
                break;
            }
        }
        assert_eq!(verdict, Verdict::Disconnect);
        let secs = at.map(|s| s / 100).unwrap_or(0);
        assert!((10..=12).contains(&secs), "disconnected after {secs}s");

        // A burst of 400 in one instant, then calm: never disconnected.
        let mut r = RateLimiter::new(100, 200, t0);
        for _ in 0..400 {
            assert_ne!(r.check(t0), Verdict::Disconnect);
        }
        for step in 1..2000u64 {
            assert_eq!(
                r.check(t0 + Duration::from_millis(step * 20)),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn byte_bucket_spends_its_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = ByteBucket::new(1000, 4000, t0);
        assert!(b.take(3000, t0));
        assert!(b.take(1000, t0));
        assert!(!b.take(1, t0));
        assert!(b.take(500, t0 + Duration::from_millis(500)));
        assert!(!b.take(600, t0 + Duration::from_millis(500)));
        // Larger than the burst: passes on a full bucket only.
        assert!(b.take(10_000, t0 + Duration::from_secs(10)));
        assert!(!b.take(10_000, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn refusals_reach_warn_once_per_interval() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        assert_eq!(log.note(t0), Some(1));
        let warned = (1..2000u64)
            .filter_map(|i| log.note(t0 + Duration::from_millis(i)))
            .count();
        assert_eq!(warned, 0);
        assert_eq!(log.note(t0 + REFUSAL_LOG_INTERVAL), Some(2000));
    }
}
