//! `GET /api/projects/{p}/tail?room=`: a Server-Sent Events stream of the broadcasts passing
//! through one room of the project (API keys and admins; the rooms the emit route accepts, and
//! the project's wallet feed `wallet:project:<p>`),
//! one `message` event each `{ room, event, payload, at }`, as the hub delivers them on this
//! node (which includes those made on the other nodes).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use switchboard_handlers::core::emit::resolve_room;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::topic::Topic;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, QueryParams};

/// A comment line this often keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TailQuery {
    room: Option<String>,
}

pub async fn tail(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    QueryParams(q): QueryParams<TailQuery>,
) -> ApiResult<Response> {
    if !actor.is_admin() {
        return Err(AppError::forbidden("the live tail needs an API key or an admin token").into());
    }
    let pid = ProjectId::try_from(p).map_err(AppError::invalid)?;
    let project = st
        .core
        .store
        .get_project(&pid)
        .await?
        .ok_or_else(|| AppError::not_found("project", pid.as_str()))?;
    let topic = match q.room.as_deref().filter(|r| !r.is_empty()) {
        None => Topic::Project(project.id.clone()),
        // The admins' wallet feed of the project: only tailed, never an emit target, so the
        // emit route cannot forge `wallet:transaction` events (the console's Wallet view).
        Some(room) if room == format!("wallet:project:{}", project.id) => {
            Topic::WalletProject(project.id.clone(), None)
        }
        Some(room) => resolve_room(&st.core, &project, room).await?,
    };
    let watch = st.tail.watch(&st.core.hub, &topic)?;
    let hello = format!(
        "event: ready\ndata: {}\n\n",
        serde_json::json!({ "room": topic.room(), "watcher": watch.conn() })
    );
    let stream = futures_util::stream::unfold(
        (Some(Bytes::from(hello)), watch),
        |(first, mut watch)| async move {
            if let Some(b) = first {
                return Some((Ok::<_, std::convert::Infallible>(b), (None, watch)));
            }
            let frame = tokio::select! {
                f = watch.frames.recv() => f?,
                () = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keepalive\n\n"),
            };
            Some((Ok(frame), (None, watch)))
        },
    );
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}
