//! The caller of a REST request: `Authorization: Bearer <JWT or API key>` or `X-API-Key`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::access::Actor;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ports::Credentials;

use super::AppState;
use super::error::ApiError;

pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Caller(caller_of(&state.core, &parts.headers).await?))
    }
}

/// Who sent a request with these headers (for routers with a state of their own).
pub async fn caller_of(core: &Core, headers: &HeaderMap) -> Result<Actor, AppError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let creds = if let Some(key) = header("x-api-key") {
        Credentials {
            token: None,
            api_key: Some(key),
        }
    } else if let Some(auth) = header("authorization") {
        let bearer = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .ok_or_else(|| AppError::Unauthorized("expected a Bearer token".to_owned()))?
            .trim()
            .to_owned();
        // A bearer value with two dots is a JWT; anything else is tried as an API key.
        if bearer.matches('.').count() == 2 {
            Credentials {
                token: Some(bearer),
                api_key: None,
            }
        } else {
            Credentials {
                token: None,
                api_key: Some(bearer),
            }
        }
    } else {
        return Err(AppError::Unauthorized(
            "missing Authorization or X-API-Key".to_owned(),
        ));
    };
    core.auth.authenticate(&creds).await
}

/// A JSON body whose rejection (bad JSON, wrong shape, wrong content type) is the contract's
/// INVALID_PAYLOAD error rather than axum's plain-text one.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => {
                let err = if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge {
                        size: 0,
                        limit: super::MAX_BODY_BYTES,
                    }
                } else {
                    AppError::invalid(e.body_text())
                };
                Err(err.into())
            }
        }
    }
}

/// Query-string parameters whose rejection is INVALID_PAYLOAD JSON, like `JsonBody`.
pub struct QueryParams<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for QueryParams<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(e) => Err(AppError::invalid(e.body_text()).into()),
        }
    }
}

/// A `limit` query parameter: `default` when absent or empty, else 1 to `max`.
pub fn page_limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, AppError> {
    match raw {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| AppError::invalid(format!("limit must be 1 to {max}"))),
    }
}
