//! Token buckets keyed by a string: the webhook URL for requests that carry no credentials to
//! limit by, the caller for the Supabase REST broadcast. The map is bounded: when full, idle buckets go first, then all of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; beyond, the table is pruned.
const MAX_KEYS: usize = 10_000;

pub struct KeyedLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl KeyedLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate_per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `key`: `Err(wait)` when there is none, with how long until one is back.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.take_n(key, 1, now)
    }

    /// Takes `n` tokens at once, or none (`n` beyond the burst counts as the whole burst).
    pub fn take_n(&self, key: &str, n: u32, now: Instant) -> Result<(), Duration> {
        let n = f64::from(n.max(1)).min(self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refill(*b, rate, burst, now).tokens < burst);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        *b = refill(*b, self.rate, self.burst, now);
        if b.tokens >= n {
            b.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((n - b.tokens) / self.rate))
        }
    }
}

fn refill(b: Bucket, rate: f64, burst: f64, now: Instant) -> Bucket {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket {
        tokens: (b.tokens + elapsed * rate).min(burst),
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_key() {
        let l = KeyedLimiter::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take("a", t0).is_ok());
        }
        let wait = l.take("a", t0).expect_err("empty");
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(l.take("b", t0).is_ok(), "keys are independent");
        assert!(l.take("a", t0 + Duration::from_millis(100)).is_ok());
        assert!(l.take("a", t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = KeyedLimiter::new(1, 1);
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            let _ = l.take(&format!("k{i}"), t0);
        }
        assert!(l.buckets.lock().expect("lock").len() <= MAX_KEYS);
    }
}
