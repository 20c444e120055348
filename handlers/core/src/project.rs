//! Project-level use cases: joining a project's room and relaying `custom:event` to it.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::Core;
use super::access::{Actor, ProjectMember, require_member};
use super::error::AppError;
use super::events;
use super::ids::ProjectId;
use super::ports::ConnId;
use super::topic::Topic;

/// A request naming only a project, as `{ projectId }` (`auth:login`, `auth:logout`,
/// `presence:get:online`, `wallet:subscribe:project`, `wallet:unsubscribe:project`).
#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ProjectOnly {
    pub project_id: ProjectId,
}

/// Checks membership; the front end then joins the returned topic.
pub async fn subscribe(
    core: &Core,
    actor: &Actor,
    project_id: &ProjectId,
) -> Result<ProjectMember, AppError> {
    require_member(core.store.as_ref(), actor, project_id).await
}

/// `custom:event`: the sender's payload plus `from`, to everyone else in `project:<p>`.
pub async fn relay_custom_event(
    core: &Core,
    member: &ProjectMember,
    mut payload: Map<String, Value>,
    sender: &ConnId,
) -> Result<(), AppError> {
    payload.insert("from".to_owned(), member.actor.from_json());
    core.fanout
        .publish(
            &[Topic::Project(member.project_id().clone())],
            events::CUSTOM_EVENT,
            &Value::Object(payload),
            Some(sender),
        )
        .await
}
