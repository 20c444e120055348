//! Group commit. redb runs one write transaction at a time and each commit is an fsync, so one
//! thread takes every write that is waiting, runs them in one transaction and commits once: a
//! burst of N writes costs one fsync, and each caller is answered only after that commit
//! returned (acknowledged = durable).
//!
//! A write validates before it writes, so one that refuses (CONFLICT, INVALID_PAYLOAD) leaves
//! nothing in the shared transaction. A storage failure or a panic aborts the whole batch and
//! every caller in it gets UNAVAILABLE or INTERNAL: nothing of theirs was saved.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc;

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ports::StoreResult;

use super::codec::storage;

/// At most this many writes share a commit, so one commit's latency stays bounded.
const MAX_BATCH: usize = 512;

/// Called once the batch is committed (`Ok`) or abandoned (`Err`, why).
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Runs one write (not at all without a transaction); false when it failed in a way that
/// spoils the transaction.
type Job = Box<dyn FnOnce(Option<&WriteTransaction>) -> (Finish, bool) + Send>;

pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    /// Commits what is queued and waits for the thread, so the database file is closed when
    /// the store is (a reopen in the same process finds it free).
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("embedded store writer ended with a panic");
        }
    }
}

impl Writer {
    pub fn start(db: Arc<Database>) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("embedded-store-writer".to_owned())
            .spawn(move || run(&db, &rx))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues `op` for the next commit; the receiver answers once that commit is durable.
    pub fn submit<R, F>(&self, op: F) -> StoreResult<oneshot::Receiver<StoreResult<R>>>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<R>>();
        let job: Job = Box::new(move |txn| {
            let result = match txn {
                Some(txn) => op(txn),
                None => Err(AppError::unavailable("embedded store", "not written")),
            };
            let clean = !matches!(
                result,
                Err(AppError::Unavailable { .. } | AppError::Internal(_))
            );
            let finish: Finish = Box::new(move |committed| {
                let committed =
                    committed.map_err(|why| AppError::unavailable("embedded store", why));
                let _ = tx.send(committed.and(result));
            });
            (finish, clean)
        });
        self.jobs
            .as_ref()
            .ok_or_else(|| AppError::unavailable("embedded store", "closed"))?
            .send(job)
            .map_err(|_| AppError::unavailable("embedded store", "the writer has stopped"))?;
        Ok(rx)
    }
}

/// The answer of a submitted write.
pub async fn answer<R>(rx: oneshot::Receiver<StoreResult<R>>) -> StoreResult<R> {
    rx.await.unwrap_or_else(|_| {
        Err(AppError::internal(
            "a write failed unexpectedly; nothing was saved",
        ))
    })
}

fn run(db: &Database, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(db, batch);
    }
}

fn commit(db: &Database, batch: Vec<Job>) {
    let txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let why = storage(e).to_string();
            for job in batch {
                let (finish, _) = job(None);
                finish(Err(why.clone()));
            }
            return;
        }
    };
    let mut finishes = Vec::with_capacity(batch.len());
    let mut clean = true;
    for job in batch {
        match std::panic::catch_unwind(AssertUnwindSafe(|| job(Some(&txn)))) {
            Ok((finish, ok)) => {
                clean &= ok;
                finishes.push(finish);
            }
            // The job and its answer channel are gone: its caller gets INTERNAL.
            Err(_) => clean = false,
        }
    }
    let outcome = if clean {
        txn.commit().map_err(|e| storage(e).to_string())
    } else {
        if let Err(e) = txn.abort() {
            tracing::error!(error = %e, "embedded store: abort failed");
        }
        Err("a write in the same commit failed; nothing was saved, retry".to_owned())
    };
    for finish in finishes {
        finish(outcome.clone());
    }
}
