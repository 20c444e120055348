//! Wallet over REST: addresses (members see their own, admins all) and transaction intake
//! (API keys and admins), which delivers `wallet:transaction` to the matching rooms.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use switchboard_handlers::core::access::require_member;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::wallet::{self, NewTransaction};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, JsonBody};

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
