//! Protocol apps (Pusher and Apinator apps an admin created): one document per app, `_id` the
//! app id, a unique index on `key`.

use async_trait::async_trait;
use bson::doc;
use futures_util::TryStreamExt;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ports::{AppStore, StoreResult, StoredApp};

use super::convert::{from_doc, to_doc};
use super::errors::is_duplicate_key;
use super::{APPS, MongoStore, map_err};

#[async_trait]
impl AppStore for MongoStore {
    async fn create_app(&self, app: &StoredApp) -> StoreResult<()> {
        // `_id` and `key` are unique: of concurrent creations exactly one inserts.
        self.coll(APPS)
            .insert_one(to_doc(app)?)
            .await
            .map_err(|e| {
                if is_duplicate_key(&e) {
                    AppError::Conflict(format!("app {} or its key exists", app.id))
                } else {
                    map_err(e)
                }
            })?;
        Ok(())
    }

    async fn list_apps(&self) -> StoreResult<Vec<StoredApp>> {
        let docs: Vec<_> = self
            .coll(APPS)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc).collect()
    }

    async fn delete_app(&self, id: &str) -> StoreResult<bool> {
        let r = self
            .coll(APPS)
            .delete_one(doc! { "_id": id })
            .await
            .map_err(map_err)?;
        Ok(r.deleted_count > 0)
    }
}
