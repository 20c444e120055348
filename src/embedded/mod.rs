//! The embedded store: every port of the core's `Store` and `RealtimeStore` on one redb file under
//! `DATA_DIR`, for single-node deployments that keep data without a database server. Layout,
//! durability and its cost: docs/architecture.md, "Embedded store".
//!
//! Reads run on the caller's thread in their own snapshot (redb readers never wait for the
//! writer); writes go to the group-commit thread (`writer`) and are answered after their commit
//! is on disk.

mod calls;
mod chats;
mod codec;
mod documents;
mod dump;
mod migrate;
mod open;
mod projects;
mod realtime;
mod registry;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata, WriteTransaction};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ports::{Store, StoreResult};

use codec::Db;
pub use open::{FILE, FORMAT, LOCK, OpenError};
pub use realtime::{ChannelRecord, MessageRecord};

/// Cheap to clone; the store closes (its writer drained, its lock released) with the last clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` once closed. Declared first so it drops first: the writer commits what is queued
    /// and the file is closed before the lock goes.
    open: RwLock<Option<Open>>,
    file: PathBuf,
    _lock: std::fs::File,
}

struct Open {
    // Before `db`: the writer's thread holds the database until it has committed its queue.
    writer: writer::Writer,
    db: Arc<Database>,
}

fn closed() -> AppError {
    AppError::unavailable("embedded store", "closed")
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`: refused when another process has it open, when a
    /// newer Switchboard wrote it, or when it cannot be read; never reset.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let opened = open::open(dir)?;
        let db = Arc::new(opened.db);
        let writer = writer::Writer::start(db.clone()).map_err(|source| OpenError::Io {
            dir: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                open: RwLock::new(Some(Open { writer, db })),
                file: opened.file,
                _lock: opened.lock,
            }),
        })
    }

    /// Commits what is queued and closes the file cleanly (the next open needs no recovery);
    /// later calls answer UNAVAILABLE. For shutdown: other holders of the store may outlive it.
    pub fn close(&self) {
        let open = self
            .inner
            .open
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(open);
    }

    /// The database file.
    pub fn file(&self) -> &Path {
        &self.inner.file
    }

    fn read<R>(&self, f: impl FnOnce(&ReadTransaction) -> StoreResult<R>) -> StoreResult<R> {
        let db = {
            let open = self.inner.open.read().unwrap_or_else(|p| p.into_inner());
            open.as_ref().map(|o| o.db.clone()).ok_or_else(closed)?
        };
        let txn = db.begin_read().db()?;
        f(&txn)
    }

    async fn write<R, F>(&self, op: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<R> + Send + 'static,
    {
        let rx = {
            let open = self.inner.open.read().unwrap_or_else(|p| p.into_inner());
            open.as_ref().ok_or_else(closed)?.writer.submit(op)?
        };
        writer::answer(rx).await
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|_| Ok(()))
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        self.read(|txn| txn.open_table(tables::PROJECTS).db()?.is_empty().db())
    }
}
