//! Inbound webhooks: `POST /webhooks/{p}/{i}`, authenticated by the HMAC-SHA256 signature of
//! the raw body (`X-Signature-256: sha256=<hex>`) with the integration's webhookSecret — no
//! token or API key, as webhook senders have neither.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{IntegrationId, ProjectId};
use switchboard_handlers::core::integration::{self, MAX_WEBHOOK_BYTES};

use super::AppState;
use super::error::ApiResult;

/// 200 `{ id, receivedAt }`; 401 for a missing or bad signature, 404 for an unknown
/// integration, 413 over 1 MiB. Nothing is stored or emitted unless the signature matches.
pub async fn receive(
    State(st): State<AppState>,
    Path((p, i)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge {
                size: 0,
                limit: MAX_WEBHOOK_BYTES,
            }
        } else {
            AppError::invalid(e.body_text())
        }
    })?;
    let p = ProjectId::try_from(p).map_err(AppError::invalid)?;
    let i = IntegrationId::try_from(i).map_err(AppError::invalid)?;
    let signature = headers.get("x-signature-256").and_then(|v| v.to_str().ok());
    let event = integration::receive_webhook(&st.core, &p, &i, &body, signature).await?;
    Ok(Json(
        json!({ "id": event.id, "receivedAt": event.received_at }),
    ))
}
