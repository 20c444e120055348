//! The shapes of what the server sends on the Socket.IO surface: ack data and server → client
//! event payloads, as types. The handlers' event table names one of them for every ack and
//! every server event, and the published contracts (TypeScript, JSON Schema, AsyncAPI;
//! docs/contracts.md) are generated from them. A contract test validates the payloads a running
//! server actually sends against these types' schemas, so they cannot drift apart unnoticed.
//!
//! Entities that travel whole (`Message`, `WalletTransaction`) are the model's own types.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{AppError, ErrorCode};
use crate::ids::{
    AddressId, CallId, ChatId, CollectionId, DocumentId, IntegrationId, MessageId, ProjectId,
    UserId,
};
use crate::model::{CallType, Message, Reaction};
use crate::time::Timestamp;

/// Derives for every payload type: serialized camelCase, described in TypeScript and JSON
/// Schema.
macro_rules! payload {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name { $($body)* }
    };
}

/// A payload as the JSON the fan-out and the acks carry.
pub fn to_json<T: Serialize>(payload: &T) -> Result<Value, AppError> {
    serde_json::to_value(payload).map_err(AppError::internal)
}

/// A document's fields, `id` included.
pub type DocumentBody = Map<String, Value>;

payload! {
    /// `{}`: an ack that carries nothing more than success.
    pub struct Empty {}
}

payload! {
    /// `from`: who sent it, `{ userId, name }`.
    pub struct Sender {
        pub user_id: UserId,
        pub name: String,
    }
}

// ------------------------------------------------------------------------------- errors

payload! {
    /// `error`: a refused event, also told to the sender beside the failure ack.
    pub struct ErrorEvent {
        pub event: String,
        pub code: ErrorCode,
        pub message: String,
    }
}

payload! {
    /// `integration:error`: a refused `integration:*` event.
    pub struct IntegrationError {
        pub integration_id: Option<String>,
        pub code: ErrorCode,
        pub message: String,
    }
}

// ------------------------------------------------------------------------------- project and data

payload! {
    pub struct ProjectIdOnly {
        pub project_id: ProjectId,
    }
}

/// The `type` of a `subscribed` / `unsubscribed` payload.
#[derive(Debug, Clone, Copy, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CollectionKind {
    Collection,
}

#[derive(Debug, Clone, Copy, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    Document,
}

#[derive(Debug, Clone, Copy, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueryKind {
    Query,
}

payload! {
    /// `subscribed` / `unsubscribed` for a collection, and the ack of both.
    pub struct CollectionSubscription {
        #[serde(rename = "type")]
        pub kind: CollectionKind,
        pub project_id: ProjectId,
        pub collection_id: CollectionId,
    }
}

payload! {
    /// `subscribed` for a document, with its current state (`null`: none, or not readable).
    pub struct DocumentSubscription {
        #[serde(rename = "type")]
        pub kind: DocumentKind,
        pub project_id: ProjectId,
        pub collection_id: CollectionId,
        pub document_id: DocumentId,
        pub document: Option<DocumentBody>,
    }
}

payload! {
    /// `subscribed` for a live query, with the current result set.
    pub struct QuerySubscription {
        #[serde(rename = "type")]
        pub kind: QueryKind,
        pub project_id: ProjectId,
        pub collection_id: CollectionId,
        pub query_id: String,
        pub documents: Vec<DocumentBody>,
    }
}

payload! {
    /// `unsubscribed` for a live query.
    pub struct QueryUnsubscription {
        #[serde(rename = "type")]
        pub kind: QueryKind,
        pub query_id: String,
    }
}

/// `subscribed`: one of the three subscriptions.
#[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Subscribed {
    Collection(CollectionSubscription),
    Document(DocumentSubscription),
    Query(QuerySubscription),
}

/// `unsubscribed`: a collection or a live query.
#[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Unsubscribed {
    Collection(CollectionSubscription),
    Query(QueryUnsubscription),
}

payload! {
    /// `document:created`, `document:updated`, `document:deleted`.
    pub struct DocumentChanged {
        pub project_id: ProjectId,
        pub collection_id: CollectionId,
        pub document_id: DocumentId,
        /// After the change; `null` for a delete.
        pub document: Option<DocumentBody>,
        /// Before the change, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub previous: Option<DocumentBody>,
        pub changed_at: Timestamp,
    }
}

payload! {
    /// `query:added`, `query:changed`, `query:removed`.
    pub struct QueryChanged {
        pub query_id: String,
        pub document_id: DocumentId,
        pub document: Option<DocumentBody>,
    }
}

payload! {
    /// `custom:event`: the sender's payload as given, plus `from`.
    pub struct CustomEventRelayed {
        pub project_id: ProjectId,
        pub from: Sender,
        #[serde(flatten)]
        pub rest: Map<String, Value>,
    }
}

// ------------------------------------------------------------------------------- chat

payload! {
    /// `chat:joined` and the ack of `chat:join`; with `since`, the messages after it.
    pub struct ChatJoined {
        pub chat_id: ChatId,
        pub project_id: ProjectId,
        pub participants: Vec<UserId>,
        pub unread_count: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub messages: Option<Vec<Message>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub has_more: Option<bool>,
    }
}

payload! {
    /// `chat:left`, and the ack of `chat:leave` and `chat:typing:*`.
    pub struct ChatIdOnly {
        pub chat_id: ChatId,
    }
}

payload! {
    /// `user:typing:start`, `user:typing:stop`, and `user:online` / `user:offline` of a chat.
    pub struct ChatUser {
        pub chat_id: ChatId,
        pub user_id: UserId,
    }
}

payload! {
    /// `user:online` / `user:offline` of a project (`auth:login`, `auth:logout`).
    pub struct ProjectUser {
        pub user_id: UserId,
        pub project_id: ProjectId,
    }
}

/// `user:online` / `user:offline`: in a chat (`chat:join`, `chat:leave`) or in a project
/// (`auth:login`, `auth:logout`).
#[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(untagged)]
pub enum UserSeen {
    Chat(ChatUser),
    Project(ProjectUser),
}

payload! {
    /// `message:sent` and the ack of `message:send`.
    pub struct MessageSent {
        pub message: Message,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_message_id: Option<String>,
    }
}

payload! {
    /// `message:mention`, to mentioned users not in the chat's room.
    pub struct MessageMention {
        pub chat_id: ChatId,
        pub project_id: ProjectId,
        pub message: Message,
    }
}

#[derive(Debug, Clone, Copy, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReactionAction {
    Added,
    Removed,
}

payload! {
    /// `message:reaction` and the ack of `message:react`.
    pub struct MessageReaction {
        pub chat_id: ChatId,
        pub message_id: MessageId,
        pub emoji: String,
        pub user_id: UserId,
        pub action: ReactionAction,
        pub reactions: Vec<Reaction>,
    }
}

payload! {
    /// `message:edited` and the ack of `message:edit`.
    pub struct MessageEdited {
        pub chat_id: ChatId,
        pub message_id: MessageId,
        pub content: Value,
        pub edited_at: Option<Timestamp>,
    }
}

payload! {
    /// `message:deleted` and the ack of `message:delete`.
    pub struct MessageDeleted {
        pub chat_id: ChatId,
        pub message_id: MessageId,
        pub deleted_by: UserId,
        pub deleted_at: Option<Timestamp>,
    }
}

payload! {
    /// `messages:read` and the ack of `messages:mark:read`.
    pub struct MessagesRead {
        pub chat_id: ChatId,
        pub user_id: UserId,
        pub message_ids: Vec<MessageId>,
        pub read_at: Timestamp,
    }
}

// ------------------------------------------------------------------------------- calls

payload! {
    /// The ack of `call:initiate`.
    pub struct CallIdOnly {
        pub call_id: CallId,
    }
}

payload! {
    /// The ack of `call:accept` and `call:reject`: the call's state afterwards.
    pub struct CallAnswered {
        pub call_id: CallId,
        pub state: String,
    }
}

payload! {
    /// The ack of `call:end`.
    pub struct CallEndedAck {
        pub call_id: CallId,
        pub duration_ms: u64,
    }
}

payload! {
    /// `call:incoming`, to the participants.
    pub struct CallIncoming {
        pub call_id: CallId,
        pub chat_id: ChatId,
        #[serde(rename = "type")]
        pub kind: CallType,
        pub caller_id: UserId,
        pub participants: Vec<UserId>,
    }
}

payload! {
    /// `call:accepted`, `call:rejected`, to the caller.
    pub struct CallAnswer {
        pub call_id: CallId,
        pub chat_id: ChatId,
        pub user_id: UserId,
    }
}

payload! {
    /// `call:ended`.
    pub struct CallEnded {
        pub call_id: CallId,
        pub chat_id: ChatId,
        pub ended_by: UserId,
        pub duration_ms: u64,
    }
}

payload! {
    /// `call:missed`.
    pub struct CallMissed {
        pub call_id: CallId,
        pub chat_id: ChatId,
    }
}

payload! {
    /// `call:signal`: SDP or ICE relayed from one participant.
    pub struct CallSignal {
        pub call_id: CallId,
        pub from: UserId,
        pub signal: Value,
    }
}

// ------------------------------------------------------------------------------- presence

payload! {
    /// The ack of `presence:online`.
    pub struct PresenceAnnounced {
        pub project_ids: Vec<ProjectId>,
        pub status: String,
        pub last_seen: Timestamp,
    }
}

payload! {
    /// The ack of `presence:update`: `announced` is false when the user had not announced
    /// presence (nothing to refresh).
    pub struct PresenceRefreshed {
        pub last_seen: Timestamp,
        pub announced: bool,
    }
}

payload! {
    /// `presence:user:online`.
    pub struct PresenceUserOnline {
        pub user_id: UserId,
        pub project_id: ProjectId,
        pub status: String,
        pub last_seen: Timestamp,
        pub metadata: Map<String, Value>,
    }
}

payload! {
    /// `presence:user:offline`.
    pub struct PresenceUserOffline {
        pub user_id: UserId,
        pub project_id: ProjectId,
        pub last_seen: Timestamp,
    }
}

payload! {
    /// One user of `presence:online:list`; `connections` counts their sockets in the cluster.
    pub struct OnlineUser {
        pub user_id: UserId,
        pub status: String,
        pub last_seen: Timestamp,
        pub metadata: Map<String, Value>,
        pub connections: u64,
    }
}

payload! {
    /// `presence:online:list` and the ack of `presence:get:online`.
    pub struct OnlineList {
        pub project_id: ProjectId,
        pub users: Vec<OnlineUser>,
    }
}

payload! {
    /// `session:updated`, to the user's other sockets.
    pub struct SessionUpdated {
        pub project_id: ProjectId,
        pub session_data: Value,
    }
}

// ------------------------------------------------------------------------------- integrations

payload! {
    /// `integration:left`, `integration:webhook:subscribed`, `integration:webhook:unsubscribed`.
    pub struct IntegrationIdOnly {
        pub integration_id: IntegrationId,
    }
}

payload! {
    /// `integration:joined`; `status` is `active`, `error` or `disabled`.
    pub struct IntegrationJoined {
        pub integration_id: IntegrationId,
        pub name: String,
        pub status: String,
    }
}

payload! {
    /// `integration:result`: the endpoint's HTTP status and body.
    pub struct IntegrationResult {
        pub integration_id: IntegrationId,
        pub endpoint: String,
        pub status: u16,
        pub data: Value,
        pub duration_ms: u64,
    }
}

payload! {
    /// `integration:test:result`; `status` is `null` and `error` says why when the endpoint
    /// could not be reached.
    pub struct IntegrationTestResult {
        pub integration_id: IntegrationId,
        pub endpoint: String,
        pub ok: bool,
        pub status: Option<u16>,
        pub duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<String>,
    }
}

payload! {
    /// `integration:status:response`.
    pub struct IntegrationStatus {
        pub integration_id: IntegrationId,
        pub status: String,
        pub last_executed_at: Option<Timestamp>,
        pub last_error: Option<String>,
        pub executions: u64,
        pub failures: u64,
    }
}

payload! {
    /// `integration:webhook`: a verified inbound webhook call.
    pub struct IntegrationWebhook {
        pub integration_id: IntegrationId,
        pub id: String,
        pub body: Value,
        pub received_at: Timestamp,
    }
}

// ------------------------------------------------------------------------------- wallet

/// `wallet:subscribed` / `wallet:unsubscribed` and their acks, by `scope`.
#[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(tag = "scope", rename_all = "lowercase")]
pub enum WalletScope {
    #[serde(rename_all = "camelCase")]
    Address { address_id: AddressId },
    #[serde(rename_all = "camelCase")]
    Project { project_id: ProjectId },
    #[serde(rename_all = "camelCase")]
    Chain {
        chain: String,
        project_id: ProjectId,
    },
    #[serde(rename_all = "camelCase")]
    Currency {
        currency: String,
        project_id: ProjectId,
    },
}

// ------------------------------------------------------------------------------- custom

payload! {
    /// The ack of `custom:broadcast`: the event name as emitted.
    pub struct EventOnly {
        pub event: String,
    }
}

payload! {
    /// `custom:joined`, `custom:left` and their acks.
    pub struct RoomOnly {
        pub room: String,
    }
}

payload! {
    /// The ack of `custom:message`.
    pub struct TargetOnly {
        pub target_user_id: UserId,
    }
}

payload! {
    /// The ack of `custom:file:share`.
    pub struct FileIdOnly {
        pub file_id: String,
    }
}

payload! {
    /// `custom:<event>` from `custom:broadcast` (a room named `channel:<name>` carries the
    /// protocol channels' `{ data, user_id }` instead; docs/protocol.md).
    pub struct CustomBroadcast {
        pub from: Sender,
        pub payload: Value,
    }
}

payload! {
    /// `custom:message`, to the target's sockets.
    pub struct CustomMessage {
        pub from: Sender,
        pub message: Value,
        /// The sender's `type`, `text` when it gave none.
        #[serde(rename = "type")]
        pub kind: String,
    }
}

payload! {
    /// `custom:presence`.
    pub struct CustomPresenceRelayed {
        pub user_id: UserId,
        pub status: String,
        pub metadata: Map<String, Value>,
    }
}

payload! {
    /// `custom:typing`.
    pub struct CustomTypingRelayed {
        pub user_id: UserId,
        pub is_typing: bool,
        pub context: Value,
    }
}

payload! {
    /// `custom:file:shared`.
    pub struct FileShared {
        pub from: Sender,
        pub project_id: ProjectId,
        pub file_id: String,
        pub file_name: String,
    }
}
