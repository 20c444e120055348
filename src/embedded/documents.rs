//! Project collections: one table keyed by (project, collection, document id), the body as JSON.
//! A collection is the run of keys with its (project, collection) prefix, ordered by id.

use async_trait::async_trait;
use redb::ReadableTable;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{CollectionId, DocumentId, ProjectId};
use switchboard_handlers::core::model::{Document, DocumentBody};
use switchboard_handlers::core::ports::{
    DocQuery, DocumentStore, FieldGuard, StoreResult, Written,
};

use super::EmbeddedStore;
use super::codec::{Db, after_all, decode, encode};
use super::tables::DOCUMENTS;

fn doc_id(doc: &Document) -> StoreResult<String> {
    match doc.body.get("id") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(AppError::invalid("document needs a string id")),
    }
}

struct Key {
    project: ProjectId,
    collection: CollectionId,
    id: String,
}

impl Key {
    fn of(project: &ProjectId, collection: &CollectionId, id: &str) -> Self {
        Key {
            project: project.clone(),
            collection: collection.clone(),
            id: id.to_owned(),
        }
    }

    fn tuple(&self) -> (&str, &str, &str) {
        (
            self.project.as_str(),
            self.collection.as_str(),
            self.id.as_str(),
        )
    }

    fn document(&self, body: DocumentBody) -> Document {
        Document {
            project_id: self.project.clone(),
            collection_id: self.collection.clone(),
            body,
        }
    }
}

type DocTable<'t> = redb::Table<'t, (&'static str, &'static str, &'static str), &'static [u8]>;

/// The stored document if it exists and passes `guard`.
fn guarded(
    t: &DocTable<'_>,
    key: &Key,
    guard: Option<&FieldGuard>,
) -> StoreResult<Option<Document>> {
    let Some(v) = t.get(key.tuple()).db()? else {
        return Ok(None);
    };
    let body: DocumentBody = decode("documents", v.value())?;
    if guard.is_some_and(|g| !g.admits(&body)) {
        return Ok(None);
    }
    Ok(Some(key.document(body)))
}

impl EmbeddedStore {
    /// Rewrites a guarded document with `change`; the before and after images.
    async fn rewrite(
        &self,
        key: Key,
        guard: Option<&FieldGuard>,
        change: impl FnOnce(&mut DocumentBody) + Send + 'static,
    ) -> StoreResult<Option<Written>> {
        let guard = guard.cloned();
        self.write(move |txn| {
            let mut t = txn.open_table(DOCUMENTS).db()?;
            let Some(before) = guarded(&t, &key, guard.as_ref())? else {
                return Ok(None);
            };
            let mut after = before.clone();
            change(&mut after.body);
            t.insert(key.tuple(), encode(&after.body)?.as_slice())
                .db()?;
            Ok(Some(Written { before, after }))
        })
        .await
    }
}

#[async_trait]
impl DocumentStore for EmbeddedStore {
    async fn put_document(&self, doc: &Document) -> StoreResult<()> {
        let key = Key::of(&doc.project_id, &doc.collection_id, &doc_id(doc)?);
        let bytes = encode(&doc.body)?;
        self.write(move |txn| {
            let mut t = txn.open_table(DOCUMENTS).db()?;
            t.insert(key.tuple(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn insert_document(&self, doc: &Document) -> StoreResult<()> {
        let key = Key::of(&doc.project_id, &doc.collection_id, &doc_id(doc)?);
        let bytes = encode(&doc.body)?;
        self.write(move |txn| {
            let mut t = txn.open_table(DOCUMENTS).db()?;
            if t.get(key.tuple()).db()?.is_some() {
                return Err(AppError::Conflict(format!("document {} exists", key.id)));
            }
            t.insert(key.tuple(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn get_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
    ) -> StoreResult<Option<Document>> {
        let key = Key::of(project, collection, id.as_str());
        self.read(|txn| {
            let t = txn.open_table(DOCUMENTS).db()?;
            match t.get(key.tuple()).db()? {
                Some(v) => Ok(Some(key.document(decode("documents", v.value())?))),
                None => Ok(None),
            }
        })
    }

    async fn find_documents(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        q: &DocQuery,
    ) -> StoreResult<Vec<Document>> {
        let (p, c) = (project.as_str(), collection.as_str());
        let end = after_all(c);
        // Like MongoDB's maxTimeMS: a filter too costly for the collection gives up.
        let deadline = std::time::Instant::now() + q.max_time;
        self.read(|txn| {
            let t = txn.open_table(DOCUMENTS).db()?;
            let from = match &q.after {
                Some(a) => std::ops::Bound::Excluded((p, c, a.as_str())),
                None => std::ops::Bound::Included((p, c, "")),
            };
            let to = std::ops::Bound::Excluded((p, end.as_str(), ""));
            let mut hits: Vec<DocumentBody> = Vec::new();
            // Unsorted, only `skip + limit` hits are needed; sorted, every hit is.
            let enough = if q.sort.0.is_empty() {
                q.skip.saturating_add(q.limit)
            } else {
                usize::MAX
            };
            for (i, entry) in t.range((from, to)).db()?.enumerate() {
                if hits.len() >= enough {
                    break;
                }
                if i % 64 == 63 && std::time::Instant::now() > deadline {
                    return Err(
                        switchboard_handlers::core::data::documents::query_ran_too_long(q.max_time),
                    );
                }
                let (_, v) = entry.db()?;
                let body: DocumentBody = decode("documents", v.value())?;
                if q.guard.as_ref().is_some_and(|g| !g.admits(&body)) {
                    continue;
                }
                if q.filter.matches(&body) {
                    hits.push(body);
                }
            }
            if !q.sort.0.is_empty() {
                hits.sort_by(|a, b| q.sort.compare(a, b));
            }
            Ok(hits
                .into_iter()
                .skip(q.skip)
                .take(q.limit)
                .map(|body| Document {
                    project_id: project.clone(),
                    collection_id: collection.clone(),
                    body,
                })
                .collect())
        })
    }

    async fn patch_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        set: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>> {
        let set = set.clone();
        self.rewrite(
            Key::of(project, collection, id.as_str()),
            guard,
            move |body| {
                for (k, v) in set {
                    if k != "id" {
                        body.insert(k, v);
                    }
                }
            },
        )
        .await
    }

    async fn replace_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        body: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>> {
        let mut new = body.clone();
        new.insert("id".to_owned(), serde_json::Value::String(id.to_string()));
        self.rewrite(
            Key::of(project, collection, id.as_str()),
            guard,
            move |body| {
                *body = new;
            },
        )
        .await
    }

    async fn count_collections(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        up_to: usize,
    ) -> StoreResult<(usize, bool)> {
        let p = project.as_str();
        self.read(|txn| {
            let t = txn.open_table(DOCUMENTS).db()?;
            let first = |from: &str| -> StoreResult<Option<String>> {
                match t.range((p, from, "")..).db()?.next() {
                    Some(entry) => {
                        let (k, _) = entry.db()?;
                        let (kp, kc, _) = k.value();
                        Ok((kp == p).then(|| kc.to_owned()))
                    }
                    None => Ok(None),
                }
            };
            let exists = first(collection.as_str())?.is_some_and(|c| c == collection.as_str());
            // Hop from collection to collection: the key after every id of `c` starts the next.
            let mut count = 0;
            let mut from = String::new();
            while count < up_to {
                match first(&from)? {
                    Some(c) => {
                        count += 1;
                        from = after_all(&c);
                    }
                    None => break,
                }
            }
            Ok((count, exists))
        })
    }

    async fn list_collections(
        &self,
        project: &ProjectId,
        after: Option<&CollectionId>,
        limit: usize,
    ) -> StoreResult<Vec<CollectionId>> {
        let p = project.as_str();
        self.read(|txn| {
            let t = txn.open_table(DOCUMENTS).db()?;
            // Hop from collection to collection: one range read per collection listed.
            let mut from = after.map_or_else(String::new, |c| after_all(c.as_str()));
            let mut out = Vec::new();
            while out.len() < limit {
                let Some(entry) = t.range((p, from.as_str(), "")..).db()?.next() else {
                    break;
                };
                let (k, _) = entry.db()?;
                let (kp, kc, _) = k.value();
                if kp != p {
                    break;
                }
                from = after_all(kc);
                out.push(CollectionId::try_from(kc).map_err(AppError::internal)?);
            }
            Ok(out)
        })
    }

    async fn delete_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Document>> {
        let key = Key::of(project, collection, id.as_str());
        let guard = guard.cloned();
        self.write(move |txn| {
            let mut t = txn.open_table(DOCUMENTS).db()?;
            let Some(doc) = guarded(&t, &key, guard.as_ref())? else {
                return Ok(None);
            };
            t.remove(key.tuple()).db()?;
            Ok(Some(doc))
        })
        .await
    }
}
