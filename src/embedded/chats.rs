//! Chats and messages. A message is stored once by id; `chat_messages` orders a chat's history
//! by (createdAt, id) like the other stores, `client_ids` makes retried sends idempotent,
//! `receipts` holds each reader's first readAt (reader first, for unread counts) and
//! `message_readers` with `read_counts` the same receipts message first, for read summaries.

use std::collections::HashSet;
use std::ops::Bound;

use async_trait::async_trait;
use redb::ReadableTable;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{ChatId, MessageId, ProjectId, UserId};
use switchboard_handlers::core::model::{Chat, Message, ReadSummary, Reader};
use switchboard_handlers::core::ports::{ChatStore, Inserted, StoreResult, chat_exists};
use switchboard_handlers::core::time::Timestamp;

use super::EmbeddedStore;
use super::codec::{Db, after_all, all, encode, get};
use super::tables::{
    CHAT_MESSAGES, CHATS, CLIENT_IDS, MESSAGE_READERS, MESSAGES, READ_COUNTS, RECEIPTS,
};

type MessagesTable<'t> = redb::Table<'t, &'static str, &'static [u8]>;

fn load(
    t: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> StoreResult<Option<Message>> {
    get(t, "messages", id)
}

/// Applies `change` to the stored message and writes it back; `None` when there is none.
fn update(
    t: &mut MessagesTable<'_>,
    id: &str,
    change: impl FnOnce(&mut Message) -> StoreResult<()>,
) -> StoreResult<Option<Message>> {
    let Some(mut m) = load(t, id)? else {
        return Ok(None);
    };
    change(&mut m)?;
    t.insert(id, encode(&m)?.as_slice()).db()?;
    Ok(Some(m))
}

/// Messages of one chat, in history order, between two bounds of `chat_messages`.
fn history(
    txn: &redb::ReadTransaction,
    from: Bound<(&str, i64, &str)>,
    to: Bound<(&str, i64, &str)>,
    newest_first: bool,
    limit: usize,
) -> StoreResult<Vec<Message>> {
    let order = txn.open_table(CHAT_MESSAGES).db()?;
    let messages = txn.open_table(MESSAGES).db()?;
    let range = order.range((from, to)).db()?;
    let ids: Box<dyn Iterator<Item = _>> = if newest_first {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    let mut out = Vec::new();
    for entry in ids.take(limit) {
        let (k, _) = entry.db()?;
        if let Some(m) = load(&messages, k.value().2)? {
            out.push(m);
        }
    }
    Ok(out)
}

#[async_trait]
impl ChatStore for EmbeddedStore {
    async fn put_chat(&self, chat: &Chat) -> StoreResult<()> {
        let (id, bytes) = (chat.id.to_string(), encode(chat)?);
        self.write(move |txn| {
            let mut t = txn.open_table(CHATS).db()?;
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn insert_chat(&self, chat: &Chat) -> StoreResult<()> {
        let (id, bytes) = (chat.id.clone(), encode(chat)?);
        self.write(move |txn| {
            let mut t = txn.open_table(CHATS).db()?;
            if t.get(id.as_str()).db()?.is_some() {
                return Err(chat_exists(&id));
            }
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn get_chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        self.read(|txn| get(&txn.open_table(CHATS).db()?, "chats", id.as_str()))
    }

    async fn list_chats(
        &self,
        project: &ProjectId,
        participant: Option<&UserId>,
    ) -> StoreResult<Vec<Chat>> {
        self.read(|txn| {
            all(&txn.open_table(CHATS).db()?, "chats", |c: &Chat| {
                &c.project_id == project && participant.is_none_or(|u| c.has_participant(u))
            })
        })
    }

    async fn insert_message(
        &self,
        message: Message,
        client_message_id: Option<&str>,
    ) -> StoreResult<Inserted<Message>> {
        let key = client_message_id.map(str::to_owned);
        let bytes = encode(&message)?;
        self.write(move |txn| {
            let mut clients = txn.open_table(CLIENT_IDS).db()?;
            let mut messages = txn.open_table(MESSAGES).db()?;
            let (chat, sender, id) = (
                message.chat_id.as_str(),
                message.sender_id.as_str(),
                message.id.as_str(),
            );
            if let Some(k) = &key {
                let first = clients
                    .get((chat, sender, k.as_str()))
                    .db()?
                    .map(|v| v.value().to_owned());
                if let Some(existing) = first.map(|f| load(&messages, &f)).transpose()?.flatten() {
                    return Ok(Inserted::Existing(existing));
                }
            }
            if messages.get(id).db()?.is_some() {
                return Err(AppError::Conflict(format!("message {id} already exists")));
            }
            messages.insert(id, bytes.as_slice()).db()?;
            txn.open_table(CHAT_MESSAGES)
                .db()?
                .insert((chat, message.created_at.millis(), id), (sender, false))
                .db()?;
            if let Some(k) = &key {
                clients.insert((chat, sender, k.as_str()), id).db()?;
            }
            drop((clients, messages));
            Ok(Inserted::New(message))
        })
        .await
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        self.read(|txn| load(&txn.open_table(MESSAGES).db()?, id.as_str()))
    }

    async fn list_messages(
        &self,
        chat: &ChatId,
        limit: usize,
        before: Option<&MessageId>,
    ) -> StoreResult<Vec<Message>> {
        let end = after_all(chat.as_str());
        self.read(|txn| {
            let to = match before {
                Some(b) => match load(&txn.open_table(MESSAGES).db()?, b.as_str())? {
                    Some(m) if &m.chat_id == chat => {
                        return history(
                            txn,
                            Bound::Included((chat.as_str(), i64::MIN, "")),
                            Bound::Excluded((chat.as_str(), m.created_at.millis(), b.as_str())),
                            true,
                            limit,
                        );
                    }
                    _ => return Ok(Vec::new()),
                },
                None => Bound::Excluded((end.as_str(), i64::MIN, "")),
            };
            history(
                txn,
                Bound::Included((chat.as_str(), i64::MIN, "")),
                to,
                true,
                limit,
            )
        })
    }

    async fn list_messages_after(
        &self,
        chat: &ChatId,
        after: &MessageId,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let end = after_all(chat.as_str());
        self.read(|txn| {
            let Some(m) = load(&txn.open_table(MESSAGES).db()?, after.as_str())? else {
                return Ok(Vec::new());
            };
            if &m.chat_id != chat {
                return Ok(Vec::new());
            }
            history(
                txn,
                Bound::Excluded((chat.as_str(), m.created_at.millis(), after.as_str())),
                Bound::Excluded((end.as_str(), i64::MIN, "")),
                false,
                limit,
            )
        })
    }

    async fn toggle_reaction(
        &self,
        id: &MessageId,
        emoji: &str,
        user: &UserId,
    ) -> StoreResult<Option<(Message, bool)>> {
        let (id, emoji, user) = (id.clone(), emoji.to_owned(), user.clone());
        self.write(move |txn| {
            let mut t = txn.open_table(MESSAGES).db()?;
            let mut added = false;
            let m = update(&mut t, id.as_str(), |m| {
                added = m.toggle_reaction(&emoji, &user)?;
                Ok(())
            })?;
            Ok(m.map(|m| (m, added)))
        })
        .await
    }

    async fn edit_message(
        &self,
        id: &MessageId,
        content: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        let (id, content) = (id.clone(), content.clone());
        self.write(move |txn| {
            let mut t = txn.open_table(MESSAGES).db()?;
            update(&mut t, id.as_str(), |m| {
                m.content = content;
                m.edited_at = Some(at);
                Ok(())
            })
        })
        .await
    }

    async fn delete_message(&self, id: &MessageId, at: Timestamp) -> StoreResult<Option<Message>> {
        let id = id.clone();
        self.write(move |txn| {
            let mut t = txn.open_table(MESSAGES).db()?;
            let deleted = update(&mut t, id.as_str(), |m| {
                m.content = serde_json::Value::String(String::new());
                m.deleted_at = Some(at);
                Ok(())
            })?;
            if let Some(m) = &deleted {
                let key = (m.chat_id.as_str(), m.created_at.millis(), id.as_str());
                let entry = (m.sender_id.as_str(), true);
                txn.open_table(CHAT_MESSAGES)
                    .db()?
                    .insert(key, entry)
                    .db()?;
            }
            Ok(deleted)
        })
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
        let ids: Vec<MessageId> = ids.iter().filter(|id| seen.insert(*id)).cloned().collect();
        let (chat, user) = (chat.clone(), user.clone());
        self.write(move |txn| {
            let messages = txn.open_table(MESSAGES).db()?;
            let mut receipts = txn.open_table(RECEIPTS).db()?;
            let mut valid = Vec::new();
            for id in ids {
                if load(&messages, id.as_str())?.is_some_and(|m| m.chat_id == chat) {
                    valid.push(id);
                }
            }
            let mut readers = txn.open_table(MESSAGE_READERS).db()?;
            let mut counts = txn.open_table(READ_COUNTS).db()?;
            for id in &valid {
                let key = (chat.as_str(), user.as_str(), id.as_str());
                if receipts.get(key).db()?.is_none() {
                    receipts.insert(key, at.millis()).db()?;
                    add_reader(&mut readers, &mut counts, key, at.millis())?;
                }
            }
            Ok(valid)
        })
        .await
    }

    async fn read_summaries(
        &self,
        chat: &ChatId,
        ids: &[MessageId],
        first: usize,
    ) -> StoreResult<Vec<ReadSummary>> {
        self.read(|txn| {
            let readers = txn.open_table(MESSAGE_READERS).db()?;
            let counts = txn.open_table(READ_COUNTS).db()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let (chat, id) = (chat.as_str(), id.as_str());
                let read_count = counts.get((chat, id)).db()?.map_or(0, |v| v.value());
                let mut read_by = Vec::new();
                if read_count > 0 && first > 0 {
                    let end = after_all(id);
                    let range = readers
                        .range((chat, id, i64::MIN, "")..(chat, end.as_str(), i64::MIN, ""))
                        .db()?;
                    for entry in range.take(first) {
                        let (k, _) = entry.db()?;
                        let (_, _, ms, user) = k.value();
                        read_by.push(Reader {
                            user_id: UserId::try_from(user)
                                .map_err(|e| AppError::internal(format!("reader id: {e}")))?,
                            read_at: Timestamp::from_millis(ms),
                        });
                    }
                }
                out.push(ReadSummary {
                    read_count,
                    read_by,
                });
            }
            Ok(out)
        })
    }

    async fn unread_count(&self, chat: &ChatId, user: &UserId) -> StoreResult<u64> {
        let end = after_all(chat.as_str());
        self.read(|txn| {
            let order = txn.open_table(CHAT_MESSAGES).db()?;
            let receipts = txn.open_table(RECEIPTS).db()?;
            let mut n = 0u64;
            let range = order
                .range((chat.as_str(), i64::MIN, "")..(end.as_str(), i64::MIN, ""))
                .db()?;
            for entry in range {
                let (k, v) = entry.db()?;
                let (sender, deleted) = v.value();
                if sender == user.as_str() || deleted {
                    continue;
                }
                let read = receipts
                    .get((chat.as_str(), user.as_str(), k.value().2))
                    .db()?;
                n += u64::from(read.is_none());
            }
            Ok(n)
        })
    }
}

/// Indexes one new receipt (chat, reader, message) message first and counts it: called in the
/// transaction that records it, and by the format 2 backfill.
pub(super) fn add_reader(
    readers: &mut redb::Table<'_, (&'static str, &'static str, i64, &'static str), ()>,
    counts: &mut redb::Table<'_, (&'static str, &'static str), u64>,
    (chat, user, id): (&str, &str, &str),
    read_at: i64,
) -> StoreResult<()> {
    readers.insert((chat, id, read_at, user), ()).db()?;
    let n = counts.get((chat, id)).db()?.map_or(0, |v| v.value());
    counts.insert((chat, id), n + 1).db()?;
    Ok(())
}
