//! Socket-side data subscriptions: collection, document and live query. Each checks membership
//! and the collection's rule, registers with this node's `LiveData`, and sends its `subscribed`
//! event through the registry so it precedes every delivery to the new subscription.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::documents::{DataScope, scope};
use crate::core::Core;
use crate::core::access::Actor;
use crate::core::error::AppError;
use crate::core::events;
use crate::core::ids::{CollectionId, DocumentId, MAX_ID_LEN, ProjectId};
use crate::core::ports::{ConnId, DocQuery};
use crate::core::query::{Filter, Sort};

/// The initial result set of a live query holds at most this many documents (by id); later
/// changes still add, change and remove documents as they happen.
pub const MAX_INITIAL_RESULTS: usize = 1000;

pub async fn subscribe_collection(
    core: &Core,
    actor: &Actor,
    conn: &ConnId,
    project: &ProjectId,
    collection: &CollectionId,
    announce: bool,
) -> Result<Value, AppError> {
    let s = scope(core, actor, project, collection).await?;
    let data = json!({ "type": "collection", "projectId": project, "collectionId": collection });
    core.live.watch_collection(
        conn,
        actor,
        s.key(),
        &s.rule,
        announce.then_some((events::SUBSCRIBED, &data)),
    );
    Ok(data)
}

/// Always succeeds for a well-formed request: leaving what one is not in changes nothing.
pub fn unsubscribe_collection(
    core: &Core,
    conn: &ConnId,
    project: &ProjectId,
    collection: &CollectionId,
) -> Value {
    core.live
        .unwatch_collection(conn, &(project.clone(), collection.clone()));
    json!({ "type": "collection", "projectId": project, "collectionId": collection })
}

/// The `subscribed` payload also carries `document`: its current state, or null when it does
/// not exist yet or the caller may not read it (the two look alike on purpose).
pub async fn subscribe_document(
    core: &Core,
    actor: &Actor,
    conn: &ConnId,
    project: &ProjectId,
    collection: &CollectionId,
    document: &DocumentId,
) -> Result<Value, AppError> {
    let s = scope(core, actor, project, collection).await?;
    let current = core
        .store
        .get_document(project, collection, document)
        .await?
        .map(|d| d.body)
        .filter(|b| s.rule.can_read(actor, b));
    let data = json!({
        "type": "document",
        "projectId": project,
        "collectionId": collection,
        "documentId": document,
        "document": current,
    });
    core.live.watch_document(
        conn,
        actor,
        s.key(),
        document.clone(),
        &s.rule,
        Some((events::SUBSCRIBED, &data)),
    );
    Ok(data)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeQuery {
    pub project_id: ProjectId,
    pub collection_id: CollectionId,
    pub query_id: QueryId,
    #[serde(default)]
    pub query: Option<Value>,
}

/// A client-chosen live query id (bounded like every id).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct QueryId(pub String);

impl TryFrom<String> for QueryId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > MAX_ID_LEN || s.chars().any(char::is_control) {
            return Err(format!(
                "queryId must be 1 to {MAX_ID_LEN} characters without control characters"
            ));
        }
        Ok(QueryId(s))
    }
}

pub async fn subscribe_query(
    core: &Core,
    actor: &Actor,
    conn: &ConnId,
    req: SubscribeQuery,
) -> Result<Value, AppError> {
    // Validation before authorization (contract): a bad filter is INVALID_PAYLOAD for anyone.
    let filter = match &req.query {
        None | Some(Value::Null) => Filter::match_all(),
        Some(v) => Filter::parse(v, &core.limits.filter)?,
    };
    let s: DataScope = scope(core, actor, &req.project_id, &req.collection_id).await?;
    let qid = req.query_id.0;
    core.live
        .begin_query(conn, actor, s.key(), &qid, filter.clone(), &s.rule)?;
    let found = core
        .store
        .find_documents(
            &req.project_id,
            &req.collection_id,
            &DocQuery {
                filter,
                sort: Sort::default(),
                limit: MAX_INITIAL_RESULTS,
                skip: 0,
                after: None,
                guard: s.rule.guard(actor),
                max_time: core.limits.query_max_time,
            },
        )
        .await;
    let docs = match found {
        Ok(d) => d,
        Err(e) => {
            core.live.cancel_query(conn, &qid);
            return Err(e);
        }
    };
    let ids: HashSet<DocumentId> = docs
        .iter()
        .filter_map(|d| d.body.get("id").and_then(Value::as_str))
        .filter_map(|s| DocumentId::try_from(s).ok())
        .collect();
    let data = json!({
        "type": "query",
        "projectId": req.project_id,
        "collectionId": req.collection_id,
        "queryId": qid,
        "documents": docs.into_iter().map(|d| Value::Object(d.body)).collect::<Vec<_>>(),
    });
    core.live
        .activate_query(conn, &qid, ids, (events::SUBSCRIBED, &data))
        .await;
    Ok(data)
}

pub fn unsubscribe_query(core: &Core, conn: &ConnId, query_id: &QueryId) -> Value {
    core.live.cancel_query(conn, &query_id.0);
    json!({ "type": "query", "queryId": query_id.0 })
}
