//! Documents of project collections, one MongoDB collection per project collection.

use async_trait::async_trait;
use bson::oid::ObjectId;
use bson::{Bson, doc};
use futures_util::TryStreamExt;
use mongodb::options::ReturnDocument;
use serde_json::Value;

use switchboard_handlers::core::data::documents::query_ran_too_long;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{CollectionId, DocumentId, ProjectId};
use switchboard_handlers::core::model::{Document, DocumentBody};
use switchboard_handlers::core::ports::{
    DocQuery, DocumentStore, FieldGuard, StoreResult, Written,
};

use super::convert::{bson_to_json, json_to_doc};
use super::projects::upsert;
use super::{MongoStore, map_err};

/// `data.<projectId>.<collectionId>`.
pub fn collection_name(project: &ProjectId, collection: &CollectionId) -> String {
    format!("data.{project}.{collection}")
}

pub fn read(project: &ProjectId, collection: &CollectionId, d: bson::Document) -> Document {
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

    async fn insert_document(&self, doc: &Document) -> StoreResult<()> {
        let (id, d) = to_stored(doc)?;
        let mut d = d;
        d.insert("_id", Bson::String(id));
        self.coll(&collection_name(&doc.project_id, &doc.collection_id))
            .insert_one(d)
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
            .find_one(id_filter(id, None))
            .await
            .map_err(map_err)?;
        Ok(d.map(|d| read(project, collection, d)))
    }

    async fn find_documents(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        q: &DocQuery,
    ) -> StoreResult<Vec<Document>> {
        let mut clauses = vec![Bson::Document(json_to_doc(q.filter.to_mongo())?)];
        if let Some(g) = &q.guard {
            clauses.push(Bson::Document(doc! { g.field.as_str(): g.value.as_str() }));
        }
        if let Some(after) = &q.after {
            clauses.push(Bson::Document(doc! { "_id": { "$gt": after.as_str() } }));
        }
        let filter = doc! { "$and": clauses };
        let mut sort = if q.sort.0.is_empty() {
            bson::Document::new()
        } else {
            json_to_doc(q.sort.to_mongo())?
        };
        // Ties break by id, as in the embedded store, so pages are stable.
        if !sort.contains_key("_id") {
            sort.insert("_id", 1);
        }
        // Client filters reach MongoDB's engine as they are (a `$regex` included), so the server
        // bounds how long it works on one (maxTimeMS; SecantusDB, the test stand-in, ignores it).
        let timed_out = |e: mongodb::error::Error| {
            if is_max_time_expired(&e) {
                query_ran_too_long(q.max_time)
            } else {
                map_err(e)
            }
        };
        let docs: Vec<_> = self
            .coll(&collection_name(project, collection))
            .find(filter)
            .sort(sort)
            .skip(u64::try_from(q.skip).unwrap_or(u64::MAX))
            .limit(i64::try_from(q.limit).unwrap_or(i64::MAX))
            .max_time(q.max_time)
            .await
            .map_err(timed_out)?
            .try_collect()
            .await
            .map_err(timed_out)?;
        Ok(docs
            .into_iter()
            .map(|d| read(project, collection, d))
            .collect())
    }

    async fn patch_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        set: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>> {
        let coll = self.coll(&collection_name(project, collection));
        let mut set = set.clone();
        set.remove("id");
        let before = if set.is_empty() {
            // MongoDB rejects an empty $set; an empty patch is a read that proves existence.
            coll.find_one(id_filter(id, guard)).await.map_err(map_err)?
        } else {
            coll.find_one_and_update(
                id_filter(id, guard),
                doc! { "$set": json_to_doc(Value::Object(set.clone()))? },
            )
            .return_document(ReturnDocument::Before)
            .await
            .map_err(map_err)?
        };
        Ok(before.map(|b| {
            let before = read(project, collection, b);
            let mut after = before.clone();
            after.body.extend(set);
            Written { before, after }
        }))
    }

    async fn replace_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        body: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>> {
        let mut fields = body.clone();
        // Without `_id` the replacement keeps the stored one, whatever its BSON type.
        fields.remove("id");
        let before = self
            .coll(&collection_name(project, collection))
            .find_one_and_replace(
                id_filter(id, guard),
                json_to_doc(Value::Object(fields.clone()))?,
            )
            .return_document(ReturnDocument::Before)
            .await
            .map_err(map_err)?;
        Ok(before.map(|b| {
            let before = read(project, collection, b);
            let mut after_body = fields;
            after_body.insert("id".to_owned(), Value::String(id.to_string()));
            let after = Document {
                project_id: project.clone(),
                collection_id: collection.clone(),
                body: after_body,
            };
            Written { before, after }
        }))
    }

    async fn count_collections(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        up_to: usize,
    ) -> StoreResult<(usize, bool)> {
        let name = collection_name(project, collection);
        let known = self
            .known_collections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&name);
        if known {
            // The count only matters for a collection that does not exist yet.
            return Ok((0, true));
        }
        // Filtered here rather than by the server: project ids may hold regex metacharacters.
        let prefix = format!("data.{project}.");
        let names = self
            .database()
            .list_collection_names()
            .await
            .map_err(map_err)?;
        let own = names
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .collect::<Vec<_>>();
        let exists = own.iter().any(|n| **n == name);
        if exists {
            self.known_collections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name);
        }
        Ok((own.len().min(up_to), exists))
    }

    /// One `listCollections` (every collection of the database, filtered here as above), then
    /// one `findOne` per candidate until `limit` are found: a collection whose documents were
    /// all deleted still exists in MongoDB but holds none, so it is left out.
    async fn list_collections(
        &self,
        project: &ProjectId,
        after: Option<&CollectionId>,
        limit: usize,
    ) -> StoreResult<Vec<CollectionId>> {
        let prefix = format!("data.{project}.");
        let mut names: Vec<String> = self
            .database()
            .list_collection_names()
            .await
            .map_err(map_err)?
            .into_iter()
            .filter_map(|n| n.strip_prefix(&prefix).map(str::to_owned))
            .filter(|c| after.is_none_or(|a| c.as_str() > a.as_str()))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if out.len() >= limit {
                break;
            }
            let Ok(c) = CollectionId::try_from(name) else {
                continue;
            };
            let any = self
                .coll(&collection_name(project, &c))
                .find_one(doc! {})
                .projection(doc! { "_id": 1 })
                .await
                .map_err(map_err)?;
            if any.is_some() {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn delete_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Document>> {
        let gone = self
            .coll(&collection_name(project, collection))
            .find_one_and_delete(id_filter(id, guard))
            .await
            .map_err(map_err)?;
        Ok(gone.map(|d| read(project, collection, d)))
    }
}

/// MongoDB's MaxTimeMSExpired: the find outlived its `maxTimeMS`.
const MAX_TIME_MS_EXPIRED: i32 = 50;

fn is_max_time_expired(e: &mongodb::error::Error) -> bool {
    matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == MAX_TIME_MS_EXPIRED)
}

/// Matches the document whether its `_id` is the string or, for documents other services
/// inserted with ObjectIds, the ObjectId with that hex.
fn id_filter(id: &DocumentId, guard: Option<&FieldGuard>) -> bson::Document {
    let mut f = match ObjectId::parse_str(id.as_str()) {
        Ok(oid) => doc! { "_id": { "$in": [id.as_str(), oid] } },
        Err(_) => doc! { "_id": id.as_str() },
    };
    if let Some(g) = guard {
        f.insert(g.field.as_str(), g.value.as_str());
    }
    f
}

fn to_stored(doc: &Document) -> Result<(String, bson::Document), AppError> {
    let mut body = doc.body.clone();
    let id = match body.remove("id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(AppError::invalid("document needs a string id")),
    };
    Ok((id, json_to_doc(Value::Object(body))?))
}
