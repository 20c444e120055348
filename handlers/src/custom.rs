//! `custom:*` events: app-defined relays within a project (`core::custom` holds the rules).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use socketioxide::adapter::Adapter;

use crate::core::access::require_member;
use crate::core::error::AppError;
use crate::core::ids::ProjectId;
use crate::core::payloads::{Empty, RoomOnly};
use crate::core::{custom, events, project};
use crate::socketio::Ctx;
use crate::socketio::payload::to_json;

/// `{ projectId, ...anything }`: everything but `projectId` is relayed as given.
#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct CustomEvent {
    project_id: ProjectId,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

pub async fn event<A: Adapter>(cx: &Ctx<A>, req: CustomEvent) -> Result<Value, AppError> {
    let member = require_member(cx.core.store.as_ref(), &cx.session.actor, &req.project_id).await?;
    let mut payload = req.rest;
    payload.insert("projectId".to_owned(), json!(req.project_id));
    project::relay_custom_event(&cx.core, &member, payload, &cx.conn_id()).await?;
    to_json(&Empty {})
}

pub async fn broadcast<A: Adapter>(cx: &Ctx<A>, req: custom::Broadcast) -> Result<Value, AppError> {
    custom::broadcast(&cx.core, &cx.session.actor, &cx.conn_id(), req).await
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[ts(optional_fields = nullable)]
pub struct RoomRef {
    room: custom::RoomName,
}

/// Joins `custom:<activeProject>:<room>`; sender `custom:joined` `{ room }`.
pub async fn join<A: Adapter>(cx: &Ctx<A>, req: RoomRef) -> Result<Value, AppError> {
    let topic = custom::room_in_active_project(
        &cx.core,
        &cx.session.actor,
        cx.session.active_project(),
        &req.room,
    )
    .await?;
    cx.join(&topic)?;
    let data = RoomOnly { room: req.room.0 };
    cx.emit(events::CUSTOM_JOINED, &data);
    to_json(&data)
}

/// Leaves it; sender `custom:left` `{ room }` (also when it was not in it).
pub async fn leave<A: Adapter>(cx: &Ctx<A>, req: RoomRef) -> Result<Value, AppError> {
    if let Some(p) = cx.session.active_project()
        && let Ok(topic) = custom::topic_of_room(p, &req.room.0)
    {
        cx.leave(&topic);
    }
    let data = RoomOnly { room: req.room.0 };
    cx.emit(events::CUSTOM_LEFT, &data);
    to_json(&data)
}

pub async fn message<A: Adapter>(
    cx: &Ctx<A>,
    req: custom::DirectMessage,
) -> Result<Value, AppError> {
    custom::message(&cx.core, &cx.session.actor, &cx.conn_id(), req).await
}

pub async fn presence<A: Adapter>(
    cx: &Ctx<A>,
    req: custom::CustomPresence,
) -> Result<Value, AppError> {
    custom::presence(&cx.core, &cx.session.actor, &cx.conn_id(), req).await
}

pub async fn typing<A: Adapter>(cx: &Ctx<A>, req: custom::CustomTyping) -> Result<Value, AppError> {
    custom::typing(&cx.core, &cx.session.actor, &cx.conn_id(), req).await
}

pub async fn file_share<A: Adapter>(
    cx: &Ctx<A>,
    req: custom::FileShare,
) -> Result<Value, AppError> {
    custom::file_share(&cx.core, &cx.session.actor, &cx.conn_id(), req).await
}
