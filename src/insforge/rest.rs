//! The admin REST API under `/api/realtime/` (seed 000): channel definitions, message history
//! and stats, permissions and retention. Callers are admins — `Authorization: Bearer <admin
//! JWT | API key>` or `X-API-Key` — and name the project with `?project=<id>` or
//! `X-Project-Id` (optional when exactly one project exists). Errors are
//! `{"error": CODE, "message", "statusCode"}`, InsForge's shape.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::Credentials;
use switchboard_handlers::core::realtime_channels::{
    ChannelDef, MAX_PAGE, MessageQuery, StoredMessage, validate_pattern,
};
use switchboard_handlers::core::time::Timestamp;

use super::Insforge;

/// Largest request body.
const MAX_BODY: usize = 64 * 1024;
/// Webhook URLs per channel, and the longest one.
const MAX_WEBHOOKS: usize = 10;
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 1024;
const DEFAULT_PAGE: usize = 100;
/// Longest retention, in days (100 years).
const MAX_RETENTION_DAYS: u32 = 36_500;
/// Definitions one project may hold.
const MAX_CHANNELS: usize = 1000;

type St = State<Arc<Insforge>>;

pub fn routes(st: Arc<Insforge>) -> Router {
    Router::new()
        .route(
            "/api/realtime/channels",
            get(list_channels).post(create_channel),
        )
        .route(
            "/api/realtime/channels/{id}",
            get(get_channel).put(update_channel).delete(delete_channel),
        )
        .route("/api/realtime/messages", get(list_messages))
        .route("/api/realtime/messages/stats", get(stats))
        .route("/api/realtime/permissions", get(permissions))
        .route("/api/realtime/config", get(get_config).patch(patch_config))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(st)
}

/// An error as InsForge's API writes it.
pub struct RestError(StatusCode, &'static str, String);

impl RestError {
    fn bad(msg: impl Into<String>) -> Self {
        RestError(StatusCode::BAD_REQUEST, "INVALID_INPUT", msg.into())
    }

    fn not_found(msg: impl Into<String>) -> Self {
        RestError(StatusCode::NOT_FOUND, "NOT_FOUND", msg.into())
    }
}

impl From<AppError> for RestError {
    fn from(e: AppError) -> Self {
        let (status, code) = match &e {
            AppError::InvalidPayload(_) | AppError::PayloadTooLarge { .. } => {
                (StatusCode::BAD_REQUEST, "INVALID_INPUT")
            }
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "AUTH_INVALID_CREDENTIALS"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            AppError::NotFound { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
            AppError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            AppError::Unavailable { .. } | AppError::Internal(_) | AppError::Upstream(_) => {
                tracing::error!(error = %e, "insforge REST request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")
            }
        };
        RestError(status, code, e.public_message())
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let RestError(status, code, message) = self;
        let body = json!({"error": code, "message": message, "statusCode": status.as_u16()});
        (status, Json(body)).into_response()
    }
}

/// An admin caller of one project.
pub struct Admin(ProjectId);

impl FromRequestParts<Arc<Insforge>> for Admin {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<Insforge>) -> Result<Self, RestError> {
        let creds = credentials(&parts.headers)?;
        let actor = st.core.auth.authenticate(&creds).await?;
        if !actor.is_admin() {
            return Err(RestError(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "an admin token or API key is required".to_owned(),
            ));
        }
        let named = super::auth::project_param(parts.uri.query()).or_else(|| {
            parts
                .headers
                .get("x-project-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let project = match named {
            Some(p) => ProjectId::try_from(p).map_err(RestError::bad)?,
            None => match st.core.store.list_projects(None).await?.as_slice() {
                [one] => one.id.clone(),
                _ => {
                    return Err(RestError::bad(
                        "name the project: ?project=<id> or X-Project-Id",
                    ));
                }
            },
        };
        if st.core.store.get_project(&project).await?.is_none() {
            return Err(RestError::not_found(format!("project {project} not found")));
        }
        Ok(Admin(project))
    }
}

fn credentials(headers: &HeaderMap) -> Result<Credentials, RestError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(key) = header("x-api-key") {
        return Ok(Credentials {
            token: None,
            api_key: Some(key),
        });
    }
    let unauthorized = |m: &str| {
        RestError(
            StatusCode::UNAUTHORIZED,
            "AUTH_INVALID_CREDENTIALS",
            m.to_owned(),
        )
    };
    let auth = header("authorization")
        .ok_or_else(|| unauthorized("missing Authorization or X-API-Key"))?;
    let bearer = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("expected a Bearer token"))?
        .trim()
        .to_owned();
    // A JWT has two dots; anything else is an API key.
    Ok(if bearer.matches('.').count() == 2 {
        Credentials {
            token: Some(bearer),
            api_key: None,
        }
    } else {
        Credentials {
            token: None,
            api_key: Some(bearer),
        }
    })
}

/// A JSON body whose rejection is an InsForge error.
pub struct Body<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = RestError;

    async fn from_request(req: axum::extract::Request, st: &S) -> Result<Self, RestError> {
        Json::<T>::from_request(req, st)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e| RestError::bad(e.body_text()))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelOut<'a> {
    id: &'a str,
    pattern: &'a str,
    description: Option<&'a str>,
    webhook_urls: &'a [String],
    enabled: bool,
    created_at: String,
    updated_at: String,
}

fn channel_out(d: &ChannelDef) -> Value {
    serde_json::to_value(ChannelOut {
        id: &d.id,
        pattern: &d.pattern,
        description: d.description.as_deref(),
        webhook_urls: &d.webhook_urls,
        enabled: d.enabled,
        created_at: Timestamp::from_millis(d.created_at).to_iso(),
        updated_at: Timestamp::from_millis(d.updated_at).to_iso(),
    })
    .unwrap_or(Value::Null)
}

/// Distinguishes an absent field from an explicit `null`.
fn some<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChannelIn {
    pattern: Option<String>,
    #[serde(default, deserialize_with = "some")]
    description: Option<Option<String>>,
    webhook_urls: Option<Vec<String>>,
    enabled: Option<bool>,
}

fn check_in(c: &ChannelIn) -> Result<(), RestError> {
    if let Some(p) = &c.pattern {
        validate_pattern(p).map_err(RestError::bad)?;
    }
    if let Some(Some(d)) = &c.description
        && d.len() > MAX_DESCRIPTION
    {
        return Err(RestError::bad(format!(
            "description is longer than {MAX_DESCRIPTION} bytes"
        )));
    }
    if let Some(urls) = &c.webhook_urls {
        if urls.len() > MAX_WEBHOOKS {
            return Err(RestError::bad(format!(
                "at most {MAX_WEBHOOKS} webhookUrls"
            )));
        }
        for u in urls {
            let ok = u.len() <= MAX_URL
                && url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
            if !ok {
                return Err(RestError::bad(format!(
                    "webhookUrls: {u:?} is not an http(s) URL"
                )));
            }
        }
    }
    Ok(())
}

async fn list_channels(State(st): St, Admin(p): Admin) -> Result<Json<Value>, RestError> {
    let defs = st.definitions.store.list_channels(&p).await?;
    Ok(Json(Value::Array(defs.iter().map(channel_out).collect())))
}

async fn create_channel(
    State(st): St,
    Admin(p): Admin,
    Body(c): Body<ChannelIn>,
) -> Result<Response, RestError> {
    check_in(&c)?;
    let pattern = c
        .pattern
        .ok_or_else(|| RestError::bad("pattern is required"))?;
    if st.definitions.store.list_channels(&p).await?.len() >= MAX_CHANNELS {
        return Err(RestError::bad(format!(
            "a project holds at most {MAX_CHANNELS} channels"
        )));
    }
    let now = Timestamp::now().millis();
    let def = ChannelDef {
        id: uuid::Uuid::new_v4().to_string(),
        project: p.clone(),
        pattern,
        description: c.description.flatten(),
        webhook_urls: c.webhook_urls.unwrap_or_default(),
        enabled: c.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    st.definitions.store.put_channel(&def).await?;
    st.definitions.invalidate(&p);
    Ok((StatusCode::CREATED, Json(channel_out(&def))).into_response())
}

async fn find(st: &Insforge, p: &ProjectId, id: &str) -> Result<ChannelDef, RestError> {
    st.definitions
        .store
        .get_channel(p, id)
        .await?
        .ok_or_else(|| RestError::not_found(format!("channel {id} not found")))
}

async fn get_channel(
    State(st): St,
    Admin(p): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, RestError> {
    Ok(Json(channel_out(&find(&st, &p, &id).await?)))
}

async fn update_channel(
    State(st): St,
    Admin(p): Admin,
    Path(id): Path<String>,
    Body(c): Body<ChannelIn>,
) -> Result<Json<Value>, RestError> {
    check_in(&c)?;
    let mut def = find(&st, &p, &id).await?;
    if let Some(pattern) = c.pattern {
        def.pattern = pattern;
    }
    if let Some(d) = c.description {
        def.description = d;
    }
    if let Some(u) = c.webhook_urls {
        def.webhook_urls = u;
    }
    if let Some(e) = c.enabled {
        def.enabled = e;
    }
    def.updated_at = Timestamp::now().millis();
    st.definitions.store.put_channel(&def).await?;
    st.definitions.invalidate(&p);
    Ok(Json(channel_out(&def)))
}

async fn delete_channel(
    State(st): St,
    Admin(p): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, RestError> {
    if !st.definitions.store.delete_channel(&p, &id).await? {
        return Err(RestError::not_found(format!("channel {id} not found")));
    }
    st.definitions.invalidate(&p);
    Ok(Json(json!({"message": "Channel deleted"})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessagesQuery {
    channel_id: Option<String>,
    event_name: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    since: Option<String>,
}

fn number(
    name: &str,
    v: Option<&str>,
    default: usize,
    range: (usize, usize),
) -> Result<usize, RestError> {
    let Some(v) = v else { return Ok(default) };
    match v.parse::<usize>() {
        Ok(n) if (range.0..=range.1).contains(&n) => Ok(n),
        _ => Err(RestError::bad(format!(
            "{name} must be an integer from {} to {}",
            range.0, range.1
        ))),
    }
}

fn message_out(m: &StoredMessage) -> Value {
    json!({
        "id": m.id,
        "eventName": m.event_name,
        "channelId": m.channel_id,
        "channelName": m.channel_name,
        "payload": m.payload,
        "senderType": m.sender_type.as_str(),
        "senderId": m.sender_id,
        "wsAudienceCount": m.ws_audience_count,
        "whAudienceCount": m.wh_audience_count,
        "whDeliveredCount": m.wh_delivered_count,
        "createdAt": Timestamp::from_millis(m.created_at).to_iso(),
    })
}

async fn list_messages(
    State(st): St,
    Admin(p): Admin,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Value>, RestError> {
    let query = MessageQuery {
        channel_id: q.channel_id,
        event_name: q.event_name,
        limit: number("limit", q.limit.as_deref(), DEFAULT_PAGE, (1, MAX_PAGE))?,
        offset: number("offset", q.offset.as_deref(), 0, (0, 1_000_000))?,
    };
    let messages = st.definitions.store.list_messages(&p, &query).await?;
    Ok(Json(Value::Array(
        messages.iter().map(message_out).collect(),
    )))
}

async fn stats(
    State(st): St,
    Admin(p): Admin,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Value>, RestError> {
    let since = match q.since.as_deref() {
        Some(s) => Some(Timestamp::parse(s).map_err(RestError::bad)?.millis()),
        None => None,
    };
    let store = &st.definitions.store;
    let s = store
        .message_stats(&p, q.channel_id.as_deref(), since)
        .await?;
    let rate = if s.wh_audience == 0 {
        0.0
    } else {
        s.wh_delivered as f64 / s.wh_audience as f64
    };
    let top: Vec<Value> = s
        .top_events
        .iter()
        .map(|(e, n)| json!({"eventName": e, "count": n}))
        .collect();
    Ok(Json(json!({
        "totalMessages": s.total_messages,
        "whDeliveryRate": rate,
        "topEvents": top,
        "retentionDays": store.retention_days(&p).await?,
    })))
}

/// Switchboard has no row-level policies: these are its fixed rules, in the shape of upstream's
/// policy list (docs/protocols/insforge.md).
async fn permissions(Admin(_): Admin) -> Json<Value> {
    let policy = |name: &str, table: &str, command: &str, using: &str| {
        json!({
            "policyName": name,
            "tableName": table,
            "command": command,
            "roles": ["anon", "authenticated", "project_admin"],
            "using": using,
            "withCheck": null,
        })
    };
    Json(json!({
        "subscribe": {"policies": [policy(
            "switchboard_subscribe_enabled_channels", "channels", "SELECT",
            "the channel matches an enabled channel definition of the connection's project",
        )]},
        "publish": {"policies": [policy(
            "switchboard_publish_subscribed_channels", "messages", "INSERT",
            "the socket is subscribed to the channel and it matches an enabled definition",
        )]},
    }))
}

async fn get_config(State(st): St, Admin(p): Admin) -> Result<Json<Value>, RestError> {
    let days = st.definitions.store.retention_days(&p).await?;
    Ok(Json(json!({ "retentionDays": days })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigIn {
    #[serde(deserialize_with = "some")]
    retention_days: Option<Option<Value>>,
}

async fn patch_config(
    State(st): St,
    Admin(p): Admin,
    Body(c): Body<ConfigIn>,
) -> Result<Json<Value>, RestError> {
    let store = &st.definitions.store;
    let days = match c.retention_days {
        None => {
            return Err(RestError::bad(
                "retentionDays is required (null or a positive integer)",
            ));
        }
        Some(None) | Some(Some(Value::Null)) => None,
        Some(Some(v)) => match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(MAX_RETENTION_DAYS) => Some(n as u32),
            _ => {
                return Err(RestError::bad(format!(
                    "retentionDays must be null or an integer from 1 to {MAX_RETENTION_DAYS}"
                )));
            }
        },
    };
    store.set_retention_days(&p, days).await?;
    Ok(Json(json!({ "retentionDays": days })))
}
