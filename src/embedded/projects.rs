//! Projects, users, protocol apps and wallets: records keyed by id. Listings by project or owner
//! scan the table (these are small: one row per project, app or address).

use async_trait::async_trait;
use redb::ReadableTable;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{AddressId, ProjectId, UserId};
use switchboard_handlers::core::model::{Project, User, WalletAddress, WalletTransaction};
use switchboard_handlers::core::ports::{
    AppStore, ProjectStore, StoreResult, StoredApp, UserStore, WalletStore,
};

use super::EmbeddedStore;
use super::codec::{Db, all, encode, get};
use super::tables::{ADDRESSES, APPS, PROJECTS, TRANSACTIONS, USERS};

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
        self.write(move |txn| {
            let mut t = txn.open_table(TRANSACTIONS).db()?;
            Ok(t.insert(id.as_str(), bytes.as_slice()).db()?.is_none())
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

    /// Reads every transaction of the database and keeps the project's: the table is keyed by
    /// transaction id only. Fine for the embedded store's single-node, modest volumes; a
    /// per-project index would need a format change (see docs/console.md, "Limits").
    async fn list_transactions(
        &self,
        project: &ProjectId,
        addresses: Option<&[AddressId]>,
        limit: usize,
        before: Option<&str>,
    ) -> StoreResult<Vec<WalletTransaction>> {
        self.read(|txn| {
            let table = txn.open_table(TRANSACTIONS).db()?;
            let anchor = match before {
                None => None,
                Some(b) => match get::<WalletTransaction>(&table, "wallet_transactions", b)? {
                    Some(t) if &t.project_id == project => Some((t.created_at, t.id)),
                    _ => return Ok(Vec::new()),
                },
            };
            let mut list = all(&table, "wallet_transactions", |t: &WalletTransaction| {
                &t.project_id == project
                    && addresses.is_none_or(|a| a.contains(&t.address_id))
                    && anchor
                        .as_ref()
                        .is_none_or(|(at, id)| (t.created_at, &t.id) < (*at, id))
            })?;
            list.sort_by(|x, y| (y.created_at, &y.id).cmp(&(x.created_at, &x.id)));
            list.truncate(limit);
            Ok(list)
        })
    }
}
