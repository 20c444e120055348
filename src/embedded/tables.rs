//! The tables of the embedded store and their keys. Values are JSON (the core's serde types) or
//! plain numbers; keys are redb tuples, which order element by element, so a range over a
//! tuple's leading elements is a prefix scan. Index tables have `()` values.

use redb::{ReadableTable, TableDefinition};

type Json = &'static [u8];

/// "format" → the layout version ([`super::open::FORMAT`]); "seq" → the last sequence number
/// handed out (webhook events, realtime messages and channel definitions keep arrival order).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

pub const PROJECTS: TableDefinition<&str, Json> = TableDefinition::new("projects");
pub const USERS: TableDefinition<&str, Json> = TableDefinition::new("users");
pub const CHATS: TableDefinition<&str, Json> = TableDefinition::new("chats");
pub const MESSAGES: TableDefinition<&str, Json> = TableDefinition::new("messages");
/// (chat, createdAt ms, message id) → (sender, deleted): a chat's history in order, with what
/// unread counts need, so they read no message.
pub const CHAT_MESSAGES: TableDefinition<(&str, i64, &str), (&str, bool)> =
    TableDefinition::new("chat_messages");
/// (chat, sender, clientMessageId) → message id.
pub const CLIENT_IDS: TableDefinition<(&str, &str, &str), &str> =
    TableDefinition::new("client_ids");
/// (chat, reader, message id) → first readAt ms.
pub const RECEIPTS: TableDefinition<(&str, &str, &str), i64> = TableDefinition::new("receipts");
/// (chat, message id, first readAt ms, reader): the same receipts message first and earliest
/// first, so a message's first readers are the start of one range (since format 2).
pub const MESSAGE_READERS: TableDefinition<(&str, &str, i64, &str), ()> =
    TableDefinition::new("message_readers");
/// (chat, message id) → how many readers it has, so a count reads one entry (since format 2).
pub const READ_COUNTS: TableDefinition<(&str, &str), u64> = TableDefinition::new("read_counts");
pub const CALLS: TableDefinition<&str, Json> = TableDefinition::new("calls");
/// (createdAt ms, call id) of calls in state `ringing`.
pub const RINGING: TableDefinition<(i64, &str), ()> = TableDefinition::new("ringing");
/// (chat, caller, createdAt ms, call id).
pub const CHAT_CALLS: TableDefinition<(&str, &str, i64, &str), ()> =
    TableDefinition::new("chat_calls");
/// (project, collection, document id) → the document's body.
pub const DOCUMENTS: TableDefinition<(&str, &str, &str), Json> = TableDefinition::new("documents");
pub const INTEGRATIONS: TableDefinition<&str, Json> = TableDefinition::new("integrations");
pub const INTEGRATION_STATS: TableDefinition<&str, Json> =
    TableDefinition::new("integration_stats");
/// (integration, seq) → event, oldest first.
pub const WEBHOOK_EVENTS: TableDefinition<(&str, u64), Json> =
    TableDefinition::new("webhook_events");
pub const ADDRESSES: TableDefinition<&str, Json> = TableDefinition::new("wallet_addresses");
pub const TRANSACTIONS: TableDefinition<&str, Json> = TableDefinition::new("wallet_transactions");
/// (project, createdAt ms, transaction id) → address id: a project's transactions in order,
/// with what the address filter needs (since format 2).
pub const PROJECT_TRANSACTIONS: TableDefinition<(&str, i64, &str), &str> =
    TableDefinition::new("project_transactions");
pub const APPS: TableDefinition<&str, Json> = TableDefinition::new("apps");
/// (project, definition id) → definition with its creation seq.
pub const RT_CHANNELS: TableDefinition<(&str, &str), Json> = TableDefinition::new("rt_channels");
/// (project, seq) → stored realtime message, oldest first.
pub const RT_MESSAGES: TableDefinition<(&str, u64), Json> = TableDefinition::new("rt_messages");
/// (project, message id) → its seq.
pub const RT_MESSAGE_IDS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("rt_message_ids");
/// project → retention days.
pub const RT_RETENTION: TableDefinition<&str, u32> = TableDefinition::new("rt_retention");

/// Creates every table, so reads never meet a missing one.
pub fn create_all(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(PROJECTS)?;
    txn.open_table(USERS)?;
    txn.open_table(CHATS)?;
    txn.open_table(MESSAGES)?;
    txn.open_table(CHAT_MESSAGES)?;
    txn.open_table(CLIENT_IDS)?;
    txn.open_table(RECEIPTS)?;
    txn.open_table(MESSAGE_READERS)?;
    txn.open_table(READ_COUNTS)?;
    txn.open_table(CALLS)?;
    txn.open_table(RINGING)?;
    txn.open_table(CHAT_CALLS)?;
    txn.open_table(DOCUMENTS)?;
    txn.open_table(INTEGRATIONS)?;
    txn.open_table(INTEGRATION_STATS)?;
    txn.open_table(WEBHOOK_EVENTS)?;
    txn.open_table(ADDRESSES)?;
    txn.open_table(TRANSACTIONS)?;
    txn.open_table(PROJECT_TRANSACTIONS)?;
    txn.open_table(APPS)?;
    txn.open_table(RT_CHANNELS)?;
    txn.open_table(RT_MESSAGES)?;
    txn.open_table(RT_MESSAGE_IDS)?;
    txn.open_table(RT_RETENTION)?;
    Ok(())
}

/// The next sequence number (inside the caller's write transaction).
pub fn next_seq(txn: &redb::WriteTransaction) -> Result<u64, redb::Error> {
    let mut meta = txn.open_table(META)?;
    let next = meta.get("seq")?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert("seq", next)?;
    Ok(next)
}
