//! Entities as the contract shows them on the wire (camelCase, `id`, ISO timestamps). Stores
//! translate to and from their own representation; nothing here knows about BSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::ids::{
    AddressId, CallId, ChatId, CollectionId, IntegrationId, MessageId, ProjectId, UserId,
};
use super::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub members: Vec<UserId>,
    /// Per-collection access rules (`"members"` or `"owner:<field>"`); absent means `members`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collections: BTreeMap<String, CollectionRule>,
    pub created_at: Timestamp,
}

impl Project {
    pub fn has_member(&self, user: &UserId) -> bool {
        self.members.iter().any(|m| m == user)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionRule {
    pub access: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub id: ChatId,
    pub project_id: ProjectId,
    pub name: String,
    pub participants: Vec<UserId>,
    pub owner_id: UserId,
    pub created_at: Timestamp,
}

impl Chat {
    pub fn has_participant(&self, user: &UserId) -> bool {
        self.participants.iter().any(|p| p == user)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Text,
    Image,
    File,
    Audio,
    Video,
    Location,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub emoji: String,
    pub user_ids: Vec<UserId>,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    pub sender_id: UserId,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub content: serde_json::Value,
    pub reply_to: Option<MessageId>,
    pub mentions: Vec<UserId>,
    pub reactions: Vec<Reaction>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
}

/// One reader of a message and when they first read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reader {
    pub user_id: UserId,
    pub read_at: Timestamp,
}

/// Who has read one message: every reader counted, the earliest few named (readAt, then user id,
/// ascending), so a message read by a thousand participants still answers in a few entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadSummary {
    pub read_count: u64,
    pub read_by: Vec<Reader>,
}

/// Distinct reactions (emoji) one message may carry: bounds the stored document and every
/// `message:reaction`, which carries the whole list.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 256;
/// Distinct reactions one user may put on one message, so one user cannot fill a message's
/// reactions alone.
pub const MAX_REACTIONS_PER_USER: usize = 32;

impl Message {
    /// Adds `user` to the reaction `emoji` or removes them if present; true when added. A new
    /// emoji goes last (first-reaction order), an emoji left without users is dropped, and
    /// `count` always equals `user_ids.len()`. Adding beyond `MAX_REACTIONS_PER_USER` of the
    /// user's or `MAX_REACTIONS_PER_MESSAGE` distinct emoji is a CONFLICT and changes nothing;
    /// removing always works. Both stores apply exactly this rule.
    pub fn toggle_reaction(&mut self, emoji: &str, user: &UserId) -> Result<bool, AppError> {
        let existing = self.reactions.iter().position(|r| r.emoji == emoji);
        let removing = existing.is_some_and(|i| self.reactions[i].user_ids.contains(user));
        if !removing {
            let mine = self
                .reactions
                .iter()
                .filter(|r| r.user_ids.contains(user))
                .count();
            if mine >= MAX_REACTIONS_PER_USER {
                return Err(AppError::Conflict(format!(
                    "at most {MAX_REACTIONS_PER_USER} reactions per user on one message"
                )));
            }
            if existing.is_none() && self.reactions.len() >= MAX_REACTIONS_PER_MESSAGE {
                return Err(AppError::Conflict(format!(
                    "at most {MAX_REACTIONS_PER_MESSAGE} distinct reactions on one message"
                )));
            }
        }
        let Some(i) = existing else {
            self.reactions.push(Reaction {
                emoji: emoji.to_owned(),
                user_ids: vec![user.clone()],
                count: 1,
            });
            return Ok(true);
        };
        let r = &mut self.reactions[i];
        let added = match r.user_ids.iter().position(|u| u == user) {
            Some(j) => {
                r.user_ids.remove(j);
                false
            }
            None => {
                r.user_ids.push(user.clone());
                true
            }
        };
        r.count = r.user_ids.len();
        if r.user_ids.is_empty() {
            self.reactions.remove(i);
        }
        Ok(added)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CallType {
    Audio,
    Video,
}

/// ringing → accepted | rejected | missed; accepted or ringing → ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    Ringing,
    Accepted,
    Rejected,
    Missed,
    Ended,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Accepted => "accepted",
            CallState::Rejected => "rejected",
            CallState::Missed => "missed",
            CallState::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub id: CallId,
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    pub caller_id: UserId,
    #[serde(rename = "type")]
    pub kind: CallType,
    /// The invited users (the caller is not among them).
    pub participants: Vec<UserId>,
    pub state: CallState,
    pub created_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

impl Call {
    /// Caller or invited participant.
    pub fn involves(&self, user: &UserId) -> bool {
        &self.caller_id == user || self.participants.iter().any(|p| p == user)
    }
}

/// A document of a project collection: a JSON object whose `id` field is the document id.
pub type DocumentBody = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub project_id: ProjectId,
    pub collection_id: CollectionId,
    /// The document's fields, including `id`.
    pub body: DocumentBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub method: String,
    pub path: String,
}

/// What secrets look like when they leave the server. Sent back unchanged in an update, it
/// means "keep the stored value".
pub const MASK: &str = "********";

/// An integration as stored. Its `headers` and `webhook_secret` are secrets: `masked()` is the
/// only form that leaves the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub id: IntegrationId,
    pub project_id: ProjectId,
    pub name: String,
    pub base_url: String,
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Outcome counters of an integration's executions (`integration:status`), kept apart from its
/// configuration so that editing the configuration never resets them by accident.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationStats {
    #[serde(default)]
    pub executions: u64,
    #[serde(default)]
    pub failures: u64,
    #[serde(default)]
    pub last_executed_at: Option<Timestamp>,
    /// The last execution's error; `None` once an execution succeeds again.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// An inbound webhook call whose signature checked out, as stored in `webhook_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub id: String,
    pub integration_id: IntegrationId,
    pub project_id: ProjectId,
    /// The body as JSON when it parses as JSON, else as a string.
    pub body: serde_json::Value,
    pub received_at: Timestamp,
    /// Replay keys: the signature's hex and the sender's delivery id header, each unique per
    /// integration among stored events. Not shown to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

impl Integration {
    pub fn masked(&self) -> Integration {
        let mut m = self.clone();
        for v in m.headers.values_mut() {
            *v = MASK.to_owned();
        }
        if m.webhook_secret.is_some() {
            m.webhook_secret = Some(MASK.to_owned());
        }
        m
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletAddress {
    pub id: AddressId,
    pub user_id: UserId,
    pub project_id: ProjectId,
    pub chain: String,
    pub currency: String,
    pub address: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TxDirection {
    In,
    Out,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TxStatus {
    Pending,
    Confirmed,
    Failed,
}

/// A wallet transaction as the contract emits it. `amount` is a decimal string, never a float.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletTransaction {
    pub id: String,
    pub address_id: AddressId,
    pub project_id: ProjectId,
    pub chain: String,
    pub currency: String,
    pub amount: String,
    pub direction: TxDirection,
    pub tx_hash: String,
    pub status: TxStatus,
    pub confirmations: u64,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let i: Integration = serde_json::from_value(serde_json::json!({
            "id": "i1", "projectId": "p", "name": "n", "baseUrl": "http://x",
            "headers": {"Authorization": "Bearer s3cret"}, "webhookSecret": "w"
        }))
        .expect("valid");
        let m = serde_json::to_string(&i.masked()).expect("serializes");
        assert!(!m.contains("s3cret") && !m.contains("\"w\""));
        assert!(i.enabled);
    }
}
