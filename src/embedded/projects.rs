//! Projects, users, protocol apps and wallets: records keyed by id. Listings by project or owner
//! scan the table (these are small: one row per project, app or address), except transactions,
//! which `project_transactions` lists per project in order.

use std::ops::Bound;

use async_trait::async_trait;
use redb::ReadableTable;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{AddressId, ProjectId, UserId};
use switchboard_handlers::core::model::{Project, User, WalletAddress, WalletTransaction};
use switchboard_handlers::core::ports::{
    AppStore, ProjectStore, StoreResult, StoredApp, UserStore, WalletStore,
};

use super::EmbeddedStore;
use super::codec::{Db, after_all, all, decode, encode, get};
use super::tables::{ADDRESSES, APPS, PROJECT_TRANSACTIONS, PROJECTS, TRANSACTIONS, USERS};

#[async_trait]
impl ProjectStore for EmbeddedStore {
    async fn put_project(&self, project: &Project) -> StoreResult<()> {
        let (id, bytes) = (project.id.to_string(), encode(project)?);
        self.write(move |txn| {
            let mut t = txn.open_table(PROJECTS).db()?;
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn get_project(&self, id: &ProjectId) -> StoreResult<Option<Project>> {
        self.read(|txn| get(&txn.open_table(PROJECTS).db()?, "projects", id.as_str()))
    }

    async fn list_projects(&self, member: Option<&UserId>) -> StoreResult<Vec<Project>> {
        self.read(|txn| {
            all(
                &txn.open_table(PROJECTS).db()?,
                "projects",
                |p: &Project| member.is_none_or(|m| p.has_member(m)),
            )
        })
    }
}

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        let (id, bytes) = (user.id.to_string(), encode(user)?);
        self.write(move |txn| {
            let mut t = txn.open_table(USERS).db()?;
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.read(|txn| get(&txn.open_table(USERS).db()?, "users", id.as_str()))
    }
}

#[async_trait]
impl AppStore for EmbeddedStore {
    async fn create_app(&self, app: &StoredApp) -> StoreResult<()> {
        let (id, key, bytes) = (app.id.clone(), app.key.clone(), encode(app)?);
        self.write(move |txn| {
            let mut t = txn.open_table(APPS).db()?;
            if t.get(id.as_str()).db()?.is_some() {
                return Err(AppError::Conflict(format!("app {id} exists")));
            }
            if !all(&t, "apps", |a: &StoredApp| a.key == key)?.is_empty() {
                return Err(AppError::Conflict(format!("app key {key} is taken")));
            }
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn list_apps(&self) -> StoreResult<Vec<StoredApp>> {
        self.read(|txn| all(&txn.open_table(APPS).db()?, "apps", |_| true))
    }

    async fn delete_app(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |txn| {
            let mut t = txn.open_table(APPS).db()?;
            Ok(t.remove(id.as_str()).db()?.is_some())
        })
        .await
    }
}

#[async_trait]
impl WalletStore for EmbeddedStore {
    async fn put_address(&self, address: &WalletAddress) -> StoreResult<()> {
        let (id, bytes) = (address.id.as_str().to_owned(), encode(address)?);
        self.write(move |txn| {
            let mut t = txn.open_table(ADDRESSES).db()?;
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn list_addresses(
        &self,
        project: &ProjectId,
        owner: Option<&UserId>,
    ) -> StoreResult<Vec<WalletAddress>> {
        self.read(|txn| {
            all(
                &txn.open_table(ADDRESSES).db()?,
                "wallet_addresses",
                |a: &WalletAddress| {
                    &a.project_id == project && owner.is_none_or(|o| &a.user_id == o)
                },
            )
        })
    }

    async fn get_address(&self, id: &AddressId) -> StoreResult<Option<WalletAddress>> {
        self.read(|txn| {
            get(
                &txn.open_table(ADDRESSES).db()?,
                "wallet_addresses",
                id.as_str(),
            )
        })
    }

    async fn put_transaction(&self, tx: &WalletTransaction) -> StoreResult<bool> {
        let (id, bytes) = (tx.id.clone(), encode(tx)?);
        let key = (
            tx.project_id.to_string(),
            tx.created_at.millis(),
            tx.address_id.to_string(),
        );
        self.write(move |txn| {
            let mut t = txn.open_table(TRANSACTIONS).db()?;
            let mut index = txn.open_table(PROJECT_TRANSACTIONS).db()?;
            let old = t
                .insert(id.as_str(), bytes.as_slice())
                .db()?
                .map(|v| decode::<WalletTransaction>("wallet_transactions", v.value()))
                .transpose()?;
            if let Some(old) = &old {
                let old_key = (
                    old.project_id.as_str(),
                    old.created_at.millis(),
                    id.as_str(),
                );
                index.remove(old_key).db()?;
            }
            let (project, at, address) = &key;
            index
                .insert((project.as_str(), *at, id.as_str()), address.as_str())
                .db()?;
            Ok(old.is_none())
        })
        .await
    }

    async fn get_transaction(&self, id: &str) -> StoreResult<Option<WalletTransaction>> {
        self.read(|txn| {
            get(
                &txn.open_table(TRANSACTIONS).db()?,
                "wallet_transactions",
                id,
            )
        })
    }

    /// Walks the project's index newest first and loads only the transactions it keeps.
    async fn list_transactions(
        &self,
        project: &ProjectId,
        addresses: Option<&[AddressId]>,
        limit: usize,
        before: Option<&str>,
    ) -> StoreResult<Vec<WalletTransaction>> {
        let p = project.as_str();
        let end = after_all(p);
        self.read(|txn| {
            let table = txn.open_table(TRANSACTIONS).db()?;
            let index = txn.open_table(PROJECT_TRANSACTIONS).db()?;
            let to = match before {
                None => Bound::Excluded((end.as_str(), i64::MIN, "")),
                Some(b) => match get::<WalletTransaction>(&table, "wallet_transactions", b)? {
                    Some(t) if &t.project_id == project => {
                        Bound::Excluded((p, t.created_at.millis(), b))
                    }
                    _ => return Ok(Vec::new()),
                },
            };
            let range = index.range((Bound::Included((p, i64::MIN, "")), to)).db()?;
            let mut list = Vec::new();
            for entry in range.rev() {
                if list.len() >= limit {
                    break;
                }
                let (k, address) = entry.db()?;
                if addresses.is_some_and(|a| !a.iter().any(|x| x.as_str() == address.value())) {
                    continue;
                }
                let id = k.value().2;
                if let Some(t) = get::<WalletTransaction>(&table, "wallet_transactions", id)? {
                    list.push(t);
                }
            }
            Ok(list)
        })
    }
}
