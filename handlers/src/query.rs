//! `subscribe:query`, `unsubscribe:query`: live queries over a collection.

use serde::Deserialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::data::subscriptions::{self, QueryId, SubscribeQuery};
use crate::core::error::AppError;
use crate::socketio::Ctx;

/// Registers the query; sender `subscribed` with the current result set, then `query:*` as
/// documents enter, change inside, or leave it.
pub async fn subscribe_query<A: Adapter>(
    cx: &Ctx<A>,
    req: SubscribeQuery,
) -> Result<Value, AppError> {
    subscriptions::subscribe_query(&cx.core, &cx.session.actor, &cx.conn_id(), req).await
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct QueryRef {
    pub query_id: QueryId,
}

/// Drops the query; sender `unsubscribed` `{ type: "query", queryId }`.
pub async fn unsubscribe_query<A: Adapter>(cx: &Ctx<A>, req: QueryRef) -> Result<Value, AppError> {
    let data = subscriptions::unsubscribe_query(&cx.core, &cx.conn_id(), &req.query_id);
    cx.emit(crate::core::events::UNSUBSCRIBED, &data);
    Ok(data)
}
