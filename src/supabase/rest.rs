//! Supabase Realtime's REST broadcast (../shared/COMPAT-PROTOCOLS.md B.13): the batch
//! `POST /realtime/v1/api/broadcast` `{messages: [{topic, event, payload, private?}]}` that
//! realtime-js's `send()` falls back to before a channel is joined, and the single
//! `POST /realtime/v1/api/broadcast/{topic}/events/{event}` of `httpSend()`. Each message reaches
//! the channel's subscribers like a client broadcast, whatever their protocol.
//!
//! Credentials as on the WebSocket (a Switchboard JWT or API key): `Authorization: Bearer`,
//! else the `apikey` header, else `x-api-key`, else the `apikey` query parameter. The project
//! is the `project` query parameter (realtime-js derives this URL from its socket URL, query
//! included) or an `x-project` header; the caller must be a member.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use switchboard_handlers::core::access::Actor;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::project;
use switchboard_handlers::core::topic::Topic;

use super::keys::{self, Caller};
use super::{SbState, channel_access};

/// Messages one batch may carry.
pub const MAX_MESSAGES: usize = 100;
/// Largest request body; each payload is further held to `MAX_EVENT_BYTES`.
pub const MAX_BODY: usize = 1024 * 1024;
/// Channel names, as on the WebSocket, and event names (realtime-js's binary frames give each a
/// one-byte length).
const MAX_NAME: usize = 255;

/// A refusal, as upstream answers it: the status and `{"error": …}`.
pub struct Refusal(AppError);

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Refusal(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = crate::http::status(self.0.code());
        (
            status,
            axum::Json(json!({ "error": self.0.public_message() })),
        )
            .into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RestQuery {
    apikey: Option<String>,
    project: Option<String>,
    /// `httpSend(…, {private: true})`.
    #[serde(default)]
    private: bool,
}

#[derive(Debug, Deserialize)]
struct Batch {
    messages: Vec<Message>,
}

#[derive(Debug, Deserialize)]
struct Message {
    topic: String,
    event: String,
    payload: Box<RawValue>,
    /// A private channel: the caller must pass its authorization (as a join would).
    #[serde(default)]
    private: bool,
}

pub(super) async fn batch(
    State(st): State<SbState>,
    Query(q): Query<RestQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, Refusal> {
    let who = caller(&st, &q, &headers).await?;
    let batch: Batch = serde_json::from_slice(&body_bytes(body)?)
        .map_err(|e| AppError::invalid(format!("body must be {{\"messages\": [...]}}: {e}")))?;
    if batch.messages.is_empty() || batch.messages.len() > MAX_MESSAGES {
        return Err(
            AppError::invalid(format!("messages must hold 1 to {MAX_MESSAGES} messages")).into(),
        );
    }
    let max = st.core.limits.max_event_bytes;
    for m in &batch.messages {
        check(&m.topic, &m.event, &m.payload, max)?;
        may_send(&st, &who, &m.topic, m.private).await?;
    }
    publish(
        &st,
        &who.actor,
        &who.project,
        batch
            .messages
            .iter()
            .map(|m| (&m.topic, &m.event, &*m.payload)),
    )
    .await
}

pub(super) async fn single(
    State(st): State<SbState>,
    Path((topic, event)): Path<(String, String)>,
    Query(q): Query<RestQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, Refusal> {
    let who = caller(&st, &q, &headers).await?;
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(AppError::invalid(
            "the payload must be JSON (binary payloads are not supported)",
        )
        .into());
    }
    let bytes = body_bytes(body)?;
    let payload: Box<RawValue> = serde_json::from_slice(&bytes)
        .map_err(|e| AppError::invalid(format!("the body must be a JSON object: {e}")))?;
    check(&topic, &event, &payload, st.core.limits.max_event_bytes)?;
    may_send(&st, &who, &topic, q.private).await?;
    publish(
        &st,
        &who.actor,
        &who.project,
        std::iter::once((&topic, &event, &*payload)),
    )
    .await
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Refusal> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge {
                size: MAX_BODY + 1,
                limit: MAX_BODY,
            }
        } else {
            AppError::invalid(e.body_text())
        }
        .into()
    })
}

/// A REST caller: who, whether by an anon key, and for which project.
struct Sender {
    actor: Actor,
    anon: bool,
    project: ProjectId,
}

/// Who is asking, for which project: a key of the project (a named project must be the key's),
/// or a Switchboard JWT / API key of a member of the named project; else refused.
async fn caller(st: &SbState, q: &RestQuery, headers: &HeaderMap) -> Result<Sender, Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|k| !k.is_empty());
    let apikey = header("apikey")
        .or_else(|| header("x-api-key"))
        .or(q.apikey.as_deref())
        .filter(|k| !k.is_empty());
    let key = bearer.or(apikey).ok_or_else(|| {
        AppError::Unauthorized("an apikey or a bearer token is required".to_owned())
    })?;
    let caller = keys::identify(&st.core, &st.keys, key).await?;
    let mut named = q
        .project
        .as_deref()
        .or_else(|| header("x-project"))
        .map(|p| ProjectId::try_from(p).map_err(AppError::invalid))
        .transpose()?;
    // realtime-js sends the project's key as `apikey` beside the user's bearer token: the key
    // names the project the user acts in.
    if let (None, Some(_), Some(k)) = (&named, bearer, apikey)
        && let Ok(c) = keys::identify(&st.core, &st.keys, k).await
    {
        named = c.key_project().cloned();
    }
    let project = match (caller.key_project(), named) {
        (Some(own), Some(named)) if &named != own => {
            return Err(AppError::forbidden(format!("the key is for project {own}")).into());
        }
        (Some(own), _) => {
            if st.core.store.get_project(own).await?.is_none() {
                return Err(AppError::not_found("project", own.as_str()).into());
            }
            own.clone()
        }
        (None, Some(named)) => named,
        (None, None) => {
            return Err(AppError::invalid(
                "project is required (query ?project= or an x-project header)",
            )
            .into());
        }
    };
    let actor = caller.actor(&format!("rest:{project}"))?;
    if let Caller::Switchboard(a) = &caller {
        project::subscribe(&st.core, a, &project).await?;
    }
    Ok(Sender {
        actor,
        anon: caller.is_anon(),
        project,
    })
}

/// A private channel takes the authorization a join would (403 otherwise); a public one takes
/// whoever the credential admitted.
async fn may_send(st: &SbState, who: &Sender, topic: &str, private: bool) -> Result<(), Refusal> {
    channel_access::authorize(&st.core, &who.actor, who.anon, &who.project, topic, private)
        .await
        .map_err(|reason| {
            if reason.starts_with("Unavailable") {
                AppError::unavailable("store", reason)
            } else {
                AppError::forbidden(reason)
            }
            .into()
        })
}

fn check(topic: &str, event: &str, payload: &RawValue, max: usize) -> Result<(), Refusal> {
    if topic.is_empty() || topic.len() > MAX_NAME {
        return Err(AppError::invalid(format!("topic must be 1 to {MAX_NAME} bytes")).into());
    }
    if event.is_empty() || event.len() > MAX_NAME {
        return Err(AppError::invalid(format!("event must be 1 to {MAX_NAME} bytes")).into());
    }
    if switchboard_handlers::core::topic::is_protocol_event(event) {
        return Err(AppError::invalid("the event name is reserved for protocol frames").into());
    }
    if !payload.get().starts_with('{') {
        return Err(AppError::invalid("payload must be a JSON object").into());
    }
    if payload.get().len() > max {
        return Err(AppError::PayloadTooLarge {
            size: payload.get().len(),
            limit: max,
        }
        .into());
    }
    Ok(())
}

/// Every message was checked first, so a bad one sends none; each counts against the caller's
/// message rate (`RATE_LIMIT_PER_SEC`, `RATE_LIMIT_BURST`, per node).
async fn publish<'a>(
    st: &SbState,
    actor: &Actor,
    project: &ProjectId,
    messages: impl ExactSizeIterator<Item = (&'a String, &'a String, &'a RawValue)>,
) -> Result<StatusCode, Refusal> {
    let n = u32::try_from(messages.len()).unwrap_or(u32::MAX);
    if st
        .rest_limiter
        .take_n(actor.id.as_str(), n, Instant::now())
        .is_err()
    {
        return Err(AppError::RateLimited.into());
    }
    for (topic, event, payload) in messages {
        let channel = Topic::Channel(project.clone(), topic.clone());
        st.core
            .fanout
            .publish_encoded(&[channel], event, payload, None)
            .await?;
    }
    Ok(StatusCode::ACCEPTED)
}
