//! The interfaces the core needs from the outside world. Each has an in-memory implementation in
//! `core::memory` and a real one in the binary crate (MongoDB, Redis, JWT), and both pass the same
//! conformance suite in `testkit`. Every method maps backend failures to
//! `AppError::Unavailable` (service down) or `AppError::Internal`; none panics.

use async_trait::async_trait;
use serde_json::Value;

use super::access::Actor;
use super::error::AppError;
use super::ids::{ChatId, CollectionId, DocumentId, IntegrationId, MessageId, ProjectId, UserId};
use super::model::{Chat, Document, Integration, Message, Project, User, WalletAddress};
use super::topic::Topic;

pub type StoreResult<T> = Result<T, AppError>;

/// Outcome of an idempotent insert keyed by a client-supplied id.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted<T> {
    New(T),
    /// The key was used before: this is what was stored then, and nothing new was written.
    Existing(T),
}

#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Insert or replace by id.
    async fn put_project(&self, project: &Project) -> StoreResult<()>;
    async fn get_project(&self, id: &ProjectId) -> StoreResult<Option<Project>>;
    /// All projects ordered by id, or only those whose `members` contain `member`.
    async fn list_projects(&self, member: Option<&UserId>) -> StoreResult<Vec<Project>>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn put_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>>;
}

#[async_trait]
pub trait ChatStore: Send + Sync {
    async fn put_chat(&self, chat: &Chat) -> StoreResult<()>;
    async fn get_chat(&self, id: &ChatId) -> StoreResult<Option<Chat>>;
    /// Chats of a project ordered by id, or only those where `participant` takes part.
    async fn list_chats(
        &self,
        project: &ProjectId,
        participant: Option<&UserId>,
    ) -> StoreResult<Vec<Chat>>;
    /// Store a message. With `client_message_id`, a second insert by the same sender in the same
    /// chat with the same key stores nothing and returns the first message.
    async fn insert_message(
        &self,
        message: &Message,
        client_message_id: Option<&str>,
    ) -> StoreResult<Inserted<Message>>;
    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>>;
    /// Newest first; `before` excludes that message and everything newer.
    async fn list_messages(
        &self,
        chat: &ChatId,
        limit: usize,
        before: Option<&MessageId>,
    ) -> StoreResult<Vec<Message>>;
}

#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Insert or replace by (project, collection, body.id).
    async fn put_document(&self, doc: &Document) -> StoreResult<()>;
    async fn get_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
    ) -> StoreResult<Option<Document>>;
    /// Ordered by id, at most `limit`.
    async fn list_documents(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        limit: usize,
    ) -> StoreResult<Vec<Document>>;
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    async fn put_integration(&self, integration: &Integration) -> StoreResult<()>;
    async fn get_integration(&self, id: &IntegrationId) -> StoreResult<Option<Integration>>;
    async fn list_integrations(&self, project: &ProjectId) -> StoreResult<Vec<Integration>>;
}

#[async_trait]
pub trait WalletStore: Send + Sync {
    async fn put_address(&self, address: &WalletAddress) -> StoreResult<()>;
    /// Addresses of a project ordered by id, or only those owned by `owner`.
    async fn list_addresses(
        &self,
        project: &ProjectId,
        owner: Option<&UserId>,
    ) -> StoreResult<Vec<WalletAddress>>;
}

/// Everything persistent, behind one handle.
#[async_trait]
pub trait Store:
    ProjectStore + UserStore + ChatStore + DocumentStore + IntegrationStore + WalletStore
{
    /// "mongodb" or "memory", for logs and `/ready`.
    fn kind(&self) -> &'static str;
    /// Cheap round trip proving the backend answers.
    async fn ping(&self) -> StoreResult<()>;
    /// True when no project exists yet (the demo seed loads only then).
    async fn is_empty(&self) -> StoreResult<bool>;
}

/// What a connection presents at the handshake.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub token: Option<String>,
    pub api_key: Option<String>,
}

#[async_trait]
pub trait Authenticator: Send + Sync {
    /// `AppError::Unauthorized` with a short reason for anything not accepted.
    async fn authenticate(&self, creds: &Credentials) -> Result<Actor, AppError>;
}

/// Identifies one connection of one front end (a Socket.IO socket id), so a publication can
/// skip its sender. Never sent to clients.
pub type ConnId = String;

/// Delivers events to rooms on every node. A connection in several of the targeted topics
/// receives the event once. `except` skips one connection (the sender), wherever the call is made.
#[async_trait]
pub trait Fanout: Send + Sync {
    async fn publish(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except: Option<&ConnId>,
    ) -> Result<(), AppError>;
}
