//! REST response bodies as types, for the OpenAPI document (`openapi.rs`): what the handlers
//! answer, named. A contract test checks real answers against their schemas.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use switchboard_handlers::core::error::ErrorBody;
use switchboard_handlers::core::ids::{IntegrationId, MessageId, ProjectId};
use switchboard_handlers::core::model::{
    Chat, Integration, Message, Project, ReadSummary, WalletAddress, WalletTransaction,
};
use switchboard_handlers::core::time::Timestamp;

/// Every error: `{ "error": { code, message } }` with a fitting HTTP status.
#[derive(Serialize, JsonSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

#[derive(Serialize, JsonSchema)]
pub struct Readiness {
    /// `ready`, `starting` or `unavailable`.
    pub status: String,
    /// The backing services that did not answer (with 503).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub down: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

#[derive(Serialize, JsonSchema)]
pub struct ChatList {
    pub chats: Vec<Chat>,
}

/// A page of a chat's messages, newest first, each with who has read it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub messages: Vec<PageMessage>,
    /// The id to pass as `before` for the next older page; `null` on the last page.
    pub next_cursor: Option<MessageId>,
}

/// A message of a history page: the message's fields, `readCount` (how many participants have
/// read it) and `readBy` (the first 10 of them with their first `readAt`, earliest first).
#[derive(Serialize, JsonSchema)]
pub struct PageMessage {
    #[serde(flatten)]
    pub message: Message,
    #[serde(flatten)]
    pub read: ReadSummary,
}

/// A document: its fields, `id` included.
pub type DocumentBody = Map<String, Value>;

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentPage {
    pub documents: Vec<DocumentBody>,
    /// Pass as `after` for the next page (default order only); `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Integrations as clients see them: `headers` values and `webhookSecret` are `********`.
#[derive(Serialize, JsonSchema)]
pub struct IntegrationList {
    pub integrations: Vec<Integration>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredWebhookEvent {
    pub id: String,
    pub integration_id: IntegrationId,
    pub project_id: ProjectId,
    pub body: Value,
    pub received_at: Timestamp,
}

#[derive(Serialize, JsonSchema)]
pub struct WebhookEventList {
    pub events: Vec<StoredWebhookEvent>,
}

#[derive(Serialize, JsonSchema)]
pub struct AddressList {
    pub addresses: Vec<WalletAddress>,
}

/// A page of a project's wallet transactions, newest first.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionPage {
    pub transactions: Vec<WalletTransaction>,
    /// The id to pass as `before` for the next older page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The answer to a verified webhook call: stored, or a replay of one already stored.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum WebhookReceipt {
    #[serde(rename_all = "camelCase")]
    Stored {
        id: String,
        received_at: Timestamp,
    },
    Duplicate {
        duplicate: bool,
    },
}
