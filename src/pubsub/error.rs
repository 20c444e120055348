//! Every refusal of the pub/sub API, mapped once to its status and its documented code, in the
//! envelope `{"ok":false,"error":{"code","message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use switchboard_handlers::core::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PubSubError {
    #[error("the Authorization header is required")]
    MissingAuthorization,
    #[error("authorization denied")]
    InvalidAuthorization,
    #[error("the key store is unavailable; retry")]
    ManagerUnavailable,
    #[error("no plate {0}")]
    UnknownPlate(String),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0} is required")]
    MissingPathValue(&'static str),
    #[error("the message is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("this path accepts WebSocket upgrades only")]
    WebsocketRequired,
    #[error("unknown client socket")]
    InvalidClientSocket,
    #[error("the client socket's connect window has passed")]
    ExpiredClientSocket,
    #[error("the client socket has no uses left")]
    ExhaustedClientSocket,
    #[error("{0}")]
    TooMany(String),
    #[error("too many requests; retry in {0} ms")]
    RateLimited(u64),
    #[error("no such path")]
    UnknownPath,
    #[error("internal error")]
    Internal,
}

impl PubSubError {
    pub fn status(&self) -> StatusCode {
        use PubSubError::*;
        match self {
            MissingAuthorization | InvalidAuthorization | InvalidClientSocket => {
                StatusCode::UNAUTHORIZED
            }
            ManagerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            UnknownPlate(_) | UnknownPath => StatusCode::NOT_FOUND,
            InvalidJson(_) | InvalidQuery(_) | MissingPathValue(_) | WebsocketRequired => {
                StatusCode::BAD_REQUEST
            }
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ExpiredClientSocket | ExhaustedClientSocket => StatusCode::GONE,
            TooMany(_) | RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use PubSubError::*;
        match self {
            MissingAuthorization => "missing_authorization",
            InvalidAuthorization => "invalid_authorization",
            ManagerUnavailable => "manager_unavailable",
            UnknownPlate(_) => "plate_not_found",
            InvalidJson(_) => "invalid_json",
            InvalidQuery(_) => "invalid_query",
            MissingPathValue(_) => "missing_path_value",
            PayloadTooLarge { .. } => "payload_too_large",
            WebsocketRequired => "websocket_required",
            InvalidClientSocket => "invalid_client_socket",
            ExpiredClientSocket => "expired_client_socket",
            ExhaustedClientSocket => "exhausted_client_socket",
            TooMany(_) => "too_many_subscriptions",
            UnknownPath => "not_found",
            RateLimited(_) => "rate_limited",
            Internal => "internal_error",
        }
    }

    /// The error envelope, also sent as a WebSocket frame before a refusal's close.
    pub fn body(&self) -> serde_json::Value {
        json!({"ok": false, "error": {"code": self.code(), "message": self.to_string()}})
    }

    /// A core error met while authorizing or publishing: a store or Redis outage is
    /// `manager_unavailable`; anything the caller caused is a refused authorization.
    pub fn from_core(e: &AppError) -> Self {
        match e {
            AppError::Unavailable { .. } => PubSubError::ManagerUnavailable,
            AppError::NotFound { id, .. } => PubSubError::UnknownPlate(id.clone()),
            AppError::Internal(_) | AppError::Upstream(_) => PubSubError::Internal,
            _ => PubSubError::InvalidAuthorization,
        }
    }
}

impl IntoResponse for PubSubError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(code = self.code(), "pub/sub request failed");
        }
        (self.status(), Json(self.body())).into_response()
    }
}
