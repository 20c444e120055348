//! Chats over REST: list and create per project, read one, and cursor-paginated history.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use switchboard_handlers::core::access::{require_member, require_participant};
use switchboard_handlers::core::chat::{self, CreateChat};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{ChatId, MessageId, ProjectId};

use super::AppState;
use super::bodies::{MessagePage, PageMessage};
use super::error::ApiResult;
use super::extract::{Caller, JsonBody, QueryParams};

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 100;
/// Readers named per message of a history page (all are counted): a chat of 1,000
/// participants still answers a page in at most `MAX_PAGE × READ_BY` receipts.
pub const READ_BY: usize = 10;

fn project_id(p: String) -> Result<ProjectId, AppError> {
    ProjectId::try_from(p).map_err(AppError::invalid)
}

/// `GET /api/projects/{p}/chats`: the caller's chats; every chat for admins.
pub async fn list(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let member = require_member(st.core.store.as_ref(), &actor, &project_id(p)?).await?;
    let only = (!actor.is_admin()).then_some(&actor.id);
    let chats = st.core.store.list_chats(member.project_id(), only).await?;
    Ok(Json(json!({ "chats": chats })))
}

/// `POST /api/projects/{p}/chats` → 201 with the chat (the rules: `core::chat::create`).
pub async fn create(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    JsonBody(req): JsonBody<CreateChat>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let chat = chat::create(&st.core, &actor, &project_id(p)?, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(chat).map_err(AppError::internal)?),
    ))
}

/// `GET /api/chats/{id}`: participants and admins.
pub async fn get(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = ChatId::try_from(id).map_err(AppError::invalid)?;
    let p = require_participant(st.core.store.as_ref(), &actor, &id, None).await?;
    Ok(Json(
        serde_json::to_value(p.chat).map_err(AppError::internal)?,
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Page {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET /api/chats/{id}/messages?limit=&before=`: newest first, each message with its read
/// summary; `nextCursor` is the id to pass as `before` for the next older page, or null when
/// there is none.
pub async fn messages(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    QueryParams(page): QueryParams<Page>,
) -> ApiResult<Json<MessagePage>> {
    let id = ChatId::try_from(id).map_err(AppError::invalid)?;
    let limit = super::extract::page_limit(page.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?;
    let before = match page.before.as_deref() {
        None | Some("") => None,
        Some(b) => Some(MessageId::try_from(b).map_err(AppError::invalid)?),
    };
    let p = require_participant(st.core.store.as_ref(), &actor, &id, None).await?;
    let mut list = st
        .core
        .store
        .list_messages(&p.chat.id, limit + 1, before.as_ref())
        .await?;
    let more = list.len() > limit;
    list.truncate(limit);
    let next_cursor = if more {
        list.last().map(|m| m.id.clone())
    } else {
        None
    };
    let ids: Vec<MessageId> = list.iter().map(|m| m.id.clone()).collect();
    let reads = st
        .core
        .store
        .read_summaries(&p.chat.id, &ids, READ_BY)
        .await?;
    let messages = list
        .into_iter()
        .zip(
            reads
                .into_iter()
                .chain(std::iter::repeat_with(Default::default)),
        )
        .map(|(message, read)| PageMessage { message, read })
        .collect();
    Ok(Json(MessagePage {
        messages,
        next_cursor,
    }))
}
