//! Presence sets per channel, Phoenix style: under each key a list of metas (one per
//! connection), each the tracked payload plus a unique `phx_ref`.
//!
//! The sets are the channels' shared ones (`crate::channel_members`: every protocol's members
//! of a channel are one set, in Redis with several nodes), so `presence_state` lists what every
//! node and every protocol holds. A realtime-js connection tracks one key per channel; its meta
//! is that connection's info in the set. Members of other protocols show one meta per
//! connection, whose `phx_ref` is the connection. Changes travel on the hub as
//! [`PresenceChange`]s, which [`diff`] turns into `presence_diff` payloads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use switchboard_handlers::core::channel_presence::{ChannelPresence, Joined};

use crate::channel_members::change::{PresenceChange, Side};
use crate::channel_members::info::{MemberInfo, Protocol};

/// Keys one channel may hold, whichever protocol added them: `presence_state` sends them all to
/// every joiner.
pub const MAX_MEMBERS: usize = 1000;
/// Longest presence key.
pub const MAX_KEY: usize = 255;

/// What this node tracks for one connection in one channel.
#[derive(Debug, Clone)]
struct Tracked {
    key: String,
    phx_ref: String,
    payload: Map<String, Value>,
    info: MemberInfo,
}

impl Tracked {
    /// `prev`: the meta this one replaces (a re-track), which realtime-js links it to.
    fn new(key: &str, phx_ref: String, prev: Option<String>, payload: Map<String, Value>) -> Self {
        let mut meta = payload.clone();
        meta.insert("phx_ref".into(), Value::String(phx_ref.clone()));
        if let Some(p) = &prev {
            meta.insert("phx_ref_prev".into(), Value::String(p.clone()));
        }
        Tracked {
            key: key.to_owned(),
            phx_ref,
            payload,
            info: MemberInfo::new(Protocol::Supabase, Value::Object(meta)),
        }
    }

    fn side(&self, conn: &str, edge: bool) -> Side {
        Side {
            key: self.key.clone(),
            conn: conn.to_owned(),
            info: self.info.clone(),
            edge,
        }
    }
}

/// The set knows connections as `<node>.<rest>` (what its sweep reads), unique across
/// protocols; ours are `sb.<node>.<n>`, so `<node>.sb<n>`.
pub fn store_conn(conn: &str) -> String {
    match conn.strip_prefix("sb.").and_then(|r| r.split_once('.')) {
        Some((node, n)) => format!("{node}.sb{n}"),
        None => conn.to_owned(),
    }
}

/// A change as realtime-js applies it: `{joins: {key: {metas}}, leaves: {key: {metas}}}`, one
/// meta per connection that joined or left.
pub fn diff(change: &PresenceChange) -> Value {
    let side = |sides: &[Side]| {
        let mut out: Map<String, Value> = Map::new();
        for s in sides {
            let entry = out
                .entry(s.key.clone())
                .or_insert_with(|| json!({ "metas": [] }));
            if let Some(metas) = entry.get_mut("metas").and_then(Value::as_array_mut) {
                metas.push(s.info.supabase_meta(&s.conn));
            }
        }
        Value::Object(out)
    };
    json!({"joins": side(&change.joins), "leaves": side(&change.leaves)})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackRefusal {
    Full,
    Unavailable,
}

/// A track that was refused. A re-track under another key gave up the connection's previous
/// meta first, so `left` is that leave, still to announce.
#[derive(Debug, PartialEq)]
pub struct TrackError {
    pub why: TrackRefusal,
    pub left: Option<PresenceChange>,
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

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Tracked>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `{key: {metas: [...]}}` for `presence_state`, from every node and protocol; empty when
    /// the store cannot answer (realtime-js needs the state, even empty, before it applies
    /// diffs).
    pub async fn state(&self, channel: &str) -> Value {
        let entries = match self.store.entries(channel).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "presence state unavailable; sending an empty one");
                Vec::new()
            }
        };
        let mut out: Map<String, Value> = Map::new();
        for e in entries {
            let Some(info) = MemberInfo::from_text(&e.info) else {
                continue;
            };
            let entry = out.entry(e.key).or_insert_with(|| json!({ "metas": [] }));
            if let Some(metas) = entry.get_mut("metas").and_then(Value::as_array_mut) {
                metas.push(info.supabase_meta(&e.conn));
            }
        }
        Value::Object(out)
    }

    /// Tracks (or re-tracks) `conn` under `key`; the change to fan out, or `None` when the
    /// payload is the one already tracked.
    pub async fn track(
        &self,
        channel: &str,
        key: &str,
        conn: &str,
        payload: Map<String, Value>,
    ) -> Result<Option<PresenceChange>, TrackError> {
        let slot = (channel.to_owned(), conn.to_owned());
        let old = self.local().get(&slot).cloned();
        if let Some(o) = &old
            && o.key == key
            && o.payload == payload
        {
            return Ok(None);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let new = Tracked::new(
            key,
            format!("F{:x}.{n:x}", self.node),
            old.as_ref().map(|o| o.phx_ref.clone()),
            payload,
        );
        let sconn = store_conn(conn);
        let mut change = PresenceChange::default();
        match &old {
            // The same key: the store replaces the connection's info, the member stays.
            Some(o) if o.key == key => change.leaves.push(o.side(&sconn, false)),
            // Another key: the connection leaves its old member first.
            Some(o) => {
                self.local().remove(&slot);
                let last = self
                    .store
                    .leave(channel, &o.key, &sconn)
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "presence untrack not recorded"))
                    .unwrap_or(false);
                change.leaves.push(o.side(&sconn, last));
            }
            None => {}
        }
        let refused = |why, change: PresenceChange| TrackError {
            why,
            left: (!change.leaves.is_empty()).then_some(change),
        };
        match self
            .store
            .join(channel, key, &new.info.to_text(), &sconn, MAX_MEMBERS)
            .await
        {
            Ok(Joined::Full) => Err(refused(TrackRefusal::Full, change)),
            Ok(joined) => {
                change.joins.push(new.side(&sconn, joined == Joined::First));
                self.local().insert(slot, new);
                Ok(Some(change))
            }
            Err(e) => {
                tracing::warn!(error = %e, "presence track not recorded");
                let same_key = old.as_ref().is_some_and(|o| o.key == key);
                let left = if same_key {
                    PresenceChange::default()
                } else {
                    change
                };
                Err(refused(TrackRefusal::Unavailable, left))
            }
        }
    }

    /// Untracks `conn` in `channel`; the change, if it was tracked here.
    pub async fn untrack(&self, channel: &str, conn: &str) -> Option<PresenceChange> {
        let old = self
            .local()
            .remove(&(channel.to_owned(), conn.to_owned()))?;
        let sconn = store_conn(conn);
        let last = match self.store.leave(channel, &old.key, &sconn).await {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(error = %e, "presence untrack not recorded");
                false
            }
        };
        Some(PresenceChange::leave(old.side(&sconn, last)))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_handlers::core::channel_presence::MemoryChannelPresence;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    async fn tracked(p: &PresenceSets, key: &str, conn: &str, v: Value) -> Value {
        diff(
            &p.track("r", key, conn, obj(v))
                .await
                .expect("tracked")
                .expect("a change"),
        )
    }

    #[tokio::test]
    async fn track_retrack_and_untrack_produce_phoenix_diffs() {
        let p = PresenceSets::new(Arc::new(MemoryChannelPresence::default()), 7);
        assert_eq!(p.state("r").await, json!({}));
        let d = tracked(&p, "k1", "sb.7.1", json!({"user": "ann"})).await;
        assert_eq!(d["joins"]["k1"]["metas"][0]["user"], "ann");
        assert_eq!(d["leaves"], json!({}));
        assert_eq!(
            p.track("r", "k1", "sb.7.1", obj(json!({"user": "ann"})))
                .await,
            Ok(None),
            "same payload"
        );
        let d = tracked(&p, "k1", "sb.7.1", json!({"user": "ann", "s": 1})).await;
        assert_eq!(d["leaves"]["k1"]["metas"][0]["user"], "ann");
        assert_eq!(
            d["joins"]["k1"]["metas"][0]["phx_ref_prev"],
            d["leaves"]["k1"]["metas"][0]["phx_ref"]
        );
        tracked(&p, "k1", "sb.7.2", json!({"user": "ann"})).await;
        assert_eq!(
            p.state("r").await["k1"]["metas"].as_array().map(Vec::len),
            Some(2)
        );
        let c = p.untrack("r", "sb.7.1").await.expect("change");
        assert!(!c.leaves[0].edge, "the key has another connection");
        assert_eq!(diff(&c)["leaves"]["k1"]["metas"][0]["s"], 1);
        assert!(p.untrack("r", "sb.7.1").await.is_none());
        let c = p.untrack("r", "sb.7.2").await.expect("change");
        assert!(c.leaves[0].edge, "the key's last connection");
        assert_eq!(p.state("r").await, json!({}));
    }

    #[tokio::test]
    async fn a_retrack_under_another_key_leaves_the_old_member() {
        let p = PresenceSets::new(Arc::new(MemoryChannelPresence::default()), 7);
        tracked(&p, "a", "sb.7.1", json!({})).await;
        let c = p
            .track("r", "b", "sb.7.1", Map::new())
            .await
            .expect("tracked")
            .expect("change");
        assert_eq!((c.leaves[0].key.as_str(), c.leaves[0].edge), ("a", true));
        assert_eq!((c.joins[0].key.as_str(), c.joins[0].edge), ("b", true));
        assert_eq!(p.state("r").await.as_object().map(|m| m.len()), Some(1));
    }

    #[tokio::test]
    async fn a_full_channel_refuses_new_keys_but_not_a_retrack() {
        let p = PresenceSets::new(Arc::new(MemoryChannelPresence::default()), 7);
        for i in 0..MAX_MEMBERS {
            p.track("r", &format!("k{i}"), &format!("sb.7.{i}"), Map::new())
                .await
                .expect("room");
        }
        let e = p
            .track("r", "new", "sb.7.x", Map::new())
            .await
            .expect_err("full");
        assert_eq!((e.why, e.left), (TrackRefusal::Full, None));
        // Another connection of a member, and a re-track, always find room.
        p.track("r", "k1", "sb.7.y", Map::new())
            .await
            .expect("a member's second connection");
        p.track("r", "k1", "sb.7.1", obj(json!({"n": 1})))
            .await
            .expect("re-tracked");
    }

    #[test]
    fn foreign_members_show_one_meta_per_connection() {
        let pusher = |conn: &str, edge| Side {
            key: "u1".into(),
            conn: conn.into(),
            info: MemberInfo {
                protocol: Protocol::Pusher,
                info: json!({"name": "Ann"}),
                at: String::new(),
            },
            edge,
        };
        let d = diff(&PresenceChange {
            joins: vec![pusher("1.2", false)],
            leaves: vec![pusher("1.1", true)],
        });
        assert_eq!(
            d,
            json!({
                "joins": {"u1": {"metas": [{"name": "Ann", "phx_ref": "1.2"}]}},
                "leaves": {"u1": {"metas": [{"name": "Ann", "phx_ref": "1.1"}]}},
            })
        );
        assert_eq!(store_conn("sb.12.5"), "12.sb5");
    }
}
