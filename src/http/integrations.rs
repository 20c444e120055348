//! The integration registry over REST: `/api/projects/{p}/integrations[/{i}]`. Members read
//! (secrets masked), API keys and admins write; `…/{i}/webhook-events` lists stored webhooks.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use switchboard_handlers::core::access::require_member;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{IntegrationId, ProjectId};
use switchboard_handlers::core::integration::{self, IntegrationSpec};
use switchboard_handlers::core::integration_registry;
use switchboard_handlers::core::model::Integration;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, JsonBody, QueryParams};

fn project(p: String) -> Result<ProjectId, AppError> {
    ProjectId::try_from(p).map_err(AppError::invalid)
}

fn ids(p: String, i: String) -> Result<(ProjectId, IntegrationId), AppError> {
    Ok((
        project(p)?,
        IntegrationId::try_from(i).map_err(AppError::invalid)?,
    ))
}

fn masked(i: &Integration) -> Result<Json<Value>, AppError> {
    Ok(Json(
        serde_json::to_value(i.masked()).map_err(AppError::internal)?,
    ))
}

/// `GET /api/projects/{p}/integrations` → `{ integrations }`.
pub async fn list(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let p = project(p)?;
    let m = require_member(st.core.store.as_ref(), &actor, &p).await?;
    let list: Vec<Integration> = st
        .core
        .store
        .list_integrations(m.project_id())
        .await?
        .iter()
        .map(Integration::masked)
        .collect();
    Ok(Json(json!({ "integrations": list })))
}

/// `POST /api/projects/{p}/integrations` → 201 with the masked integration; 409 on a taken id.
pub async fn create(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    JsonBody(spec): JsonBody<IntegrationSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let integ = integration_registry::create(&st.core, &actor, &project(p)?, spec).await?;
    Ok((StatusCode::CREATED, masked(&integ)?))
}

/// `GET /api/projects/{p}/integrations/{i}` → the masked integration.
pub async fn get(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, i)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (p, i) = ids(p, i)?;
    let (_, integ) = integration::find(&st.core, &actor, &p, &i).await?;
    Ok(masked(&integ)?)
}

/// `PUT …/{i}`: the whole integration; secrets sent back masked keep their stored values.
pub async fn replace(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, i)): Path<(String, String)>,
    JsonBody(spec): JsonBody<IntegrationSpec>,
) -> ApiResult<Json<Value>> {
    let (p, i) = ids(p, i)?;
    let integ = integration_registry::replace(&st.core, &actor, &p, i, spec).await?;
    Ok(masked(&integ)?)
}

/// `PATCH …/{i}`: the given top-level fields replace the stored ones.
pub async fn patch(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, i)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let (p, i) = ids(p, i)?;
    let integ = integration_registry::patch(&st.core, &actor, &p, i, body).await?;
    Ok(masked(&integ)?)
}

/// `DELETE …/{i}` → 204.
pub async fn delete(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, i)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (p, i) = ids(p, i)?;
    integration_registry::delete(&st.core, &actor, &p, &i).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EventsQuery {
    limit: Option<usize>,
}

const MAX_EVENTS_PAGE: usize = 1000;

/// `GET …/{i}/webhook-events?limit=` → `{ events }`, newest first (default 50, at most 1000).
pub async fn webhook_events(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, i)): Path<(String, String)>,
    QueryParams(q): QueryParams<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let (p, i) = ids(p, i)?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_EVENTS_PAGE {
        return Err(AppError::invalid(format!("limit must be 1 to {MAX_EVENTS_PAGE}")).into());
    }
    let (_, integ) = integration::find(&st.core, &actor, &p, &i).await?;
    let events: Vec<Value> = st
        .core
        .store
        .list_webhook_events(&integ.id, limit)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "integrationId": e.integration_id,
                "projectId": e.project_id,
                "body": e.body,
                "receivedAt": e.received_at,
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}

/// `GET …/{i}/status` → what `integration:status` answers: `{ integrationId, status,
/// lastExecutedAt, lastError, executions, failures }`.
pub async fn status(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, i)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (p, i) = ids(p, i)?;
    let (_, integ) = integration::find(&st.core, &actor, &p, &i).await?;
    Ok(Json(integration::status_of(&st.core, &integ).await?))
}
