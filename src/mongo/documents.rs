//! Documents of project collections, one MongoDB collection per project collection.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, doc};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{CollectionId, DocumentId, ProjectId};
use switchboard_handlers::core::model::{Document, DocumentBody};
use switchboard_handlers::core::ports::{DocumentStore, StoreResult};

use super::convert::{bson_to_json, json_to_doc};
use super::projects::upsert;
use super::{MongoStore, map_err};

/// `data.<projectId>.<collectionId>`.
pub fn collection_name(project: &ProjectId, collection: &CollectionId) -> String {
    format!("data.{project}.{collection}")
}

fn read(project: &ProjectId, collection: &CollectionId, d: mongodb::bson::Document) -> Document {
    let mut body = DocumentBody::new();
    for (k, v) in d {
        if k == "_id" {
            body.insert("id".to_owned(), bson_to_json(v));
        } else {
            body.insert(k, bson_to_json(v));
        }
    }
    Document {
        project_id: project.clone(),
        collection_id: collection.clone(),
        body,
    }
}

#[async_trait]
impl DocumentStore for MongoStore {
    async fn put_document(&self, doc: &Document) -> StoreResult<()> {
        let mut body = doc.body.clone();
        let id = match body.remove("id") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s,
            _ => return Err(AppError::invalid("document needs a string id")),
        };
        let mut d = json_to_doc(serde_json::Value::Object(body))?;
        d.insert("_id", Bson::String(id.clone()));
        self.coll(&collection_name(&doc.project_id, &doc.collection_id))
            .replace_one(doc! { "_id": id }, d)
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
    ) -> StoreResult<Option<Document>> {
        let d = self
            .coll(&collection_name(project, collection))
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        Ok(d.map(|d| read(project, collection, d)))
    }

    async fn list_documents(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        limit: usize,
    ) -> StoreResult<Vec<Document>> {
        let docs: Vec<_> = self
            .coll(&collection_name(project, collection))
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        Ok(docs
            .into_iter()
            .map(|d| read(project, collection, d))
            .collect())
    }
}
