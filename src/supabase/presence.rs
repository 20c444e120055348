//! Presence sets per channel, Phoenix style: under each key a list of metas (one per tracking
//! connection), each the tracked payload plus a unique `phx_ref`. This node's sets; the diffs
//! travel to every node through the hub (see docs/protocols/supabase.md for what is not yet
//! cluster-wide).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
struct Meta {
    conn: String,
    phx_ref: String,
    payload: Map<String, Value>,
}

impl Meta {
    fn to_json(&self) -> Value {
        let mut m = self.payload.clone();
        m.insert("phx_ref".into(), Value::String(self.phx_ref.clone()));
        Value::Object(m)
    }
}

/// room → key → metas.
#[derive(Default)]
pub struct PresenceSets {
    sets: Mutex<HashMap<String, HashMap<String, Vec<Meta>>>>,
    next: AtomicU64,
}

fn diff(joins: Option<(&str, &Meta)>, leaves: Option<(&str, &Meta)>) -> Value {
    let side = |e: Option<(&str, &Meta)>| match e {
        Some((k, m)) => json!({ k: {"metas": [m.to_json()]} }),
        None => json!({}),
    };
    json!({"joins": side(joins), "leaves": side(leaves)})
}

impl PresenceSets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Vec<Meta>>>> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `{key: {metas: [...]}}` for `presence_state`.
    pub fn state(&self, room: &str) -> Value {
        let sets = self.lock();
        let mut out = Map::new();
        if let Some(keys) = sets.get(room) {
            for (k, metas) in keys {
                let metas: Vec<Value> = metas.iter().map(Meta::to_json).collect();
                out.insert(k.clone(), json!({ "metas": metas }));
            }
        }
        Value::Object(out)
    }

    /// Tracks (or re-tracks) `conn` under `key`; the diff to fan out, or `None` when the
    /// payload is the one already tracked.
    pub fn track(
        &self,
        room: &str,
        key: &str,
        conn: &str,
        payload: Map<String, Value>,
    ) -> Option<Value> {
        let mut sets = self.lock();
        let metas = sets
            .entry(room.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default();
        let old = metas
            .iter()
            .position(|m| m.conn == conn)
            .map(|i| metas.remove(i));
        if let Some(o) = &old
            && o.payload == payload
        {
            metas.push(o.clone());
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut meta = Meta {
            conn: conn.to_owned(),
            phx_ref: format!("F{n:x}"),
            payload,
        };
        if let Some(o) = &old {
            meta.payload
                .insert("phx_ref_prev".into(), Value::String(o.phx_ref.clone()));
        }
        metas.push(meta.clone());
        Some(diff(Some((key, &meta)), old.as_ref().map(|o| (key, o))))
    }

    /// Untracks `conn` in `room`; the diff, if it was tracked.
    pub fn untrack(&self, room: &str, conn: &str) -> Option<Value> {
        let mut sets = self.lock();
        let keys = sets.get_mut(room)?;
        let mut gone = None;
        keys.retain(|k, metas| {
            if let Some(i) = metas.iter().position(|m| m.conn == conn) {
                gone = Some((k.clone(), metas.remove(i)));
            }
            !metas.is_empty()
        });
        if keys.is_empty() {
            sets.remove(room);
        }
        gone.map(|(k, m)| diff(None, Some((&k, &m))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn track_retrack_and_untrack_produce_phoenix_diffs() {
        let p = PresenceSets::default();
        assert_eq!(p.state("r"), json!({}));
        let d = p
            .track("r", "k1", "c1", obj(json!({"user": "ann"})))
            .expect("diff");
        assert_eq!(d["joins"]["k1"]["metas"][0]["user"], "ann");
        assert_eq!(d["leaves"], json!({}));
        assert!(
            p.track("r", "k1", "c1", obj(json!({"user": "ann"})))
                .is_none(),
            "same payload"
        );
        let d = p
            .track("r", "k1", "c1", obj(json!({"user": "ann", "s": 1})))
            .expect("diff");
        assert_eq!(d["leaves"]["k1"]["metas"][0]["user"], "ann");
        assert!(d["joins"]["k1"]["metas"][0]["phx_ref_prev"].is_string());
        p.track("r", "k1", "c2", obj(json!({"user": "ann"})));
        assert_eq!(
            p.state("r")["k1"]["metas"].as_array().map(Vec::len),
            Some(2)
        );
        let d = p.untrack("r", "c1").expect("diff");
        assert_eq!(d["leaves"]["k1"]["metas"][0]["s"], 1);
        assert!(p.untrack("r", "c1").is_none());
        p.untrack("r", "c2");
        assert_eq!(p.state("r"), json!({}));
    }
}
