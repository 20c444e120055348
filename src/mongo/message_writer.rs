//! Group commit for new messages: `message:send`s that wait for their insert at the same time
//! share one unordered `insert_many`. Each sender still waits for its own document's outcome
//! before it is acknowledged, so nothing is acknowledged before it is stored and one socket's
//! messages stay in order (its dispatcher sends the next only after this one's ack); only
//! writes from different senders share a command. The database pays its per-command cost
//! (parsing, a storage transaction, the journal) once per batch instead of once per message:
//! measured in docs/performance.md ("Persisted send").
//!
//! Batches form on their own: a writer takes whatever is queued when it is free, so a lone send
//! goes out at once, alone, and under load the queue grows while earlier batches are in flight.

use std::sync::Arc;

use bson::Document;
use mongodb::Collection;
use mongodb::error::ErrorKind;
use tokio::sync::{Semaphore, mpsc, oneshot};

use switchboard_handlers::core::error::AppError;

use super::errors::{DUPLICATE_KEY, document_write_error, map_err, unconfirmed_write};

/// Documents per `insert_many`: well under the server's limits (100,000 writes, 48 MB per
/// command; a message is at most a few KB), large enough to absorb every socket's one
/// outstanding send on a busy node.
const MAX_BATCH: usize = 256;
/// Batches in flight at once, so that a slow batch (a server failing over, a stalled
/// connection) does not hold every later message behind it, and a server that runs commands
/// in parallel gets more than one.
const MAX_IN_FLIGHT: usize = 4;
/// Queued documents before `insert` waits for room: back-pressure on the sockets' handlers.
const QUEUE: usize = 4 * MAX_BATCH;

/// What became of one document.
#[derive(Debug)]
pub enum Outcome {
    Inserted,
    /// The unique index already holds a document with its key (a client's retry).
    DuplicateKey,
    Failed(AppError),
}

struct Pending {
    doc: Document,
    done: oneshot::Sender<Outcome>,
}

/// The handle kept by the store; cheap to clone.
#[derive(Clone)]
pub struct MessageWriter {
    queue: mpsc::Sender<Pending>,
}

impl MessageWriter {
    /// Starts the writer task for `coll`; it ends when the last handle is dropped.
    pub fn start(coll: Collection<Document>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(coll, rx));
        MessageWriter { queue }
    }

    /// Inserts `doc` in the next batch and waits for its outcome.
    pub async fn insert(&self, doc: Document) -> Outcome {
        let (done, outcome) = oneshot::channel();
        if self.queue.send(Pending { doc, done }).await.is_err() {
            return Outcome::Failed(stopped());
        }
        outcome.await.unwrap_or_else(|_| Outcome::Failed(stopped()))
    }
}

fn stopped() -> AppError {
    AppError::unavailable("mongodb", "the message writer stopped")
}

async fn run(coll: Collection<Document>, mut rx: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for a free slot first: while all are busy, sends accumulate into the next batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let pending = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let coll = coll.clone();
        tokio::spawn(async move {
            write(&coll, pending).await;
            drop(slot);
        });
    }
}

async fn write(coll: &Collection<Document>, pending: Vec<Pending>) {
    let (docs, waiters): (Vec<_>, Vec<_>) = pending.into_iter().map(|p| (p.doc, p.done)).unzip();
    let result = coll.insert_many(docs).ordered(false).await;
    let outcomes: Vec<Outcome> = match result {
        Ok(_) => waiters.iter().map(|_| Outcome::Inserted).collect(),
        Err(e) => match e.kind.as_ref() {
            // Per-document failures; the others were inserted.
            ErrorKind::InsertMany(m) if m.write_concern_error.is_none() => {
                let mut outcomes: Vec<Outcome> =
                    waiters.iter().map(|_| Outcome::Inserted).collect();
                for w in m.write_errors.iter().flatten() {
                    if let Some(o) = outcomes.get_mut(w.index) {
                        *o = if w.code == DUPLICATE_KEY {
                            Outcome::DuplicateKey
                        } else {
                            Outcome::Failed(document_write_error(w.code, &w.message))
                        };
                    }
                }
                outcomes
            }
            // Written (or partly) but not confirmed by the replica set in time: retryable.
            ErrorKind::InsertMany(_) => waiters
                .iter()
                .map(|_| Outcome::Failed(unconfirmed_write(&e)))
                .collect(),
            // The command failed: like a failed `insert_one` for every document (clients retry
            // with their clientMessageId).
            _ => waiters
                .iter()
                .map(|_| Outcome::Failed(map_err(e.clone())))
                .collect(),
        },
    };
    for (done, outcome) in waiters.into_iter().zip(outcomes) {
        // A sender that stopped waiting (its socket closed) needs no answer.
        let _ = done.send(outcome);
    }
}
