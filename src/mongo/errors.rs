//! Driver errors become the core's `AppError` here and nowhere else: a duplicate key is a
//! CONFLICT, anything that means "the database did not answer" is UNAVAILABLE, the rest INTERNAL.

use mongodb::error::{Error, ErrorKind, WriteFailure};

use switchboard_handlers::core::error::AppError;

pub const DUPLICATE_KEY: i32 = 11000;

pub fn is_duplicate_key(e: &Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|ws| ws.iter().any(|w| w.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// True when a write failed only because some documents already existed: every write error is a
/// duplicate key and the write concern was met (e.g. an unordered `insert_many` of receipts).
pub fn only_duplicate_keys(e: &Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|ws| !ws.is_empty() && ws.iter().all(|w| w.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

pub fn map_err(e: Error) -> AppError {
    if is_duplicate_key(&e) {
        return duplicate_key();
    }
    let unavailable = e.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
        || matches!(
            e.kind.as_ref(),
            ErrorKind::ServerSelection { .. }
                | ErrorKind::ConnectionPoolCleared { .. }
                | ErrorKind::Io(_)
                | ErrorKind::DnsResolve { .. }
        );
    if unavailable {
        AppError::unavailable("mongodb", summary(&e))
    } else {
        AppError::internal(format!("mongodb: {e}"))
    }
}

/// What a duplicate key means to a client.
pub fn duplicate_key() -> AppError {
    AppError::Conflict("already exists".to_owned())
}

/// One document's failure, other than a duplicate key, inside an unordered batch write.
pub fn document_write_error(code: i32, message: &str) -> AppError {
    AppError::internal(format!("mongodb: write error {code}: {message}"))
}

/// A batch write that the server may have applied, in part or whole, but whose write concern
/// it did not confirm: retryable (clients resend with their clientMessageId).
pub fn unconfirmed_write(e: &Error) -> AppError {
    AppError::unavailable("mongodb", summary(e))
}

/// A one-line description for logs and start-up failures.
pub fn summary(e: &Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").chars().take(300).collect()
}
