//! The MongoDB implementation of the core's `Store` port (`mongodb` 3.x). Entities are stored
//! with `_id` = their id and timestamps as BSON dates; `convert` does that translation once for
//! every entity. Project collections' documents live in their own MongoDB collection,
//! `data.<projectId>.<collectionId>`, so other services can read and write them directly.

mod apps;
mod calls;
mod changes;
mod chat_cache;
mod chats;
mod convert;
mod documents;
mod dump;
mod errors;
mod message_writer;
mod projects;
mod realtime;
mod registry;

use std::time::Duration;

use async_trait::async_trait;
use bson::{Document as BsonDoc, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

use switchboard_handlers::core::ports::{Store, StoreResult};

pub use changes::ChangeFeed;
pub use errors::map_err;

/// Cheap to clone: the driver's `Database` shares one connection pool.
#[derive(Clone)]
pub struct MongoStore {
    db: Database,
    chat_cache: std::sync::Arc<chat_cache::ChatCache>,
    /// New messages go through it in batches (group commit; see the module).
    messages: message_writer::MessageWriter,
    /// Data collections seen to exist. A MongoDB collection outlives its documents, so one
    /// seen once needs no `listCollections` (a whole-database scan) on later creates.
    known_collections: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Collection names.
const PROJECTS: &str = "projects";
const USERS: &str = "users";
const CHATS: &str = "chats";
const MESSAGES: &str = "messages";
const READ_RECEIPTS: &str = "read_receipts";
const CALLS: &str = "calls";
const INTEGRATIONS: &str = "integrations";
const INTEGRATION_STATS: &str = "integration_stats";
const WEBHOOK_EVENTS: &str = "webhook_events";
const WALLET_ADDRESSES: &str = "wallet_addresses";
/// Also written by other services; the change feed watches it.
pub const WALLET_TRANSACTIONS: &str = "wallet_transactions";
const APPS: &str = "apps";

impl MongoStore {
    /// Connects, proves the server answers, and creates the indexes. Fails with a message that
    /// names the problem rather than a driver dump.
    pub async fn connect(uri: &str, db_name: &str) -> anyhow::Result<Self> {
        let mut opts = ClientOptions::parse(uri).await.map_err(|e| {
            anyhow::anyhow!("MONGODB_URI is not a valid MongoDB connection string: {e}")
        })?;
        // A write during an outage answers UNAVAILABLE within seconds instead of the driver's
        // 30 s default; clients retry with their clientMessageId.
        opts.server_selection_timeout
            .get_or_insert(Duration::from_secs(3));
        opts.connect_timeout.get_or_insert(Duration::from_secs(5));
        opts.app_name
            .get_or_insert_with(|| "switchboard".to_owned());
        let client = Client::with_options(opts)?;
        let db = client.database(db_name);
        db.run_command(doc! { "ping": 1 }).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach MongoDB (MONGODB_URI): {}",
                errors::summary(&e)
            )
        })?;
        let store = MongoStore {
            messages: message_writer::MessageWriter::start(db.collection(MESSAGES)),
            db,
            chat_cache: Default::default(),
            known_collections: Default::default(),
        };
        store
            .create_indexes()
            .await
            .map_err(|e| anyhow::anyhow!("creating MongoDB indexes failed: {e}"))?;
        store
            .create_realtime_indexes()
            .await
            .map_err(|e| anyhow::anyhow!("creating MongoDB indexes failed: {e}"))?;
        Ok(store)
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn coll(&self, name: &str) -> Collection<BsonDoc> {
        self.db.collection(name)
    }

    async fn create_indexes(&self) -> StoreResult<()> {
        let idx = |keys: BsonDoc| IndexModel::builder().keys(keys).build();
        self.coll(PROJECTS)
            .create_index(idx(doc! { "members": 1 }))
            .await
            .map_err(map_err)?;
        self.coll(CHATS)
            .create_index(idx(doc! { "projectId": 1, "participants": 1 }))
            .await
            .map_err(map_err)?;
        // History: newest first within a chat.
        self.coll(MESSAGES)
            .create_index(idx(doc! { "chatId": 1, "createdAt": -1, "_id": -1 }))
            .await
            .map_err(map_err)?;
        // Safe client retries: one message per (chat, sender, clientMessageId).
        let unique_client_id = IndexModel::builder()
            .keys(doc! { "chatId": 1, "senderId": 1, "clientMessageId": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .partial_filter_expression(doc! { "clientMessageId": { "$exists": true } })
                    .name("chat_sender_client_message_id".to_owned())
                    .build(),
            )
            .build();
        self.coll(MESSAGES)
            .create_index(unique_client_id)
            .await
            .map_err(map_err)?;
        // One receipt per (message, reader); a repeat is a duplicate key and keeps the first.
        let unique_receipt = IndexModel::builder()
            .keys(doc! { "messageId": 1, "userId": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .name("message_user".to_owned())
                    .build(),
            )
            .build();
        self.coll(READ_RECEIPTS)
            .create_index(unique_receipt)
            .await
            .map_err(map_err)?;
        // A message's readers earliest first and their count, for read summaries.
        self.coll(READ_RECEIPTS)
            .create_index(idx(
                doc! { "chatId": 1, "messageId": 1, "readAt": 1, "userId": 1 },
            ))
            .await
            .map_err(map_err)?;
        // A reader's receipts in a chat, for unread counts.
        self.coll(READ_RECEIPTS)
            .create_index(idx(doc! { "chatId": 1, "userId": 1 }))
            .await
            .map_err(map_err)?;
        // The sweep for calls whose ringing node died.
        self.coll(CALLS)
            .create_index(idx(doc! { "state": 1, "createdAt": 1 }))
            .await
            .map_err(map_err)?;
        // A caller's newest call in a chat.
        self.coll(CALLS)
            .create_index(idx(doc! { "chatId": 1, "callerId": 1, "createdAt": -1 }))
            .await
            .map_err(map_err)?;
        self.coll(INTEGRATIONS)
            .create_index(idx(doc! { "projectId": 1 }))
            .await
            .map_err(map_err)?;
        self.coll(WALLET_ADDRESSES)
            .create_index(idx(doc! { "projectId": 1, "userId": 1 }))
            .await
            .map_err(map_err)?;
        // A project's transactions newest first, paged by (createdAt, _id).
        self.coll(WALLET_TRANSACTIONS)
            .create_index(idx(doc! { "projectId": 1, "createdAt": -1, "_id": -1 }))
            .await
            .map_err(map_err)?;
        self.coll(WEBHOOK_EVENTS)
            .create_index(idx(
                doc! { "integrationId": 1, "receivedAt": -1, "_id": -1 },
            ))
            .await
            .map_err(map_err)?;
        // The retention sweep deletes by age across integrations. A sweep rather than a TTL
        // index: WEBHOOK_RETENTION_DAYS may change between restarts (a TTL index would have to
        // be altered with collMod), and not every MongoDB-compatible server expires documents.
        self.coll(WEBHOOK_EVENTS)
            .create_index(idx(doc! { "receivedAt": 1 }))
            .await
            .map_err(map_err)?;
        // Webhook replays: one stored event per (integration, signature) and per (integration,
        // delivery id). Partial, so events stored before these keys existed do not collide.
        for (field, name) in [
            ("signature", "integration_signature"),
            ("deliveryId", "integration_delivery_id"),
        ] {
            let unique = IndexModel::builder()
                .keys(doc! { "integrationId": 1, field: 1 })
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .partial_filter_expression(doc! { field: { "$exists": true } })
                        .name(name.to_owned())
                        .build(),
                )
                .build();
            self.coll(WEBHOOK_EVENTS)
                .create_index(unique)
                .await
                .map_err(map_err)?;
        }
        let unique_key = IndexModel::builder()
            .keys(doc! { "key": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        self.coll(APPS)
            .create_index(unique_key)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Store for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let n = self
            .coll(PROJECTS)
            .estimated_document_count()
            .await
            .map_err(map_err)?;
        Ok(n == 0)
    }
}
