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
mod open;
mod projects;
mod realtime;
mod registry;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata, WriteTransaction};

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
    // Declared first so it drops first: the writer commits what is queued before the file and
    // the lock go.
    writer: writer::Writer,
    db: Arc<Database>,
    file: PathBuf,
    _lock: std::fs::File,
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
                writer,
                db,
                file: opened.file,
                _lock: opened.lock,
            }),
        })
    }

    /// The database file.
    pub fn file(&self) -> &Path {
        &self.inner.file
    }

    fn read<R>(&self, f: impl FnOnce(&ReadTransaction) -> StoreResult<R>) -> StoreResult<R> {
        let txn = self.inner.db.begin_read().db()?;
        f(&txn)
    }

    async fn write<R, F>(&self, op: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<R> + Send + 'static,
    {
        self.inner.writer.write(op).await
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
