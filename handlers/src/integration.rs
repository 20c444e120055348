//! `integration:*` events: joining an integration's rooms, executing and testing its endpoints
//! (`core::integration` holds the rules; the dispatcher runs execute/test off the socket's
//! ordered queue, so a slow endpoint never holds up the socket's other events).

use serde::Deserialize;
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;

use crate::core::error::AppError;
use crate::core::events;
use crate::core::ids::{IntegrationId, ProjectId};
use crate::core::integration::{self, EndpointName};
use crate::core::payloads::{IntegrationIdOnly, IntegrationJoined};
use crate::core::topic::Topic;
use crate::socketio::Ctx;
use crate::socketio::payload::to_json;

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable, rename = "IntegrationInProject")]
#[schemars(rename = "IntegrationInProject")]
pub struct InProject {
    pub project_id: ProjectId,
    pub integration_id: IntegrationId,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct IntegrationRef {
    pub integration_id: IntegrationId,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable, rename = "IntegrationExecute")]
#[schemars(rename = "IntegrationExecute")]
pub struct Execute {
    pub project_id: ProjectId,
    pub integration_id: IntegrationId,
    pub endpoint: EndpointName,
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    #[serde(default)]
    pub request_data: Option<Value>,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable, rename = "IntegrationTest")]
#[schemars(rename = "IntegrationTest")]
pub struct Test {
    pub project_id: ProjectId,
    pub integration_id: IntegrationId,
    pub endpoint: EndpointName,
}

/// The integration as the sender (a project member) may see it.
async fn find<A: Adapter>(
    cx: &Ctx<A>,
    project: &ProjectId,
    id: &IntegrationId,
) -> Result<crate::core::model::Integration, AppError> {
    Ok(integration::find(&cx.core, &cx.session.actor, project, id)
        .await?
        .1)
}

/// Sender `integration:joined` `{ integrationId, name, status }`.
pub async fn join<A: Adapter>(cx: &Ctx<A>, req: InProject) -> Result<Value, AppError> {
    let integ = find(cx, &req.project_id, &req.integration_id).await?;
    let room = Topic::Integration(integ.id.clone());
    cx.room_capacity(&room)?;
    let stats = cx.core.store.integration_stats(&integ.id).await?;
    cx.join(&room)?;
    let data = IntegrationJoined {
        status: integration::status(&integ, &stats).to_owned(),
        integration_id: integ.id,
        name: integ.name,
    };
    cx.emit(events::INTEGRATION_JOINED, &data);
    to_json(&data)
}

/// Sender `integration:left` (also when it was not in the room).
pub async fn leave<A: Adapter>(cx: &Ctx<A>, req: IntegrationRef) -> Result<Value, AppError> {
    cx.leave(&Topic::Integration(req.integration_id.clone()));
    let data = IntegrationIdOnly {
        integration_id: req.integration_id,
    };
    cx.emit(events::INTEGRATION_LEFT, &data);
    to_json(&data)
}

/// Sender `integration:result` `{ integrationId, endpoint, status, data, durationMs }`.
pub async fn execute<A: Adapter>(cx: &Ctx<A>, req: Execute) -> Result<Value, AppError> {
    let integ = find(cx, &req.project_id, &req.integration_id).await?;
    let data = integration::execute(
        &cx.core,
        &integ,
        &req.endpoint,
        req.params,
        req.request_data,
    )
    .await?;
    cx.emit(events::INTEGRATION_RESULT, &data);
    Ok(data)
}

/// Sender `integration:test:result` `{ integrationId, endpoint, ok, status, durationMs }`.
pub async fn test<A: Adapter>(cx: &Ctx<A>, req: Test) -> Result<Value, AppError> {
    let integ = find(cx, &req.project_id, &req.integration_id).await?;
    let data = integration::test(&cx.core, &integ, &req.endpoint).await?;
    cx.emit(events::INTEGRATION_TEST_RESULT, &data);
    Ok(data)
}

/// Sender `integration:status:response`.
pub async fn status<A: Adapter>(cx: &Ctx<A>, req: InProject) -> Result<Value, AppError> {
    let integ = find(cx, &req.project_id, &req.integration_id).await?;
    let data = integration::status_of(&cx.core, &integ).await?;
    cx.emit(events::INTEGRATION_STATUS_RESPONSE, &data);
    Ok(data)
}

/// Joins `integration-webhooks:<id>`, where verified webhook calls are emitted.
pub async fn webhook_subscribe<A: Adapter>(cx: &Ctx<A>, req: InProject) -> Result<Value, AppError> {
    let integ = find(cx, &req.project_id, &req.integration_id).await?;
    cx.join(&Topic::IntegrationWebhooks(integ.id.clone()))?;
    let data = IntegrationIdOnly {
        integration_id: integ.id,
    };
    cx.emit(events::INTEGRATION_WEBHOOK_SUBSCRIBED, &data);
    to_json(&data)
}

pub async fn webhook_unsubscribe<A: Adapter>(
    cx: &Ctx<A>,
    req: IntegrationRef,
) -> Result<Value, AppError> {
    cx.leave(&Topic::IntegrationWebhooks(req.integration_id.clone()));
    let data = IntegrationIdOnly {
        integration_id: req.integration_id,
    };
    cx.emit(events::INTEGRATION_WEBHOOK_UNSUBSCRIBED, &data);
    to_json(&data)
}
