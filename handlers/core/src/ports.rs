//! The interfaces the core needs from the outside world. Each has an in-memory implementation in
//! `core::memory` and a real one in the binary crate (MongoDB, Redis, JWT), and both pass the same
//! conformance suite in `testkit`. Every method maps backend failures to
//! `AppError::Unavailable` (service down) or `AppError::Internal`; none panics.

use async_trait::async_trait;
use serde_json::Value;
use serde_json::value::RawValue;

use super::access::Actor;
use super::data::change::DocumentChange;
use super::error::AppError;
use super::ids::{
    AddressId, CallId, ChatId, CollectionId, DocumentId, IntegrationId, MessageId, ProjectId,
    UserId,
};
use super::model::DocumentBody;
use super::model::{
    Call, CallState, Chat, Document, Integration, IntegrationStats, Message, Project, ReadSummary,
    User, WalletAddress, WalletTransaction, WebhookEvent,
};
use super::query::{Filter, Sort};
use super::time::Timestamp;
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

/// What every store answers to a creation of a chat id that is taken.
pub fn chat_exists(id: &ChatId) -> AppError {
    AppError::Conflict(format!("chat {id} already exists"))
}

#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Insert or replace by id (seeds).
    async fn put_chat(&self, chat: &Chat) -> StoreResult<()>;
    /// Stores a new chat, never replacing one: `AppError::Conflict` when the id is taken, so of
    /// concurrent creations of one id exactly one succeeds and the chat keeps its owner.
    async fn insert_chat(&self, chat: &Chat) -> StoreResult<()>;
    async fn get_chat(&self, id: &ChatId) -> StoreResult<Option<Chat>>;
    /// Chats of a project ordered by id, or only those where `participant` takes part.
    async fn list_chats(
        &self,
        project: &ProjectId,
        participant: Option<&UserId>,
    ) -> StoreResult<Vec<Chat>>;
    /// Store a message. With `client_message_id`, a second insert by the same sender in the same
    /// chat with the same key stores nothing and returns the first message. By value: the
    /// stored message is what comes back, without a copy.
    async fn insert_message(
        &self,
        message: Message,
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
    /// Oldest first: the messages after `after` (exclusive), at most `limit`. An unknown
    /// `after` (or one of another chat) gives an empty list.
    async fn list_messages_after(
        &self,
        chat: &ChatId,
        after: &MessageId,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;
    /// Adds `user` to the reaction `emoji` of the message, or removes them if present, as one
    /// atomic step (concurrent toggles by different users all count). Returns the updated
    /// message and whether the reaction was added. `None` if the message does not exist.
    /// Reactions keep first-reaction order; an emoji with no users left disappears.
    /// (`Message::toggle_reaction` is the rule.) A store that retries an optimistic update may
    /// give up under extreme contention with `AppError::Conflict`; the client may retry.
    async fn toggle_reaction(
        &self,
        id: &MessageId,
        emoji: &str,
        user: &UserId,
    ) -> StoreResult<Option<(Message, bool)>>;
    /// Replaces the content and sets `editedAt`. `None` if the message does not exist.
    async fn edit_message(
        &self,
        id: &MessageId,
        content: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<Option<Message>>;
    /// Soft delete: sets `deletedAt`, empties the content (`""`), keeps the record so history
    /// shows the gap. `None` if the message does not exist.
    async fn delete_message(&self, id: &MessageId, at: Timestamp) -> StoreResult<Option<Message>>;
    /// Records that `user` read these messages of `chat` at `at`. Ids that are not messages of
    /// `chat` (unknown, or of another chat) are ignored; repeating a receipt is not an error and
    /// keeps the first `readAt`. Returns every given id that is a message of `chat`, without
    /// repeats and in the given order: all of them are read by `user` now, whether this call or
    /// an earlier one recorded the receipt (empty when none was valid).
    async fn mark_read(
        &self,
        chat: &ChatId,
        user: &UserId,
        ids: &[MessageId],
        at: Timestamp,
    ) -> StoreResult<Vec<MessageId>>;
    /// For each of `ids`, in that order: how many receipts it has in `chat` and its `first`
    /// earliest readers. An id without receipts (or not of `chat`) gets an empty summary. The
    /// cost is bounded by `ids.len() × first` plus one count per id, never by the chat's
    /// receipts.
    async fn read_summaries(
        &self,
        chat: &ChatId,
        ids: &[MessageId],
        first: usize,
    ) -> StoreResult<Vec<ReadSummary>>;
    /// Messages of `chat` not sent by `user`, not deleted, and without a receipt from `user`.
    async fn unread_count(&self, chat: &ChatId, user: &UserId) -> StoreResult<u64>;
}

#[async_trait]
pub trait CallStore: Send + Sync {
    async fn insert_call(&self, call: &Call) -> StoreResult<()>;
    async fn get_call(&self, id: &CallId) -> StoreResult<Option<Call>>;
    /// Atomically moves the call from one of `from` to `to`, stamping the matching timestamp
    /// (`answeredAt` for accepted/rejected, `endedAt` for ended/missed). `None` when the call
    /// does not exist or is in no state of `from`: that is how exactly one node wins a race
    /// (e.g. the missed-call timeout against an accept).
    async fn transition_call(
        &self,
        id: &CallId,
        from: &[CallState],
        to: CallState,
        at: Timestamp,
    ) -> StoreResult<Option<Call>>;
    /// Ids of calls still ringing that were created before `before`, oldest first, at most
    /// `limit`: the sweep that misses calls whose node died before its timer fired.
    async fn stale_ringing_calls(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<CallId>>;
    /// How many calls started by `caller` ring `callee` now (state `ringing`, any chat).
    async fn count_ringing(&self, caller: &UserId, callee: &UserId) -> StoreResult<u64>;
    /// The newest call of `chat` started by `caller` that is in one of `states`.
    async fn latest_call(
        &self,
        chat: &ChatId,
        caller: &UserId,
        states: &[CallState],
    ) -> StoreResult<Option<Call>>;
}

/// What a document listing asks for. Access rules are already folded into `filter` / `guard`.
#[derive(Debug, Clone)]
pub struct DocQuery {
    pub filter: Filter,
    /// Empty: by id ascending.
    pub sort: Sort,
    pub limit: usize,
    pub skip: usize,
    /// Only documents whose id sorts after this one (with the default sort: a page cursor).
    pub after: Option<DocumentId>,
    /// Only documents where this top-level-or-dotted field equals this user (owner rules).
    pub guard: Option<FieldGuard>,
    /// How long the store may spend on it before giving up (MongoDB's `maxTimeMS`).
    pub max_time: std::time::Duration,
}

/// "Only if `field` equals `value`": how owner-scoped writes stay atomic (the check and the
/// write are one store operation).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldGuard {
    pub field: String,
    pub value: String,
}

impl FieldGuard {
    pub fn admits(&self, body: &DocumentBody) -> bool {
        lookup(body, &self.field).is_some_and(|v| v.as_str() == Some(self.value.as_str()))
    }
}

/// The value at a dotted path of plain objects (no array traversal: owner fields are scalars).
pub fn lookup<'a>(body: &'a DocumentBody, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = body.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// A write's before and after images.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub before: Document,
    pub after: Document,
}

#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Insert or replace by (project, collection, body.id). Seeds only: publishes nothing.
    async fn put_document(&self, doc: &Document) -> StoreResult<()>;
    /// Insert; `Conflict` when the id exists.
    async fn insert_document(&self, doc: &Document) -> StoreResult<()>;
    async fn get_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
    ) -> StoreResult<Option<Document>>;
    async fn find_documents(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        query: &DocQuery,
    ) -> StoreResult<Vec<Document>>;
    /// Sets the given top-level fields (`$set`), atomically, if the document exists and passes
    /// `guard`. `None` otherwise.
    async fn patch_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        set: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>>;
    /// Replaces every field but the id, under the same conditions as `patch_document`.
    async fn replace_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        body: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>>;
    /// How many collections of the project hold documents, counting at most `up_to`, and
    /// whether `collection` is one of them.
    async fn count_collections(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        up_to: usize,
    ) -> StoreResult<(usize, bool)>;
    /// The project's collections that hold documents, by name, after `after` (exclusive), at
    /// most `limit`.
    async fn list_collections(
        &self,
        project: &ProjectId,
        after: Option<&CollectionId>,
        limit: usize,
    ) -> StoreResult<Vec<CollectionId>>;
    /// Deletes and returns the document, under the same conditions.
    async fn delete_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Document>>;
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Insert or replace by id (seeds).
    async fn put_integration(&self, integration: &Integration) -> StoreResult<()>;
    /// Insert only; `Conflict` when the id exists (in any project), atomically.
    async fn create_integration(&self, integration: &Integration) -> StoreResult<()>;
    /// Replaces the stored integration of the same id and project; false (nothing written) when
    /// there is none, so an update never recreates a deleted one or takes another project's.
    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool>;
    async fn get_integration(&self, id: &IntegrationId) -> StoreResult<Option<Integration>>;
    async fn list_integrations(&self, project: &ProjectId) -> StoreResult<Vec<Integration>>;
    /// Removes the integration and its counters; false when it did not exist.
    async fn delete_integration(&self, id: &IntegrationId) -> StoreResult<bool>;
    /// Counts one execution atomically (concurrent executions on several nodes all count):
    /// `error` is `None` for a success.
    async fn record_integration_run(
        &self,
        id: &IntegrationId,
        at: Timestamp,
        error: Option<&str>,
    ) -> StoreResult<()>;
    /// Zeroes when the integration never ran.
    async fn integration_stats(&self, id: &IntegrationId) -> StoreResult<IntegrationStats>;
    /// Stores the event unless one of the integration's stored events has the same signature
    /// or delivery id (a replay): true when stored, false for a replay (nothing written).
    async fn insert_webhook_event(&self, event: &WebhookEvent) -> StoreResult<bool>;
    /// Deletes the events received before `before` (retention); how many went.
    async fn purge_webhook_events(&self, before: Timestamp) -> StoreResult<u64>;
    /// Newest first, at most `limit`.
    async fn list_webhook_events(
        &self,
        integration: &IntegrationId,
        limit: usize,
    ) -> StoreResult<Vec<WebhookEvent>>;
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
    async fn get_address(&self, id: &AddressId) -> StoreResult<Option<WalletAddress>>;
    /// Insert or replace by id; true when it was new.
    async fn put_transaction(&self, tx: &WalletTransaction) -> StoreResult<bool>;
    async fn get_transaction(&self, id: &str) -> StoreResult<Option<WalletTransaction>>;
    /// Transactions of a project newest first (`createdAt`, then id, both descending), at most
    /// `limit`; only those of `addresses` when given. `before` excludes that transaction and
    /// everything newer; an unknown `before`, or one of another project, gives an empty list.
    async fn list_transactions(
        &self,
        project: &ProjectId,
        addresses: Option<&[AddressId]>,
        limit: usize,
        before: Option<&str>,
    ) -> StoreResult<Vec<WalletTransaction>>;
}

/// An app of a key-authenticated protocol front end (a Pusher or Apinator app) that an admin
/// created: its id and key (each unique), its project, and its settings as that front end reads
/// them (for Pusher, a `PUSHER_APPS` entry, secret included).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredApp {
    pub id: String,
    pub key: String,
    pub project_id: ProjectId,
    pub config: Value,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait AppStore: Send + Sync {
    /// Stores a new app: `AppError::Conflict` when its id or key is taken (of concurrent
    /// creations exactly one succeeds).
    async fn create_app(&self, app: &StoredApp) -> StoreResult<()>;
    /// Every app, ordered by id.
    async fn list_apps(&self) -> StoreResult<Vec<StoredApp>>;
    /// True when it existed.
    async fn delete_app(&self, id: &str) -> StoreResult<bool>;
}

/// Everything persistent, behind one handle.
#[async_trait]
pub trait Store:
    ProjectStore
    + UserStore
    + ChatStore
    + CallStore
    + DocumentStore
    + IntegrationStore
    + WalletStore
    + AppStore
{
    /// "mongodb" or "memory", for logs and `/ready`.
    fn kind(&self) -> &'static str;
    /// Cheap round trip proving the backend answers.
    async fn ping(&self) -> StoreResult<()>;
    /// True when no project exists yet (the demo seed loads only then).
    async fn is_empty(&self) -> StoreResult<bool>;
}

/// One outbound HTTP request of an integration.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// Upper-case HTTP method.
    pub method: String,
    /// Absolute http(s) URL without the query string.
    pub url: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Sent as `application/json` when present.
    pub json_body: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboundResponse {
    pub status: u16,
    /// The body parsed as JSON when it is JSON, else as text (null when empty).
    pub body: Value,
}

/// Makes integrations' HTTP calls. Implementations refuse private targets (`Forbidden`, checked
/// on the addresses actually connected to), bound time and response size, and report failures
/// of the far end as `AppError::Upstream`.
#[async_trait]
pub trait Outbound: Send + Sync {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, AppError>;
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

    /// `publish` with the payload already encoded as JSON (a message that also goes to its
    /// sender and into an ack is encoded once for all three).
    async fn publish_encoded(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &RawValue,
        except: Option<&ConnId>,
    ) -> Result<(), AppError>;

    /// Like `publish`, but skips every connection that is in any of `except_topics` (e.g. a
    /// mention goes to a user's connections that have not joined the chat room).
    async fn publish_except_topics(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except_topics: &[Topic],
    ) -> Result<(), AppError>;

    /// To this node's connections in any of `topics` (each once), skipping the adapter: for
    /// events every node learns by itself (a change stream), so each socket gets one copy.
    async fn publish_local(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
    ) -> Result<(), AppError>;
}

/// Where a node's own document writes go when nobody else reports them: the in-process live
/// registry (embedded store), the cluster bus (Redis), or nowhere (a MongoDB change stream
/// reports every write, including ours, to every node).
#[async_trait]
pub trait ChangePublisher: Send + Sync {
    async fn publish(&self, change: DocumentChange);
    /// True when every write reaches every node without this publisher (a change stream), so
    /// other own-write announcements (wallet transactions) must not be sent either.
    fn feed_reports_writes(&self) -> bool {
        false
    }
}

/// Sends to one connection of this node. Used for deliveries that are decided per connection
/// (document changes, live queries), which never go through the cross-node adapter.
pub trait LocalSink: Send + Sync {
    fn send(&self, conn: &ConnId, event: &str, payload: &Value);
}

/// A user's announced presence, cluster-wide.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    pub user: UserId,
    pub status: String,
    pub metadata: Value,
    pub last_seen: Timestamp,
    /// The projects the user announced themselves in.
    pub projects: Vec<ProjectId>,
}

/// Cluster-wide presence: per-connection entries that expire unless heartbeats refresh them,
/// and per-user announced state. "First" and "last" answers are atomic, so exactly one node
/// learns that a user came online or went offline, whoever races.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Records a live connection; true when it is the user's only one in the cluster.
    async fn add_connection(&self, user: &UserId, conn: &ConnId) -> StoreResult<bool>;
    /// Forgets a connection; true when this call removed the user's last one (exactly one
    /// caller, including `sweep`, ever sees true for that moment).
    async fn remove_connection(&self, user: &UserId, conn: &ConnId) -> StoreResult<bool>;
    /// Extends the TTL of these connections (this node's, every heartbeat).
    async fn heartbeat(&self, conns: &[(UserId, ConnId)]) -> StoreResult<()>;
    /// Expires connections whose TTL passed (their node died) and returns the users who lost
    /// their last connection that way, each claimed by exactly one sweeping node.
    async fn sweep(&self) -> StoreResult<Vec<UserId>>;
    /// Live connections of a user across the cluster.
    async fn connections(&self, user: &UserId) -> StoreResult<u64>;
    /// Records `conn` if the user holds fewer than `max` live connections; false (and nothing
    /// recorded) when they hold `max` already. Stores override this with one atomic step: as
    /// a count followed by an add, two nodes admitting at once both passed the cap.
    async fn admit_connection(&self, user: &UserId, conn: &ConnId, max: u64) -> StoreResult<bool> {
        if self.connections(user).await? >= max {
            return Ok(false);
        }
        self.add_connection(user, conn).await?;
        Ok(true)
    }
    /// Sets the announced state (adding `projects` to those already announced).
    async fn announce(&self, presence: &Presence) -> StoreResult<()>;
    /// Refreshes `lastSeen` of an announced user; false when not announced.
    async fn touch(&self, user: &UserId, at: Timestamp) -> StoreResult<bool>;
    /// Clears the announced state and returns what it was.
    async fn retract(&self, user: &UserId) -> StoreResult<Option<Presence>>;
    /// Users announced in `project` (with at least one live connection is the caller's check).
    async fn announced_in(&self, project: &ProjectId) -> StoreResult<Vec<Presence>>;
}
