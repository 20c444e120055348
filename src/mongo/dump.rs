//! What `switchboard export` reads beyond the ports.

use async_trait::async_trait;
use bson::{Document as BsonDoc, doc};
use futures_util::TryStreamExt;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{ChatId, CollectionId, ProjectId};
use switchboard_handlers::core::model::{Call, Document, User, WalletTransaction};
use switchboard_handlers::core::ports::StoreResult;

use super::convert::from_doc;
use super::documents::read;
use super::{CALLS, MongoStore, READ_RECEIPTS, USERS, WALLET_TRANSACTIONS, map_err};
use crate::portable::{Dump, Receipt};

impl MongoStore {
    async fn raw(&self, coll: &str, filter: BsonDoc, sort: BsonDoc) -> StoreResult<Vec<BsonDoc>> {
        self.coll(coll)
            .find(filter)
            .sort(sort)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)
    }

    async fn all_of<T: serde::de::DeserializeOwned>(
        &self,
        coll: &str,
        filter: BsonDoc,
        sort: BsonDoc,
    ) -> StoreResult<Vec<T>> {
        let docs = self.raw(coll, filter, sort).await?;
        docs.into_iter().map(from_doc).collect()
    }
}

#[async_trait]
impl Dump for MongoStore {
    async fn all_users(&self) -> StoreResult<Vec<User>> {
        self.all_of(USERS, doc! {}, doc! { "_id": 1 }).await
    }

    async fn receipts(&self, chat: &ChatId) -> StoreResult<Vec<Receipt>> {
        let docs = self
            .raw(
                READ_RECEIPTS,
                doc! { "chatId": chat.as_str() },
                doc! { "userId": 1, "messageId": 1 },
            )
            .await?;
        docs.into_iter()
            .map(|mut d| {
                // The receipt's own `_id` is the driver's, not part of the record.
                d.remove("_id");
                if let Ok(t) = d.get_datetime("readAt") {
                    let iso = switchboard_handlers::core::time::Timestamp::from_millis(
                        t.timestamp_millis(),
                    )
                    .to_iso();
                    d.insert("readAt", iso);
                }
                let json = bson::Bson::Document(d).into_relaxed_extjson();
                serde_json::from_value(json)
                    .map_err(|e| AppError::internal(format!("stored receipt unreadable: {e}")))
            })
            .collect()
    }

    async fn calls(&self, project: &ProjectId) -> StoreResult<Vec<Call>> {
        self.all_of(
            CALLS,
            doc! { "projectId": project.as_str() },
            doc! { "_id": 1 },
        )
        .await
    }

    async fn documents(&self, project: &ProjectId) -> StoreResult<Vec<Document>> {
        let prefix = format!("data.{project}.");
        let mut names: Vec<String> = self
            .database()
            .list_collection_names()
            .await
            .map_err(map_err)?
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let Ok(collection) = CollectionId::try_from(&name[prefix.len()..]) else {
                continue;
            };
            let docs = self.raw(&name, doc! {}, doc! { "_id": 1 }).await?;
            out.extend(docs.into_iter().map(|d| read(project, &collection, d)));
        }
        Ok(out)
    }

    async fn transactions(&self, project: &ProjectId) -> StoreResult<Vec<WalletTransaction>> {
        self.all_of(
            WALLET_TRANSACTIONS,
            doc! { "projectId": project.as_str() },
            doc! { "_id": 1 },
        )
        .await
    }
}
