//! `subscribe:collection`, `unsubscribe:collection`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::data::subscriptions;
use crate::core::error::AppError;
use crate::core::ids::{CollectionId, ProjectId};
use crate::core::topic::Topic;
use crate::socketio::Ctx;
use crate::socketio::payload::kind;

/// `collectionId` alone (in the socket's active project) or `{ projectId, collectionId }`.
#[derive(Debug, ts_rs::TS)]
#[ts(as = "CollectionRefForm")]
pub enum CollectionRef {
    Bare(CollectionId),
    Full(ProjectId, CollectionId),
}

impl<'de> Deserialize<'de> for CollectionRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Full {
            project_id: ProjectId,
            collection_id: CollectionId,
        }
        match Value::deserialize(d)? {
            Value::String(s) => CollectionId::try_from(s)
                .map(CollectionRef::Bare)
                .map_err(serde::de::Error::custom),
            v @ Value::Object(_) => serde_json::from_value::<Full>(v)
                .map(|f| CollectionRef::Full(f.project_id, f.collection_id))
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected a collectionId string or {{ projectId, collectionId }}, got {}",
                kind(&other)
            ))),
        }
    }
}

/// [`CollectionRef`]'s two forms, for the published contracts (its decoding is hand-written
/// for clearer errors).
#[derive(ts_rs::TS, schemars::JsonSchema)]
#[serde(untagged)]
#[ts(rename = "CollectionRef")]
#[schemars(rename = "CollectionRef")]
#[allow(dead_code)]
enum CollectionRefForm {
    Bare(CollectionId),
    #[serde(rename_all = "camelCase")]
    Full {
        project_id: ProjectId,
        collection_id: CollectionId,
    },
}

impl schemars::JsonSchema for CollectionRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        CollectionRefForm::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        CollectionRefForm::json_schema(generator)
    }
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable, rename = "CollectionUnsubscribe")]
#[schemars(rename = "CollectionUnsubscribe")]
pub struct Unsubscribe {
    pub collection_id: CollectionId,
    #[serde(default)]
    pub project_id: Option<ProjectId>,
}

fn active_project<A: Adapter>(cx: &Ctx<A>) -> Result<ProjectId, AppError> {
    cx.session.active_project().ok_or_else(|| {
        AppError::invalid(
            "no active project: send subscribe:project first, or pass { projectId, collectionId }",
        )
    })
}

/// Joins `collection:<p>:<c>`. The object form also sends `subscribed` to the sender.
pub async fn subscribe_collection<A: Adapter>(
    cx: &Ctx<A>,
    req: CollectionRef,
) -> Result<Value, AppError> {
    let (project, collection, announce) = match req {
        CollectionRef::Bare(c) => (active_project(cx)?, c, false),
        CollectionRef::Full(p, c) => (p, c, true),
    };
    cx.room_capacity(&Topic::Collection(project.clone(), collection.clone()))?;
    let data = subscriptions::subscribe_collection(
        &cx.core,
        &cx.session.actor,
        &cx.conn_id(),
        &project,
        &collection,
        announce,
    )
    .await?;
    cx.join(&Topic::Collection(project, collection))?;
    Ok(data)
}

/// Leaves the room; sender `unsubscribed`.
pub async fn unsubscribe_collection<A: Adapter>(
    cx: &Ctx<A>,
    req: Unsubscribe,
) -> Result<Value, AppError> {
    let project = match req.project_id {
        Some(p) => p,
        None => active_project(cx)?,
    };
    let data = subscriptions::unsubscribe_collection(
        &cx.core,
        &cx.conn_id(),
        &project,
        &req.collection_id,
    );
    cx.leave(&Topic::Collection(project, req.collection_id));
    cx.emit(crate::core::events::UNSUBSCRIBED, &data);
    Ok(data)
}
