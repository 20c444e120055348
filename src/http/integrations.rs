//! The integration registry over REST: `/api/projects/{p}/integrations[/{i}]`. Members read
//! (secrets masked), API keys and admins write; `…/{i}/webhook-events` lists stored webhooks.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use switchboard_handlers::core::access::{Actor, require_member};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{IntegrationId, ProjectId};
use switchboard_handlers::core::integration::{self, IntegrationSpec, require_registry_admin};
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

/// The stored integration of `p` for a writer (admin or API key).
async fn stored_for_admin(
    st: &AppState,
    actor: &Actor,
    p: &ProjectId,
    i: &IntegrationId,
) -> Result<Integration, AppError> {
    require_registry_admin(actor)?;
    Ok(integration::find(&st.core, actor, p, i).await?.1)
}

/// Writes an update of a stored integration; NOT_FOUND when it was deleted meanwhile (an update
/// never recreates it, nor touches an integration of another project).
async fn update(st: &AppState, integ: &Integration) -> Result<(), AppError> {
    if st.core.store.update_integration(integ).await? {
        Ok(())
    } else {
        Err(AppError::not_found("integration", integ.id.as_str()))
    }
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
    let p = project(p)?;
    require_registry_admin(&actor)?;
    let m = require_member(st.core.store.as_ref(), &actor, &p).await?;
    let id = match &spec.id {
        Some(id) => id.clone(),
        None => integration::new_id()?,
    };
    let integ = spec.into_integration(id, m.project_id(), None)?;
    // Insert-only: of concurrent creations of one id (from any project) exactly one wins.
    st.core.store.create_integration(&integ).await?;
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
    if spec.id.as_ref().is_some_and(|id| id != &i) {
        return Err(AppError::invalid("the body's id differs from the path's").into());
    }
    let stored = stored_for_admin(&st, &actor, &p, &i).await?;
    let integ = spec.into_integration(i, &p, Some(&stored))?;
    update(&st, &integ).await?;
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
    let Value::Object(fields) = body else {
        return Err(AppError::invalid("the body must be a JSON object").into());
    };
    if fields
        .get("id")
        .is_some_and(|v| v.as_str() != Some(i.as_str()))
    {
        return Err(AppError::invalid("the id cannot be changed").into());
    }
    let stored = stored_for_admin(&st, &actor, &p, &i).await?;
    let mut merged = serde_json::to_value(&stored).map_err(AppError::internal)?;
    if let Value::Object(m) = &mut merged {
        m.extend(fields);
    }
    let spec: IntegrationSpec =
        serde_json::from_value(merged).map_err(|e| AppError::invalid(e.to_string()))?;
    let integ = spec.into_integration(i, &p, Some(&stored))?;
    update(&st, &integ).await?;
    Ok(masked(&integ)?)
}

/// `DELETE …/{i}` → 204.
pub async fn delete(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, i)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (p, i) = ids(p, i)?;
    stored_for_admin(&st, &actor, &p, &i).await?;
    st.core.store.delete_integration(&i).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
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
