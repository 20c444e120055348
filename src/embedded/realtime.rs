//! The realtime store (InsForge channel definitions, stored messages, retention): definitions by
//! (project, id) with their creation sequence, messages by (project, seq) in arrival order with
//! an id → seq index, retention days by project.

use async_trait::async_trait;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::StoreResult;
use switchboard_handlers::core::realtime_channels::{
    ChannelDef, DAY_MS, MessageQuery, MessageStats, RealtimeStore, SenderType, StoredMessage,
    top_events,
};

use super::EmbeddedStore;
use super::codec::{Db, after_all, decode, encode};
use super::tables::{RT_CHANNELS, RT_MESSAGE_IDS, RT_MESSAGES, RT_RETENTION, next_seq};

/// A channel definition as stored (and exported); `seq` keeps creation order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRecord {
    pub seq: u64,
    pub id: String,
    pub project_id: ProjectId,
    pub pattern: String,
    pub description: Option<String>,
    pub webhook_urls: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ChannelRecord {
    pub fn new(seq: u64, d: &ChannelDef) -> Self {
        ChannelRecord {
            seq,
            id: d.id.clone(),
            project_id: d.project.clone(),
            pattern: d.pattern.clone(),
            description: d.description.clone(),
            webhook_urls: d.webhook_urls.clone(),
            enabled: d.enabled,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }

    pub fn def(self) -> ChannelDef {
        ChannelDef {
            id: self.id,
            project: self.project_id,
            pattern: self.pattern,
            description: self.description,
            webhook_urls: self.webhook_urls,
            enabled: self.enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A stored realtime message as stored (and exported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    pub id: String,
    pub project_id: ProjectId,
    pub channel_id: Option<String>,
    pub channel_name: String,
    pub event_name: String,
    pub payload: serde_json::Value,
    pub sender_type: String,
    pub sender_id: Option<String>,
    pub ws_audience_count: u64,
    pub wh_audience_count: u64,
    pub wh_delivered_count: u64,
    pub created_at: i64,
}

impl MessageRecord {
    pub fn new(m: &StoredMessage) -> Self {
        MessageRecord {
            id: m.id.clone(),
            project_id: m.project.clone(),
            channel_id: m.channel_id.clone(),
            channel_name: m.channel_name.clone(),
            event_name: m.event_name.clone(),
            payload: m.payload.clone(),
            sender_type: m.sender_type.as_str().to_owned(),
            sender_id: m.sender_id.clone(),
            ws_audience_count: m.ws_audience_count,
            wh_audience_count: m.wh_audience_count,
            wh_delivered_count: m.wh_delivered_count,
            created_at: m.created_at,
        }
    }

    pub fn message(self) -> StoredMessage {
        StoredMessage {
            id: self.id,
            project: self.project_id,
            channel_id: self.channel_id,
            channel_name: self.channel_name,
            event_name: self.event_name,
            payload: self.payload,
            sender_type: SenderType::parse(&self.sender_type),
            sender_id: self.sender_id,
            ws_audience_count: self.ws_audience_count,
            wh_audience_count: self.wh_audience_count,
            wh_delivered_count: self.wh_delivered_count,
            created_at: self.created_at,
        }
    }
}

/// A project's definitions in creation order.
fn channels_of(
    t: &impl redb::ReadableTable<(&'static str, &'static str), &'static [u8]>,
    project: &str,
) -> StoreResult<Vec<ChannelRecord>> {
    let end = after_all(project);
    let mut out: Vec<ChannelRecord> = Vec::new();
    for entry in t.range((project, "")..(end.as_str(), "")).db()? {
        let (_, v) = entry.db()?;
        out.push(decode("rt_channels", v.value())?);
    }
    out.sort_by_key(|c| c.seq);
    Ok(out)
}

/// A project's messages, oldest first, with their seq.
fn messages_of(
    t: &impl redb::ReadableTable<(&'static str, u64), &'static [u8]>,
    project: &str,
) -> StoreResult<Vec<(u64, MessageRecord)>> {
    let mut out = Vec::new();
    for entry in t.range((project, 0)..=(project, u64::MAX)).db()? {
        let (k, v) = entry.db()?;
        out.push((k.value().1, decode("rt_messages", v.value())?));
    }
    Ok(out)
}

#[async_trait]
impl RealtimeStore for EmbeddedStore {
    async fn list_channels(&self, project: &ProjectId) -> StoreResult<Vec<ChannelDef>> {
        self.read(|txn| {
            let t = txn.open_table(RT_CHANNELS).db()?;
            Ok(channels_of(&t, project.as_str())?
                .into_iter()
                .map(ChannelRecord::def)
                .collect())
        })
    }

    async fn get_channel(&self, project: &ProjectId, id: &str) -> StoreResult<Option<ChannelDef>> {
        self.read(|txn| {
            let t = txn.open_table(RT_CHANNELS).db()?;
            match t.get((project.as_str(), id)).db()? {
                Some(v) => Ok(Some(
                    decode::<ChannelRecord>("rt_channels", v.value())?.def(),
                )),
                None => Ok(None),
            }
        })
    }

    async fn put_channel(&self, def: &ChannelDef) -> StoreResult<()> {
        let def = def.clone();
        self.write(move |txn| {
            let mut t = txn.open_table(RT_CHANNELS).db()?;
            let p = def.project.as_str();
            let existing = channels_of(&t, p)?;
            if existing
                .iter()
                .any(|c| c.pattern == def.pattern && c.id != def.id)
            {
                return Err(AppError::Conflict(format!(
                    "a channel with pattern {:?} exists",
                    def.pattern
                )));
            }
            let seq = match existing.iter().find(|c| c.id == def.id) {
                Some(c) => c.seq,
                None => next_seq(txn).db()?,
            };
            let bytes = encode(&ChannelRecord::new(seq, &def))?;
            t.insert((p, def.id.as_str()), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn delete_channel(&self, project: &ProjectId, id: &str) -> StoreResult<bool> {
        let (project, id) = (project.clone(), id.to_owned());
        self.write(move |txn| {
            let p = project.as_str();
            let existed = txn
                .open_table(RT_CHANNELS)
                .db()?
                .remove((p, id.as_str()))
                .db()?
                .is_some();
            let mut t = txn.open_table(RT_MESSAGES).db()?;
            for (seq, mut m) in messages_of(&t, p)? {
                if m.channel_id.as_deref() == Some(id.as_str()) {
                    m.channel_id = None;
                    t.insert((p, seq), encode(&m)?.as_slice()).db()?;
                }
            }
            Ok(existed)
        })
        .await
    }

    async fn insert_message(&self, message: &StoredMessage) -> StoreResult<()> {
        let record = MessageRecord::new(message);
        let bytes = encode(&record)?;
        self.write(move |txn| {
            let p = record.project_id.as_str();
            let seq = next_seq(txn).db()?;
            txn.open_table(RT_MESSAGES)
                .db()?
                .insert((p, seq), bytes.as_slice())
                .db()?;
            txn.open_table(RT_MESSAGE_IDS)
                .db()?
                .insert((p, record.id.as_str()), seq)
                .db()?;
            Ok(())
        })
        .await
    }

    async fn add_delivered(&self, project: &ProjectId, id: &str, n: u64) -> StoreResult<()> {
        let (project, id) = (project.clone(), id.to_owned());
        self.write(move |txn| {
            let p = project.as_str();
            let Some(seq) = txn
                .open_table(RT_MESSAGE_IDS)
                .db()?
                .get((p, id.as_str()))
                .db()?
                .map(|v| v.value())
            else {
                return Ok(());
            };
            let mut t = txn.open_table(RT_MESSAGES).db()?;
            let Some(mut m) = t
                .get((p, seq))
                .db()?
                .map(|v| decode::<MessageRecord>("rt_messages", v.value()))
                .transpose()?
            else {
                return Ok(());
            };
            m.wh_delivered_count = m.wh_delivered_count.saturating_add(n);
            t.insert((p, seq), encode(&m)?.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn list_messages(
        &self,
        project: &ProjectId,
        q: &MessageQuery,
    ) -> StoreResult<Vec<StoredMessage>> {
        self.read(|txn| {
            let t = txn.open_table(RT_MESSAGES).db()?;
            let p = project.as_str();
            let mut out = Vec::new();
            let mut skipped = 0;
            for entry in t.range((p, 0)..=(p, u64::MAX)).db()?.rev() {
                if out.len() >= q.limit {
                    break;
                }
                let (_, v) = entry.db()?;
                let m: MessageRecord = decode("rt_messages", v.value())?;
                if (q.channel_id.is_some() && m.channel_id != q.channel_id)
                    || q.event_name.as_ref().is_some_and(|e| &m.event_name != e)
                {
                    continue;
                }
                if skipped < q.offset {
                    skipped += 1;
                    continue;
                }
                out.push(m.message());
            }
            Ok(out)
        })
    }

    async fn message_stats(
        &self,
        project: &ProjectId,
        channel_id: Option<&str>,
        since: Option<i64>,
    ) -> StoreResult<MessageStats> {
        self.read(|txn| {
            let t = txn.open_table(RT_MESSAGES).db()?;
            let mut stats = MessageStats::default();
            let mut events: std::collections::HashMap<String, u64> = Default::default();
            for (_, m) in messages_of(&t, project.as_str())? {
                if channel_id.is_some_and(|c| m.channel_id.as_deref() != Some(c))
                    || since.is_some_and(|s| m.created_at < s)
                {
                    continue;
                }
                stats.total_messages += 1;
                stats.wh_audience += m.wh_audience_count;
                stats.wh_delivered += m.wh_delivered_count;
                *events.entry(m.event_name).or_default() += 1;
            }
            stats.top_events = top_events(events);
            Ok(stats)
        })
    }

    async fn retention_days(&self, project: &ProjectId) -> StoreResult<Option<u32>> {
        self.read(|txn| {
            let t = txn.open_table(RT_RETENTION).db()?;
            Ok(t.get(project.as_str()).db()?.map(|v| v.value()))
        })
    }

    async fn set_retention_days(&self, project: &ProjectId, days: Option<u32>) -> StoreResult<()> {
        let project = project.clone();
        self.write(move |txn| {
            let mut t = txn.open_table(RT_RETENTION).db()?;
            match days {
                Some(d) => drop(t.insert(project.as_str(), d).db()?),
                None => drop(t.remove(project.as_str()).db()?),
            }
            Ok(())
        })
        .await
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        self.write(move |txn| {
            let mut retention = Vec::new();
            for entry in txn.open_table(RT_RETENTION).db()?.range(..).db()? {
                let (k, v) = entry.db()?;
                retention.push((k.value().to_owned(), v.value()));
            }
            let mut t = txn.open_table(RT_MESSAGES).db()?;
            let mut ids = txn.open_table(RT_MESSAGE_IDS).db()?;
            let mut gone = 0;
            for (p, days) in retention {
                let cutoff = now.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
                for (seq, m) in messages_of(&t, &p)? {
                    if m.created_at < cutoff {
                        t.remove((p.as_str(), seq)).db()?;
                        ids.remove((p.as_str(), m.id.as_str())).db()?;
                        gone += 1;
                    }
                }
            }
            Ok(gone)
        })
        .await
    }
}
