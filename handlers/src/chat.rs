//! `chat:*`, `message:*` and `messages:*` events: thin translations onto `core::chat`.

use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::access::require_participant;
use crate::core::chat::{
    self, ChatRef, EditMessage, JoinChat, MarkRead, MessageRef, ReactMessage, SendMessage,
    TypingTimers,
};
use crate::core::error::AppError;
use crate::core::events;
use crate::core::payloads::ChatIdOnly;
use crate::core::topic::Topic;
use crate::socketio::Ctx;
use crate::socketio::payload::to_json;
use crate::socketio::reply::Reply;

/// `chat:join`: participant only; joins `chat:<id>`; sender `chat:joined`; room `user:online`.
pub async fn join<A: Adapter>(cx: &Ctx<A>, req: JoinChat) -> Result<Value, AppError> {
    cx.room_capacity(&Topic::Chat(req.chat_id.clone()))?;
    let joined = chat::join(&cx.core, &cx.session.actor, req).await?;
    let chat_id = &joined.participant.chat.id;
    cx.join(&Topic::Chat(chat_id.clone()))?;
    cx.emit(events::CHAT_JOINED, &joined.payload);
    chat::announce_online(&cx.core, &joined.participant, &cx.conn_id()).await?;
    Ok(joined.payload)
}

/// `chat:leave`: leaves the room; sender `chat:left`; room `user:offline` (only when the socket
/// was in the room, so nobody can announce a departure from a chat they never joined).
/// A socket in the room may always leave it (even one removed from the chat meanwhile); one
/// outside it gets the same NOT_FOUND / FORBIDDEN as every other chat event, so `chat:leave`
/// cannot probe which chats exist.
pub async fn leave<A: Adapter>(cx: &Ctx<A>, req: ChatRef) -> Result<Value, AppError> {
    let room = Topic::Chat(req.chat_id.clone());
    let was_in = cx.is_in(&room);
    if !was_in {
        require_participant(
            cx.core.store.as_ref(),
            &cx.session.actor,
            &req.chat_id,
            None,
        )
        .await?;
    }
    cx.leave(&room);
    let payload = ChatIdOnly {
        chat_id: req.chat_id,
    };
    cx.emit(events::CHAT_LEFT, &payload);
    if was_in {
        chat::announce_left(&cx.core, &cx.session.actor, &payload.chat_id, &cx.conn_id()).await?;
    }
    to_json(&payload)
}

pub async fn typing_start<A: Adapter>(cx: &Ctx<A>, req: ChatRef) -> Result<Value, AppError> {
    let p = require_participant(
        cx.core.store.as_ref(),
        &cx.session.actor,
        &req.chat_id,
        None,
    )
    .await?;
    TypingTimers::start(&cx.core, &p, &cx.conn_id()).await?;
    to_json(&ChatIdOnly {
        chat_id: req.chat_id,
    })
}

pub async fn typing_stop<A: Adapter>(cx: &Ctx<A>, req: ChatRef) -> Result<Value, AppError> {
    let p = require_participant(
        cx.core.store.as_ref(),
        &cx.session.actor,
        &req.chat_id,
        None,
    )
    .await?;
    cx.core
        .typing
        .stop(&cx.core, &p.chat.id, &p.actor.id, &cx.conn_id())
        .await;
    to_json(&ChatIdOnly {
        chat_id: req.chat_id,
    })
}

/// `message:send`: stored first; then room `message:new`, mentions, and sender `message:sent`.
pub async fn send<A: Adapter>(cx: &Ctx<A>, req: SendMessage) -> Result<Reply, AppError> {
    let sent = chat::send(&cx.core, &cx.session.actor, req, &cx.conn_id()).await?;
    cx.emit(events::MESSAGE_SENT, &*sent.payload);
    Ok(Reply::from(sent.payload))
}

/// `message:react`: room and sender get `message:reaction`.
pub async fn react<A: Adapter>(cx: &Ctx<A>, req: ReactMessage) -> Result<Value, AppError> {
    let payload = chat::react(&cx.core, &cx.session.actor, req, &cx.conn_id()).await?;
    cx.emit(events::MESSAGE_REACTION, &payload);
    Ok(payload)
}

pub async fn edit<A: Adapter>(cx: &Ctx<A>, req: EditMessage) -> Result<Value, AppError> {
    chat::edit(&cx.core, &cx.session.actor, req, &cx.conn_id()).await
}

pub async fn delete<A: Adapter>(cx: &Ctx<A>, req: MessageRef) -> Result<Value, AppError> {
    chat::delete(&cx.core, &cx.session.actor, req, &cx.conn_id()).await
}

pub async fn mark_read<A: Adapter>(cx: &Ctx<A>, req: MarkRead) -> Result<Value, AppError> {
    chat::mark_read(&cx.core, &cx.session.actor, req, &cx.conn_id()).await
}
