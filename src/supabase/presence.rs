//! Presence sets per channel, Phoenix style: under each key a list of metas (one per tracking
//! connection), each the tracked payload plus a unique `phx_ref`.
//!
//! The sets sit behind the core's channel-presence port (in the process on one node, in Redis
//! with atomic scripts on several), so `presence_state` lists what every node tracks. Each meta
//! is one member of the port: member id `[key, phx_ref]`, info the meta's JSON, its one
//! connection the tracking one — which is how a dead node's metas are swept (connection ids
//! start with the node's number). The diffs travel to every node through the hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use switchboard_handlers::core::channel_presence::{ChannelPresence, Joined};
use switchboard_handlers::core::ids::ProjectId;

/// Metas one channel may hold: `presence_state` sends them all to every joiner.
pub const MAX_METAS: usize = 1000;
/// Longest presence key.
pub const MAX_KEY: usize = 255;

/// What this node tracks for one connection in one channel.
#[derive(Debug, Clone)]
struct Tracked {
    key: String,
    phx_ref: String,
    payload: Map<String, Value>,
}

impl Tracked {
    fn meta(&self) -> Value {
        let mut m = self.payload.clone();
        m.insert("phx_ref".into(), Value::String(self.phx_ref.clone()));
        Value::Object(m)
    }

    fn member(&self) -> String {
        member_id(&self.key, &self.phx_ref)
    }
}

fn member_id(key: &str, phx_ref: &str) -> String {
    json!([key, phx_ref]).to_string()
}

/// The store's channel name for a channel of a project: JSON, so a sweep can tell the project
/// and the channel apart again.
pub fn store_channel(project: &ProjectId, name: &str) -> String {
    json!([project.as_str(), name]).to_string()
}

/// The project and channel name back from [`store_channel`].
pub fn parse_store_channel(s: &str) -> Option<(ProjectId, String)> {
    let (p, n): (String, String) = serde_json::from_str(s).ok()?;
    Some((ProjectId::try_from(p).ok()?, n))
}

/// The store knows connections as `<node>.<n>` (what its sweep reads); ours are `sb.<node>.<n>`.
fn store_conn(conn: &str) -> String {
    conn.strip_prefix("sb.").unwrap_or(conn).to_owned()
}

fn diff(joins: Option<(&str, Value)>, leaves: Option<(&str, Value)>) -> Value {
    let side = |e: Option<(&str, Value)>| match e {
        Some((k, m)) => json!({ k: {"metas": [m]} }),
        None => json!({}),
    };
    json!({"joins": side(joins), "leaves": side(leaves)})
}

/// A meta that left without this node knowing its payload (a swept node's): its key and
/// `phx_ref` are what realtime-js removes it by.
pub fn swept_diff(member: &str) -> Option<Value> {
    let (key, phx_ref): (String, String) = serde_json::from_str(member).ok()?;
    Some(diff(None, Some((&key, json!({ "phx_ref": phx_ref })))))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackRefusal {
    Full,
    Unavailable,
}

/// A track that was refused. A re-track removed the connection's previous meta first, so
/// `left` is that leave, still to announce.
#[derive(Debug, PartialEq)]
pub struct TrackError {
    pub why: TrackRefusal,
    pub left: Option<Value>,
}

pub struct PresenceSets {
    store: Arc<dyn ChannelPresence>,
    /// (store channel, connection) → what that connection tracks there.
    local: Mutex<HashMap<(String, String), Tracked>>,
    node: u32,
    next: AtomicU64,
}

impl PresenceSets {
    pub fn new(store: Arc<dyn ChannelPresence>, node: u32) -> Self {
        PresenceSets {
            store,
            local: Mutex::default(),
            node,
            next: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &Arc<dyn ChannelPresence> {
        &self.store
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Tracked>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `{key: {metas: [...]}}` for `presence_state`, from every node; empty when the store
    /// cannot answer (realtime-js needs the state, even empty, before it applies diffs).
    pub async fn state(&self, channel: &str) -> Value {
        let members = match self.store.members(channel).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "presence state unavailable; sending an empty one");
                Vec::new()
            }
        };
        let mut out: Map<String, Value> = Map::new();
        for m in members {
            let (Ok((key, _)), Ok(meta)) = (
                serde_json::from_str::<(String, String)>(&m.user_id),
                serde_json::from_str::<Value>(&m.info),
            ) else {
                continue;
            };
            let entry = out.entry(key).or_insert_with(|| json!({ "metas": [] }));
            if let Some(metas) = entry.get_mut("metas").and_then(Value::as_array_mut) {
                metas.push(meta);
            }
        }
        Value::Object(out)
    }

    /// Tracks (or re-tracks) `conn` under `key`; the diff to fan out, or `None` when the
    /// payload is the one already tracked.
    pub async fn track(
        &self,
        channel: &str,
        key: &str,
        conn: &str,
        payload: Map<String, Value>,
    ) -> Result<Option<Value>, TrackError> {
        let slot = (channel.to_owned(), conn.to_owned());
        let old = self.local().get(&slot).cloned();
        if let Some(o) = &old
            && o.key == key
            && o.payload == payload
        {
            return Ok(None);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut new = Tracked {
            key: key.to_owned(),
            phx_ref: format!("F{:x}.{n:x}", self.node),
            payload,
        };
        let sconn = store_conn(conn);
        // The store holds one member per connection and channel: the old meta goes first.
        if let Some(o) = &old {
            self.local().remove(&slot);
            if let Err(e) = self.store.leave(channel, &o.member(), &sconn).await {
                tracing::warn!(error = %e, "presence untrack not recorded");
            }
        }
        let leaves = old.as_ref().map(|o| (o.key.as_str(), o.meta()));
        let refused = |why| TrackError {
            why,
            left: old.as_ref().map(|o| diff(None, Some((&o.key, o.meta())))),
        };
        if let Some(o) = &old {
            new.payload
                .insert("phx_ref_prev".into(), Value::String(o.phx_ref.clone()));
        }
        let info = new.meta().to_string();
        match self
            .store
            .join(channel, &new.member(), &info, &sconn, MAX_METAS)
            .await
        {
            Ok(Joined::Full) => Err(refused(TrackRefusal::Full)),
            Ok(_) => {
                let joined = diff(Some((key, new.meta())), leaves);
                self.local().insert(slot, new);
                Ok(Some(joined))
            }
            Err(e) => {
                tracing::warn!(error = %e, "presence track not recorded");
                Err(refused(TrackRefusal::Unavailable))
            }
        }
    }

    /// Untracks `conn` in `channel`; the diff, if it was tracked here.
    pub async fn untrack(&self, channel: &str, conn: &str) -> Option<Value> {
        let old = self
            .local()
            .remove(&(channel.to_owned(), conn.to_owned()))?;
        if let Err(e) = self
            .store
            .leave(channel, &old.member(), &store_conn(conn))
            .await
        {
            tracing::warn!(error = %e, "presence untrack not recorded");
        }
        Some(diff(None, Some((&old.key, old.meta()))))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_handlers::core::channel_presence::MemoryChannelPresence;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn track_retrack_and_untrack_produce_phoenix_diffs() {
        let p = PresenceSets::new(Arc::new(MemoryChannelPresence::default()), 7);
        assert_eq!(p.state("r").await, json!({}));
        let d = p
            .track("r", "k1", "sb.7.1", obj(json!({"user": "ann"})))
            .await
            .expect("tracked")
            .expect("diff");
        assert_eq!(d["joins"]["k1"]["metas"][0]["user"], "ann");
        assert_eq!(d["leaves"], json!({}));
        assert_eq!(
            p.track("r", "k1", "sb.7.1", obj(json!({"user": "ann"})))
                .await,
            Ok(None),
            "same payload"
        );
        let d = p
            .track("r", "k1", "sb.7.1", obj(json!({"user": "ann", "s": 1})))
            .await
            .expect("tracked")
            .expect("diff");
        assert_eq!(d["leaves"]["k1"]["metas"][0]["user"], "ann");
        assert!(d["joins"]["k1"]["metas"][0]["phx_ref_prev"].is_string());
        p.track("r", "k1", "sb.7.2", obj(json!({"user": "ann"})))
            .await
            .expect("tracked");
        assert_eq!(
            p.state("r").await["k1"]["metas"].as_array().map(Vec::len),
            Some(2)
        );
        let d = p.untrack("r", "sb.7.1").await.expect("diff");
        assert_eq!(d["leaves"]["k1"]["metas"][0]["s"], 1);
        assert!(p.untrack("r", "sb.7.1").await.is_none());
        p.untrack("r", "sb.7.2").await;
        assert_eq!(p.state("r").await, json!({}));
    }

    #[tokio::test]
    async fn a_full_channel_refuses_new_metas_but_not_a_retrack() {
        let p = PresenceSets::new(Arc::new(MemoryChannelPresence::default()), 7);
        for i in 0..MAX_METAS {
            p.track("r", "k", &format!("sb.7.{i}"), Map::new())
                .await
                .expect("room");
        }
        let e = p
            .track("r", "k", "sb.7.x", Map::new())
            .await
            .expect_err("full");
        assert_eq!((e.why, e.left), (TrackRefusal::Full, None));
        // A re-track gives up its own meta first, so it always finds room.
        p.track("r", "k", "sb.7.1", obj(json!({"n": 1})))
            .await
            .expect("re-tracked");
    }

    #[test]
    fn store_names_round_trip_and_swept_members_become_leaves() {
        let p = ProjectId::try_from("a:b").expect("id");
        let ch = store_channel(&p, "c:d");
        assert_eq!(parse_store_channel(&ch), Some((p, "c:d".to_owned())));
        let d = swept_diff(&member_id("k", "F1.2")).expect("diff");
        assert_eq!(
            d,
            json!({"joins": {}, "leaves": {"k": {"metas": [{"phx_ref": "F1.2"}]}}})
        );
    }
}
