//! `auth:login`, `auth:logout`, `auth:session:update`: session signals (the handshake itself
//! authenticates; these only tell others).

use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::custom::{self, SessionUpdate};
use crate::core::error::AppError;
use crate::core::events;
use crate::core::project::ProjectOnly;
use crate::socketio::Ctx;

/// Room `project:<p>` (not the sender): `user:online` `{ userId, projectId }`.
pub async fn login<A: Adapter>(cx: &Ctx<A>, req: ProjectOnly) -> Result<Value, AppError> {
    custom::announce_session(
        &cx.core,
        &cx.session.actor,
        &cx.conn_id(),
        &req.project_id,
        events::USER_ONLINE,
    )
    .await
}

/// Room `project:<p>` (not the sender): `user:offline` `{ userId, projectId }`.
pub async fn logout<A: Adapter>(cx: &Ctx<A>, req: ProjectOnly) -> Result<Value, AppError> {
    custom::announce_session(
        &cx.core,
        &cx.session.actor,
        &cx.conn_id(),
        &req.project_id,
        events::USER_OFFLINE,
    )
    .await
}

/// The user's other sockets on every node: `session:updated` `{ projectId, sessionData }`.
pub async fn session_update<A: Adapter>(
    cx: &Ctx<A>,
    req: SessionUpdate,
) -> Result<Value, AppError> {
    custom::session_update(&cx.core, &cx.session.actor, &cx.conn_id(), req).await
}
