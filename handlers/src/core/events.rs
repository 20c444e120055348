//! Names of the events the server emits, in one place.

pub const ERROR: &str = "error";
pub const CUSTOM_EVENT: &str = "custom:event";

pub const INTEGRATION_ERROR: &str = "integration:error";
pub const SUBSCRIBED: &str = "subscribed";
pub const UNSUBSCRIBED: &str = "unsubscribed";
pub const CHAT_JOINED: &str = "chat:joined";
pub const CHAT_LEFT: &str = "chat:left";
pub const USER_ONLINE: &str = "user:online";
pub const USER_OFFLINE: &str = "user:offline";
pub const USER_TYPING_START: &str = "user:typing:start";
pub const USER_TYPING_STOP: &str = "user:typing:stop";
pub const MESSAGE_SENT: &str = "message:sent";
pub const MESSAGE_NEW: &str = "message:new";
pub const MESSAGE_MENTION: &str = "message:mention";
pub const MESSAGE_REACTION: &str = "message:reaction";
pub const MESSAGE_EDITED: &str = "message:edited";
pub const MESSAGE_DELETED: &str = "message:deleted";
pub const MESSAGES_READ: &str = "messages:read";
pub const CALL_INCOMING: &str = "call:incoming";
pub const CALL_ACCEPTED: &str = "call:accepted";
pub const CALL_REJECTED: &str = "call:rejected";
pub const CALL_ENDED: &str = "call:ended";
pub const CALL_MISSED: &str = "call:missed";
pub const CALL_SIGNAL: &str = "call:signal";
pub const DOCUMENT_CREATED: &str = "document:created";
pub const DOCUMENT_UPDATED: &str = "document:updated";
pub const DOCUMENT_DELETED: &str = "document:deleted";
pub const QUERY_ADDED: &str = "query:added";
pub const QUERY_CHANGED: &str = "query:changed";
pub const QUERY_REMOVED: &str = "query:removed";
pub const PRESENCE_USER_ONLINE: &str = "presence:user:online";
pub const PRESENCE_USER_OFFLINE: &str = "presence:user:offline";
pub const PRESENCE_ONLINE_LIST: &str = "presence:online:list";
