//! `custom:*` events. `custom:event` relays to the project room; the rest arrive with the
//! presence and custom-events issue.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use socketioxide::adapter::Adapter;

use crate::core::access::require_member;
use crate::core::error::AppError;
use crate::core::ids::ProjectId;
use crate::core::project;
use crate::socketio::Ctx;

/// `{ projectId, ...anything }`: everything but `projectId` is relayed as given.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    Ok(json!({}))
}
