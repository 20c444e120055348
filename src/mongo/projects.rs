//! Projects and user profiles.

use async_trait::async_trait;
use bson::doc;
use futures_util::TryStreamExt;
use mongodb::options::ReplaceOptions;

use switchboard_handlers::core::ids::{ProjectId, UserId};
use switchboard_handlers::core::model::{Project, User};
use switchboard_handlers::core::ports::{ProjectStore, StoreResult, UserStore};

use super::convert::{from_doc, to_doc};
use super::{MongoStore, PROJECTS, USERS, map_err};

pub(super) fn upsert() -> ReplaceOptions {
    ReplaceOptions::builder().upsert(true).build()
}

#[async_trait]
impl ProjectStore for MongoStore {
    async fn put_project(&self, project: &Project) -> StoreResult<()> {
        self.coll(PROJECTS)
            .replace_one(doc! { "_id": project.id.as_str() }, to_doc(project)?)
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_project(&self, id: &ProjectId) -> StoreResult<Option<Project>> {
        let d = self
            .coll(PROJECTS)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }

    async fn list_projects(&self, member: Option<&UserId>) -> StoreResult<Vec<Project>> {
        let filter = match member {
            Some(m) => doc! { "members": m.as_str() },
            None => doc! {},
        };
        let docs: Vec<_> = self
            .coll(PROJECTS)
            .find(filter)
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
impl UserStore for MongoStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        self.coll(USERS)
            .replace_one(doc! { "_id": user.id.as_str() }, to_doc(user)?)
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        let d = self
            .coll(USERS)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }
}
