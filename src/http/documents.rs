//! The REST data API: `/api/projects/{p}/collections/{c}/documents[/{d}]`. Project members
//! (JWT), admins and API keys; the collection's access rule applies to every read and write,
//! and every write is delivered to subscribers like any other change.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use switchboard_handlers::core::data::documents::{self, DataScope, ListParams};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{CollectionId, DocumentId, ProjectId};
use switchboard_handlers::core::model::DocumentBody;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, JsonBody, QueryParams};

async fn scope(
    st: &AppState,
    actor: &switchboard_handlers::core::access::Actor,
    p: String,
    c: String,
) -> Result<DataScope, AppError> {
    let p = ProjectId::try_from(p).map_err(AppError::invalid)?;
    let c = CollectionId::try_from(c).map_err(AppError::invalid)?;
    documents::scope(&st.core, actor, &p, &c).await
}

fn doc_id(d: String) -> Result<DocumentId, AppError> {
    DocumentId::try_from(d).map_err(AppError::invalid)
}

/// The body as a document, checked before any authorization (as on sockets).
fn object(v: Value) -> Result<DocumentBody, AppError> {
    match v {
        Value::Object(m) => {
            documents::check_body(&m)?;
            Ok(m)
        }
        _ => Err(AppError::invalid("the body must be a JSON object")),
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// A filter in the live-query language, as JSON.
    filter: Option<String>,
    /// `field,-other`.
    sort: Option<String>,
    limit: Option<usize>,
    skip: Option<usize>,
    after: Option<String>,
}

/// `GET …/documents?filter=&sort=&limit=&skip=&after=` → `{ documents, nextCursor }`.
pub async fn list(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, c)): Path<(String, String)>,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<Value>> {
    // Validation before authorization, as on sockets.
    let filter = q
        .filter
        .as_deref()
        .map(serde_json::from_str::<Value>)
        .transpose()
        .map_err(|e| AppError::invalid(format!("filter is not JSON: {e}")))?;
    let after = q.after.map(doc_id).transpose()?;
    let s = scope(&st, &actor, p, c).await?;
    let page = documents::list(
        &st.core,
        &s,
        ListParams {
            filter,
            sort: q.sort,
            limit: q.limit,
            skip: q.skip,
            after,
        },
    )
    .await?;
    Ok(Json(
        json!({ "documents": page.documents, "nextCursor": page.next_cursor }),
    ))
}

/// `POST …/documents`: the body is the document (`id` optional) → 201 with the stored document.
pub async fn create(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, c)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = object(body)?;
    let s = scope(&st, &actor, p, c).await?;
    let doc = documents::create(&st.core, &s, body).await?;
    Ok((StatusCode::CREATED, Json(Value::Object(doc))))
}

pub async fn get(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, c, d)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let id = doc_id(d)?;
    let s = scope(&st, &actor, p, c).await?;
    Ok(Json(Value::Object(
        documents::get(&st.core, &s, &id).await?,
    )))
}

/// `PATCH`: merges the given top-level fields (`$set`).
pub async fn patch(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, c, d)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let id = doc_id(d)?;
    let body = object(body)?;
    let s = scope(&st, &actor, p, c).await?;
    Ok(Json(Value::Object(
        documents::patch(&st.core, &s, &id, body).await?,
    )))
}

/// `PUT`: replaces the whole document (it must exist; `POST` creates).
pub async fn replace(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, c, d)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let id = doc_id(d)?;
    let body = object(body)?;
    let s = scope(&st, &actor, p, c).await?;
    Ok(Json(Value::Object(
        documents::replace(&st.core, &s, &id, body).await?,
    )))
}

/// `DELETE` → 204.
pub async fn delete(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path((p, c, d)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let id = doc_id(d)?;
    let s = scope(&st, &actor, p, c).await?;
    documents::delete(&st.core, &s, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
