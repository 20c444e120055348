//! `presence:online`, `presence:offline`, `presence:update`, `presence:get:online`.

use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::error::AppError;
use crate::core::events;
use crate::core::presence::{self, GoOnline};
use crate::core::project::ProjectOnly;
use crate::socketio::Ctx;

/// Room(s) `project:<p>`: `presence:user:online`.
pub async fn online<A: Adapter>(cx: &Ctx<A>, req: Option<GoOnline>) -> Result<Value, AppError> {
    presence::online(
        &cx.core,
        &cx.session.actor,
        &cx.conn_id(),
        req.unwrap_or_default(),
    )
    .await
}

/// Room(s): `presence:user:offline`. The payload, if any, is ignored.
pub async fn offline<A: Adapter>(cx: &Ctx<A>, _req: Value) -> Result<Value, AppError> {
    presence::offline(&cx.core, &cx.session.actor, &cx.conn_id()).await
}

/// Refreshes lastSeen; no broadcast.
pub async fn update<A: Adapter>(cx: &Ctx<A>, _req: Value) -> Result<Value, AppError> {
    presence::update(&cx.core, &cx.session.actor).await
}

/// Sender `presence:online:list` with the cluster's view.
pub async fn get_online<A: Adapter>(cx: &Ctx<A>, req: ProjectOnly) -> Result<Value, AppError> {
    let data = presence::list(&cx.core, &cx.session.actor, &req.project_id).await?;
    cx.emit(events::PRESENCE_ONLINE_LIST, &data);
    Ok(data)
}
