//! The Pusher HTTP API under `/apps/{app_id}`: trigger events on channels (one event on up to
//! 100 channels, or a batch of up to 10), and channel information. Every request is signed with
//! the app's secret, in either dialect: Pusher's query signing (`auth_signature` in the query)
//! or Apinator's header signing (`X-Realtime-Signature`); the dialect a request was signed in
//! picks the shapes of its answers and errors (Apinator: channel lists as arrays, RFC 7807
//! problem documents). Events go through the hub, so they reach every node and every front end.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use switchboard_handlers::core::error::{AppError, ErrorBody};
use switchboard_handlers::core::time::Timestamp;
use switchboard_handlers::core::topic::Topic;

use super::Pusher;
use super::apps::{App, Dialect};
use super::channel::{self, Kind};
use super::front_end::TERMINATE;
use super::occupancy;
use super::sign;
use super::subscriptions::MAX_EVENT_NAME;
use super::wire::{self, Envelope};
use crate::http::ApiError;

/// Largest request body: a batch of 10 events of 10 KB each, with room for their names.
const MAX_BODY: usize = 256 * 1024;
/// Largest `data` of one event (Pusher's limit).
const MAX_DATA: usize = 10 * 1024;
const MAX_CHANNELS: usize = 100;
const MAX_BATCH: usize = 10;

type Answer = Result<Value, AppError>;

/// A request to the API as received.
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// Which dialect signed the request (A.13 dispatch rule): `auth_signature` in the query is
/// Pusher's, an `X-Realtime-Signature` header Apinator's; a request with neither is answered
/// as Pusher answers.
fn dialect_of(req: &Req) -> Dialect {
    let pusher = url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .any(|(k, _)| k == "auth_signature");
    if !pusher && req.headers.contains_key("x-realtime-signature") {
        Dialect::Apinator
    } else {
        Dialect::Pusher
    }
}

/// An answer in the dialect the request was signed in: errors as Switchboard's error body for
/// Pusher, as an RFC 7807 problem document (which the Apinator SDKs read) for Apinator.
fn respond(dialect: Dialect, answer: Answer) -> Response {
    match (answer, dialect) {
        (Ok(v), _) => Json(v).into_response(),
        (Err(e), Dialect::Pusher) => ApiError(e).into_response(),
        (Err(e), Dialect::Apinator) => {
            if e.is_client_error() {
                tracing::debug!(error = %e, "request refused");
            } else {
                tracing::error!(error = %e, "request failed");
            }
            let body = ErrorBody::from(&e);
            let status = crate::http::status(body.code);
            let problem = json!({
                "type": "about:blank",
                "title": status.canonical_reason().unwrap_or("Error"),
                "status": status.as_u16(),
                "detail": body.message,
                "code": body.code,
            });
            (
                status,
                [(header::CONTENT_TYPE, "application/problem+json")],
                problem.to_string(),
            )
                .into_response()
        }
    }
}

pub(super) fn routes() -> Router<Pusher> {
    Router::new()
        .route("/apps/{app_id}/events", post(events))
        .route("/apps/{app_id}/batch_events", post(batch_events))
        .route("/apps/{app_id}/channels", get(channels))
        .route("/apps/{app_id}/channels/{channel}", get(channel_info))
        .route("/apps/{app_id}/channels/{channel}/users", get(users))
        .route(
            "/apps/{app_id}/users/{user_id}/terminate_connections",
            post(terminate_connections),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The app named in the path, once the request's signature checks out; and its query.
fn signed(st: &Pusher, app_id: &str, req: &Req) -> Result<(Arc<App>, sign::Params), AppError> {
    let apps = st.apps.current();
    let app = apps
        .by_id(app_id)
        .ok_or_else(|| AppError::not_found("app", app_id))?;
    let signed = sign::Request {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query().unwrap_or(""),
        body: &req.body,
    };
    let now = Timestamp::now().millis() / 1000;
    let params = match dialect_of(req) {
        Dialect::Pusher => sign::verify_request(&app.key, &app.secret, &signed, now)?,
        Dialect::Apinator => {
            let text = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
            let headers = sign::Headers {
                key: text("x-realtime-key"),
                timestamp: text("x-realtime-timestamp"),
                signature: text("x-realtime-signature").unwrap_or(""),
            };
            sign::verify_header_request(&app.key, &app.secret, &headers, &signed, now)?
        }
    };
    Ok((app.clone(), params))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The attributes an `info` parameter asks for.
#[derive(Debug, Default, Clone, Copy)]
struct Info {
    user_count: bool,
    subscription_count: bool,
}

impl Info {
    fn parse(s: Option<&str>) -> Result<Info, AppError> {
        let mut info = Info::default();
        for a in s
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match a {
                "user_count" => info.user_count = true,
                "subscription_count" => info.subscription_count = true,
                // Cache channels are not served: nothing to report.
                "cache" => {}
                other => {
                    return Err(AppError::invalid(format!("unknown info attribute {other}")));
                }
            }
        }
        Ok(info)
    }

    fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

#[derive(Debug, Default, Serialize)]
struct ChannelInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    occupied: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_count: Option<usize>,
}

/// A channel's counts, the cluster's: Pusher subscriptions and presence users.
async fn counts(st: &Pusher, app: &App, name: &str, info: Info) -> Result<ChannelInfo, AppError> {
    let topic = channel::topic(&app.project, name);
    let mut out = ChannelInfo::default();
    if info.subscription_count {
        out.subscription_count = Some(occupancy::subscription_count(st, &app.project, name).await?);
    }
    if info.user_count && name.starts_with("presence-") {
        out.user_count = Some(st.presence.user_count(&topic.room()).await?);
    }
    Ok(out)
}

/// One event to publish, as the API receives it.
#[derive(Debug, Deserialize)]
struct Trigger {
    name: String,
    data: Box<RawValue>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

/// A trigger that passed every check: nothing is published before all of a request's do.
struct Checked {
    name: String,
    channels: Vec<String>,
    payload: Box<RawValue>,
    except: Option<String>,
    info: Info,
}

fn check(t: Trigger) -> Result<Checked, AppError> {
    if t.name.is_empty() || t.name.len() > MAX_EVENT_NAME {
        return Err(AppError::invalid("name must have 1 to 200 characters"));
    }
    if switchboard_handlers::core::topic::is_protocol_event(&t.name) {
        return Err(AppError::invalid(
            "names starting pusher:, pusher_internal:, realtime:, presence: or phx_ are the \
             servers' own",
        ));
    }
    let mut channels = match (t.channels, t.channel) {
        (Some(c), None) => c,
        (None, Some(c)) => vec![c],
        _ => {
            return Err(AppError::invalid(
                "give exactly one of channel and channels",
            ));
        }
    };
    if channels.is_empty() || channels.len() > MAX_CHANNELS {
        return Err(AppError::invalid(format!(
            "channels must list 1 to {MAX_CHANNELS} channels"
        )));
    }
    for c in &channels {
        channel::kind_of(c).map_err(|why| AppError::invalid(format!("channel {c:?}: {why}")))?;
    }
    // A channel named twice is one channel: its subscribers get the event once.
    let mut seen = std::collections::HashSet::new();
    channels.retain(|c| seen.insert(c.clone()));
    let data = wire::as_string(&t.data);
    let size = wire::data_len(&data);
    if size > MAX_DATA {
        return Err(AppError::PayloadTooLarge {
            size,
            limit: MAX_DATA,
        });
    }
    if let Some(s) = &t.socket_id
        && !channel::is_socket_id(s)
    {
        return Err(AppError::invalid(
            "socket_id is not a socket id (digits.digits)",
        ));
    }
    let payload = Envelope {
        data: &data,
        user_id: None,
    }
    .encode()
    .ok_or_else(|| AppError::internal("event not encodable"))?;
    Ok(Checked {
        name: t.name,
        channels,
        payload,
        except: t.socket_id,
        info: Info::parse(t.info.as_deref())?,
    })
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::invalid(format!("invalid JSON body: {e}")))
}

async fn publish(st: &Pusher, app: &App, c: &Checked) -> Result<(), AppError> {
    let topics: Vec<Topic> = c
        .channels
        .iter()
        .map(|name| channel::topic(&app.project, name))
        .collect();
    st.core
        .fanout
        .publish_encoded(&topics, &c.name, &c.payload, c.except.as_ref())
        .await
}

async fn info_of(
    st: &Pusher,
    app: &App,
    c: &Checked,
) -> Result<BTreeMap<String, ChannelInfo>, AppError> {
    let mut out = BTreeMap::new();
    for name in &c.channels {
        out.insert(name.clone(), counts(st, app, name, c.info).await?);
    }
    Ok(out)
}

/// Every route's handler: the request as received, answered in the dialect it was signed in.
macro_rules! handler {
    ($name:ident, $inner:ident, $path:ty) => {
        async fn $name(
            State(st): State<Pusher>,
            Path(path): Path<$path>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let req = Req {
                method,
                uri,
                headers,
                body,
            };
            respond(dialect_of(&req), $inner(&st, path, &req).await)
        }
    };
}

handler!(events, events_of, String);
handler!(batch_events, batch_events_of, String);
handler!(channels, channels_of, String);
handler!(channel_info, channel_info_of, (String, String));
handler!(users, users_of, (String, String));
handler!(
    terminate_connections,
    terminate_connections_of,
    (String, String)
);

async fn events_of(st: &Pusher, app_id: String, req: &Req) -> Answer {
    let (app, _) = signed(st, &app_id, req)?;
    let c = check(decode(&req.body)?)?;
    publish(st, &app, &c).await?;
    if !c.info.any() {
        return Ok(json!({}));
    }
    Ok(json!({ "channels": info_of(st, &app, &c).await? }))
}

#[derive(Debug, Deserialize)]
struct Batch {
    batch: Vec<Trigger>,
}

async fn batch_events_of(st: &Pusher, app_id: String, req: &Req) -> Answer {
    let (app, _) = signed(st, &app_id, req)?;
    let batch: Batch = decode(&req.body)?;
    if batch.batch.is_empty() || batch.batch.len() > MAX_BATCH {
        return Err(AppError::invalid(format!(
            "batch must hold 1 to {MAX_BATCH} events"
        )));
    }
    let checked = batch
        .batch
        .into_iter()
        .map(check)
        .collect::<Result<Vec<_>, _>>()?;
    for c in &checked {
        publish(st, &app, c).await?;
    }
    if !checked.iter().any(|c| c.info.any()) {
        return Ok(json!({}));
    }
    let mut out = Vec::with_capacity(checked.len());
    for c in &checked {
        // One event per batch entry, on one channel (Pusher's batch shape).
        let mut info = info_of(st, &app, c).await?;
        out.push(
            c.channels
                .first()
                .and_then(|n| info.remove(n))
                .unwrap_or_default(),
        );
    }
    Ok(json!({ "batch": out }))
}

/// The app's project's channels with subscribers in the cluster, by prefix: Pusher's map
/// (with `user_count` on request) or Apinator's array of `{name, subscription_count}`.
async fn channels_of(st: &Pusher, app_id: String, req: &Req) -> Answer {
    let (app, params) = signed(st, &app_id, req)?;
    let prefix = param(&params, "filter_by_prefix").unwrap_or("");
    if prefix.len() > channel::MAX_NAME {
        return Err(AppError::invalid(
            "filter_by_prefix is longer than a channel name",
        ));
    }
    let names = occupancy::channels(st, &app.project, prefix).await?;
    if dialect_of(req) == Dialect::Apinator {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let count = occupancy::subscription_count(st, &app.project, &name).await?;
            out.push(json!({ "name": name, "subscription_count": count }));
        }
        return Ok(json!({ "channels": out }));
    }
    let info = Info::parse(param(&params, "info"))?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(AppError::invalid(
            "info=user_count needs filter_by_prefix=presence-",
        ));
    }
    let mut out = BTreeMap::new();
    for name in names {
        let info = Info {
            user_count: info.user_count,
            subscription_count: false,
        };
        let counts = counts(st, &app, &name, info).await?;
        out.insert(name, counts);
    }
    Ok(json!({ "channels": out }))
}

fn valid_channel(name: &str) -> Result<Kind, AppError> {
    channel::kind_of(name).map_err(|why| AppError::invalid(format!("channel {name:?}: {why}")))
}

/// One channel: Pusher's `{occupied, subscription_count?, user_count?}`, or Apinator's
/// `{name, subscription_count}` (404 when nobody is subscribed).
async fn channel_info_of(st: &Pusher, (app_id, name): (String, String), req: &Req) -> Answer {
    let (app, params) = signed(st, &app_id, req)?;
    let kind = valid_channel(&name)?;
    if dialect_of(req) == Dialect::Apinator {
        let count = occupancy::subscription_count(st, &app.project, &name).await?;
        if count == 0 {
            return Err(AppError::not_found("channel", &name));
        }
        return Ok(json!({ "name": name, "subscription_count": count }));
    }
    let info = Info::parse(param(&params, "info"))?;
    if info.user_count && kind != Kind::Presence {
        return Err(AppError::invalid(
            "user_count is only for presence channels",
        ));
    }
    let all = Info {
        user_count: info.user_count,
        subscription_count: true,
    };
    let mut out = counts(st, &app, &name, all).await?;
    out.occupied = Some(out.subscription_count.unwrap_or(0) > 0);
    if !info.subscription_count {
        out.subscription_count = None;
    }
    serde_json::to_value(out).map_err(|_| AppError::internal("channel info not encodable"))
}

#[derive(Serialize)]
struct User {
    id: String,
}

async fn users_of(st: &Pusher, (app_id, name): (String, String), req: &Req) -> Answer {
    let (app, _) = signed(st, &app_id, req)?;
    if valid_channel(&name)? != Kind::Presence {
        return Err(AppError::invalid(
            "users are listed for presence channels only",
        ));
    }
    let room = channel::topic(&app.project, &name).room();
    let users: Vec<User> = st
        .presence
        .members(&room)
        .await?
        .into_iter()
        .map(|m| User { id: m.user_id })
        .collect();
    Ok(json!({ "users": users }))
}

/// Closes every connection signed in as the user, on every node (4009).
async fn terminate_connections_of(
    st: &Pusher,
    (app_id, user_id): (String, String),
    req: &Req,
) -> Answer {
    let (app, _) = signed(st, &app_id, req)?;
    if user_id.is_empty() || user_id.chars().count() > super::subscriptions::MAX_USER_ID {
        return Err(AppError::invalid("user_id must have 1 to 128 characters"));
    }
    let topic = Topic::AppUser(app.project.clone(), user_id);
    let payload = serde_json::value::to_raw_value(&json!({}))
        .map_err(|_| AppError::internal("empty payload not encodable"))?;
    st.core
        .fanout
        .publish_encoded(std::slice::from_ref(&topic), TERMINATE, &payload, None)
        .await?;
    Ok(json!({}))
}
