//! `switchboard export` / `import`: a store's data as JSON Lines, one record per line with a
//! `kind` and the core's own serde shape, so data moves between the embedded store and MongoDB
//! (either way) without loss. Lines are canonical (object keys sorted, records in a fixed
//! order), so two stores holding the same data export the same bytes. Import goes through the
//! store ports and is idempotent: a record whose id is already stored is skipped or upserted.
//!
//! Not carried: integration run counters and message idempotency keys (clientMessageId), which
//! only matter for a few seconds around a send.

mod export;
mod files;
mod import;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use switchboard_handlers::core::ids::{ChatId, MessageId, ProjectId, UserId};
use switchboard_handlers::core::model::{
    Call, Chat, Document, Integration, Message, Project, User, WalletAddress, WalletTransaction,
    WebhookEvent,
};
use switchboard_handlers::core::ports::{StoreResult, StoredApp};
use switchboard_handlers::core::time::Timestamp;

pub use crate::embedded::{ChannelRecord, MessageRecord};
pub use export::export;
pub use files::{export_file, import_file};
pub use import::{ImportReport, import};

/// That `user` read `message` of `chat` at `read_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub message_id: MessageId,
    pub read_at: Timestamp,
}

/// One line of an export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Record {
    Project(Project),
    User(User),
    Chat(Chat),
    Message(Message),
    Receipt(Receipt),
    Call(Call),
    Document(Document),
    Integration(Integration),
    WebhookEvent(WebhookEvent),
    WalletAddress(WalletAddress),
    WalletTransaction(WalletTransaction),
    App(StoredApp),
    RealtimeChannel(ChannelRecord),
    RealtimeMessage(MessageRecord),
    #[serde(rename_all = "camelCase")]
    RealtimeRetention {
        project_id: ProjectId,
        days: u32,
    },
}

/// What an export needs that the store ports cannot list. Each answer is in id order.
#[async_trait]
pub trait Dump: Send + Sync {
    async fn all_users(&self) -> StoreResult<Vec<User>>;
    /// The chat's receipts by (user, message).
    async fn receipts(&self, chat: &ChatId) -> StoreResult<Vec<Receipt>>;
    async fn calls(&self, project: &ProjectId) -> StoreResult<Vec<Call>>;
    /// By (collection, id).
    async fn documents(&self, project: &ProjectId) -> StoreResult<Vec<Document>>;
    async fn transactions(&self, project: &ProjectId) -> StoreResult<Vec<WalletTransaction>>;
}

/// Object keys sorted at every depth: the same data gives the same bytes whatever order a store
/// kept the keys in.
fn canonical(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(canonical).collect())
        }
        other => other,
    }
}
