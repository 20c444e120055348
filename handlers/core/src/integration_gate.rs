//! Per-integration admission for `integration:execute` and `integration:test` on this node: at
//! most `max_concurrent` calls in flight and `rate_per_sec` started per second, whichever
//! sockets and users they come from, so no one can point the node's whole outbound capacity at
//! one endpoint (or hammer a third party through it). Refusals are RATE_LIMITED.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::error::AppError;
use super::ids::IntegrationId;

#[derive(Default)]
pub struct CallGate {
    calls: Arc<Mutex<HashMap<IntegrationId, Slot>>>,
}

#[derive(Clone, Copy)]
struct Slot {
    in_flight: usize,
    tokens: f64,
    at: Instant,
}

/// A call's place, given back when dropped (also when the call's future is cancelled).
pub struct CallPermit {
    calls: Arc<Mutex<HashMap<IntegrationId, Slot>>>,
    id: IntegrationId,
}

impl CallGate {
    pub fn admit(
        &self,
        id: &IntegrationId,
        max_concurrent: usize,
        rate_per_sec: u32,
        now: Instant,
    ) -> Result<CallPermit, AppError> {
        let rate = f64::from(rate_per_sec.max(1));
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let slot = calls.entry(id.clone()).or_insert(Slot {
            in_flight: 0,
            tokens: rate,
            at: now,
        });
        let elapsed = now.saturating_duration_since(slot.at).as_secs_f64();
        slot.tokens = (slot.tokens + elapsed * rate).min(rate);
        slot.at = now;
        if slot.in_flight >= max_concurrent.max(1) || slot.tokens < 1.0 {
            return Err(AppError::RateLimited);
        }
        slot.tokens -= 1.0;
        slot.in_flight += 1;
        Ok(CallPermit {
            calls: self.calls.clone(),
            id: id.clone(),
        })
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = calls.get_mut(&self.id) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            // Idle integrations leave the table; a fresh slot starts with a full bucket, which
            // is at most one second's worth of calls.
            if slot.in_flight == 0 {
                calls.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(s: &str) -> IntegrationId {
        IntegrationId::try_from(s).expect("id")
    }

    #[test]
    fn concurrency_is_capped_per_integration() {
        let g = CallGate::default();
        let t = Instant::now();
        let a1 = g.admit(&id("a"), 2, 100, t).expect("first");
        let _a2 = g.admit(&id("a"), 2, 100, t).expect("second");
        assert!(matches!(
            g.admit(&id("a"), 2, 100, t),
            Err(AppError::RateLimited)
        ));
        let _b = g.admit(&id("b"), 2, 100, t).expect("another integration");
        drop(a1);
        assert!(
            g.admit(&id("a"), 2, 100, t).is_ok(),
            "a finished call frees its place"
        );
    }

    #[test]
    fn starts_are_capped_per_second() {
        let g = CallGate::default();
        let t = Instant::now();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(g.admit(&id("a"), 100, 3, t).expect("within rate"));
        }
        assert!(g.admit(&id("a"), 100, 3, t).is_err());
        assert!(
            g.admit(&id("a"), 100, 3, t + Duration::from_millis(340))
                .is_ok()
        );
    }
}
