//! The integration registry's writes (`POST`, `PUT`, `PATCH`, `DELETE` under
//! `/api/projects/{p}/integrations`): API keys and admins only, creation insert-only, updates
//! never recreating an integration or reaching another project's.

use serde_json::Value;

use super::Core;
use super::access::{Actor, require_member};
use super::error::AppError;
use super::ids::{IntegrationId, ProjectId};
use super::integration::{self, IntegrationSpec, require_registry_admin};
use super::model::Integration;

/// Creates an integration of `project`. Insert-only: of concurrent creations of one id (from
/// any project) exactly one wins; the others are CONFLICT.
pub async fn create(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    spec: IntegrationSpec,
) -> Result<Integration, AppError> {
    require_registry_admin(actor)?;
    let m = require_member(core.store.as_ref(), actor, project).await?;
    let id = match &spec.id {
        Some(id) => id.clone(),
        None => integration::new_id()?,
    };
    let integ = spec.into_integration(id, m.project_id(), None)?;
    core.store.create_integration(&integ).await?;
    Ok(integ)
}

/// Replaces the whole integration; secrets sent back masked keep their stored values.
pub async fn replace(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    id: IntegrationId,
    spec: IntegrationSpec,
) -> Result<Integration, AppError> {
    if spec.id.as_ref().is_some_and(|given| given != &id) {
        return Err(AppError::invalid("the body's id differs from the path's"));
    }
    let stored = stored_for_admin(core, actor, project, &id).await?;
    let integ = spec.into_integration(id, project, Some(&stored))?;
    update(core, &integ).await?;
    Ok(integ)
}

/// The given top-level fields replace the stored ones.
pub async fn patch(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    id: IntegrationId,
    body: Value,
) -> Result<Integration, AppError> {
    let Value::Object(fields) = body else {
        return Err(AppError::invalid("the body must be a JSON object"));
    };
    if fields
        .get("id")
        .is_some_and(|v| v.as_str() != Some(id.as_str()))
    {
        return Err(AppError::invalid("the id cannot be changed"));
    }
    let stored = stored_for_admin(core, actor, project, &id).await?;
    let mut merged = serde_json::to_value(&stored).map_err(AppError::internal)?;
    if let Value::Object(m) = &mut merged {
        m.extend(fields);
    }
    let spec: IntegrationSpec =
        serde_json::from_value(merged).map_err(|e| AppError::invalid(e.to_string()))?;
    let integ = spec.into_integration(id, project, Some(&stored))?;
    update(core, &integ).await?;
    Ok(integ)
}

pub async fn delete(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    id: &IntegrationId,
) -> Result<(), AppError> {
    stored_for_admin(core, actor, project, id).await?;
    core.store.delete_integration(id).await?;
    Ok(())
}

/// The stored integration of `project`, for a writer (admin or API key).
async fn stored_for_admin(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    id: &IntegrationId,
) -> Result<Integration, AppError> {
    require_registry_admin(actor)?;
    Ok(integration::find(core, actor, project, id).await?.1)
}

/// Writes an update of a stored integration; NOT_FOUND when it was deleted meanwhile.
async fn update(core: &Core, integ: &Integration) -> Result<(), AppError> {
    if core.store.update_integration(integ).await? {
        Ok(())
    } else {
        Err(AppError::not_found("integration", integ.id.as_str()))
    }
}
