//! Chats are read on every chat event (the participant check), which doubled the database round
//! trips of `message:send`. A chat changes only through `insert_chat` (REST) and `put_chat` (seeds),
//! so this node keeps what it read for a short time: its own writes refresh the entry, and a
//! chat rewritten by another node or process is seen within `TTL`. Missing chats are never
//! cached, so a chat created anywhere is usable at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_handlers::core::ids::ChatId;
use switchboard_handlers::core::model::Chat;

const TTL: Duration = Duration::from_secs(30);
/// Entries kept at most; beyond, the cache starts over (cheap, and rare: one entry per chat).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct ChatCache {
    entries: Mutex<HashMap<ChatId, (Chat, Instant)>>,
}

impl ChatCache {
    pub fn get(&self, id: &ChatId) -> Option<Chat> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(id)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(c, _)| c.clone())
    }

    pub fn put(&self, chat: &Chat) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&chat.id) {
            entries.clear();
        }
        entries.insert(chat.id.clone(), (chat.clone(), Instant::now()));
    }
}
