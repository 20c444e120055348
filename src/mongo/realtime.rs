//! The realtime store (InsForge channel definitions, messages and retention) in MongoDB:
//! `realtime_channels` (unique pattern per project), `realtime_messages` (newest first per
//! project and per channel) and `realtime_config` (`_id` = project). Retention differs per
//! project, so a sweeper deletes expired messages rather than a TTL index.

use async_trait::async_trait;
use bson::{Bson, DateTime, Document as BsonDoc, doc};
use futures_util::TryStreamExt;
use mongodb::IndexModel;
use mongodb::options::IndexOptions;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::StoreResult;
use switchboard_handlers::core::realtime_channels::{
    self, ChannelDef, DAY_MS, MessageQuery, MessageStats, RealtimeStore, SenderType, StoredMessage,
};

use super::convert::bson_to_json;
use super::{MongoStore, map_err};

const CHANNELS: &str = "realtime_channels";
const MESSAGES: &str = "realtime_messages";
const CONFIG: &str = "realtime_config";

impl MongoStore {
    pub(super) async fn create_realtime_indexes(&self) -> StoreResult<()> {
        let unique_pattern = IndexModel::builder()
            .keys(doc! { "projectId": 1, "pattern": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        self.coll(CHANNELS)
            .create_index(unique_pattern)
            .await
            .map_err(map_err)?;
        for keys in [
            doc! { "projectId": 1, "createdAt": -1 },
            doc! { "projectId": 1, "channelId": 1, "createdAt": -1 },
        ] {
            self.coll(MESSAGES)
                .create_index(IndexModel::builder().keys(keys).build())
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }
}

fn str_of(d: &BsonDoc, k: &str) -> Option<String> {
    d.get_str(k).ok().map(str::to_owned)
}

fn millis_of(d: &BsonDoc, k: &str) -> i64 {
    d.get_datetime(k).map_or(0, |t| t.timestamp_millis())
}

fn count_of(d: &BsonDoc, k: &str) -> u64 {
    match d.get(k) {
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Double(n)) if *n >= 0.0 => *n as u64,
        _ => 0,
    }
}

fn unreadable(what: &str) -> AppError {
    AppError::internal(format!("stored {what} unreadable"))
}

fn channel_doc(c: &ChannelDef) -> BsonDoc {
    doc! {
        "_id": &c.id,
        "projectId": c.project.as_str(),
        "pattern": &c.pattern,
        "description": c.description.as_deref(),
        "webhookUrls": &c.webhook_urls,
        "enabled": c.enabled,
        "createdAt": DateTime::from_millis(c.created_at),
        "updatedAt": DateTime::from_millis(c.updated_at),
    }
}

fn channel_from(d: BsonDoc) -> StoreResult<ChannelDef> {
    let project = str_of(&d, "projectId")
        .and_then(|p| ProjectId::try_from(p).ok())
        .ok_or_else(|| unreadable("channel"))?;
    Ok(ChannelDef {
        id: str_of(&d, "_id").ok_or_else(|| unreadable("channel"))?,
        project,
        pattern: str_of(&d, "pattern").ok_or_else(|| unreadable("channel"))?,
        description: str_of(&d, "description"),
        webhook_urls: d
            .get_array("webhookUrls")
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        enabled: d.get_bool("enabled").unwrap_or(false),
        created_at: millis_of(&d, "createdAt"),
        updated_at: millis_of(&d, "updatedAt"),
    })
}

fn message_doc(m: &StoredMessage) -> StoreResult<BsonDoc> {
    let payload = bson::to_bson(&m.payload).map_err(AppError::internal)?;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(doc! {
        "_id": &m.id,
        "projectId": m.project.as_str(),
        "channelId": m.channel_id.as_deref(),
        "channelName": &m.channel_name,
        "eventName": &m.event_name,
        "payload": payload,
        "senderType": m.sender_type.as_str(),
        "senderId": m.sender_id.as_deref(),
        "wsAudienceCount": count(m.ws_audience_count),
        "whAudienceCount": count(m.wh_audience_count),
        "whDeliveredCount": count(m.wh_delivered_count),
        "createdAt": DateTime::from_millis(m.created_at),
    })
}

fn message_from(mut d: BsonDoc) -> StoreResult<StoredMessage> {
    let payload = d
        .remove("payload")
        .map_or(serde_json::Value::Null, bson_to_json);
    let project = str_of(&d, "projectId")
        .and_then(|p| ProjectId::try_from(p).ok())
        .ok_or_else(|| unreadable("message"))?;
    Ok(StoredMessage {
        id: str_of(&d, "_id").ok_or_else(|| unreadable("message"))?,
        project,
        channel_id: str_of(&d, "channelId"),
        channel_name: str_of(&d, "channelName").unwrap_or_default(),
        event_name: str_of(&d, "eventName").unwrap_or_default(),
        payload,
        sender_type: SenderType::parse(d.get_str("senderType").unwrap_or("system")),
        sender_id: str_of(&d, "senderId"),
        ws_audience_count: count_of(&d, "wsAudienceCount"),
        wh_audience_count: count_of(&d, "whAudienceCount"),
        wh_delivered_count: count_of(&d, "whDeliveredCount"),
        created_at: millis_of(&d, "createdAt"),
    })
}

fn message_filter(project: &ProjectId, channel_id: Option<&str>) -> BsonDoc {
    let mut f = doc! { "projectId": project.as_str() };
    if let Some(c) = channel_id {
        f.insert("channelId", c);
    }
    f
}

#[async_trait]
impl RealtimeStore for MongoStore {
    async fn list_channels(&self, project: &ProjectId) -> StoreResult<Vec<ChannelDef>> {
        let docs: Vec<BsonDoc> = self
            .coll(CHANNELS)
            .find(doc! { "projectId": project.as_str() })
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(channel_from).collect()
    }

    async fn get_channel(&self, project: &ProjectId, id: &str) -> StoreResult<Option<ChannelDef>> {
        self.coll(CHANNELS)
            .find_one(doc! { "_id": id, "projectId": project.as_str() })
            .await
            .map_err(map_err)?
            .map(channel_from)
            .transpose()
    }

    async fn put_channel(&self, def: &ChannelDef) -> StoreResult<()> {
        self.coll(CHANNELS)
            .replace_one(doc! { "_id": &def.id }, channel_doc(def))
            .with_options(super::projects::upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_channel(&self, project: &ProjectId, id: &str) -> StoreResult<bool> {
        let r = self
            .coll(CHANNELS)
            .delete_one(doc! { "_id": id, "projectId": project.as_str() })
            .await
            .map_err(map_err)?;
        if r.deleted_count == 0 {
            return Ok(false);
        }
        self.coll(MESSAGES)
            .update_many(
                message_filter(project, Some(id)),
                doc! { "$set": { "channelId": Bson::Null } },
            )
            .await
            .map_err(map_err)?;
        Ok(true)
    }

    async fn insert_message(&self, message: &StoredMessage) -> StoreResult<()> {
        self.coll(MESSAGES)
            .insert_one(message_doc(message)?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn add_delivered(&self, project: &ProjectId, id: &str, n: u64) -> StoreResult<()> {
        self.coll(MESSAGES)
            .update_one(
                doc! { "_id": id, "projectId": project.as_str() },
                doc! { "$inc": { "whDeliveredCount": i64::try_from(n).unwrap_or(i64::MAX) } },
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_messages(
        &self,
        project: &ProjectId,
        q: &MessageQuery,
    ) -> StoreResult<Vec<StoredMessage>> {
        let mut filter = message_filter(project, q.channel_id.as_deref());
        if let Some(e) = &q.event_name {
            filter.insert("eventName", e.as_str());
        }
        let docs: Vec<BsonDoc> = self
            .coll(MESSAGES)
            .find(filter)
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .skip(u64::try_from(q.offset).unwrap_or(u64::MAX))
            .limit(i64::try_from(q.limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(message_from).collect()
    }

    async fn message_stats(
        &self,
        project: &ProjectId,
        channel_id: Option<&str>,
        since: Option<i64>,
    ) -> StoreResult<MessageStats> {
        let mut filter = message_filter(project, channel_id);
        if let Some(s) = since {
            filter.insert("createdAt", doc! { "$gte": DateTime::from_millis(s) });
        }
        let pipeline = vec![
            doc! { "$match": filter },
            doc! { "$group": {
                "_id": "$eventName",
                "n": { "$sum": 1 },
                "wa": { "$sum": "$whAudienceCount" },
                "wd": { "$sum": "$whDeliveredCount" },
            } },
        ];
        let groups: Vec<BsonDoc> = self
            .coll(MESSAGES)
            .aggregate(pipeline)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut stats = MessageStats::default();
        let mut events = std::collections::HashMap::new();
        for g in &groups {
            let n = count_of(g, "n");
            stats.total_messages += n;
            stats.wh_audience += count_of(g, "wa");
            stats.wh_delivered += count_of(g, "wd");
            events.insert(str_of(g, "_id").unwrap_or_default(), n);
        }
        stats.top_events = realtime_channels::top_events(events);
        Ok(stats)
    }

    async fn retention_days(&self, project: &ProjectId) -> StoreResult<Option<u32>> {
        let d = self
            .coll(CONFIG)
            .find_one(doc! { "_id": project.as_str() })
            .await
            .map_err(map_err)?;
        Ok(d.and_then(|d| match d.get("retentionDays") {
            Some(Bson::Int64(n)) => u32::try_from(*n).ok(),
            Some(Bson::Int32(n)) => u32::try_from(*n).ok(),
            _ => None,
        }))
    }

    async fn set_retention_days(&self, project: &ProjectId, days: Option<u32>) -> StoreResult<()> {
        self.coll(CONFIG)
            .replace_one(
                doc! { "_id": project.as_str() },
                doc! { "_id": project.as_str(), "retentionDays": days.map(i64::from) },
            )
            .with_options(super::projects::upsert())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let configs: Vec<BsonDoc> = self
            .coll(CONFIG)
            .find(doc! { "retentionDays": { "$type": "number" } })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut gone = 0;
        for c in configs {
            let (Some(project), days) = (str_of(&c, "_id"), count_of(&c, "retentionDays")) else {
                continue;
            };
            if days == 0 {
                continue;
            }
            let days = i64::try_from(days).unwrap_or(i64::MAX);
            let cutoff = now.saturating_sub(days.saturating_mul(DAY_MS));
            let r = self
                .coll(MESSAGES)
                .delete_many(doc! {
                    "projectId": project,
                    "createdAt": { "$lt": DateTime::from_millis(cutoff) },
                })
                .await
                .map_err(map_err)?;
            gone += r.deleted_count;
        }
        Ok(gone)
    }
}
