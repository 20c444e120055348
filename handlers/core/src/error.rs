//! The contract's closed set of error codes and the one error type of the request path.
//! Every failure a client can see is an `AppError`; `code()` and `public_message()` are the only
//! way it leaves the process, so internal details (driver errors, panics) stay in the logs.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidPayload,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::InvalidPayload,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidPayload => "INVALID_PAYLOAD",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("rate limited")]
    RateLimited,
    #[error("payload too large: {size} bytes, limit {limit}")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("{service} unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
    /// A third-party endpoint (an integration's) failed: timed out, refused, answered too much.
    /// Its message is the client's to see: the endpoint is theirs, not our infrastructure.
    #[error("upstream: {0}")]
    Upstream(String),
}

impl AppError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        AppError::InvalidPayload(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden(msg.into())
    }
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        AppError::NotFound {
            what,
            id: id.into(),
        }
    }
    pub fn unavailable(service: &'static str, detail: impl ToString) -> Self {
        AppError::Unavailable {
            service,
            detail: detail.to_string(),
        }
    }
    pub fn internal(detail: impl ToString) -> Self {
        AppError::Internal(detail.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::InvalidPayload(_) => ErrorCode::InvalidPayload,
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound { .. } => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::RateLimited => ErrorCode::RateLimited,
            AppError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            AppError::Unavailable { .. } | AppError::Upstream(_) => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What the client is told. Client mistakes are explained; service failures are not,
    /// because their detail (hosts, driver messages) is for operators.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Unavailable { service, .. } => {
                format!("{service} is unavailable, try again later")
            }
            AppError::Internal(_) => "internal error".to_owned(),
            AppError::InvalidPayload(m) | AppError::Unauthorized(m) | AppError::Forbidden(m) => {
                m.clone()
            }
            AppError::Conflict(m) | AppError::Upstream(m) => m.clone(),
            other => other.to_string(),
        }
    }

    /// Client mistakes are logged quietly so a misbehaving client cannot flood the logs.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            AppError::Unavailable { .. } | AppError::Internal(_) | AppError::RateLimited
        )
    }
}

/// The wire shape of an error: `{ code, message }`.
#[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl From<&AppError> for ErrorBody {
    fn from(e: &AppError) -> Self {
        ErrorBody {
            code: e.code(),
            message: e.public_message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_the_contract_spells_them() {
        for c in ErrorCode::ALL {
            let v = serde_json::to_value(c).expect("serializes");
            assert_eq!(v, serde_json::Value::String(c.as_str().to_owned()));
        }
    }

    #[test]
    fn internals_are_not_leaked() {
        let e = AppError::unavailable("mongodb", "connection refused at 10.0.0.3:27017");
        assert!(!e.public_message().contains("10.0.0.3"));
        assert!(
            !AppError::internal("secret stack")
                .public_message()
                .contains("secret")
        );
    }
}
