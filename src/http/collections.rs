//! `GET /api/projects/{p}/collections`: the collections of a project that hold documents, by
//! name, with the access rule the project declares for each (none: `members`), so a client
//! (the console's Collections view) can offer them instead of asking for a name.

use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use switchboard_handlers::core::access::require_member;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{CollectionId, ProjectId};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, QueryParams};

/// At most this many per page; a project holds at most `MAX_COLLECTIONS_PER_PROJECT` (100 by
/// default), so one page usually lists them all.
pub const MAX_PAGE: usize = 500;
pub const DEFAULT_PAGE: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Page {
    /// 1 to 500, default 100.
    limit: Option<String>,
    /// The `nextCursor` of the previous page: a collection name.
    after: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionEntry {
    pub name: CollectionId,
    /// The project's declared rule (`members` or `owner:<field>`); absent when none is declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionList {
    pub collections: Vec<CollectionEntry>,
    /// The name to pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<CollectionId>,
}

/// Project members, admins and API keys.
pub async fn list(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    QueryParams(page): QueryParams<Page>,
) -> ApiResult<Json<CollectionList>> {
    let pid = ProjectId::try_from(p).map_err(AppError::invalid)?;
    let limit = super::extract::page_limit(page.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?;
    let after = match page.after.as_deref() {
        None | Some("") => None,
        Some(a) => Some(CollectionId::try_from(a).map_err(AppError::invalid)?),
    };
    let m = require_member(st.core.store.as_ref(), &actor, &pid).await?;
    let mut names = st
        .core
        .store
        .list_collections(m.project_id(), after.as_ref(), limit + 1)
        .await?;
    let more = names.len() > limit;
    names.truncate(limit);
    let next_cursor = if more { names.last().cloned() } else { None };
    let rules = &m.project.collections;
    let collections = names
        .into_iter()
        .map(|name| CollectionEntry {
            access: rules.get(name.as_str()).map(|r| r.access.clone()),
            name,
        })
        .collect();
    Ok(Json(CollectionList {
        collections,
        next_cursor,
    }))
}
