//! Server-side emits (`POST /api/projects/{p}/emit` `{ room?, event, payload }`, API keys and
//! admins): into one of the project's rooms only, so a key scoped by convention to one tenant
//! cannot reach another's sockets.

use serde::Deserialize;
use serde_json::Value;

use super::Core;
use super::access::Actor;
use super::error::AppError;
use super::ids::{ChatId, CollectionId, ProjectId, UserId};
use super::model::Project;
use super::topic::Topic;

/// Longest event name a server-side emit may use.
const MAX_EVENT_NAME: usize = 64;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitRequest {
    pub room: Option<String>,
    pub event: String,
    #[serde(default)]
    pub payload: Value,
}

/// Emits `req.event` into `req.room` (a full contract room name of the project) or, without a
/// room, into `project:<p>`. Rooms of other projects, and room kinds with no project in their
/// name that the project does not own (another project's chat, a non-member's `user:` room),
/// are FORBIDDEN.
pub async fn emit(
    core: &Core,
    actor: &Actor,
    project_id: &ProjectId,
    req: EmitRequest,
) -> Result<(), AppError> {
    if !actor.is_admin() {
        return Err(AppError::forbidden(
            "emit needs an API key or an admin token",
        ));
    }
    if req.event.is_empty() || req.event.len() > MAX_EVENT_NAME {
        return Err(AppError::invalid(format!(
            "event must be 1 to {MAX_EVENT_NAME} characters"
        )));
    }
    let project = core
        .store
        .get_project(project_id)
        .await?
        .ok_or_else(|| AppError::not_found("project", project_id.as_str()))?;
    let topic = match req.room.as_deref() {
        None => Topic::Project(project.id.clone()),
        Some(room) => resolve_room(core, &project, room).await?,
    };
    if matches!(topic, Topic::Channel(..)) && crate::topic::is_protocol_event(&req.event) {
        return Err(AppError::invalid(
            "the event name is reserved for the protocols' own frames on channels",
        ));
    }
    core.fanout
        .publish(&[topic], &req.event, &req.payload, None)
        .await
}

/// The topic behind a room name the contract lets server-side emits target.
pub async fn resolve_room(core: &Core, project: &Project, room: &str) -> Result<Topic, AppError> {
    let pid = project.id.as_str();
    let forbidden =
        || AppError::forbidden(format!("room {room:?} does not belong to project {pid}"));
    if room == format!("project:{pid}") {
        return Ok(Topic::Project(project.id.clone()));
    }
    if let Some(rest) = room.strip_prefix("custom:")
        && let Some(r) = rest.strip_prefix(pid).and_then(|r| r.strip_prefix(':'))
        && !r.is_empty()
    {
        return Ok(Topic::Custom(project.id.clone(), r.to_owned()));
    }
    // A protocol channel (Pusher, Supabase Realtime) of this project, by its name.
    if let Some(rest) = room.strip_prefix("channel:")
        && let Some(name) = rest.strip_prefix(pid).and_then(|r| r.strip_prefix(':'))
        && !name.is_empty()
        && name.len() <= 255
    {
        return Ok(Topic::Channel(project.id.clone(), name.to_owned()));
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
        return match core.store.get_chat(&c).await? {
            Some(chat) if chat.project_id == project.id => Ok(Topic::Chat(c)),
            _ => Err(forbidden()),
        };
    }
    Err(forbidden())
}
