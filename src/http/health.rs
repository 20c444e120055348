//! `/health` (the process serves HTTP), `/ready` (start-up finished and every configured backing
//! service answers), `/metrics` (Prometheus text).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use switchboard_handlers::core::error::AppError;

use super::AppState;

pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(st): State<AppState>) -> impl IntoResponse {
    let mut down: Vec<&str> = Vec::new();
    let timeout = Duration::from_secs(2);
    let store_ok = matches!(
        tokio::time::timeout(timeout, st.core.store.ping()).await,
        Ok(Ok(()))
    );
    if !store_ok {
        down.push(st.core.store.kind());
    }
    if let Some(redis) = &st.redis {
        let ok = matches!(tokio::time::timeout(timeout, redis.ping()).await, Ok(Ok(_)));
        if !ok {
            down.push("redis");
        }
    }
    let started = st.started.load(Ordering::Acquire);
    if down.is_empty() && started {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        let status = if started { "unavailable" } else { "starting" };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": status, "down": down })),
        )
    }
}

pub async fn metrics(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, super::ApiError> {
    if let Some(token) = &st.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let same: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes()).into();
        if !same {
            return Err(
                AppError::Unauthorized("metrics need the METRICS_TOKEN bearer".to_owned()).into(),
            );
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.core.metrics.render(),
    ))
}
