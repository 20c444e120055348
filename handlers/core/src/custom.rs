//! `custom:*` and `auth:*` relays: app-defined events between members of a project, custom
//! rooms scoped to a project, direct messages between users who share a project, and session
//! signals to a user's other sockets. Every relay checks membership first and excludes the
//! sending socket (contract: "room:" rows exclude the sender).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::Core;
use super::access::{Actor, ProjectMember, require_member};
use super::error::AppError;
use super::events;
use super::ids::{ProjectId, UserId};
use super::ports::ConnId;
use super::topic::Topic;

const MAX_NAME: usize = 64;
const MAX_FILE_NAME: usize = 255;

fn bounded(s: String, what: &str, max: usize) -> Result<String, String> {
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be 1 to {max} characters without control characters"
        ));
    }
    Ok(s)
}

/// The `custom:*` names the server itself emits or handles. `custom:broadcast` emits
/// `custom:<event>`, so these events are refused: clients could otherwise forge a direct
/// message, a presence change, a room join or a file share under the server's name.
pub const RESERVED_EVENTS: &[&str] = &[
    events::CUSTOM_EVENT,
    events::CUSTOM_JOINED,
    events::CUSTOM_LEFT,
    events::CUSTOM_MESSAGE,
    events::CUSTOM_PRESENCE,
    events::CUSTOM_TYPING,
    events::CUSTOM_FILE_SHARED,
    "custom:broadcast",
    "custom:join",
    "custom:leave",
    "custom:file:share",
];

/// An app-defined event name: `[A-Za-z0-9_.:-]{1,64}` (contract), not one of the server's own
/// (`RESERVED_EVENTS`, without the `custom:` prefix).
#[derive(Debug, Clone, ts_rs::TS, schemars::JsonSchema)]
pub struct EventName(pub String);

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty()
            || s.len() > MAX_NAME
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        {
            return Err(serde::de::Error::custom(format!(
                "event must match [A-Za-z0-9_.:-]{{1,64}} (got {s:?})"
            )));
        }
        if RESERVED_EVENTS
            .iter()
            .any(|r| r.strip_prefix("custom:") == Some(s.as_str()))
        {
            return Err(serde::de::Error::custom(format!(
                "event {s:?} is reserved: custom:{s} is a server event"
            )));
        }
        Ok(EventName(s))
    }
}

macro_rules! bounded_string {
    ($name:ident, $what:literal, $max:expr, $contract_name:literal) => {
        #[derive(Debug, Clone, ts_rs::TS, schemars::JsonSchema)]
        #[ts(rename = $contract_name)]
        #[schemars(rename = $contract_name)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                bounded(String::deserialize(d)?, $what, $max)
                    .map($name)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

bounded_string!(RoomName, "room", MAX_NAME, "RoomName");
bounded_string!(Status, "status", MAX_NAME, "Status");
bounded_string!(FileName, "fileName", MAX_FILE_NAME, "FileName");
bounded_string!(FileId, "fileId", super::ids::MAX_ID_LEN, "FileId");
// Any app-chosen word, unlike the chat message types of `model::MessageType`.
bounded_string!(MessageType, "type", MAX_NAME, "CustomMessageType");

async fn relay(
    core: &Core,
    topic: Topic,
    event: &str,
    payload: &Value,
    sender: &ConnId,
) -> Result<(), AppError> {
    core.fanout
        .publish(&[topic], event, payload, Some(sender))
        .await
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct Broadcast {
    pub project_id: ProjectId,
    pub event: EventName,
    #[serde(default)]
    #[ts(as = "Option<Value>", optional)]
    pub payload: Value,
    #[serde(default)]
    pub room: Option<RoomName>,
}

/// `custom:broadcast` → `custom:<event>` `{ from, payload }` to the custom room or the project.
pub async fn broadcast(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    req: Broadcast,
) -> Result<Value, AppError> {
    let m = require_member(core.store.as_ref(), actor, &req.project_id).await?;
    let topic = match &req.room {
        Some(r) => topic_of_room(m.project.id.clone(), &r.0)?,
        None => Topic::Project(m.project.id.clone()),
    };
    if matches!(topic, Topic::Channel(..)) {
        return broadcast_on_channel(core, actor, sender, topic, req).await;
    }
    let event = format!("custom:{}", req.event.0);
    let payload = json!({ "from": actor.from_json(), "payload": req.payload });
    relay(core, topic, &event, &payload, sender).await?;
    Ok(json!({ "event": event }))
}

/// A custom room named `channel:<name>` is the project's protocol channel `<name>`: the Pusher
/// channel, the Supabase `realtime:<name>`, the InsForge channel and the pub/sub channel of that
/// name (docs/protocol.md, "Protocol channels").
pub const CHANNEL_ROOM: &str = "channel:";

/// The topic behind a custom room name of `project`: a protocol channel for `channel:<name>`
/// (refused for channels whose subscribers an app's backend must sign: `private-…`,
/// `presence-…`, `#server-to-user-…`), else the project's custom room.
pub fn topic_of_room(project: ProjectId, room: &str) -> Result<Topic, AppError> {
    let Some(name) = room.strip_prefix(CHANNEL_ROOM) else {
        return Ok(Topic::Custom(project, room.to_owned()));
    };
    if name.is_empty() {
        return Err(AppError::invalid("channel: needs a channel name"));
    }
    if ["private-", "presence-", "#"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        return Err(AppError::forbidden(
            "private and presence channels need the app's signature: use the Pusher protocol",
        ));
    }
    Ok(Topic::Channel(project, name.to_owned()))
}

/// A broadcast into a protocol channel goes out as the other protocols publish: under its own
/// name, with the payload as a Pusher envelope (`{"data": "<payload as JSON text>",
/// "user_id": <sender>}`), which every front end unwraps; Socket.IO clients in the channel get
/// it back as `custom:<event>` `{from, payload, room}`.
async fn broadcast_on_channel(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    topic: Topic,
    req: Broadcast,
) -> Result<Value, AppError> {
    let event = req.event.0;
    if super::topic::is_protocol_event(&event) {
        return Err(AppError::invalid(
            "the event name is reserved for the protocols' own frames",
        ));
    }
    let data = serde_json::to_string(&req.payload).map_err(AppError::internal)?;
    let payload = json!({ "data": data, "user_id": actor.id.as_str() });
    relay(core, topic, &event, &payload, sender).await?;
    Ok(json!({ "event": event }))
}

/// `custom:join` / `custom:leave`: the room lives in the sender's active project.
pub async fn room_in_active_project(
    core: &Core,
    actor: &Actor,
    active: Option<ProjectId>,
    room: &RoomName,
) -> Result<Topic, AppError> {
    let p = active
        .ok_or_else(|| AppError::invalid("no active project: send subscribe:project first"))?;
    let m = require_member(core.store.as_ref(), actor, &p).await?;
    topic_of_room(m.project.id, &room.0)
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct DirectMessage {
    pub target_user_id: UserId,
    pub message: Value,
    #[serde(default, rename = "type")]
    pub kind: Option<MessageType>,
}

/// `custom:message` → the target's sockets; sender and target must share a project (admins
/// may message any member of any project).
pub async fn message(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    req: DirectMessage,
) -> Result<Value, AppError> {
    if req.message.is_null() {
        return Err(AppError::invalid("message is required"));
    }
    let target_projects = core.store.list_projects(Some(&req.target_user_id)).await?;
    let shared = if actor.is_admin() {
        !target_projects.is_empty()
    } else {
        target_projects.iter().any(|p| p.has_member(&actor.id))
    };
    if !shared {
        return Err(AppError::forbidden(format!(
            "you share no project with {}",
            req.target_user_id
        )));
    }
    let kind = req.kind.map_or_else(|| "text".to_owned(), |k| k.0);
    let payload = json!({ "from": actor.from_json(), "message": req.message, "type": kind });
    relay(
        core,
        Topic::User(req.target_user_id.clone()),
        events::CUSTOM_MESSAGE,
        &payload,
        sender,
    )
    .await?;
    Ok(json!({ "targetUserId": req.target_user_id }))
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct CustomPresence {
    pub project_id: ProjectId,
    pub status: Status,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

pub async fn presence(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    req: CustomPresence,
) -> Result<Value, AppError> {
    let m = require_member(core.store.as_ref(), actor, &req.project_id).await?;
    let payload = json!({
        "userId": actor.id,
        "status": req.status.0,
        "metadata": Value::Object(req.metadata.unwrap_or_default()),
    });
    relay(
        core,
        Topic::Project(m.project.id),
        events::CUSTOM_PRESENCE,
        &payload,
        sender,
    )
    .await?;
    Ok(json!({}))
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct CustomTyping {
    pub project_id: ProjectId,
    pub is_typing: bool,
    #[serde(default)]
    #[ts(as = "Option<Value>", optional)]
    pub context: Value,
}

pub async fn typing(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    req: CustomTyping,
) -> Result<Value, AppError> {
    let m = require_member(core.store.as_ref(), actor, &req.project_id).await?;
    let payload = json!({ "userId": actor.id, "isTyping": req.is_typing, "context": req.context });
    relay(
        core,
        Topic::Project(m.project.id),
        events::CUSTOM_TYPING,
        &payload,
        sender,
    )
    .await?;
    Ok(json!({}))
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct FileShare {
    pub project_id: ProjectId,
    pub file_id: FileId,
    pub file_name: FileName,
    #[serde(default)]
    pub recipients: Option<Vec<UserId>>,
}

const MAX_RECIPIENTS: usize = 1000;

/// `custom:file:share` → the recipients' sockets (each a project member), or the project room.
pub async fn file_share(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    req: FileShare,
) -> Result<Value, AppError> {
    if req
        .recipients
        .as_ref()
        .is_some_and(|r| r.len() > MAX_RECIPIENTS)
    {
        return Err(AppError::invalid(format!(
            "at most {MAX_RECIPIENTS} recipients"
        )));
    }
    let m: ProjectMember = require_member(core.store.as_ref(), actor, &req.project_id).await?;
    let payload = json!({
        "from": actor.from_json(),
        "projectId": m.project.id,
        "fileId": req.file_id.0,
        "fileName": req.file_name.0,
    });
    match &req.recipients {
        Some(users) if !users.is_empty() => {
            if let Some(bad) = users.iter().find(|u| !m.project.has_member(u)) {
                return Err(AppError::invalid(format!(
                    "recipient {bad} is not a member of project {}",
                    m.project.id
                )));
            }
            let topics: Vec<Topic> = users.iter().cloned().map(Topic::User).collect();
            core.fanout
                .publish(&topics, events::CUSTOM_FILE_SHARED, &payload, Some(sender))
                .await?;
        }
        _ => {
            relay(
                core,
                Topic::Project(m.project.id.clone()),
                events::CUSTOM_FILE_SHARED,
                &payload,
                sender,
            )
            .await?;
        }
    }
    Ok(json!({ "fileId": req.file_id.0 }))
}

/// `auth:login` / `auth:logout` → room `project:<p>`: `user:online` / `user:offline`.
pub async fn announce_session(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    project: &ProjectId,
    event: &str,
) -> Result<Value, AppError> {
    let m = require_member(core.store.as_ref(), actor, project).await?;
    let payload = json!({ "userId": actor.id, "projectId": m.project.id });
    relay(
        core,
        Topic::Project(m.project.id.clone()),
        event,
        &payload,
        sender,
    )
    .await?;
    Ok(json!({ "projectId": m.project.id }))
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct SessionUpdate {
    pub project_id: ProjectId,
    pub session_data: Value,
}

/// `auth:session:update` → the user's OTHER sockets, on every node.
pub async fn session_update(
    core: &Core,
    actor: &Actor,
    sender: &ConnId,
    req: SessionUpdate,
) -> Result<Value, AppError> {
    if !actor.is_user() {
        return Err(AppError::forbidden("sessions belong to user connections"));
    }
    let m = require_member(core.store.as_ref(), actor, &req.project_id).await?;
    let payload = json!({ "projectId": m.project.id, "sessionData": req.session_data });
    relay(
        core,
        Topic::User(actor.id.clone()),
        events::SESSION_UPDATED,
        &payload,
        sender,
    )
    .await?;
    Ok(json!({ "projectId": m.project.id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_follow_the_contract() {
        for ok in ["a", "chat.ping", "x:y-z_1", &"e".repeat(64)] {
            assert!(
                serde_json::from_value::<EventName>(json!(ok)).is_ok(),
                "{ok}"
            );
        }
        for bad in ["", "a b", "é", "a/b", &"e".repeat(65)] {
            assert!(
                serde_json::from_value::<EventName>(json!(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(serde_json::from_value::<RoomName>(json!("a\nb")).is_err());
        assert!(serde_json::from_value::<RoomName>(json!("r".repeat(65))).is_err());
    }
}
