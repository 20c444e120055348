//! Chat use cases: joining and leaving chat rooms, typing indicators, messages (send, react,
//! edit, delete) and read receipts. Every function takes a `ChatParticipant` proof or obtains
//! one first; writes are acknowledged by the store before anything is published.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;

use super::Core;
use super::access::{Actor, ChatParticipant, require_member, require_participant};
use super::error::AppError;
use super::events;
use super::ids::{ChatId, MessageId, ProjectId, UserId, new_object_id};
use super::model::{Chat, Message, MessageType};
use super::ports::{ConnId, Inserted};
use super::time::Timestamp;
use super::topic::Topic;

/// Text content limit (contract: text content ≤ 16 KiB); also bounds other types' content.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;
/// How long a typing indicator lasts without a stop.
pub const TYPING_TTL: Duration = Duration::from_secs(8);
/// Messages replayed by `chat:join` with `since`.
pub const SINCE_LIMIT: usize = 100;
pub const MAX_MENTIONS: usize = 50;
pub const MAX_READ_IDS: usize = 500;
pub const MAX_CLIENT_MESSAGE_ID: usize = 128;
/// Participants of one chat.
pub const MAX_PARTICIPANTS: usize = 1000;
/// A chat's name, in characters.
pub const MAX_CHAT_NAME: usize = 200;

// ---------------------------------------------------------------- requests

/// `POST /api/projects/{p}/chats`.
#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct CreateChat {
    #[serde(default)]
    pub id: Option<ChatId>,
    pub name: String,
    pub participants: Vec<UserId>,
    #[serde(default)]
    pub owner_id: Option<UserId>,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct JoinChat {
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    #[serde(default)]
    pub since: Option<MessageId>,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ChatRef {
    pub chat_id: ChatId,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct SendMessage {
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub content: Value,
    #[serde(default)]
    pub reply_to: Option<MessageId>,
    #[serde(default)]
    pub mentions: Option<Vec<UserId>>,
    #[serde(default)]
    pub client_message_id: Option<ClientMessageId>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
pub struct ClientMessageId(String);

impl<'de> Deserialize<'de> for ClientMessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > MAX_CLIENT_MESSAGE_ID {
            return Err(serde::de::Error::custom(format!(
                "clientMessageId must be 1 to {MAX_CLIENT_MESSAGE_ID} bytes"
            )));
        }
        Ok(ClientMessageId(s))
    }
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct ReactMessage {
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    pub message_id: MessageId,
    pub emoji: Emoji,
}

/// One grapheme cluster (an emoji, possibly with modifiers and joiners) or a short `:name:`.
#[derive(Debug, Clone, Serialize, ts_rs::TS, schemars::JsonSchema)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(s: &str) -> Result<Emoji, String> {
        let named = s.len() >= 3
            && s.len() <= 34
            && s.starts_with(':')
            && s.ends_with(':')
            && s[1..s.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c));
        let one_grapheme = s.graphemes(true).count() == 1
            && s.len() <= 64
            && !s
                .chars()
                .any(|c| c.is_alphanumeric() || c.is_whitespace() || c.is_control());
        if named || one_grapheme {
            Ok(Emoji(s.to_owned()))
        } else {
            Err("emoji must be one emoji or a :name: of up to 32 characters".to_owned())
        }
    }
}

impl<'de> Deserialize<'de> for Emoji {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Emoji::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct EditMessage {
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    pub message_id: MessageId,
    pub content: Value,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct MessageRef {
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    pub message_id: MessageId,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct MarkRead {
    pub chat_id: ChatId,
    pub project_id: ProjectId,
    pub message_ids: Vec<MessageId>,
}

// ---------------------------------------------------------------- validation

/// Text is a non-empty string; other types carry a string (URL, caption) or an object
/// (`{ url, name, size }`, `{ lat, lng }`, …). Either way the serialized content is bounded.
pub fn validate_content(kind: MessageType, content: &Value) -> Result<(), AppError> {
    validate_content_shape(content)?;
    match (kind, content) {
        (MessageType::Text, Value::String(s)) if !s.trim().is_empty() => Ok(()),
        (MessageType::Text, _) => Err(AppError::invalid("text content must be a non-empty string")),
        _ => Ok(()),
    }
}

/// What content of any type must be: bounded, a non-empty string or object. Checked before the
/// message is looked up (an edit does not know the type yet), so a wrongly-typed content is
/// INVALID_PAYLOAD whatever the ids name.
fn validate_content_shape(content: &Value) -> Result<(), AppError> {
    let size = serde_json::to_string(content)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CONTENT_BYTES + 2 {
        return Err(AppError::invalid(format!(
            "content is larger than {MAX_CONTENT_BYTES} bytes"
        )));
    }
    match content {
        Value::String(s) if !s.is_empty() => Ok(()),
        Value::Object(o) if !o.is_empty() => Ok(()),
        _ => Err(AppError::invalid(
            "content must be a non-empty string or object",
        )),
    }
}

// ---------------------------------------------------------------- join / leave

pub struct Joined {
    pub participant: ChatParticipant,
    /// The `chat:joined` payload (also the ack data).
    pub payload: Value,
}

/// Checks the participant, builds `chat:joined`; the front end joins the room and then calls
/// `announce_online`.
pub async fn join(core: &Core, actor: &Actor, req: JoinChat) -> Result<Joined, AppError> {
    let p = require_participant(
        core.store.as_ref(),
        actor,
        &req.chat_id,
        Some(&req.project_id),
    )
    .await?;
    let unread = core.store.unread_count(&p.chat.id, &actor.id).await?;
    let mut payload = json!({
        "chatId": p.chat.id,
        "projectId": p.chat.project_id,
        "participants": p.chat.participants,
        "unreadCount": unread,
    });
    if let Some(since) = &req.since {
        // One extra tells whether more remain.
        let mut missed = core
            .store
            .list_messages_after(&p.chat.id, since, SINCE_LIMIT + 1)
            .await?;
        let has_more = missed.len() > SINCE_LIMIT;
        missed.truncate(SINCE_LIMIT);
        payload["messages"] = json!(missed);
        payload["hasMore"] = json!(has_more);
    }
    Ok(Joined {
        participant: p,
        payload,
    })
}

pub async fn announce_online(
    core: &Core,
    p: &ChatParticipant,
    conn: &ConnId,
) -> Result<(), AppError> {
    core.fanout
        .publish(
            &[Topic::Chat(p.chat.id.clone())],
            events::USER_ONLINE,
            &json!({ "chatId": p.chat.id, "userId": p.actor.id }),
            Some(conn),
        )
        .await
}

/// After the front end left the room: the others see the user go.
pub async fn announce_left(
    core: &Core,
    actor: &Actor,
    chat: &ChatId,
    conn: &ConnId,
) -> Result<(), AppError> {
    core.typing.stop(core, chat, &actor.id, conn).await;
    core.fanout
        .publish(
            &[Topic::Chat(chat.clone())],
            events::USER_OFFLINE,
            &json!({ "chatId": chat, "userId": actor.id }),
            Some(conn),
        )
        .await
}

// ---------------------------------------------------------------- typing

/// Per-connection typing indicators with their expiry timers.
#[derive(Default)]
pub struct TypingTimers {
    active: Mutex<HashMap<(ConnId, ChatId), tokio::task::AbortHandle>>,
}

impl TypingTimers {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(ConnId, ChatId), tokio::task::AbortHandle>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the start and (re)arms the expiry: a start with no stop ends after 8 s.
    pub async fn start(
        core: &Arc<Core>,
        p: &ChatParticipant,
        conn: &ConnId,
    ) -> Result<(), AppError> {
        let chat = p.chat.id.clone();
        let user = p.actor.id.clone();
        publish_typing(core, events::USER_TYPING_START, &chat, &user, conn).await?;
        let key = (conn.clone(), chat.clone());
        let timer = {
            let core = core.clone();
            let key = key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(TYPING_TTL).await;
                let still_ours = core.typing.lock().remove(&key).is_some();
                if still_ours {
                    let _ = publish_typing(&core, events::USER_TYPING_STOP, &key.1, &user, &key.0)
                        .await;
                }
            })
        };
        if let Some(old) = core.typing.lock().insert(key, timer.abort_handle()) {
            old.abort();
        }
        Ok(())
    }

    /// Publishes the stop if this connection was typing in the chat (or `force`).
    pub async fn stop(&self, core: &Core, chat: &ChatId, user: &UserId, conn: &ConnId) {
        if let Some(t) = self.lock().remove(&(conn.clone(), chat.clone())) {
            t.abort();
        }
        if let Err(e) = publish_typing(core, events::USER_TYPING_STOP, chat, user, conn).await {
            tracing::debug!(error = %e, "typing stop not published");
        }
    }

    /// On disconnect: every indicator of the connection stops now.
    pub async fn connection_closed(&self, core: &Core, user: &UserId, conn: &ConnId) {
        let chats: Vec<ChatId> = {
            let mut map = self.lock();
            let keys: Vec<_> = map.keys().filter(|(c, _)| c == conn).cloned().collect();
            keys.into_iter()
                .filter_map(|k| {
                    map.remove(&k).map(|t| {
                        t.abort();
                        k.1
                    })
                })
                .collect()
        };
        for chat in chats {
            let _ = publish_typing(core, events::USER_TYPING_STOP, &chat, user, conn).await;
        }
    }
}

async fn publish_typing(
    core: &Core,
    event: &str,
    chat: &ChatId,
    user: &UserId,
    conn: &ConnId,
) -> Result<(), AppError> {
    core.fanout
        .publish(
            &[Topic::Chat(chat.clone())],
            event,
            &json!({ "chatId": chat, "userId": user }),
            Some(conn),
        )
        .await
}

// ---------------------------------------------------------------- messages

pub struct Sent {
    /// The `message:sent` payload, also the ack data, encoded.
    pub payload: Box<RawValue>,
}

pub async fn send(
    core: &Core,
    actor: &Actor,
    req: SendMessage,
    conn: &ConnId,
) -> Result<Sent, AppError> {
    validate_content(req.kind, &req.content)?;
    let mentions = req.mentions.unwrap_or_default();
    if mentions.len() > MAX_MENTIONS {
        return Err(AppError::invalid(format!(
            "at most {MAX_MENTIONS} mentions"
        )));
    }
    let p = require_participant(
        core.store.as_ref(),
        actor,
        &req.chat_id,
        Some(&req.project_id),
    )
    .await?;
    if let Some(bad) = mentions.iter().find(|m| !p.chat.has_participant(m)) {
        return Err(AppError::invalid(format!(
            "mentioned user {bad} is not a chat participant"
        )));
    }
    if let Some(r) = &req.reply_to {
        match core.store.get_message(r).await? {
            Some(m) if m.chat_id == p.chat.id => {}
            _ => {
                return Err(AppError::invalid(format!(
                    "replyTo {r} is not a message of this chat"
                )));
            }
        }
    }
    let mut unique_mentions: Vec<UserId> = Vec::with_capacity(mentions.len());
    for m in mentions {
        if !unique_mentions.contains(&m) {
            unique_mentions.push(m);
        }
    }
    let message = Message {
        id: MessageId::try_from(new_object_id()).map_err(AppError::internal)?,
        chat_id: p.chat.id.clone(),
        project_id: p.chat.project_id.clone(),
        sender_id: actor.id.clone(),
        kind: req.kind,
        content: req.content,
        reply_to: req.reply_to,
        mentions: unique_mentions,
        reactions: vec![],
        created_at: Timestamp::now(),
        edited_at: None,
        deleted_at: None,
    };
    let client_id = req.client_message_id.as_ref().map(|c| c.0.as_str());
    let stored = core.store.insert_message(message, client_id).await?;
    // Encoded once: the room's `message:new`, the sender's `message:sent` and the ack all copy
    // these bytes (a JSON tree per send and two more encodings before).
    let message = match stored {
        Inserted::New(m) => {
            let encoded = serde_json::value::to_raw_value(&m).map_err(AppError::internal)?;
            core.fanout
                .publish_encoded(
                    &[Topic::Chat(m.chat_id.clone())],
                    events::MESSAGE_NEW,
                    &encoded,
                    Some(conn),
                )
                .await?;
            for u in m.mentions.iter().filter(|u| **u != actor.id) {
                core.fanout
                    .publish_except_topics(
                        &[Topic::User(u.clone())],
                        events::MESSAGE_MENTION,
                        &json!({ "chatId": m.chat_id, "projectId": m.project_id, "message": m }),
                        &[Topic::Chat(m.chat_id.clone())],
                    )
                    .await?;
            }
            encoded
        }
        // A retry: the original answer again, and nothing new for anyone else.
        Inserted::Existing(m) => serde_json::value::to_raw_value(&m).map_err(AppError::internal)?,
    };
    let payload = serde_json::value::to_raw_value(&SentPayload {
        message: &message,
        client_message_id: req.client_message_id.as_ref().map(|c| c.0.as_str()),
    })
    .map_err(AppError::internal)?;
    Ok(Sent { payload })
}

/// `message:sent` and the ack's data: `{message, clientMessageId?}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SentPayload<'a> {
    message: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_message_id: Option<&'a str>,
}

/// Loads a message of the proven chat; NOT_FOUND for another chat's message.
async fn message_of(core: &Core, p: &ChatParticipant, id: &MessageId) -> Result<Message, AppError> {
    core.store
        .get_message(id)
        .await?
        .filter(|m| m.chat_id == p.chat.id)
        .ok_or_else(|| AppError::not_found("message", id.as_str()))
}

/// Returns the `message:reaction` payload; it goes to the room and to the sender.
pub async fn react(
    core: &Core,
    actor: &Actor,
    req: ReactMessage,
    conn: &ConnId,
) -> Result<Value, AppError> {
    let p = require_participant(
        core.store.as_ref(),
        actor,
        &req.chat_id,
        Some(&req.project_id),
    )
    .await?;
    let m = message_of(core, &p, &req.message_id).await?;
    if m.deleted_at.is_some() {
        return Err(AppError::Conflict("message is deleted".to_owned()));
    }
    let (m, added) = core
        .store
        .toggle_reaction(&m.id, &req.emoji.0, &actor.id)
        .await?
        .ok_or_else(|| AppError::not_found("message", req.message_id.as_str()))?;
    let payload = json!({
        "chatId": m.chat_id,
        "messageId": m.id,
        "emoji": req.emoji,
        "userId": actor.id,
        "action": if added { "added" } else { "removed" },
        "reactions": m.reactions,
    });
    core.fanout
        .publish(
            &[Topic::Chat(m.chat_id.clone())],
            events::MESSAGE_REACTION,
            &payload,
            Some(conn),
        )
        .await?;
    Ok(payload)
}

pub async fn edit(
    core: &Core,
    actor: &Actor,
    req: EditMessage,
    conn: &ConnId,
) -> Result<Value, AppError> {
    validate_content_shape(&req.content)?;
    let p = require_participant(
        core.store.as_ref(),
        actor,
        &req.chat_id,
        Some(&req.project_id),
    )
    .await?;
    let m = message_of(core, &p, &req.message_id).await?;
    if m.sender_id != actor.id {
        return Err(AppError::forbidden("only the author may edit a message"));
    }
    if m.deleted_at.is_some() {
        return Err(AppError::Conflict("message is deleted".to_owned()));
    }
    validate_content(m.kind, &req.content)?;
    let m = core
        .store
        .edit_message(&m.id, &req.content, Timestamp::now())
        .await?
        .ok_or_else(|| AppError::not_found("message", req.message_id.as_str()))?;
    let payload = json!({
        "chatId": m.chat_id,
        "messageId": m.id,
        "content": m.content,
        "editedAt": m.edited_at,
    });
    core.fanout
        .publish(
            &[Topic::Chat(m.chat_id.clone())],
            events::MESSAGE_EDITED,
            &payload,
            Some(conn),
        )
        .await?;
    Ok(payload)
}

pub async fn delete(
    core: &Core,
    actor: &Actor,
    req: MessageRef,
    conn: &ConnId,
) -> Result<Value, AppError> {
    let p = require_participant(
        core.store.as_ref(),
        actor,
        &req.chat_id,
        Some(&req.project_id),
    )
    .await?;
    let m = message_of(core, &p, &req.message_id).await?;
    if m.sender_id != actor.id && p.chat.owner_id != actor.id && !actor.is_admin() {
        return Err(AppError::forbidden(
            "only the author or the chat owner may delete a message",
        ));
    }
    if let Some(at) = m.deleted_at {
        // Already gone: answer as before, tell nobody again.
        return Ok(
            json!({ "chatId": m.chat_id, "messageId": m.id, "deletedBy": actor.id, "deletedAt": at }),
        );
    }
    let m = core
        .store
        .delete_message(&m.id, Timestamp::now())
        .await?
        .ok_or_else(|| AppError::not_found("message", req.message_id.as_str()))?;
    let payload = json!({
        "chatId": m.chat_id,
        "messageId": m.id,
        "deletedBy": actor.id,
        "deletedAt": m.deleted_at,
    });
    core.fanout
        .publish(
            &[Topic::Chat(m.chat_id.clone())],
            events::MESSAGE_DELETED,
            &payload,
            Some(conn),
        )
        .await?;
    Ok(payload)
}

pub async fn mark_read(
    core: &Core,
    actor: &Actor,
    req: MarkRead,
    conn: &ConnId,
) -> Result<Value, AppError> {
    if req.message_ids.is_empty() || req.message_ids.len() > MAX_READ_IDS {
        return Err(AppError::invalid(format!(
            "messageIds must hold 1 to {MAX_READ_IDS} ids"
        )));
    }
    let p = require_participant(
        core.store.as_ref(),
        actor,
        &req.chat_id,
        Some(&req.project_id),
    )
    .await?;
    let at = Timestamp::now();
    let ids = core
        .store
        .mark_read(&p.chat.id, &actor.id, &req.message_ids, at)
        .await?;
    let payload =
        json!({ "chatId": p.chat.id, "userId": actor.id, "messageIds": ids, "readAt": at });
    if !ids.is_empty() {
        core.fanout
            .publish(
                &[Topic::Chat(p.chat.id.clone())],
                events::MESSAGES_READ,
                &payload,
                Some(conn),
            )
            .await?;
    }
    Ok(payload)
}

// ---------------------------------------------------------------- chat creation

/// Creates a chat in `project`. Participants must be project members; a user creating a chat
/// is added to it and owns it; an admin may name the owner (default: the first participant).
/// Insert-only: a taken id is CONFLICT, whoever holds it (a check before the write would let
/// two concurrent creations both win).
pub async fn create(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    req: CreateChat,
) -> Result<Chat, AppError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > MAX_CHAT_NAME {
        return Err(AppError::invalid(format!(
            "name must be 1 to {MAX_CHAT_NAME} characters"
        )));
    }
    if req.participants.len() > MAX_PARTICIPANTS {
        return Err(AppError::invalid(format!(
            "at most {MAX_PARTICIPANTS} participants"
        )));
    }
    let member = require_member(core.store.as_ref(), actor, project).await?;
    let mut participants: Vec<UserId> = Vec::new();
    if actor.is_user() && !actor.is_admin() {
        participants.push(actor.id.clone());
    }
    for u in req.participants {
        if !participants.contains(&u) {
            participants.push(u);
        }
    }
    if let Some(bad) = participants.iter().find(|u| !member.project.has_member(u)) {
        return Err(AppError::invalid(format!(
            "{bad} is not a member of project {project}"
        )));
    }
    let owner = match (req.owner_id, actor.is_admin()) {
        (Some(o), true) => o,
        (Some(_), false) => return Err(AppError::forbidden("only admins may choose the owner")),
        (None, _) if actor.is_user() && !actor.is_admin() => actor.id.clone(),
        (None, _) => participants
            .first()
            .cloned()
            .ok_or_else(|| AppError::invalid("participants must not be empty"))?,
    };
    if !participants.contains(&owner) {
        return Err(AppError::invalid("the owner must be a participant"));
    }
    let id = match req.id {
        Some(id) => id,
        None => ChatId::try_from(new_object_id()).map_err(AppError::internal)?,
    };
    let chat = Chat {
        id,
        project_id: project.clone(),
        name: name.to_owned(),
        participants,
        owner_id: owner,
        created_at: Timestamp::now(),
    };
    core.store.insert_chat(&chat).await?;
    Ok(chat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_rules() {
        for ok in ["👍", "❤️", "👩‍👩‍👧", "👍🏽", "🇫🇷", ":thumbsup:", ":+1:"]
        {
            assert!(Emoji::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "👍👍",
            "a",
            "ab",
            ":no spaces:",
            "::",
            " ",
            ":waytoolongnamewaytoolongnamewaytoolong:",
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_rules() {
        assert!(validate_content(MessageType::Text, &json!("hi")).is_ok());
        assert!(validate_content(MessageType::Text, &json!("  ")).is_err());
        assert!(validate_content(MessageType::Text, &json!({"a": 1})).is_err());
        assert!(validate_content(MessageType::Text, &json!("x".repeat(16 * 1024))).is_ok());
        assert!(validate_content(MessageType::Text, &json!("x".repeat(16 * 1024 + 1))).is_err());
        assert!(validate_content(MessageType::Location, &json!({"lat": 1, "lng": 2})).is_ok());
        assert!(validate_content(MessageType::Image, &json!(null)).is_err());
    }
}
