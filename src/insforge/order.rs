//! One socket's events run one at a time, in arrival order. socketioxide spawns a task per
//! event, so two publishes of one socket could otherwise be stored and delivered in either
//! order (each awaits the store). Handlers take a [`Turn`] as an extractor: extractors run
//! synchronously as packets arrive, so the tickets follow the arrival order, and a handler
//! waits until the events before it are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use socketioxide::adapter::Adapter;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use socketioxide_core::Value;
use tokio::sync::watch;

/// A socket's tickets: the next one to hand out and the one being served.
pub struct Turns {
    next: AtomicU64,
    serving: watch::Sender<u64>,
}

impl Default for Turns {
    fn default() -> Self {
        Turns {
            next: AtomicU64::new(0),
            serving: watch::Sender::new(0),
        }
    }
}

/// An event's place in its socket's order.
pub struct Turn {
    turns: Arc<Turns>,
    ticket: u64,
}

/// Held while an event is handled; dropping it (even on a panic) lets the next one run.
pub struct Served(Arc<Turns>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.serving.send_modify(|n| *n += 1);
    }
}

impl Turn {
    pub async fn wait(self) -> Served {
        let mut rx = self.turns.serving.subscribe();
        // The sender lives in `self.turns`, so waiting cannot fail.
        let _ = rx.wait_for(|&n| n == self.ticket).await;
        Served(self.turns)
    }
}

#[derive(Debug)]
pub struct NoTurns;

impl std::fmt::Display for NoTurns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("socket has no event order")
    }
}

impl std::error::Error for NoTurns {}

impl<A: Adapter> FromMessageParts<A> for Turn {
    type Error = NoTurns;

    fn from_message_parts(
        s: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, NoTurns> {
        let turns = s.extensions.get::<Arc<Turns>>().ok_or(NoTurns)?;
        let ticket = turns.next.fetch_add(1, Ordering::Relaxed);
        Ok(Turn { turns, ticket })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_are_served_in_ticket_order() {
        let turns = Arc::new(Turns::default());
        let ticket = |t: &Arc<Turns>| Turn {
            turns: t.clone(),
            ticket: t.next.fetch_add(1, Ordering::Relaxed),
        };
        let (first, second) = (ticket(&turns), ticket(&turns));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let o2 = order.clone();
        let late = tokio::spawn(async move {
            let _s = second.wait().await;
            o2.lock().expect("lock").push(2);
        });
        tokio::task::yield_now().await;
        assert!(
            order.lock().expect("lock").is_empty(),
            "the second waits for the first"
        );
        {
            let _s = first.wait().await;
            order.lock().expect("lock").push(1);
        }
        late.await.expect("joined");
        assert_eq!(*order.lock().expect("lock"), [1, 2]);
    }
}
