//! `POST /api/projects/{p}/emit` `{ room?, event, payload }` → 202: a server-side emit into one
//! of the project's rooms (the rules: `core::emit`).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use switchboard_handlers::core::emit::{self, EmitRequest};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, JsonBody};

pub async fn emit(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    JsonBody(req): JsonBody<EmitRequest>,
) -> ApiResult<StatusCode> {
    let project_id = ProjectId::try_from(p).map_err(AppError::invalid)?;
    emit::emit(&st.core, &actor, &project_id, req).await?;
    Ok(StatusCode::ACCEPTED)
}
