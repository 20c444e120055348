//! Realtime channel definitions and their stored messages (the InsForge-compatible surface,
//! docs/protocols/insforge.md). A definition's pattern names the channels it admits: SQL LIKE
//! with `%` as the only wildcard (`_`, LIKE's single-character wildcard, is refused so a
//! pattern means the same here and upstream). A channel may be joined and delivered to only
//! while it matches an enabled definition.
//!
//! [`RealtimeStore`] is the port; [`MemoryRealtimeStore`] keeps everything in this process
//! (bounded per project) and the MongoDB implementation lives in the server crate.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::ids::ProjectId;
use crate::ports::StoreResult;

/// Longest pattern or channel name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Largest page of the message history.
pub const MAX_PAGE: usize = 1000;
/// Messages the in-process store keeps per project; the oldest go first.
pub const MEMORY_MESSAGES_PER_PROJECT: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelDef {
    pub id: String,
    pub project: ProjectId,
    pub pattern: String,
    pub description: Option<String>,
    pub webhook_urls: Vec<String>,
    pub enabled: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderType {
    /// API-key (admin) publishers and server-side publishes.
    System,
    User,
}

impl SenderType {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderType::System => "system",
            SenderType::User => "user",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "user" {
            SenderType::User
        } else {
            SenderType::System
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: String,
    pub project: ProjectId,
    /// The definition the channel matched; `None` once that definition is deleted.
    pub channel_id: Option<String>,
    pub channel_name: String,
    pub event_name: String,
    pub payload: Value,
    pub sender_type: SenderType,
    pub sender_id: Option<String>,
    pub ws_audience_count: u64,
    pub wh_audience_count: u64,
    pub wh_delivered_count: u64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub channel_id: Option<String>,
    pub event_name: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageStats {
    pub total_messages: u64,
    pub wh_audience: u64,
    pub wh_delivered: u64,
    /// The most frequent event names with their counts, most frequent first (at most 10).
    pub top_events: Vec<(String, u64)>,
}

/// How many event names the stats list.
pub const TOP_EVENTS: usize = 10;

/// Why a pattern is refused, as the REST error says it.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("pattern must not be empty".to_owned());
    }
    if pattern.len() > MAX_NAME_BYTES {
        return Err(format!("pattern is longer than {MAX_NAME_BYTES} bytes"));
    }
    if pattern.contains('_') {
        return Err(
            "pattern must not contain '_' (a SQL LIKE wildcard); use '%' as the wildcard"
                .to_owned(),
        );
    }
    if pattern.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("pattern must not contain whitespace or control characters".to_owned());
    }
    Ok(())
}

/// Why a channel name is refused.
pub fn validate_channel(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("channel must not be empty".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("channel is longer than {MAX_NAME_BYTES} bytes"));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("channel must not contain whitespace or control characters".to_owned());
    }
    Ok(())
}

/// `name LIKE pattern` with `%` (any run of characters, possibly empty) as the only wildcard.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('%');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No wildcard: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The definition that admits `name`: an exact pattern first, else the first matching one in
/// creation order. Disabled definitions are skipped.
pub fn admitting<'a>(defs: &'a [ChannelDef], name: &str) -> Option<&'a ChannelDef> {
    let enabled = || defs.iter().filter(|d| d.enabled);
    enabled()
        .find(|d| d.pattern == name)
        .or_else(|| enabled().find(|d| matches(&d.pattern, name)))
}

#[async_trait]
pub trait RealtimeStore: Send + Sync {
    /// A project's definitions, oldest first.
    async fn list_channels(&self, project: &ProjectId) -> StoreResult<Vec<ChannelDef>>;
    async fn get_channel(&self, project: &ProjectId, id: &str) -> StoreResult<Option<ChannelDef>>;
    /// Creates or replaces (by id). `Conflict` when another definition of the project has the
    /// same pattern.
    async fn put_channel(&self, def: &ChannelDef) -> StoreResult<()>;
    /// True when it existed; the messages it had stay, with no channel id.
    async fn delete_channel(&self, project: &ProjectId, id: &str) -> StoreResult<bool>;
    async fn insert_message(&self, message: &StoredMessage) -> StoreResult<()>;
    /// Adds `n` to a message's webhook deliveries.
    async fn add_delivered(&self, project: &ProjectId, id: &str, n: u64) -> StoreResult<()>;
    /// Newest first.
    async fn list_messages(
        &self,
        project: &ProjectId,
        query: &MessageQuery,
    ) -> StoreResult<Vec<StoredMessage>>;
    async fn message_stats(
        &self,
        project: &ProjectId,
        channel_id: Option<&str>,
        since: Option<i64>,
    ) -> StoreResult<MessageStats>;
    /// Days messages are kept; `None` keeps them forever.
    async fn retention_days(&self, project: &ProjectId) -> StoreResult<Option<u32>>;
    async fn set_retention_days(&self, project: &ProjectId, days: Option<u32>) -> StoreResult<()>;
    /// Deletes every project's messages older than its retention; returns how many went.
    async fn purge_expired(&self, now: i64) -> StoreResult<u64>;
}

#[derive(Default)]
struct ProjectData {
    channels: Vec<ChannelDef>,
    messages: VecDeque<StoredMessage>,
    retention_days: Option<u32>,
}

/// The realtime store of this process.
#[derive(Default)]
pub struct MemoryRealtimeStore {
    projects: Mutex<HashMap<ProjectId, ProjectData>>,
}

impl MemoryRealtimeStore {
    fn with<R>(&self, project: &ProjectId, f: impl FnOnce(&mut ProjectData) -> R) -> R {
        let mut all = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(project.clone()).or_default())
    }
}

pub const DAY_MS: i64 = 86_400_000;

#[async_trait]
impl RealtimeStore for MemoryRealtimeStore {
    async fn list_channels(&self, project: &ProjectId) -> StoreResult<Vec<ChannelDef>> {
        Ok(self.with(project, |p| p.channels.clone()))
    }

    async fn get_channel(&self, project: &ProjectId, id: &str) -> StoreResult<Option<ChannelDef>> {
        Ok(self.with(project, |p| p.channels.iter().find(|c| c.id == id).cloned()))
    }

    async fn put_channel(&self, def: &ChannelDef) -> StoreResult<()> {
        self.with(&def.project, |p| {
            if p.channels
                .iter()
                .any(|c| c.pattern == def.pattern && c.id != def.id)
            {
                return Err(crate::error::AppError::Conflict(format!(
                    "a channel with pattern {:?} exists",
                    def.pattern
                )));
            }
            match p.channels.iter_mut().find(|c| c.id == def.id) {
                Some(c) => *c = def.clone(),
                None => p.channels.push(def.clone()),
            }
            Ok(())
        })
    }

    async fn delete_channel(&self, project: &ProjectId, id: &str) -> StoreResult<bool> {
        Ok(self.with(project, |p| {
            let before = p.channels.len();
            p.channels.retain(|c| c.id != id);
            for m in &mut p.messages {
                if m.channel_id.as_deref() == Some(id) {
                    m.channel_id = None;
                }
            }
            p.channels.len() != before
        }))
    }

    async fn insert_message(&self, message: &StoredMessage) -> StoreResult<()> {
        self.with(&message.project, |p| {
            if p.messages.len() >= MEMORY_MESSAGES_PER_PROJECT {
                p.messages.pop_front();
            }
            p.messages.push_back(message.clone());
        });
        Ok(())
    }

    async fn add_delivered(&self, project: &ProjectId, id: &str, n: u64) -> StoreResult<()> {
        self.with(project, |p| {
            if let Some(m) = p.messages.iter_mut().rev().find(|m| m.id == id) {
                m.wh_delivered_count += n;
            }
        });
        Ok(())
    }

    async fn list_messages(
        &self,
        project: &ProjectId,
        q: &MessageQuery,
    ) -> StoreResult<Vec<StoredMessage>> {
        Ok(self.with(project, |p| {
            p.messages
                .iter()
                .rev()
                .filter(|m| q.channel_id.is_none() || m.channel_id == q.channel_id)
                .filter(|m| q.event_name.as_ref().is_none_or(|e| &m.event_name == e))
                .skip(q.offset)
                .take(q.limit)
                .cloned()
                .collect()
        }))
    }

    async fn message_stats(
        &self,
        project: &ProjectId,
        channel_id: Option<&str>,
        since: Option<i64>,
    ) -> StoreResult<MessageStats> {
        Ok(self.with(project, |p| {
            let mut stats = MessageStats::default();
            let mut events: HashMap<&str, u64> = HashMap::new();
            for m in &p.messages {
                if channel_id.is_some_and(|c| m.channel_id.as_deref() != Some(c))
                    || since.is_some_and(|s| m.created_at < s)
                {
                    continue;
                }
                stats.total_messages += 1;
                stats.wh_audience += m.wh_audience_count;
                stats.wh_delivered += m.wh_delivered_count;
                *events.entry(&m.event_name).or_default() += 1;
            }
            stats.top_events = top_events(events);
            stats
        }))
    }

    async fn retention_days(&self, project: &ProjectId) -> StoreResult<Option<u32>> {
        Ok(self.with(project, |p| p.retention_days))
    }

    async fn set_retention_days(&self, project: &ProjectId, days: Option<u32>) -> StoreResult<()> {
        self.with(project, |p| p.retention_days = days);
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let mut all = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        let mut gone = 0;
        for p in all.values_mut() {
            let Some(days) = p.retention_days else {
                continue;
            };
            let cutoff = now.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
            let before = p.messages.len();
            p.messages.retain(|m| m.created_at >= cutoff);
            gone += (before - p.messages.len()) as u64;
        }
        Ok(gone)
    }
}

/// The most frequent names first (ties by name), at most [`TOP_EVENTS`].
pub fn top_events<S: AsRef<str>>(counts: HashMap<S, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(k, n)| (k.as_ref().to_owned(), n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP_EVENTS);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_the_only_wildcard() {
        assert!(matches("orders", "orders"));
        assert!(!matches("orders", "orders2"));
        assert!(!matches("orders", "order"));
        assert!(matches("order:%", "order:123"));
        assert!(matches("order:%", "order:"));
        assert!(!matches("order:%", "orders:1"));
        assert!(matches("chat:%:messages", "chat:room-1:messages"));
        assert!(!matches("chat:%:messages", "chat:room-1:typing"));
        assert!(matches("%", "anything"));
        assert!(matches("%:%", "a:b"));
        assert!(!matches("%:%", "ab"));
        assert!(matches("a%a", "aa"));
        assert!(!matches("a%a", "a"));
        assert!(matches("%x%y", "axbxy"));
        // `_` and other LIKE-looking characters are literal in names.
        assert!(matches("room%", "room_1"));
        assert!(!matches("room.1", "roomx1"));
    }

    #[test]
    fn patterns_refuse_underscore_and_blank() {
        assert!(validate_pattern("order:%").is_ok());
        assert!(validate_pattern("order_%").is_err());
        assert!(validate_pattern("").is_err());
        assert!(validate_pattern("a b").is_err());
        assert!(validate_pattern(&"a".repeat(MAX_NAME_BYTES + 1)).is_err());
        assert!(validate_channel("room_1").is_ok());
        assert!(validate_channel("").is_err());
        assert!(validate_channel("a\nb").is_err());
    }

    fn def(id: &str, pattern: &str, enabled: bool) -> ChannelDef {
        ChannelDef {
            id: id.into(),
            project: ProjectId::try_from("demo").expect("id"),
            pattern: pattern.into(),
            description: None,
            webhook_urls: vec![],
            enabled,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn an_exact_pattern_wins_and_disabled_ones_admit_nothing() {
        let defs = vec![
            def("1", "order:%", true),
            def("2", "order:vip", true),
            def("3", "off:%", false),
        ];
        assert_eq!(
            admitting(&defs, "order:vip").map(|d| d.id.as_str()),
            Some("2")
        );
        assert_eq!(
            admitting(&defs, "order:1").map(|d| d.id.as_str()),
            Some("1")
        );
        assert!(admitting(&defs, "off:1").is_none());
        assert!(admitting(&defs, "other").is_none());
    }

    #[tokio::test]
    async fn memory_store_passes() {
        conformance::run(&MemoryRealtimeStore::default(), "mem").await;
    }
}

/// The store suite every [`RealtimeStore`] passes (the MongoDB one in the server's tests).
#[cfg(any(test, feature = "testkit"))]
pub mod conformance {
    use super::*;

    fn def(project: &ProjectId, id: &str, pattern: &str, at: i64) -> ChannelDef {
        ChannelDef {
            id: id.into(),
            project: project.clone(),
            pattern: pattern.into(),
            description: Some("d".into()),
            webhook_urls: vec!["https://example.com/h".into()],
            enabled: true,
            created_at: at,
            updated_at: at,
        }
    }

    fn msg(project: &ProjectId, id: &str, channel: &str, event: &str, at: i64) -> StoredMessage {
        StoredMessage {
            id: id.into(),
            project: project.clone(),
            channel_id: Some(channel.into()),
            channel_name: "a:1".into(),
            event_name: event.into(),
            payload: serde_json::json!({"n": 1, "nested": {"x": [1, "two"]}}),
            sender_type: SenderType::User,
            sender_id: Some("alice".into()),
            ws_audience_count: 3,
            wh_audience_count: 2,
            wh_delivered_count: 0,
            created_at: at,
        }
    }

    /// `tag` keeps the ids of runs sharing a database apart.
    pub async fn run(s: &dyn RealtimeStore, tag: &str) {
        let p = ProjectId::try_from(format!("rt-{tag}")).expect("project id");
        let other = ProjectId::try_from(format!("rt-other-{tag}")).expect("project id");
        let (c1, c2) = (format!("{tag}-c1"), format!("{tag}-c2"));
        // Definitions: unique pattern per project, oldest first, replace by id.
        s.put_channel(&def(&p, &c1, "a:%", 1)).await.expect("put");
        s.put_channel(&def(&p, &c2, "b", 2)).await.expect("put");
        assert!(
            s.put_channel(&def(&p, &format!("{tag}-c3"), "a:%", 3))
                .await
                .is_err()
        );
        s.put_channel(&def(&other, &format!("{tag}-o1"), "a:%", 1))
            .await
            .expect("another project may use the pattern");
        let mut changed = def(&p, &c2, "b", 2);
        changed.enabled = false;
        changed.description = None;
        changed.webhook_urls = vec![];
        s.put_channel(&changed).await.expect("replace");
        let defs = s.list_channels(&p).await.expect("list");
        assert_eq!(defs, vec![def(&p, &c1, "a:%", 1), changed.clone()]);
        assert_eq!(s.get_channel(&p, &c2).await.expect("get"), Some(changed));
        assert_eq!(s.get_channel(&other, &c2).await.expect("get"), None);
        // Messages: newest first, filters, paging, delivery counts.
        for (i, ev) in ["x", "y", "x"].iter().enumerate() {
            let m = msg(&p, &format!("{tag}-m{i}"), &c1, ev, (i as i64 + 1) * DAY_MS);
            s.insert_message(&m).await.expect("insert");
        }
        s.add_delivered(&p, &format!("{tag}-m0"), 2)
            .await
            .expect("delivered");
        let page = |channel_id: Option<&str>, event: Option<&str>, limit, offset| MessageQuery {
            channel_id: channel_id.map(str::to_owned),
            event_name: event.map(str::to_owned),
            limit,
            offset,
        };
        let ids = |ms: Vec<StoredMessage>| ms.into_iter().map(|m| m.id).collect::<Vec<_>>();
        let all = s
            .list_messages(&p, &page(None, None, 10, 0))
            .await
            .expect("list");
        assert_eq!(all[2], {
            let mut m = msg(&p, &format!("{tag}-m0"), &c1, "x", DAY_MS);
            m.wh_delivered_count = 2;
            m
        });
        assert_eq!(
            ids(all),
            [
                format!("{tag}-m2"),
                format!("{tag}-m1"),
                format!("{tag}-m0")
            ]
        );
        let xs = s.list_messages(&p, &page(Some(&c1), Some("x"), 1, 1)).await;
        assert_eq!(ids(xs.expect("list")), [format!("{tag}-m0")]);
        let stats = s.message_stats(&p, None, None).await.expect("stats");
        assert_eq!(stats.total_messages, 3);
        assert_eq!((stats.wh_audience, stats.wh_delivered), (6, 2));
        assert_eq!(
            stats.top_events,
            vec![("x".to_owned(), 2), ("y".to_owned(), 1)]
        );
        let since = s.message_stats(&p, Some(&c1), Some(2 * DAY_MS)).await;
        assert_eq!(since.expect("stats").total_messages, 2);
        // Deleting a definition keeps its messages without a channel id.
        assert!(s.delete_channel(&p, &c1).await.expect("delete"));
        assert!(!s.delete_channel(&p, &c1).await.expect("delete again"));
        let all = s
            .list_messages(&p, &page(None, None, 10, 0))
            .await
            .expect("list");
        assert!(all.iter().all(|m| m.channel_id.is_none()));
        // Retention: per project, none by default.
        assert_eq!(s.retention_days(&p).await.expect("get"), None);
        s.set_retention_days(&p, Some(1)).await.expect("set");
        assert_eq!(s.retention_days(&p).await.expect("get"), Some(1));
        assert!(s.purge_expired(3 * DAY_MS + 1).await.expect("purge") >= 2);
        let left = s
            .list_messages(&p, &page(None, None, 10, 0))
            .await
            .expect("list");
        assert_eq!(ids(left), [format!("{tag}-m2")]);
        s.set_retention_days(&p, None).await.expect("forever");
        assert_eq!(s.retention_days(&p).await.expect("get"), None);
    }
}
