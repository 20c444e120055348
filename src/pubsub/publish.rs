//! `POST /{plateId}/pubsub/{channel}/publish` (legacy `POST /{plateId}/publish/{channel}`),
//! body `{"message": <any JSON>}` → `{"ok":true,"data":{"receivers","channel"}}`. The message
//! goes through the hub to every subscriber of the channel on every node, whatever its
//! protocol.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::error::PubSubError;
use super::front_end::{EVENT, envelope};
use super::target::{self, Target};
use super::{PubSub, auth};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body<'a> {
    #[serde(borrow)]
    message: Option<&'a RawValue>,
}

pub async fn publish(
    State(st): State<Arc<PubSub>>,
    Path((plate, channel)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match run(&st, &plate, &channel, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(
    st: &PubSub,
    plate: &str,
    channel: &str,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, PubSubError> {
    let target = Target::new(
        target::plate(plate)?,
        target::channel(channel, false)?,
        false,
    )?;
    let actor = auth::authorize(&st.core, auth::header(headers), &target.project).await?;
    st.check_rate(&actor)?;
    let limit = st.core.limits.max_event_bytes;
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            PubSubError::PayloadTooLarge { limit }
        } else {
            PubSubError::InvalidJson(e.body_text())
        }
    })?;
    let body: Body<'_> = serde_json::from_slice(&body)
        .map_err(|e| PubSubError::InvalidJson(format!("invalid JSON body: {e}")))?;
    let message = body
        .message
        .ok_or_else(|| PubSubError::InvalidJson("message is required".to_owned()))?;
    if message.get().len() > limit {
        return Err(PubSubError::PayloadTooLarge { limit });
    }
    let payload = envelope(message).ok_or(PubSubError::Internal)?;
    let topic = target.topic();
    let receivers = st.front_end.receivers_here(&st.core.hub, &topic);
    st.core
        .fanout
        .publish_encoded(&[topic], EVENT, &payload, None)
        .await
        .map_err(|e| PubSubError::from_core(&e))?;
    Ok(Json(json!({
        "ok": true,
        "data": {"receivers": receivers, "channel": target.channel},
    }))
    .into_response())
}
