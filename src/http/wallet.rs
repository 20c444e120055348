//! Wallet over REST: addresses and transactions (members see their own, admins all) and
//! transaction intake (API keys and admins), which delivers `wallet:transaction` to the
//! matching rooms.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use switchboard_handlers::core::access::require_member;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{MAX_ID_LEN, ProjectId};
use switchboard_handlers::core::wallet::{self, NewTransaction};

use super::AppState;
use super::chats::{DEFAULT_PAGE, MAX_PAGE};
use super::error::ApiResult;
use super::extract::{Caller, JsonBody, QueryParams};

fn project_id(p: String) -> Result<ProjectId, AppError> {
    ProjectId::try_from(p).map_err(AppError::invalid)
}

/// `GET /api/projects/{p}/wallet/addresses` → `{ addresses }`.
pub async fn addresses(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let m = require_member(st.core.store.as_ref(), &actor, &project_id(p)?).await?;
    let only = (!actor.is_admin()).then_some(&actor.id);
    let list = st.core.store.list_addresses(m.project_id(), only).await?;
    Ok(Json(json!({ "addresses": list })))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TransactionsPage {
    /// 1 to 100, default 50.
    limit: Option<String>,
    /// The `nextCursor` of the previous page: a transaction id.
    before: Option<String>,
}

/// `GET /api/projects/{p}/wallet/transactions?limit=&before=` → `{ transactions, nextCursor }`,
/// newest first. Members see the transactions of their own addresses, admins all.
pub async fn transactions(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    QueryParams(page): QueryParams<TransactionsPage>,
) -> ApiResult<Json<Value>> {
    let pid = project_id(p)?;
    let limit = super::extract::page_limit(page.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?;
    let before = match page.before.as_deref() {
        None | Some("") => None,
        // Transaction ids are at most MAX_ID_LEN characters, so a longer cursor is no cursor.
        Some(b) if b.chars().count() > MAX_ID_LEN => {
            return Err(AppError::invalid(format!(
                "before must be a transaction id of at most {MAX_ID_LEN} characters"
            ))
            .into());
        }
        Some(b) => Some(b),
    };
    let m = require_member(st.core.store.as_ref(), &actor, &pid).await?;
    let store = st.core.store.as_ref();
    // A member's filter is their addresses in this project (none: no transactions to show).
    let own = if actor.is_admin() {
        None
    } else {
        let list = store
            .list_addresses(m.project_id(), Some(&actor.id))
            .await?;
        Some(list.into_iter().map(|a| a.id).collect::<Vec<_>>())
    };
    let mut list = store
        .list_transactions(m.project_id(), own.as_deref(), limit + 1, before)
        .await?;
    let more = list.len() > limit;
    list.truncate(limit);
    let next = if more {
        list.last().map(|t| t.id.clone())
    } else {
        None
    };
    Ok(Json(json!({ "transactions": list, "nextCursor": next })))
}

/// `POST /api/projects/{p}/wallet/transactions` → 201 (new) or 200 (replaced: a status
/// update) with the stored transaction.
pub async fn record(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    JsonBody(req): JsonBody<NewTransaction>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let pid = project_id(p)?;
    if !actor.is_admin() {
        return Err(
            AppError::forbidden("wallet transactions are recorded by API keys and admins").into(),
        );
    }
    let m = require_member(st.core.store.as_ref(), &actor, &pid).await?;
    let (tx, new) = wallet::record(&st.core, m.project_id(), req).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::to_value(tx).map_err(AppError::internal)?),
    ))
}
