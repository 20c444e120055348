//! Switchboard's Socket.IO front end: [`socketio`] glue plus one module per resource events act
//! on, over the transport-agnostic core (the `switchboard-core` crate, re-exported as [`core`]).
//!
//! Finding an event: the event table below (`event_table!`) lists every event next to its
//! handler, and it is the only list. Handler modules are named for the resource an event acts on:
//!
//! - `<resource>:<action>` → module `<resource>`, function `<action>` in snake case
//!   (`chat:typing:start` → [`chat::typing_start`], `custom:file:share` →
//!   [`custom::file_share`]), for `auth`, `call`, `chat`, `custom`, `integration`, `presence`
//!   and `wallet`;
//! - `subscribe:<resource>` and `unsubscribe:<resource>` → module `<resource>`, function the
//!   whole name (`subscribe:project` → [`project::subscribe_project`]), for `project`,
//!   `collection`, `document` and `query`;
//! - `message:*` and `messages:mark:read` act on a chat's messages → [`chat`]
//!   (`message:send` → [`chat::send`], `messages:mark:read` → [`chat::mark_read`]).
//!
//! A handler decodes its request, calls a use case in [`core`] and does the Socket.IO part
//! (joining rooms, emitting to the sender). The use case sits in the core module of the same
//! name, except: `call:*` → [`core::calls`]; the collection, document and query subscriptions →
//! [`core::data::subscriptions`]; `custom:event` → [`core::project`] (a relay to the project's
//! room); `auth:*` → [`core::custom`] (relays like the other `custom:*` ones). Request types
//! sit next to their use case; a shape several use cases share has one type (a bare project is
//! [`core::project::ProjectOnly`]).
//!
//! Layering: this crate never talks to MongoDB, Redis or HTTP; it reaches them through the ports
//! in [`core::ports`], implemented in the `switchboard` binary crate and in [`core::memory`].

pub use switchboard_core as core;
pub mod contract;
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
pub use switchboard_core::testkit;

use std::sync::Arc;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::core::Core;
use crate::core::error::AppError;
use crate::core::hub::FrontEndId;
use crate::core::metrics::UNKNOWN_EVENT_LABEL;
use crate::socketio::Ctx;
use crate::socketio::payload::decode;
use crate::socketio::reply::Reply;

/// Generates, from one list of `"event:name" => module::function -> AckData [flags]` rows,
/// everything that names events: [`EVENTS`], [`is_known_event`], [`is_detached_event`],
/// [`is_relayed_event`], [`event_label`], [`dispatch`] and [`visit_client_events`] (the
/// published contracts). An event therefore cannot be known but undispatched, counted under a
/// label that is not an event, or handled without a described request and ack. The request
/// type is the handler's own parameter; `AckData` names a type of `core::payloads`. Flags:
/// `detached`, `relayed`; any other word does not compile.
macro_rules! event_table {
    (@is detached detached) => { true };
    (@is relayed relayed) => { true };
    (@is $want:ident detached) => { false };
    (@is $want:ident relayed) => { false };
    ($($name:literal => $module:ident :: $function:ident -> $ack:ident $([$($flag:ident),+])?,)*) => {
        /// Every client → server event this server handles.
        pub const EVENTS: &[&str] = &[$($name),*];

        pub fn is_known_event(event: &str) -> bool {
            matches!(event, $($name)|*)
        }

        /// Events that wait on a third party (an integration's HTTP endpoint, up to its
        /// timeout): the dispatcher runs them beside the socket's ordered queue instead of in it.
        pub fn is_detached_event(event: &str) -> bool {
            match event {
                $($name => false $($(|| event_table!(@is detached $flag))+)?,)*
                _ => false,
            }
        }

        /// Events whose payload the server passes on to other sockets: the relay byte budget
        /// (`RELAY_BYTES_PER_SEC`) covers them; joining, leaving and reading pass nothing on.
        pub fn is_relayed_event(event: &str) -> bool {
            match event {
                $($name => false $($(|| event_table!(@is relayed $flag))+)?,)*
                _ => false,
            }
        }

        /// The metric label an event is counted under: its own name when it is in the table,
        /// [`UNKNOWN_EVENT_LABEL`] otherwise, so clients cannot add labels.
        pub fn event_label(event: &str) -> &'static str {
            match event {
                $($name => $name,)*
                _ => UNKNOWN_EVENT_LABEL,
            }
        }

        /// Runs the event's handler.
        pub async fn dispatch<A: Adapter>(
            cx: &Ctx<A>,
            event: &str,
            args: Value,
        ) -> Result<Reply, AppError> {
            match event {
                $($name => route!(cx, args, $module::$function),)*
                other => Err(AppError::invalid(format!("unknown event {other:?}"))),
            }
        }

        /// Reports every event, in table order, with its handler's request type and its ack
        /// data type.
        pub fn visit_client_events(v: &mut impl contract::ClientEventVisitor) {
            $(contract::visit_handler::<crate::core::payloads::$ack, _, _, _, _>(
                v,
                $name,
                $module::$function,
            );)*
        }

        /// Decodes a payload into the request type of the event's handler without running it:
        /// `None` when no handler is listed for the event.
        #[cfg(test)]
        fn decode_for_handler(event: &str, args: Value) -> Option<Result<(), AppError>> {
            match event {
                $($name => Some(tests::decode_request::<socketioxide::adapter::LocalAdapter, _, _, _>(
                    $module::$function,
                    args,
                )),)*
                _ => None,
            }
        }
    };
}

/// Decodes the payload into the handler's request type and runs it. The answer goes to the
/// ack as it is (it used to be re-serialized: a deep copy of every answer).
macro_rules! route {
    ($cx:expr, $args:expr, $handler:path) => {{
        let req = decode($args)?;
        Ok(Reply::from($handler($cx, req).await?))
    }};
}

event_table! {
    "subscribe:project" => project::subscribe_project -> ProjectIdOnly,
    "unsubscribe:project" => project::unsubscribe_project -> ProjectIdOnly,
    "custom:event" => custom::event -> Empty [relayed],
    "custom:broadcast" => custom::broadcast -> EventOnly [relayed],
    "custom:join" => custom::join -> RoomOnly,
    "custom:leave" => custom::leave -> RoomOnly,
    "custom:message" => custom::message -> TargetOnly [relayed],
    "custom:presence" => custom::presence -> Empty [relayed],
    "custom:typing" => custom::typing -> Empty [relayed],
    "custom:file:share" => custom::file_share -> FileIdOnly [relayed],
    "auth:login" => auth::login -> ProjectIdOnly,
    "auth:logout" => auth::logout -> ProjectIdOnly,
    "auth:session:update" => auth::session_update -> ProjectIdOnly [relayed],
    "presence:online" => presence::online -> PresenceAnnounced,
    "presence:offline" => presence::offline -> Empty,
    "presence:update" => presence::update -> PresenceRefreshed,
    "presence:get:online" => presence::get_online -> OnlineList,
    "integration:join" => integration::join -> IntegrationJoined,
    "integration:leave" => integration::leave -> IntegrationIdOnly,
    "integration:execute" => integration::execute -> IntegrationResult [detached],
    "integration:test" => integration::test -> IntegrationTestResult [detached],
    "integration:status" => integration::status -> IntegrationStatus,
    "integration:webhook:subscribe" => integration::webhook_subscribe -> IntegrationIdOnly,
    "integration:webhook:unsubscribe" => integration::webhook_unsubscribe -> IntegrationIdOnly,
    "wallet:subscribe:address" => wallet::subscribe_address -> WalletScope,
    "wallet:subscribe:project" => wallet::subscribe_project -> WalletScope,
    "wallet:subscribe:chain" => wallet::subscribe_chain -> WalletScope,
    "wallet:subscribe:currency" => wallet::subscribe_currency -> WalletScope,
    "wallet:unsubscribe:address" => wallet::unsubscribe_address -> WalletScope,
    "wallet:unsubscribe:project" => wallet::unsubscribe_project -> WalletScope,
    "chat:join" => chat::join -> ChatJoined,
    "chat:leave" => chat::leave -> ChatIdOnly,
    "chat:typing:start" => chat::typing_start -> ChatIdOnly,
    "chat:typing:stop" => chat::typing_stop -> ChatIdOnly,
    "message:send" => chat::send -> MessageSent [relayed],
    "message:react" => chat::react -> MessageReaction,
    "message:edit" => chat::edit -> MessageEdited [relayed],
    "message:delete" => chat::delete -> MessageDeleted,
    "messages:mark:read" => chat::mark_read -> MessagesRead,
    "call:initiate" => call::initiate -> CallIdOnly [relayed],
    "call:accept" => call::accept -> CallAnswered,
    "call:reject" => call::reject -> CallAnswered,
    "call:end" => call::end -> CallEndedAck,
    "call:signal" => call::signal -> Empty [relayed],
    "subscribe:collection" => collection::subscribe_collection -> CollectionSubscription,
    "unsubscribe:collection" => collection::unsubscribe_collection -> CollectionSubscription,
    "subscribe:document" => document::subscribe_document -> DocumentSubscription,
    "subscribe:query" => query::subscribe_query -> QuerySubscription,
    "unsubscribe:query" => query::unsubscribe_query -> QueryUnsubscription,
}

/// Registers the `/` namespace: authentication and set-up run in the connect middleware.
/// `front_end` is this front end's registration in the hub. With a remote adapter the
/// returned value is a future that must be awaited.
pub fn register<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    core: Arc<Core>,
    front_end: FrontEndId,
) -> A::InitRes {
    let middleware = move |s: SocketRef<A>, TryData(raw): TryData<Value>| {
        let core = core.clone();
        async move { socketio::session::connect(core, front_end, s, raw).await }
    };
    io.ns("/", (async || {}).with(middleware))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::*;
    use crate::core::error::ErrorCode;

    /// Decodes `args` as `handler`'s request; only a function with a handler's signature is
    /// accepted, so a table row naming anything else does not compile.
    pub(super) fn decode_request<A: Adapter, Req: DeserializeOwned, R, H>(
        _handler: H,
        args: Value,
    ) -> Result<(), AppError>
    where
        H: AsyncFn(&Ctx<A>, Req) -> Result<R, AppError>,
    {
        decode::<Req>(args).map(drop)
    }

    #[test]
    fn every_event_dispatches_to_a_handler() {
        let unique: BTreeSet<&str> = EVENTS.iter().copied().collect();
        assert_eq!(unique.len(), EVENTS.len(), "an event is listed twice");
        for event in EVENTS {
            assert!(is_known_event(event), "{event} is not known");
            // Arrays are never payloads, so every handler's decoding refuses this one: the
            // answer proves the payload reached that handler's request type.
            let refused = decode_for_handler(event, json!([]))
                .unwrap_or_else(|| panic!("{event} has no handler"))
                .expect_err("an array is refused");
            assert_eq!(refused.code(), ErrorCode::InvalidPayload, "{event}");
        }
        for stranger in ["", "custom:nope", "subscribe:project ", "SUBSCRIBE:PROJECT"] {
            assert!(!is_known_event(stranger), "{stranger:?}");
            assert!(
                decode_for_handler(stranger, Value::Null).is_none(),
                "{stranger:?}"
            );
        }
    }

    #[test]
    fn every_metric_label_is_an_event_or_the_unknown_label() {
        let strangers = ["", "custom:nope", "message:send:x", "_unknown"];
        for name in EVENTS.iter().copied().chain(strangers) {
            let label = event_label(name);
            assert!(
                label == UNKNOWN_EVENT_LABEL || EVENTS.contains(&label),
                "{name:?} is counted under {label:?}"
            );
        }
        for event in EVENTS {
            assert_eq!(event_label(event), *event);
        }
        for stranger in strangers {
            assert_eq!(event_label(stranger), UNKNOWN_EVENT_LABEL);
        }
    }

    #[test]
    fn only_integration_calls_are_detached() {
        let detached: Vec<&str> = EVENTS
            .iter()
            .copied()
            .filter(|e| is_detached_event(e))
            .collect();
        assert_eq!(detached, ["integration:execute", "integration:test"]);
        assert!(!is_detached_event("integration:nope"));
    }

    #[test]
    fn relayed_events_are_those_that_pass_a_payload_on() {
        let relayed: Vec<&str> = EVENTS
            .iter()
            .copied()
            .filter(|e| is_relayed_event(e))
            .collect();
        assert_eq!(
            relayed,
            [
                "custom:event",
                "custom:broadcast",
                "custom:message",
                "custom:presence",
                "custom:typing",
                "custom:file:share",
                "auth:session:update",
                "message:send",
                "message:edit",
                "call:initiate",
                "call:signal",
            ]
        );
        assert!(!is_relayed_event("custom:join"));
        assert!(!is_relayed_event("custom:nope"));
    }

    /// Every `custom:*` name the server emits (events.rs) or handles (the event table) is
    /// reserved, so a new server event cannot be forgeable by oversight.
    #[test]
    fn every_server_custom_name_is_reserved() {
        let src = include_str!("../core/src/events.rs");
        let emitted = src
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|n| n.starts_with("custom:"));
        let handled = EVENTS.iter().copied().filter(|n| n.starts_with("custom:"));
        let mut checked = 0;
        for name in emitted.chain(handled) {
            assert!(
                crate::core::custom::RESERVED_EVENTS.contains(&name),
                "{name} is not reserved"
            );
            let bare = name.trim_start_matches("custom:");
            assert!(
                serde_json::from_value::<crate::core::custom::EventName>(json!(bare)).is_err(),
                "{bare} is accepted"
            );
            checked += 1;
        }
        assert!(checked >= 11, "found {checked} names");
        for ok in ["message:v2", "file:shared:preview", "Message", "cursor"] {
            assert!(
                serde_json::from_value::<crate::core::custom::EventName>(json!(ok)).is_ok(),
                "{ok}"
            );
        }
    }
}
