//! The data API's use cases (REST today; any front end tomorrow): create, read, list, patch,
//! replace and delete documents, with the collection's access rule applied to every read and
//! write, and every write published as a `DocumentChange`.

use serde_json::Value;

use super::change::{ChangeKind, DocumentChange};
use super::rules::AccessRule;
use crate::Core;
use crate::access::{Actor, ProjectMember, require_member};
use crate::error::AppError;
use crate::ids::{CollectionId, DocumentId, MAX_ID_LEN, ProjectId, new_object_id};
use crate::model::{Document, DocumentBody};
use crate::ports::{DocQuery, FieldGuard};
use crate::query::{Filter, MAX_FILTER_DEPTH, Sort};
use crate::time::Timestamp;

/// What a find that outlived its `max_time` answers: the client's filter (or sort) was too
/// costly for the collection, which narrowing it fixes.
pub fn query_ran_too_long(max: std::time::Duration) -> AppError {
    AppError::invalid(format!(
        "the query ran longer than {} ms; narrow the filter",
        max.as_millis()
    ))
}

/// Listing limits (contract: limit ≤ 1000).
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// A member's handle on one collection: who asks, where, and under which rule.
#[derive(Debug, Clone)]
pub struct DataScope {
    pub member: ProjectMember,
    pub collection: CollectionId,
    pub rule: AccessRule,
}

impl DataScope {
    pub fn project_id(&self) -> &ProjectId {
        self.member.project_id()
    }

    pub fn actor(&self) -> &Actor {
        &self.member.actor
    }

    pub fn key(&self) -> (ProjectId, CollectionId) {
        (self.project_id().clone(), self.collection.clone())
    }

    fn guard(&self) -> Option<FieldGuard> {
        self.rule.guard(self.actor())
    }
}

/// Project membership plus a collection name the stores can hold: documents live in
/// `data.<project>.<collection>`, so neither may make that name ambiguous or invalid.
pub async fn scope(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    collection: &CollectionId,
) -> Result<DataScope, AppError> {
    check_collection_name(collection)?;
    let member = require_member(core.store.as_ref(), actor, project).await?;
    if project.as_str().contains(['.', '$']) {
        return Err(AppError::invalid(format!(
            "project {project} cannot hold collections (its id contains '.' or '$')"
        )));
    }
    let rule = AccessRule::of(&member.project, collection);
    Ok(DataScope {
        member,
        collection: collection.clone(),
        rule,
    })
}

fn check_collection_name(c: &CollectionId) -> Result<(), AppError> {
    let s = c.as_str();
    if s.len() > 64
        || !s
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
        || s.starts_with('.')
        || s.ends_with('.')
    {
        return Err(AppError::invalid(format!(
            "collectionId {s:?}: use at most 64 of A-Z a-z 0-9 _ - . (not at either end)"
        )));
    }
    Ok(())
}

/// Field names a document may use: MongoDB reserves `$`-prefixed names, and dots would make
/// dotted query paths ambiguous. `_id` is where the stores keep `id`, so a body may not set it.
/// Nesting is bounded like filters.
pub fn check_body(body: &DocumentBody) -> Result<(), AppError> {
    if body.contains_key("_id") {
        return Err(AppError::invalid(
            "field name \"_id\" is reserved: a document's id is its \"id\" field",
        ));
    }
    fn walk_map(m: &DocumentBody, path: &str, depth: usize) -> Result<(), AppError> {
        for (k, v) in m {
            if k.is_empty() || k.starts_with('$') || k.contains('.') || k.contains('\0') {
                return Err(AppError::invalid(format!(
                    "field name {k:?} at {path:?}: names may not be empty, start with '$' or contain '.'"
                )));
            }
            walk(v, &format!("{path}.{k}"), depth + 1)?;
        }
        Ok(())
    }
    fn walk(v: &Value, path: &str, depth: usize) -> Result<(), AppError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(AppError::invalid(format!(
                "document nests deeper than {MAX_FILTER_DEPTH} levels at {path}"
            )));
        }
        match v {
            Value::Object(m) => walk_map(m, path, depth),
            Value::Array(a) => a.iter().try_for_each(|v| walk(v, path, depth + 1)),
            _ => Ok(()),
        }
    }
    walk_map(body, "", 0)
}

fn id_of(body: &DocumentBody) -> Result<Option<DocumentId>, AppError> {
    match body.get("id") {
        None => Ok(None),
        Some(Value::String(s)) => DocumentId::try_from(s.as_str())
            .map(Some)
            .map_err(AppError::invalid),
        Some(_) => Err(AppError::invalid(format!(
            "id must be a string of at most {MAX_ID_LEN} characters"
        ))),
    }
}

/// Non-admins write only documents they own, and cannot give them away. A patch (`fill`
/// false) may leave the owner field out, but one that sets the field's top-level object
/// (`meta` for `owner:meta.owner`) replaces it whole, so it must name the caller there too:
/// otherwise an array or another shape there would drop the owner, or (MongoDB matching
/// `meta.owner` inside arrays) hand the document to someone else.
fn claim(scope: &DataScope, body: &mut DocumentBody, fill: bool) -> Result<(), AppError> {
    let Some(guard) = scope.guard() else {
        return Ok(());
    };
    let Some(field) = scope.rule.owner_field() else {
        return Err(AppError::forbidden(format!(
            "collection {} is readable by admins only",
            scope.collection
        )));
    };
    let head = field.split('.').next().unwrap_or(field);
    match crate::ports::lookup(body, field) {
        Some(Value::String(s)) if *s == guard.value => Ok(()),
        None if fill && !field.contains('.') => {
            body.insert(field.to_owned(), Value::String(guard.value));
            Ok(())
        }
        None if !fill && !body.contains_key(head) => Ok(()),
        _ => Err(AppError::forbidden(format!(
            "{field} must be your own user id in collection {}",
            scope.collection
        ))),
    }
}

/// Collections come into being with their first document, so each project holds at most
/// `max_collections_per_project` of them. Concurrent first writes into new collections may
/// overshoot by their number (the check and the insert are two operations).
async fn check_collection_room(core: &Core, scope: &DataScope) -> Result<(), AppError> {
    let cap = core.limits.max_collections_per_project;
    let (count, exists) = core
        .store
        .count_collections(scope.project_id(), &scope.collection, cap)
        .await?;
    if !exists && count >= cap {
        return Err(AppError::invalid(format!(
            "project {} already has {cap} collections, the most allowed; write into an existing one",
            scope.project_id()
        )));
    }
    Ok(())
}

async fn publish(
    core: &Core,
    scope: &DataScope,
    kind: ChangeKind,
    id: DocumentId,
    document: Option<DocumentBody>,
    previous: Option<DocumentBody>,
) {
    core.changes
        .publish(DocumentChange {
            kind,
            project_id: scope.project_id().clone(),
            collection_id: scope.collection.clone(),
            document_id: id,
            document,
            previous,
            changed_at: Timestamp::now(),
        })
        .await;
}

pub async fn create(
    core: &Core,
    scope: &DataScope,
    mut body: DocumentBody,
) -> Result<DocumentBody, AppError> {
    check_body(&body)?;
    let chosen = id_of(&body)?;
    let chose_id = chosen.is_some();
    let id = match chosen {
        Some(id) => id,
        None => DocumentId::try_from(new_object_id()).map_err(AppError::internal)?,
    };
    body.insert("id".to_owned(), Value::String(id.to_string()));
    claim(scope, &mut body, true)?;
    // Ids are shared by every owner of the collection: a member choosing one would learn from a
    // 409 that someone else's document has it. So members let the server choose (the answer is
    // the same whether the id is taken or not); admins, who see everything, still may.
    if chose_id && scope.guard().is_some() {
        return Err(AppError::forbidden(format!(
            "in collection {} the server assigns document ids: send the document without \"id\"",
            scope.collection
        )));
    }
    check_collection_room(core, scope).await?;
    core.store
        .insert_document(&Document {
            project_id: scope.project_id().clone(),
            collection_id: scope.collection.clone(),
            body: body.clone(),
        })
        .await?;
    publish(
        core,
        scope,
        ChangeKind::Created,
        id,
        Some(body.clone()),
        None,
    )
    .await;
    Ok(body)
}

/// A document the caller may read; an unreadable one is reported like a missing one.
pub async fn get(
    core: &Core,
    scope: &DataScope,
    id: &DocumentId,
) -> Result<DocumentBody, AppError> {
    core.store
        .get_document(scope.project_id(), &scope.collection, id)
        .await?
        .map(|d| d.body)
        .filter(|b| scope.rule.can_read(scope.actor(), b))
        .ok_or_else(|| AppError::not_found("document", id.as_str()))
}

#[derive(Debug, Default)]
pub struct ListParams {
    pub filter: Option<Value>,
    pub sort: Option<String>,
    pub limit: Option<usize>,
    pub skip: Option<usize>,
    pub after: Option<DocumentId>,
}

pub struct Page {
    pub documents: Vec<DocumentBody>,
    /// With the default order: the id to pass as `after` for the next page, when there may be one.
    pub next_cursor: Option<String>,
}

pub async fn list(core: &Core, scope: &DataScope, p: ListParams) -> Result<Page, AppError> {
    let filter = match &p.filter {
        Some(v) => Filter::parse(v, &core.limits.filter)?,
        None => Filter::match_all(),
    };
    let sort = match p.sort.as_deref() {
        Some(s) if !s.is_empty() => Sort::parse_spec(s)?,
        _ => Sort::default(),
    };
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AppError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if p.after.is_some() && !sort.0.is_empty() {
        return Err(AppError::invalid(
            "after is a cursor over the default order (by id); with sort, page with skip",
        ));
    }
    let default_order = sort.0.is_empty();
    let docs = core
        .store
        .find_documents(
            scope.project_id(),
            &scope.collection,
            &DocQuery {
                filter,
                sort,
                limit,
                skip: p.skip.unwrap_or(0),
                after: p.after,
                guard: scope.guard(),
                max_time: core.limits.query_max_time,
            },
        )
        .await?;
    let next_cursor = if default_order && docs.len() == limit {
        docs.last()
            .and_then(|d| d.body.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    } else {
        None
    };
    Ok(Page {
        documents: docs.into_iter().map(|d| d.body).collect(),
        next_cursor,
    })
}

fn same_id(body: &DocumentBody, id: &DocumentId) -> Result<(), AppError> {
    match id_of(body)? {
        Some(given) if &given != id => Err(AppError::invalid(format!(
            "body id {given} differs from the path's {id}"
        ))),
        _ => Ok(()),
    }
}

pub async fn patch(
    core: &Core,
    scope: &DataScope,
    id: &DocumentId,
    mut set: DocumentBody,
) -> Result<DocumentBody, AppError> {
    check_body(&set)?;
    same_id(&set, id)?;
    set.remove("id");
    claim(scope, &mut set, false)?;
    let written = core
        .store
        .patch_document(
            scope.project_id(),
            &scope.collection,
            id,
            &set,
            scope.guard().as_ref(),
        )
        .await?
        .ok_or_else(|| AppError::not_found("document", id.as_str()))?;
    let after = written.after.body;
    publish(
        core,
        scope,
        ChangeKind::Updated,
        id.clone(),
        Some(after.clone()),
        Some(written.before.body),
    )
    .await;
    Ok(after)
}

pub async fn replace(
    core: &Core,
    scope: &DataScope,
    id: &DocumentId,
    mut body: DocumentBody,
) -> Result<DocumentBody, AppError> {
    check_body(&body)?;
    same_id(&body, id)?;
    body.insert("id".to_owned(), Value::String(id.to_string()));
    claim(scope, &mut body, true)?;
    let written = core
        .store
        .replace_document(
            scope.project_id(),
            &scope.collection,
            id,
            &body,
            scope.guard().as_ref(),
        )
        .await?
        .ok_or_else(|| AppError::not_found("document", id.as_str()))?;
    let after = written.after.body;
    publish(
        core,
        scope,
        ChangeKind::Updated,
        id.clone(),
        Some(after.clone()),
        Some(written.before.body),
    )
    .await;
    Ok(after)
}

pub async fn delete(core: &Core, scope: &DataScope, id: &DocumentId) -> Result<(), AppError> {
    let gone = core
        .store
        .delete_document(
            scope.project_id(),
            &scope.collection,
            id,
            scope.guard().as_ref(),
        )
        .await?
        .ok_or_else(|| AppError::not_found("document", id.as_str()))?;
    publish(
        core,
        scope,
        ChangeKind::Deleted,
        id.clone(),
        None,
        Some(gone.body),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::memory::MemoryStore;
    use crate::ports::DocumentStore;
    use crate::query::FilterBudget;

    #[tokio::test]
    async fn a_find_past_its_max_time_gives_up_with_a_clear_error() {
        let store = MemoryStore::new();
        let (p, c) = (
            ProjectId::try_from("p").expect("id"),
            CollectionId::try_from("c").expect("id"),
        );
        for i in 0..200 {
            let Value::Object(body) = json!({"id": format!("d{i:03}"), "n": i}) else {
                unreachable!("an object literal");
            };
            store
                .put_document(&Document {
                    project_id: p.clone(),
                    collection_id: c.clone(),
                    body,
                })
                .await
                .expect("put");
        }
        let mut q = DocQuery {
            filter: Filter::parse(&json!({"n": {"$gte": 0}}), &FilterBudget::default())
                .expect("filter"),
            sort: Sort::default(),
            limit: 1000,
            skip: 0,
            after: None,
            guard: None,
            max_time: Duration::ZERO,
        };
        let e = store
            .find_documents(&p, &c, &q)
            .await
            .expect_err("no time to scan 200 documents");
        assert_eq!(e.code(), crate::error::ErrorCode::InvalidPayload);
        assert!(e.public_message().contains("narrow the filter"), "{e}");
        q.max_time = Duration::from_secs(5);
        assert_eq!(
            store.find_documents(&p, &c, &q).await.expect("find").len(),
            200
        );
    }
}
