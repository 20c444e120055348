//! Switchboard's application crate: the transport-agnostic core in [`core`] and the Socket.IO
//! front end beside it ([`socketio`] glue plus one module per event prefix).
//!
//! Finding an event: its prefix is the module (`subscribe:project` → [`project`],
//! `custom:event` → [`custom`]), the function is the rest of the name in snake case, and
//! [`dispatch`] below lists every event next to its function.
//!
//! Layering: this crate never talks to MongoDB, Redis or HTTP; it reaches them through the ports
//! in [`core::ports`], implemented in the `switchboard` binary crate and in [`core::memory`].

pub mod core;
pub mod socketio;

pub mod auth;
pub mod call;
pub mod chat;
pub mod collection;
pub mod custom;
pub mod document;
pub mod integration;
pub mod presence;
pub mod project;
pub mod query;
pub mod wallet;

#[cfg(feature = "testkit")]
pub mod testkit;

use std::sync::Arc;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::core::Core;
use crate::core::error::AppError;
use crate::socketio::Ctx;
use crate::socketio::payload::decode;
use crate::socketio::reply::Reply;

/// Every client → server event this server handles.
pub const EVENTS: &[&str] = &[
    "subscribe:project",
    "unsubscribe:project",
    "custom:event",
    "custom:broadcast",
    "custom:join",
    "custom:leave",
    "custom:message",
    "custom:presence",
    "custom:typing",
    "custom:file:share",
    "auth:login",
    "auth:logout",
    "auth:session:update",
    "presence:online",
    "presence:offline",
    "presence:update",
    "presence:get:online",
    "integration:join",
    "integration:leave",
    "integration:execute",
    "integration:test",
    "integration:status",
    "integration:webhook:subscribe",
    "integration:webhook:unsubscribe",
    "wallet:subscribe:address",
    "wallet:subscribe:project",
    "wallet:subscribe:chain",
    "wallet:subscribe:currency",
    "wallet:unsubscribe:address",
    "wallet:unsubscribe:project",
    "chat:join",
    "chat:leave",
    "chat:typing:start",
    "chat:typing:stop",
    "message:send",
    "message:react",
    "message:edit",
    "message:delete",
    "messages:mark:read",
    "call:initiate",
    "call:accept",
    "call:reject",
    "call:end",
    "call:signal",
    "subscribe:collection",
    "unsubscribe:collection",
    "subscribe:document",
    "subscribe:query",
    "unsubscribe:query",
];

pub fn is_known_event(event: &str) -> bool {
    EVENTS.contains(&event)
}

/// Events that wait on a third party (an integration's HTTP endpoint, up to its timeout): the
/// dispatcher runs them beside the socket's ordered queue instead of in it.
pub fn is_detached_event(event: &str) -> bool {
    matches!(event, "integration:execute" | "integration:test")
}

/// Decodes the payload into the handler's request type and runs it. The answer goes to the
/// ack as it is (it used to be re-serialized: a deep copy of every answer).
macro_rules! route {
    ($cx:expr, $args:expr, $handler:path) => {{
        let req = decode($args)?;
        Ok(Reply::from($handler($cx, req).await?))
    }};
}

/// The event table.
pub async fn dispatch<A: Adapter>(
    cx: &Ctx<A>,
    event: &str,
    args: Value,
) -> Result<Reply, AppError> {
    match event {
        "subscribe:project" => route!(cx, args, project::subscribe_project),
        "unsubscribe:project" => route!(cx, args, project::unsubscribe_project),
        "custom:event" => route!(cx, args, custom::event),
        "custom:broadcast" => route!(cx, args, custom::broadcast),
        "custom:join" => route!(cx, args, custom::join),
        "custom:leave" => route!(cx, args, custom::leave),
        "custom:message" => route!(cx, args, custom::message),
        "custom:presence" => route!(cx, args, custom::presence),
        "custom:typing" => route!(cx, args, custom::typing),
        "custom:file:share" => route!(cx, args, custom::file_share),
        "auth:login" => route!(cx, args, auth::login),
        "auth:logout" => route!(cx, args, auth::logout),
        "auth:session:update" => route!(cx, args, auth::session_update),
        "presence:online" => route!(cx, args, presence::online),
        "presence:offline" => route!(cx, args, presence::offline),
        "presence:update" => route!(cx, args, presence::update),
        "presence:get:online" => route!(cx, args, presence::get_online),
        "integration:join" => route!(cx, args, integration::join),
        "integration:leave" => route!(cx, args, integration::leave),
        "integration:execute" => route!(cx, args, integration::execute),
        "integration:test" => route!(cx, args, integration::test),
        "integration:status" => route!(cx, args, integration::status),
        "integration:webhook:subscribe" => route!(cx, args, integration::webhook_subscribe),
        "integration:webhook:unsubscribe" => route!(cx, args, integration::webhook_unsubscribe),
        "wallet:subscribe:address" => route!(cx, args, wallet::subscribe_address),
        "wallet:subscribe:project" => route!(cx, args, wallet::subscribe_project),
        "wallet:subscribe:chain" => route!(cx, args, wallet::subscribe_chain),
        "wallet:subscribe:currency" => route!(cx, args, wallet::subscribe_currency),
        "wallet:unsubscribe:address" => route!(cx, args, wallet::unsubscribe_address),
        "wallet:unsubscribe:project" => route!(cx, args, wallet::unsubscribe_project),
        "chat:join" => route!(cx, args, chat::join),
        "chat:leave" => route!(cx, args, chat::leave),
        "chat:typing:start" => route!(cx, args, chat::typing_start),
        "chat:typing:stop" => route!(cx, args, chat::typing_stop),
        "message:send" => route!(cx, args, chat::send),
        "message:react" => route!(cx, args, chat::react),
        "message:edit" => route!(cx, args, chat::edit),
        "message:delete" => route!(cx, args, chat::delete),
        "messages:mark:read" => route!(cx, args, chat::mark_read),
        "call:initiate" => route!(cx, args, call::initiate),
        "call:accept" => route!(cx, args, call::accept),
        "call:reject" => route!(cx, args, call::reject),
        "call:end" => route!(cx, args, call::end),
        "call:signal" => route!(cx, args, call::signal),
        "subscribe:collection" => route!(cx, args, collection::subscribe_collection),
        "unsubscribe:collection" => route!(cx, args, collection::unsubscribe_collection),
        "subscribe:document" => route!(cx, args, document::subscribe_document),
        "subscribe:query" => route!(cx, args, query::subscribe_query),
        "unsubscribe:query" => route!(cx, args, query::unsubscribe_query),
        other => Err(AppError::invalid(format!("unknown event {other:?}"))),
    }
}

/// Registers the `/` namespace: authentication and set-up run in the connect middleware. With a
/// remote adapter the returned value is a future that must be awaited.
pub fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, core: Arc<Core>) -> A::InitRes {
    let middleware = move |s: SocketRef<A>, TryData(raw): TryData<Value>| {
        let core = core.clone();
        async move { socketio::session::connect(core, s, raw).await }
    };
    io.ns("/", (async || {}).with(middleware))
}
