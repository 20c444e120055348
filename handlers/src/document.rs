//! `subscribe:document`.

use serde::Deserialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::data::subscriptions;
use crate::core::error::AppError;
use crate::core::ids::{CollectionId, DocumentId, ProjectId};
use crate::core::topic::Topic;
use crate::socketio::Ctx;

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct DocumentRef {
    pub project_id: ProjectId,
    pub collection_id: CollectionId,
    pub document_id: DocumentId,
}

/// Joins `document:<p>:<c>:<d>`; sender `subscribed` (with the document's current state).
pub async fn subscribe_document<A: Adapter>(
    cx: &Ctx<A>,
    req: DocumentRef,
) -> Result<Value, AppError> {
    cx.room_capacity(&Topic::Document(
        req.project_id.clone(),
        req.collection_id.clone(),
        req.document_id.clone(),
    ))?;
    let data = subscriptions::subscribe_document(
        &cx.core,
        &cx.session.actor,
        &cx.conn_id(),
        &req.project_id,
        &req.collection_id,
        &req.document_id,
    )
    .await?;
    cx.join(&Topic::Document(
        req.project_id,
        req.collection_id,
        req.document_id,
    ))?;
    Ok(data)
}
