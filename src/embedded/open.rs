//! Opening `DATA_DIR`: the lock that keeps a second process out, the database file, the format
//! check and the upgrade of an older format (`migrate`, which only adds index tables). Nothing
//! here ever deletes, truncates or rewrites a record: a directory that cannot be read as this
//! version's store is refused with the reason.

use std::fs::File;
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError};

use super::migrate;
use super::tables::{self, META};

/// The layout this build writes and reads (tables, keys, record encoding). A store with a higher
/// number was written by a newer Switchboard and is refused; a lower one is upgraded on open.
/// 2: receipts indexed message first, transactions per project.
pub const FORMAT: u64 = 2;
/// The database file inside `DATA_DIR`.
pub const FILE: &str = "switchboard.redb";
/// Held (advisory, exclusive) for as long as a process has the store open.
pub const LOCK: &str = "switchboard.lock";
/// redb's page cache; it grows to this as pages are read.
const CACHE_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use DATA_DIR {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "DATA_DIR {dir} is in use by another Switchboard process (it holds {LOCK}); stop it, or \
         give this one another DATA_DIR"
    )]
    Locked { dir: PathBuf },
    #[error(
        "{file} was written by a newer Switchboard (store format {found}, this one reads up to \
         {FORMAT}); run that version or restore a backup. Nothing was changed"
    )]
    Newer { file: PathBuf, found: u64 },
    #[error(
        "{file} is damaged or is not a Switchboard store ({detail}); refusing to start rather \
         than lose data: restore a backup or move the file away. Nothing was changed"
    )]
    Corrupt { file: PathBuf, detail: String },
}

pub struct Opened {
    pub db: Database,
    pub lock: File,
    pub file: PathBuf,
}

pub fn open(dir: &Path) -> Result<Opened, OpenError> {
    let io = |source| OpenError::Io {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
        .map_err(io)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(OpenError::Locked {
                dir: dir.to_owned(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let file = dir.join(FILE);
    let existed = std::fs::metadata(&file).is_ok_and(|m| m.len() > 0);
    let refuse = |e: DatabaseError| classify(dir, &file, e);
    // An existing store is judged read-only first, so a refused one is left byte for byte as it
    // was. One that was not closed cleanly cannot be opened read-only; it is judged after the
    // writable open has run redb's crash recovery (which repairs, never discards, commits).
    if existed {
        match guarded(&file, || {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .open_read_only(&file)
        })? {
            Ok(ro) => drop(check_format(&file, &ro, true)?),
            Err(DatabaseError::RepairAborted) => {}
            Err(e) => return Err(refuse(e)),
        }
    }
    let db = guarded(&file, || {
        Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&file)
    })?
    .map_err(refuse)?;
    let found = check_format(&file, &db, existed)?;
    // Creates tables added since, fills them in a store of an older format, and writes the
    // marker.
    init(&db, found).map_err(|detail| OpenError::Corrupt {
        file: file.clone(),
        detail,
    })?;
    Ok(Opened { db, lock, file })
}

/// redb refuses a damaged header with an error; a damaged page it meets later may panic inside
/// it, which is the same verdict.
fn guarded<T>(file: &Path, open: impl FnOnce() -> T) -> Result<T, OpenError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(open)).map_err(|_| OpenError::Corrupt {
        file: file.to_owned(),
        detail: "the database engine could not read it".to_owned(),
    })
}

fn classify(dir: &Path, file: &Path, e: DatabaseError) -> OpenError {
    let corrupt = |detail: String| OpenError::Corrupt {
        file: file.to_owned(),
        detail,
    };
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            OpenError::Locked {
                dir: dir.to_owned(),
            }
        }
        DatabaseError::UpgradeRequired(v) => corrupt(format!("unsupported redb file format {v}")),
        // A wrong magic number or an impossible header is reported as invalid data.
        DatabaseError::Storage(StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            corrupt(e.to_string())
        }
        DatabaseError::Storage(StorageError::Io(source)) => OpenError::Io {
            dir: dir.to_owned(),
            source,
        },
        e => corrupt(e.to_string()),
    }
}

/// The store's format marker, refused when newer than this build or missing from a store that
/// had content.
fn check_format(
    file: &Path,
    db: &impl ReadableDatabase,
    existed: bool,
) -> Result<Option<u64>, OpenError> {
    let found = format_of(db).map_err(|detail| OpenError::Corrupt {
        file: file.to_owned(),
        detail,
    })?;
    match found {
        Some(v) if v > FORMAT => Err(OpenError::Newer {
            file: file.to_owned(),
            found: v,
        }),
        None if existed => Err(OpenError::Corrupt {
            file: file.to_owned(),
            detail: "it has no Switchboard format marker".to_owned(),
        }),
        found => Ok(found),
    }
}

fn format_of(db: &impl ReadableDatabase) -> Result<Option<u64>, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let v = meta.get("format").map_err(|e| e.to_string())?;
    Ok(v.map(|g| g.value()))
}

fn init(db: &Database, found: Option<u64>) -> Result<(), String> {
    let txn = db.begin_write().map_err(text)?;
    tables::create_all(&txn).map_err(text)?;
    if found.is_some_and(|v| v < 2) {
        tracing::info!(
            "upgrading the embedded store to format {FORMAT}: indexing receipts and transactions"
        );
        migrate::to_2(&txn).map_err(|e| e.to_string())?;
    }
    if found != Some(FORMAT) {
        let mut meta = txn.open_table(META).map_err(text)?;
        meta.insert("format", FORMAT).map_err(text)?;
    }
    txn.commit().map_err(text)?;
    Ok(())
}

fn text(e: impl Into<redb::Error>) -> String {
    e.into().to_string()
}
