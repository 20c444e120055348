//! `GET /api/projects`, `GET /api/projects/{p}`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use switchboard_handlers::core::access::require_member;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;

use super::AppState;
use super::error::ApiResult;
use super::extract::Caller;

/// Admins see every project; users the ones they are members of.
pub async fn list(State(st): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<Value>> {
    let member = (!actor.is_admin()).then_some(&actor.id);
    let projects = st.core.store.list_projects(member).await?;
    Ok(Json(json!({ "projects": projects })))
}

pub async fn get(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = ProjectId::try_from(p).map_err(AppError::invalid)?;
    let member = require_member(st.core.store.as_ref(), &actor, &id).await?;
    Ok(Json(
        serde_json::to_value(member.project).map_err(AppError::internal)?,
    ))
}
