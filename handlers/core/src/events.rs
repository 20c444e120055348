//! The events the server emits, in one table: each name's constant and the type of its payload
//! (`payloads`), from which the published contracts describe them (docs/contracts.md).

use crate::model::{Message, WalletTransaction};
use crate::payloads::*;

/// Reports every server → client event with its payload type.
pub trait ServerEventVisitor {
    fn event<P: ts_rs::TS + schemars::JsonSchema + 'static>(&mut self, name: &'static str);
}

/// From `CONST = "name" => PayloadType` rows: the name constants, [`SERVER_EVENTS`] and
/// [`visit`], so an event cannot be emitted by name without a payload type.
macro_rules! server_events {
    ($($constant:ident = $name:literal => $payload:ident,)*) => {
        $(pub const $constant: &str = $name;)*

        /// Every event name the server emits.
        pub const SERVER_EVENTS: &[&str] = &[$($name),*];

        /// Reports each event, in table order, with its payload type.
        pub fn visit(v: &mut impl ServerEventVisitor) {
            $(v.event::<$payload>($name);)*
        }
    };
}

server_events! {
    ERROR = "error" => ErrorEvent,
    CUSTOM_EVENT = "custom:event" => CustomEventRelayed,
    INTEGRATION_ERROR = "integration:error" => IntegrationError,
    INTEGRATION_JOINED = "integration:joined" => IntegrationJoined,
    INTEGRATION_LEFT = "integration:left" => IntegrationIdOnly,
    INTEGRATION_RESULT = "integration:result" => IntegrationResult,
    INTEGRATION_TEST_RESULT = "integration:test:result" => IntegrationTestResult,
    INTEGRATION_STATUS_RESPONSE = "integration:status:response" => IntegrationStatus,
    INTEGRATION_WEBHOOK_SUBSCRIBED = "integration:webhook:subscribed" => IntegrationIdOnly,
    INTEGRATION_WEBHOOK_UNSUBSCRIBED = "integration:webhook:unsubscribed" => IntegrationIdOnly,
    INTEGRATION_WEBHOOK = "integration:webhook" => IntegrationWebhook,
    SUBSCRIBED = "subscribed" => Subscribed,
    UNSUBSCRIBED = "unsubscribed" => Unsubscribed,
    CHAT_JOINED = "chat:joined" => ChatJoined,
    CHAT_LEFT = "chat:left" => ChatIdOnly,
    USER_ONLINE = "user:online" => UserSeen,
    USER_OFFLINE = "user:offline" => UserSeen,
    USER_TYPING_START = "user:typing:start" => ChatUser,
    USER_TYPING_STOP = "user:typing:stop" => ChatUser,
    MESSAGE_SENT = "message:sent" => MessageSent,
    MESSAGE_NEW = "message:new" => Message,
    MESSAGE_MENTION = "message:mention" => MessageMention,
    MESSAGE_REACTION = "message:reaction" => MessageReaction,
    MESSAGE_EDITED = "message:edited" => MessageEdited,
    MESSAGE_DELETED = "message:deleted" => MessageDeleted,
    MESSAGES_READ = "messages:read" => MessagesRead,
    CALL_INCOMING = "call:incoming" => CallIncoming,
    CALL_ACCEPTED = "call:accepted" => CallAnswer,
    CALL_REJECTED = "call:rejected" => CallAnswer,
    CALL_ENDED = "call:ended" => CallEnded,
    CALL_MISSED = "call:missed" => CallMissed,
    CALL_SIGNAL = "call:signal" => CallSignal,
    DOCUMENT_CREATED = "document:created" => DocumentChanged,
    DOCUMENT_UPDATED = "document:updated" => DocumentChanged,
    DOCUMENT_DELETED = "document:deleted" => DocumentChanged,
    QUERY_ADDED = "query:added" => QueryChanged,
    QUERY_CHANGED = "query:changed" => QueryChanged,
    QUERY_REMOVED = "query:removed" => QueryChanged,
    PRESENCE_USER_ONLINE = "presence:user:online" => PresenceUserOnline,
    PRESENCE_USER_OFFLINE = "presence:user:offline" => PresenceUserOffline,
    PRESENCE_ONLINE_LIST = "presence:online:list" => OnlineList,
    WALLET_SUBSCRIBED = "wallet:subscribed" => WalletScope,
    WALLET_UNSUBSCRIBED = "wallet:unsubscribed" => WalletScope,
    WALLET_TRANSACTION = "wallet:transaction" => WalletTransaction,
    CUSTOM_JOINED = "custom:joined" => RoomOnly,
    CUSTOM_LEFT = "custom:left" => RoomOnly,
    CUSTOM_MESSAGE = "custom:message" => CustomMessage,
    CUSTOM_PRESENCE = "custom:presence" => CustomPresenceRelayed,
    CUSTOM_TYPING = "custom:typing" => CustomTypingRelayed,
    CUSTOM_FILE_SHARED = "custom:file:shared" => FileShared,
    SESSION_UPDATED = "session:updated" => SessionUpdated,
}
