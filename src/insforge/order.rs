//! One socket's events run one at a time, in arrival order. socketioxide spawns a task per
//! event, so two publishes of one socket could otherwise be stored and delivered in either
//! order (each awaits the store). Handlers take a [`Turn`] as an extractor: extractors run
//! synchronously as packets arrive, so each takes its place in the socket's queue in arrival
//! order; the handler hands its work to the turn, and one task per socket (started with the
//! socket's first event) runs the queue's work in order.
//!
//! One serving task rather than each handler waiting for the one before: a burst of publishes
//! is then stored and broadcast back to back in one go, so each subscriber's writer sends the
//! burst's frames together. Handlers that waited in turn were each woken behind the writes of
//! the previous broadcast: one publisher's messages went out one write per frame, at a third
//! of the main namespace's fan-out (docs/performance.md, "InsForge namespace").

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use socketioxide::adapter::Adapter;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use socketioxide_core::Value;
use tokio::sync::{mpsc, oneshot};

/// An event's work.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A socket's queue: one slot per event, in arrival order, each filled by its handler.
#[derive(Default)]
pub struct Turns {
    queue: OnceLock<mpsc::UnboundedSender<oneshot::Receiver<Job>>>,
}

impl Turns {
    /// The next place in the queue (the serving task starts with the first).
    fn take(&self) -> Turn {
        let (slot, filled) = oneshot::channel();
        let queue = self.queue.get_or_init(|| {
            let (queue, work) = mpsc::unbounded_channel();
            tokio::spawn(serve(work));
            queue
        });
        // The serving task ends only when this sender is gone.
        let _ = queue.send(filled);
        Turn { slot }
    }
}

/// Runs each slot's work in order; ends with the socket (its `Turns` dropped). A handler that
/// never ran (dropped without handing work) leaves its slot empty: skipped. A panicking
/// handler does not stop the ones after it.
async fn serve(mut work: mpsc::UnboundedReceiver<oneshot::Receiver<Job>>) {
    while let Some(slot) = work.recv().await {
        let Ok(job) = slot.await else {
            continue;
        };
        if AssertUnwindSafe(job).catch_unwind().await.is_err() {
            tracing::error!("an insforge event handler panicked");
        }
    }
}

/// An event's place in its socket's order.
pub struct Turn {
    slot: oneshot::Sender<Job>,
}

impl Turn {
    /// Runs `work` once the events before it are done.
    pub fn run(self, work: impl Future<Output = ()> + Send + 'static) {
        // The serving task lives as long as the socket's `Turns`; after that nothing runs.
        let _ = self.slot.send(Box::pin(work));
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
        Ok(turns.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn work_runs_in_turn_order_whatever_order_it_is_handed_in() {
        let turns = Turns::default();
        let (first, second, skipped, third) =
            (turns.take(), turns.take(), turns.take(), turns.take());
        let order = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = oneshot::channel();
        let o = order.clone();
        third.run(async move {
            o.lock().expect("lock").push(3);
            let _ = done_tx.send(());
        });
        let o = order.clone();
        second.run(async move {
            o.lock().expect("lock").push(2);
            panic!("a handler's bug");
        });
        tokio::task::yield_now().await;
        assert!(
            order.lock().expect("lock").is_empty(),
            "the later turns wait for the first"
        );
        drop(skipped);
        let o = order.clone();
        first.run(async move {
            tokio::task::yield_now().await;
            o.lock().expect("lock").push(1);
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), done_rx)
            .await
            .expect("the queue was served")
            .expect("the third ran");
        assert_eq!(*order.lock().expect("lock"), [1, 2, 3]);
    }
}
