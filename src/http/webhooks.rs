//! Inbound webhooks: `POST /webhooks/{p}/{i}`, authenticated by the HMAC-SHA256 signature of
//! the raw body (`X-Signature-256: sha256=<hex>`) with the integration's webhookSecret — no
//! token or API key, as webhook senders have neither. Anyone can call the URL, so its cost is
//! bounded before any signature work: a request rate per URL and a body size limit.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{IntegrationId, ProjectId};
use switchboard_handlers::core::integration::{self, Received, WebhookDelivery};

use super::AppState;
use super::bodies::WebhookReceipt;
use super::error::ApiError;
use super::rate_limit::KeyedLimiter;

/// Delivery id headers of common senders, first found wins.
const DELIVERY_ID_HEADERS: [&str; 3] = ["x-delivery-id", "x-github-delivery", "x-webhook-id"];

/// 200 `{ id, receivedAt }`; 200 `{ duplicate: true }` for a delivery seen before; 401 for a
/// missing or bad signature and for an unknown integration alike; 413 over WEBHOOK_MAX_BYTES;
/// 429 with Retry-After over WEBHOOK_RATE_PER_SEC. Nothing is stored or emitted unless the
/// signature matches.
pub async fn receive(
    State(st): State<AppState>,
    Extension(limiter): Extension<Arc<KeyedLimiter>>,
    Path((p, i)): Path<(String, String)>,
    req: Request,
) -> Response {
    match handle(&st, &limiter, p, i, req).await {
        Ok(r) => r,
        Err(Refusal::Slow(wait)) => {
            let secs = wait.as_secs_f64().ceil().max(1.0).to_string();
            let mut r = ApiError(AppError::RateLimited).into_response();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(Refusal::Error(e)) => ApiError(e).into_response(),
    }
}

enum Refusal {
    Slow(std::time::Duration),
    Error(AppError),
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Refusal::Error(e)
    }
}

async fn handle(
    st: &AppState,
    limiter: &KeyedLimiter,
    p: String,
    i: String,
    req: Request,
) -> Result<Response, Refusal> {
    let p = ProjectId::try_from(p).map_err(AppError::invalid)?;
    let i = IntegrationId::try_from(i).map_err(AppError::invalid)?;
    limiter
        .take(&format!("{p}/{i}"), Instant::now())
        .map_err(Refusal::Slow)?;
    let limit = st.core.limits.webhook_max_bytes;
    let (parts, body) = req.into_parts();
    let too_large = AppError::PayloadTooLarge { size: 0, limit };
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(too_large.into());
    }
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large)?;
    let headers: &HeaderMap = &parts.headers;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = WebhookDelivery {
        body: &body,
        signature: text("x-signature-256"),
        timestamp: text("x-signature-timestamp"),
        delivery_id: DELIVERY_ID_HEADERS.iter().find_map(|h| text(h)),
    };
    let body = match integration::receive_webhook(&st.core, &p, &i, delivery).await? {
        Received::Stored(event) => WebhookReceipt::Stored {
            id: event.id,
            received_at: event.received_at,
        },
        Received::Duplicate => WebhookReceipt::Duplicate { duplicate: true },
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}
