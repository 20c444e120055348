//! Records are stored as the core's own serde JSON; storage errors become `AppError` here and
//! nowhere else (UNAVAILABLE: the disk or the file failed, nothing was saved).

use serde::Serialize;
use serde::de::DeserializeOwned;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ports::StoreResult;

pub fn storage(e: impl Into<redb::Error>) -> AppError {
    let e: redb::Error = e.into();
    tracing::error!(error = %e, "embedded store failed");
    AppError::unavailable("embedded store", e)
}

/// `.db()?` on any redb result inside a store operation.
pub trait Db<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T, E: Into<redb::Error>> Db<T> for Result<T, E> {
    fn db(self) -> StoreResult<T> {
        self.map_err(storage)
    }
}

pub fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| AppError::internal(format!("encoding a record: {e}")))
}

/// A record that does not decode is damage, not input: INTERNAL, named by its table.
pub fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::internal(format!("undecodable record in {table}: {e}")))
}

/// Collections, chats and projects are exact keys: no id holds a control character, so the
/// id followed by NUL sorts right after every key that starts with the id alone.
pub fn after_all(id: &str) -> String {
    format!("{id}\0")
}

/// The record under `id` in a table keyed by id.
pub fn get<T: DeserializeOwned>(
    table: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    name: &str,
    id: &str,
) -> StoreResult<Option<T>> {
    match table.get(id).db()? {
        Some(v) => decode(name, v.value()).map(Some),
        None => Ok(None),
    }
}

/// Every record of a table keyed by id, in id order, that passes `keep`.
pub fn all<T: DeserializeOwned>(
    table: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    name: &str,
    keep: impl Fn(&T) -> bool,
) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    for entry in table.range(..).db()? {
        let (_, v) = entry.db()?;
        let record: T = decode(name, v.value())?;
        if keep(&record) {
            out.push(record);
        }
    }
    Ok(out)
}
