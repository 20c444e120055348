//! Chats, messages and read receipts. History is served newest first by the (chatId, createdAt,
//! _id) index; the unique partial index on (chatId, senderId, clientMessageId) makes client
//! retries idempotent. Reactions change by optimistic compare-and-set on the whole `reactions`
//! array (no transactions needed); read receipts are one document per (message, reader), kept
//! unique by an index so the first `readAt` wins, and read message first, earliest first, by
//! another for read summaries.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use bson::{Bson, DateTime, doc};
use futures_util::{StreamExt, TryStreamExt};
use mongodb::options::ReturnDocument;
use rand::Rng;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{ChatId, MessageId, ProjectId, UserId};
use switchboard_handlers::core::model::{Chat, Message, ReadSummary, Reader};
use switchboard_handlers::core::ports::{ChatStore, Inserted, StoreResult, chat_exists};
use switchboard_handlers::core::time::Timestamp;

use super::convert::{from_doc, to_doc};
use super::errors::{duplicate_key, is_duplicate_key, only_duplicate_keys};
use super::message_writer::Outcome;
use super::projects::upsert;
use super::{CHATS, MESSAGES, MongoStore, READ_RECEIPTS, map_err};

/// Compare-and-set attempts for one reaction toggle before giving up with a conflict.
const REACTION_ATTEMPTS: u32 = 10;
/// Messages whose read summaries are read concurrently (two queries each), so a page of 100
/// does not take the whole connection pool.
const SUMMARIES_AT_ONCE: usize = 8;

#[async_trait]
impl ChatStore for MongoStore {
    async fn put_chat(&self, chat: &Chat) -> StoreResult<()> {
        self.coll(CHATS)
            .replace_one(doc! { "_id": chat.id.as_str() }, to_doc(chat)?)
            .with_options(upsert())
            .await
            .map_err(map_err)?;
        self.chat_cache.put(chat);
        Ok(())
    }

    async fn insert_chat(&self, chat: &Chat) -> StoreResult<()> {
        match self.coll(CHATS).insert_one(to_doc(chat)?).await {
            Ok(_) => {
                self.chat_cache.put(chat);
                Ok(())
            }
            Err(e) if is_duplicate_key(&e) => Err(chat_exists(&chat.id)),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get_chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        if let Some(c) = self.chat_cache.get(id) {
            return Ok(Some(c));
        }
        let d = self
            .coll(CHATS)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        let chat: Option<Chat> = d.map(from_doc).transpose()?;
        if let Some(c) = &chat {
            self.chat_cache.put(c);
        }
        Ok(chat)
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
        message: Message,
        client_message_id: Option<&str>,
    ) -> StoreResult<Inserted<Message>> {
        let mut d = to_doc(&message)?;
        if let Some(k) = client_message_id {
            d.insert("clientMessageId", k);
        }
        match self.messages.insert(d).await {
            Outcome::Inserted => Ok(Inserted::New(message)),
            Outcome::DuplicateKey if client_message_id.is_some() => {
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
                    None => Err(duplicate_key()),
                }
            }
            Outcome::DuplicateKey => Err(duplicate_key()),
            Outcome::Failed(e) => Err(e),
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
        if limit == 0 {
            // MongoDB reads a limit of 0 as "no limit".
            return Ok(Vec::new());
        }
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

    async fn list_messages_after(
        &self,
        chat: &ChatId,
        after: &MessageId,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(anchor) = self.get_message(after).await? else {
            return Ok(Vec::new());
        };
        if &anchor.chat_id != chat {
            return Ok(Vec::new());
        }
        let at = DateTime::from_millis(anchor.created_at.millis());
        let filter = doc! {
            "chatId": chat.as_str(),
            "$or": [
                { "createdAt": { "$gt": at } },
                { "createdAt": at, "_id": { "$gt": anchor.id.as_str() } },
            ],
        };
        let docs: Vec<_> = self
            .coll(MESSAGES)
            .find(filter)
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(from_doc_msg).collect()
    }

    async fn toggle_reaction(
        &self,
        id: &MessageId,
        emoji: &str,
        user: &UserId,
    ) -> StoreResult<Option<(Message, bool)>> {
        for attempt in 0..REACTION_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let Some(d) = self
                .coll(MESSAGES)
                .find_one(doc! { "_id": id.as_str() })
                .await
                .map_err(map_err)?
            else {
                return Ok(None);
            };
            // The array exactly as stored is the compare-and-set guard.
            let old = d.get("reactions").cloned().unwrap_or(Bson::Null);
            let mut message = from_doc_msg(d)?;
            let added = message.toggle_reaction(emoji, user)?;
            let new = bson::to_bson(&message.reactions).map_err(AppError::internal)?;
            let r = self
                .coll(MESSAGES)
                .update_one(
                    doc! { "_id": id.as_str(), "reactions": old },
                    doc! { "$set": { "reactions": new } },
                )
                .await
                .map_err(map_err)?;
            if r.matched_count == 1 {
                return Ok(Some((message, added)));
            }
        }
        Err(AppError::Conflict(
            "the message's reactions are changing too fast; try again".to_owned(),
        ))
    }

    async fn edit_message(
        &self,
        id: &MessageId,
        content: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        let content = bson::to_bson(content).map_err(AppError::internal)?;
        self.update_message(
            id,
            doc! { "content": content, "editedAt": DateTime::from_millis(at.millis()) },
        )
        .await
    }

    async fn delete_message(&self, id: &MessageId, at: Timestamp) -> StoreResult<Option<Message>> {
        self.update_message(
            id,
            doc! { "content": "", "deletedAt": DateTime::from_millis(at.millis()) },
        )
        .await
    }

    async fn mark_read(
        &self,
        chat: &ChatId,
        user: &UserId,
        ids: &[MessageId],
        at: Timestamp,
    ) -> StoreResult<Vec<MessageId>> {
        let mut seen = HashSet::new();
        let ids: Vec<&MessageId> = ids.iter().filter(|id| seen.insert(*id)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
        let found: Vec<_> = self
            .coll(MESSAGES)
            .find(doc! { "_id": { "$in": wanted }, "chatId": chat.as_str() })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let found: HashSet<&str> = found.iter().filter_map(|d| d.get_str("_id").ok()).collect();
        let valid: Vec<MessageId> = ids
            .into_iter()
            .filter(|id| found.contains(id.as_str()))
            .cloned()
            .collect();
        if valid.is_empty() {
            return Ok(valid);
        }
        let read_at = DateTime::from_millis(at.millis());
        let receipts = valid.iter().map(|id| {
            doc! {
                "chatId": chat.as_str(),
                "userId": user.as_str(),
                "messageId": id.as_str(),
                "readAt": read_at,
            }
        });
        match self
            .coll(READ_RECEIPTS)
            .insert_many(receipts)
            .ordered(false)
            .await
        {
            Ok(_) => Ok(valid),
            // Already read: the unique (messageId, userId) index kept the first receipt.
            Err(e) if only_duplicate_keys(&e) => Ok(valid),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Two indexed reads per message (its first readers, its count) on the (chatId, messageId,
    /// readAt, userId) index, a few messages at a time. One aggregation over the page would read
    /// every receipt of every message on it.
    async fn read_summaries(
        &self,
        chat: &ChatId,
        ids: &[MessageId],
        first: usize,
    ) -> StoreResult<Vec<ReadSummary>> {
        let limit = i64::try_from(first).unwrap_or(i64::MAX);
        let one = |id: &MessageId| {
            let filter = doc! { "chatId": chat.as_str(), "messageId": id.as_str() };
            let receipts = self.coll(READ_RECEIPTS);
            async move {
                let count = receipts.count_documents(filter.clone());
                let readers = async {
                    if limit == 0 {
                        return Ok(Vec::new());
                    }
                    receipts
                        .find(filter.clone())
                        .sort(doc! { "readAt": 1, "userId": 1 })
                        .limit(limit)
                        .projection(doc! { "_id": 0, "userId": 1, "readAt": 1 })
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                };
                let (read_count, readers) = tokio::try_join!(count, readers).map_err(map_err)?;
                let read_by = readers
                    .into_iter()
                    .map(reader_of)
                    .collect::<StoreResult<Vec<Reader>>>()?;
                Ok::<_, AppError>(ReadSummary {
                    read_count,
                    read_by,
                })
            }
        };
        futures_util::stream::iter(ids)
            .map(one)
            .buffered(SUMMARIES_AT_ONCE)
            .try_collect()
            .await
    }

    async fn unread_count(&self, chat: &ChatId, user: &UserId) -> StoreResult<u64> {
        let receipts: Vec<_> = self
            .coll(READ_RECEIPTS)
            .find(doc! { "chatId": chat.as_str(), "userId": user.as_str() })
            .projection(doc! { "_id": 0, "messageId": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let read: Vec<Bson> = receipts
            .into_iter()
            .filter_map(|mut d| d.remove("messageId"))
            .collect();
        self.coll(MESSAGES)
            .count_documents(doc! {
                "chatId": chat.as_str(),
                "senderId": { "$ne": user.as_str() },
                "deletedAt": null,
                "_id": { "$nin": read },
            })
            .await
            .map_err(map_err)
    }
}

impl MongoStore {
    /// `$set`s fields of one message and returns it as it is afterwards.
    async fn update_message(
        &self,
        id: &MessageId,
        set: bson::Document,
    ) -> StoreResult<Option<Message>> {
        let d = self
            .coll(MESSAGES)
            .find_one_and_update(doc! { "_id": id.as_str() }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?;
        d.map(from_doc_msg).transpose()
    }
}

/// A random pause before compare-and-set attempt `attempt` (≥ 1): "full jitter" over a window
/// that doubles from 20 ms up to 160 ms, so concurrent togglers spread out instead of colliding
/// in lockstep (20 simultaneous toggles on one message settle within about six attempts, well
/// inside `REACTION_ATTEMPTS`; uncontended toggles never wait).
async fn backoff(attempt: u32) {
    let window = 10u64 << attempt.min(4);
    let ms = rand::rng().random_range(1..=window);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// A stored receipt's reader and first readAt.
fn reader_of(d: bson::Document) -> StoreResult<Reader> {
    let bad = |e: String| AppError::internal(format!("undecodable receipt: {e}"));
    let user = d.get_str("userId").map_err(|e| bad(e.to_string()))?;
    let at = d.get_datetime("readAt").map_err(|e| bad(e.to_string()))?;
    Ok(Reader {
        user_id: UserId::try_from(user).map_err(|e| bad(e.to_string()))?,
        read_at: Timestamp::from_millis(at.timestamp_millis()),
    })
}

/// The stored form carries `clientMessageId`, which is not part of the wire message.
fn from_doc_msg(mut d: bson::Document) -> StoreResult<Message> {
    d.remove("clientMessageId");
    from_doc(d)
}
