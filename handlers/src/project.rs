//! `subscribe:project`, `unsubscribe:project`.

use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::error::AppError;
use crate::core::payloads::ProjectIdOnly;
use crate::core::project;
use crate::core::topic::Topic;
use crate::socketio::Ctx;
use crate::socketio::payload::{ProjectRef, to_json};

/// Joins `project:<id>` and makes it the socket's active project. No emit; the ack carries
/// `{ projectId }`.
pub async fn subscribe_project<A: Adapter>(
    cx: &Ctx<A>,
    ProjectRef(project_id): ProjectRef,
) -> Result<Value, AppError> {
    cx.room_capacity(&Topic::Project(project_id.clone()))?;
    let member = project::subscribe(&cx.core, &cx.session.actor, &project_id).await?;
    cx.join(&Topic::Project(member.project_id().clone()))?;
    cx.session.set_active_project(Some(project_id.clone()));
    to_json(&ProjectIdOnly { project_id })
}

/// Leaves `project:<id>`; if it was the active project, there is none afterwards.
pub async fn unsubscribe_project<A: Adapter>(
    cx: &Ctx<A>,
    ProjectRef(project_id): ProjectRef,
) -> Result<Value, AppError> {
    cx.leave(&Topic::Project(project_id.clone()));
    if cx.session.active_project().as_ref() == Some(&project_id) {
        cx.session.set_active_project(None);
    }
    to_json(&ProjectIdOnly { project_id })
}
