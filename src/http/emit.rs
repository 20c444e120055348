//! `POST /api/projects/{p}/emit` `{ room?, event, payload }`: a server-side emit into one of the
//! project's rooms (API key or admin only). Only rooms that belong to the project are accepted,
//! so a key scoped by convention to one tenant cannot reach another's sockets.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{ChatId, CollectionId, ProjectId, UserId};
use switchboard_handlers::core::topic::Topic;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, JsonBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitRequest {
    room: Option<String>,
    event: String,
    #[serde(default)]
    payload: Value,
}

pub async fn emit(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    JsonBody(req): JsonBody<EmitRequest>,
) -> ApiResult<StatusCode> {
    let project_id = ProjectId::try_from(p).map_err(AppError::invalid)?;
    if !actor.is_admin() {
        return Err(AppError::forbidden("emit needs an API key or an admin token").into());
    }
    if req.event.is_empty() || req.event.len() > 64 {
        return Err(AppError::invalid("event must be 1 to 64 characters").into());
    }
    let project = st
        .core
        .store
        .get_project(&project_id)
        .await?
        .ok_or_else(|| AppError::not_found("project", project_id.as_str()))?;
    let topic = match req.room.as_deref() {
        None => Topic::Project(project_id.clone()),
        Some(room) => resolve_room(&st, &project, room).await?,
    };
    st.core
        .fanout
        .publish(&[topic], &req.event, &req.payload, None)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resolve_room(
    st: &AppState,
    project: &switchboard_handlers::core::model::Project,
    room: &str,
) -> Result<Topic, AppError> {
    let pid = project.id.as_str();
    let forbidden =
        || AppError::forbidden(format!("room {room:?} does not belong to project {pid}"));
    let id = |s: &str| s.to_owned();
    if room == format!("project:{pid}") {
        return Ok(Topic::Project(project.id.clone()));
    }
    if let Some(rest) = room.strip_prefix("custom:")
        && let Some(r) = rest.strip_prefix(pid).and_then(|r| r.strip_prefix(':'))
        && !r.is_empty()
    {
        return Ok(Topic::Custom(project.id.clone(), id(r)));
    }
    if let Some(rest) = room.strip_prefix("collection:")
        && let Some(c) = rest.strip_prefix(pid).and_then(|r| r.strip_prefix(':'))
    {
        let c = CollectionId::try_from(c).map_err(AppError::invalid)?;
        return Ok(Topic::Collection(project.id.clone(), c));
    }
    if let Some(u) = room.strip_prefix("user:") {
        let u = UserId::try_from(u).map_err(AppError::invalid)?;
        return if project.has_member(&u) {
            Ok(Topic::User(u))
        } else {
            Err(forbidden())
        };
    }
    if let Some(c) = room.strip_prefix("chat:") {
        let c = ChatId::try_from(c).map_err(AppError::invalid)?;
        return match st.core.store.get_chat(&c).await? {
            Some(chat) if chat.project_id == project.id => Ok(Topic::Chat(c)),
            _ => Err(forbidden()),
        };
    }
    Err(forbidden())
}
