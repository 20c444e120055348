//! Chats and messages. History is served newest first by the (chatId, createdAt, _id) index; the
//! unique partial index on (chatId, senderId, clientMessageId) makes client retries idempotent.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{DateTime, doc};

use switchboard_handlers::core::ids::{ChatId, MessageId, ProjectId, UserId};
use switchboard_handlers::core::model::{Chat, Message};
use switchboard_handlers::core::ports::{ChatStore, Inserted, StoreResult};

use super::convert::{from_doc, to_doc};
use super::errors::is_duplicate_key;
use super::projects::upsert;
use super::{CHATS, MESSAGES, MongoStore, map_err};

#[async_trait]
impl ChatStore for MongoStore {
    async fn put_chat(&self, chat: &Chat) -> StoreResult<()> {
        self.coll(CHATS)
            .replace_one(doc! { "_id": chat.id.as_str() }, to_doc(chat)?)
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        let d = self
            .coll(CHATS)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }

    async fn list_chats(
        &self,
        project: &ProjectId,
        participant: Option<&UserId>,
    ) -> StoreResult<Vec<Chat>> {
        let mut filter = doc! { "projectId": project.as_str() };
        if let Some(u) = participant {
            filter.insert("participants", u.as_str());
        }
        let docs: Vec<_> = self
            .coll(CHATS)
            .find(filter)
            .sort(doc! { "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc).collect()
    }

    async fn insert_message(
        &self,
        message: &Message,
        client_message_id: Option<&str>,
    ) -> StoreResult<Inserted<Message>> {
        let mut d = to_doc(message)?;
        if let Some(k) = client_message_id {
            d.insert("clientMessageId", k);
        }
        match self.coll(MESSAGES).insert_one(d).await {
            Ok(_) => Ok(Inserted::New(message.clone())),
            Err(e) if is_duplicate_key(&e) && client_message_id.is_some() => {
                let existing = self
                    .coll(MESSAGES)
                    .find_one(doc! {
                        "chatId": message.chat_id.as_str(),
                        "senderId": message.sender_id.as_str(),
                        "clientMessageId": client_message_id,
                    })
                    .await
                    .map_err(map_err)?;
                match existing {
                    Some(d) => Ok(Inserted::Existing(from_doc_msg(d)?)),
                    None => Err(map_err(e)),
                }
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        let d = self
            .coll(MESSAGES)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(from_doc_msg).transpose()
    }

    async fn list_messages(
        &self,
        chat: &ChatId,
        limit: usize,
        before: Option<&MessageId>,
    ) -> StoreResult<Vec<Message>> {
        let mut filter = doc! { "chatId": chat.as_str() };
        if let Some(b) = before {
            let Some(anchor) = self.get_message(b).await? else {
                return Ok(Vec::new());
            };
            if &anchor.chat_id != chat {
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
            .coll(MESSAGES)
            .find(filter)
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc_msg).collect()
    }
}

/// The stored form carries `clientMessageId`, which is not part of the wire message.
fn from_doc_msg(mut d: mongodb::bson::Document) -> StoreResult<Message> {
    d.remove("clientMessageId");
    from_doc(d)
}
