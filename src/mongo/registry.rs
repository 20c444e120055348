//! Integrations and wallet addresses: per-project registries configured over REST or seeds.

use async_trait::async_trait;
use bson::{DateTime, doc};
use futures_util::TryStreamExt;

use switchboard_handlers::core::ids::{AddressId, IntegrationId, ProjectId, UserId};
use switchboard_handlers::core::model::{
    Integration, IntegrationStats, WalletAddress, WalletTransaction, WebhookEvent,
};
use switchboard_handlers::core::ports::{IntegrationStore, StoreResult, WalletStore};
use switchboard_handlers::core::time::Timestamp;

use switchboard_handlers::core::error::AppError;

use super::convert::{from_doc, to_doc};
use super::errors::is_duplicate_key;
use super::projects::upsert;
use super::{
    INTEGRATION_STATS, INTEGRATIONS, MongoStore, WALLET_ADDRESSES, WALLET_TRANSACTIONS,
    WEBHOOK_EVENTS, map_err,
};

#[async_trait]
impl IntegrationStore for MongoStore {
    async fn put_integration(&self, integration: &Integration) -> StoreResult<()> {
        self.coll(INTEGRATIONS)
            .replace_one(
                doc! { "_id": integration.id.as_str() },
                to_doc(integration)?,
            )
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn create_integration(&self, integration: &Integration) -> StoreResult<()> {
        // `_id` is unique: of concurrent creations exactly one inserts, the others conflict.
        self.coll(INTEGRATIONS)
            .insert_one(to_doc(integration)?)
            .await
            .map_err(|e| {
                if is_duplicate_key(&e) {
                    AppError::Conflict(format!("integration {} exists", integration.id))
                } else {
                    map_err(e)
                }
            })?;
        Ok(())
    }

    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool> {
        let r = self
            .coll(INTEGRATIONS)
            .replace_one(
                doc! {
                    "_id": integration.id.as_str(),
                    "projectId": integration.project_id.as_str(),
                },
                to_doc(integration)?,
            )
            .await
            .map_err(map_err)?;
        Ok(r.matched_count > 0)
    }

    async fn get_integration(&self, id: &IntegrationId) -> StoreResult<Option<Integration>> {
        let d = self
            .coll(INTEGRATIONS)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }

    async fn list_integrations(&self, project: &ProjectId) -> StoreResult<Vec<Integration>> {
        let docs: Vec<_> = self
            .coll(INTEGRATIONS)
            .find(doc! { "projectId": project.as_str() })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc).collect()
    }

    async fn delete_integration(&self, id: &IntegrationId) -> StoreResult<bool> {
        let r = self
            .coll(INTEGRATIONS)
            .delete_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        self.coll(INTEGRATION_STATS)
            .delete_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        Ok(r.deleted_count > 0)
    }

    async fn record_integration_run(
        &self,
        id: &IntegrationId,
        at: Timestamp,
        error: Option<&str>,
    ) -> StoreResult<()> {
        // One atomic update, so runs on every node are all counted.
        self.coll(INTEGRATION_STATS)
            .update_one(
                doc! { "_id": id.as_str() },
                doc! {
                    "$inc": { "executions": 1_i64, "failures": i64::from(error.is_some()) },
                    "$set": {
                        "lastExecutedAt": DateTime::from_millis(at.millis()),
                        "lastError": error,
                    },
                },
            )
            .upsert(true)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn integration_stats(&self, id: &IntegrationId) -> StoreResult<IntegrationStats> {
        let d = self
            .coll(INTEGRATION_STATS)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        Ok(d.map(from_doc).transpose()?.unwrap_or_default())
    }

    async fn insert_webhook_event(&self, event: &WebhookEvent) -> StoreResult<bool> {
        // The unique (integrationId, signature) and (integrationId, deliveryId) indexes make a
        // replay a duplicate key, also when copies arrive at several nodes at once.
        match self.coll(WEBHOOK_EVENTS).insert_one(to_doc(event)?).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn purge_webhook_events(&self, before: Timestamp) -> StoreResult<u64> {
        let r = self
            .coll(WEBHOOK_EVENTS)
            .delete_many(doc! { "receivedAt": { "$lt": DateTime::from_millis(before.millis()) } })
            .await
            .map_err(map_err)?;
        Ok(r.deleted_count)
    }

    async fn list_webhook_events(
        &self,
        integration: &IntegrationId,
        limit: usize,
    ) -> StoreResult<Vec<WebhookEvent>> {
        let docs: Vec<_> = self
            .coll(WEBHOOK_EVENTS)
            .find(doc! { "integrationId": integration.as_str() })
            .sort(doc! { "receivedAt": -1, "_id": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc).collect()
    }
}

#[async_trait]
impl WalletStore for MongoStore {
    async fn put_address(&self, address: &WalletAddress) -> StoreResult<()> {
        self.coll(WALLET_ADDRESSES)
            .replace_one(doc! { "_id": address.id.as_str() }, to_doc(address)?)
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_addresses(
        &self,
        project: &ProjectId,
        owner: Option<&UserId>,
    ) -> StoreResult<Vec<WalletAddress>> {
        let mut filter = doc! { "projectId": project.as_str() };
        if let Some(o) = owner {
            filter.insert("userId", o.as_str());
        }
        let docs: Vec<_> = self
            .coll(WALLET_ADDRESSES)
            .find(filter)
            .sort(doc! { "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc).collect()
    }

    async fn get_address(&self, id: &AddressId) -> StoreResult<Option<WalletAddress>> {
        let d = self
            .coll(WALLET_ADDRESSES)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }

    async fn put_transaction(&self, tx: &WalletTransaction) -> StoreResult<bool> {
        let r = self
            .coll(WALLET_TRANSACTIONS)
            .replace_one(doc! { "_id": tx.id.as_str() }, to_doc(tx)?)
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        Ok(r.upserted_id.is_some())
    }

    async fn get_transaction(&self, id: &str) -> StoreResult<Option<WalletTransaction>> {
        let d = self
            .coll(WALLET_TRANSACTIONS)
            .find_one(doc! { "_id": id })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }

    /// Served by the index (projectId, createdAt desc, _id desc).
    async fn list_transactions(
        &self,
        project: &ProjectId,
        addresses: Option<&[AddressId]>,
        limit: usize,
        before: Option<&str>,
    ) -> StoreResult<Vec<WalletTransaction>> {
        if limit == 0 {
            // MongoDB reads a limit of 0 as "no limit".
            return Ok(Vec::new());
        }
        let mut filter = doc! { "projectId": project.as_str() };
        if let Some(a) = addresses {
            let ids: Vec<&str> = a.iter().map(AddressId::as_str).collect();
            filter.insert("addressId", doc! { "$in": ids });
        }
        if let Some(b) = before {
            let Some(anchor) = self.get_transaction(b).await? else {
                return Ok(Vec::new());
            };
            if &anchor.project_id != project {
                return Ok(Vec::new());
            }
            let at = DateTime::from_millis(anchor.created_at.millis());
            filter.insert(
                "$or",
                vec![
                    doc! { "createdAt": { "$lt": at } },
                    doc! { "createdAt": at, "_id": { "$lt": anchor.id.as_str() } },
                ],
            );
        }
        let docs: Vec<_> = self
            .coll(WALLET_TRANSACTIONS)
            .find(filter)
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc).collect()
    }
}
