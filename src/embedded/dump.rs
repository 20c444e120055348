//! What `switchboard export` reads beyond the ports.

use async_trait::async_trait;
use redb::ReadableTable;

use switchboard_handlers::core::ids::{ChatId, CollectionId, MessageId, ProjectId, UserId};
use switchboard_handlers::core::model::{Call, Document, DocumentBody, User, WalletTransaction};
use switchboard_handlers::core::ports::StoreResult;
use switchboard_handlers::core::time::Timestamp;

use super::EmbeddedStore;
use super::codec::{Db, after_all, all, decode};
use super::tables::{CALLS, DOCUMENTS, RECEIPTS, TRANSACTIONS, USERS};
use crate::portable::{Dump, Receipt};

/// A key part that is not a valid id is damage.
fn id<T: TryFrom<String, Error = String>>(s: &str) -> StoreResult<T> {
    T::try_from(s.to_owned()).map_err(|e| {
        switchboard_handlers::core::error::AppError::internal(format!("stored key: {e}"))
    })
}

#[async_trait]
impl Dump for EmbeddedStore {
    async fn all_users(&self) -> StoreResult<Vec<User>> {
        self.read(|txn| all(&txn.open_table(USERS).db()?, "users", |_| true))
    }

    async fn receipts(&self, chat: &ChatId) -> StoreResult<Vec<Receipt>> {
        let end = after_all(chat.as_str());
        self.read(|txn| {
            let t = txn.open_table(RECEIPTS).db()?;
            let mut out = Vec::new();
            for entry in t
                .range((chat.as_str(), "", "")..(end.as_str(), "", ""))
                .db()?
            {
                let (k, v) = entry.db()?;
                let (_, user, message) = k.value();
                out.push(Receipt {
                    chat_id: chat.clone(),
                    user_id: id::<UserId>(user)?,
                    message_id: id::<MessageId>(message)?,
                    read_at: Timestamp::from_millis(v.value()),
                });
            }
            Ok(out)
        })
    }

    async fn calls(&self, project: &ProjectId) -> StoreResult<Vec<Call>> {
        self.read(|txn| {
            all(&txn.open_table(CALLS).db()?, "calls", |c: &Call| {
                &c.project_id == project
            })
        })
    }

    async fn documents(&self, project: &ProjectId) -> StoreResult<Vec<Document>> {
        let p = project.as_str();
        let end = after_all(p);
        self.read(|txn| {
            let t = txn.open_table(DOCUMENTS).db()?;
            let mut out = Vec::new();
            for entry in t.range((p, "", "")..(end.as_str(), "", "")).db()? {
                let (k, v) = entry.db()?;
                let body: DocumentBody = decode("documents", v.value())?;
                out.push(Document {
                    project_id: project.clone(),
                    collection_id: id::<CollectionId>(k.value().1)?,
                    body,
                });
            }
            Ok(out)
        })
    }

    async fn transactions(&self, project: &ProjectId) -> StoreResult<Vec<WalletTransaction>> {
        self.read(|txn| {
            all(
                &txn.open_table(TRANSACTIONS).db()?,
                "wallet_transactions",
                |t: &WalletTransaction| &t.project_id == project,
            )
        })
    }
}
