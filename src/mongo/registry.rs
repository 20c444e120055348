//! Integrations and wallet addresses: per-project registries configured over REST or seeds.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::doc;

use switchboard_handlers::core::ids::{AddressId, IntegrationId, ProjectId, UserId};
use switchboard_handlers::core::model::{Integration, WalletAddress, WalletTransaction};
use switchboard_handlers::core::ports::{IntegrationStore, StoreResult, WalletStore};

use super::convert::{from_doc, to_doc};
use super::projects::upsert;
use super::{INTEGRATIONS, MongoStore, WALLET_ADDRESSES, WALLET_TRANSACTIONS, map_err};

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
}
