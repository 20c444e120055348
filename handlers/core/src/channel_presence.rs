//! Who is in a protocol channel's presence set: channel → member key → the member's info and
//! connections, each connection with its own info. One set per channel serves every protocol
//! (a Pusher `presence-` channel, a Supabase Realtime channel, an InsForge channel of the same
//! name are one set): the key is protocol-neutral (a Pusher user id, a Supabase presence key,
//! an InsForge presence id) and connections are each front end's own. Members are keys, not
//! connections: a key's second connection joins silently and the key leaves with its last one,
//! so "first" and "last" answers are what a front end announces (`member_added` /
//! `member_removed`), exactly once per transition.
//!
//! [`MemoryChannelPresence`] keeps the set in this process (one node); with Redis the set is
//! the cluster's (`src/channel_members/redis.rs`), and a dead node's connections are swept:
//! connection ids start with their node's number (`<node>.<rest>`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{ConnId, StoreResult};

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The key's first connection in the channel: announce them.
    First,
    /// The key was a member already (another connection, or this one again, whose info is
    /// then replaced): stay quiet.
    Again,
    /// The channel holds its maximum of members; nothing was recorded.
    Full,
}

/// One member as the channel's snapshot lists it: the key and the info of its first
/// connection, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub info: String,
}

/// One connection of a member, with the info it joined (or last re-joined) with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub conn: ConnId,
    pub info: String,
}

/// A connection of a dead node that a sweep removed; `last` when its key has no connection
/// left in the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    pub channel: String,
    pub key: String,
    pub conn: ConnId,
    pub info: String,
    pub last: bool,
}

#[async_trait]
pub trait ChannelPresence: Send + Sync {
    /// Records `conn` as one of `key`'s connections in `channel`, with `info`. A new key is
    /// refused when the channel has `max_members` already. The info of the key's first
    /// connection stays the member's; a connection joining again under any key only has its
    /// own info replaced.
    async fn join(
        &self,
        channel: &str,
        key: &str,
        info: &str,
        conn: &ConnId,
        max_members: usize,
    ) -> StoreResult<Joined>;
    /// Forgets `conn`; true when it was its key's last connection in the channel (exactly
    /// one caller sees true for that moment).
    async fn leave(&self, channel: &str, key: &str, conn: &ConnId) -> StoreResult<bool>;
    /// The channel's members, each once, sorted by key.
    async fn members(&self, channel: &str) -> StoreResult<Vec<Member>>;
    /// The channel's connections with their keys and infos, sorted by key then connection.
    async fn entries(&self, channel: &str) -> StoreResult<Vec<Entry>>;
    /// How many keys are in the channel.
    async fn user_count(&self, channel: &str) -> StoreResult<usize>;
    /// How many connections are in the channel (all keys').
    async fn connection_count(&self, channel: &str) -> StoreResult<usize>;
    /// The channels with at least one member whose names start with `prefix`, sorted.
    async fn channels(&self, prefix: &str) -> StoreResult<Vec<String>>;
    /// Tells a store shared by several nodes that this node is alive.
    async fn heartbeat(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Removes the connections of nodes that died, each reported to exactly one caller on one
    /// node.
    async fn sweep(&self) -> StoreResult<Vec<Swept>> {
        Ok(Vec::new())
    }
}

struct Held {
    info: String,
    /// Connection → its own info.
    conns: HashMap<ConnId, String>,
}

#[derive(Default)]
struct Channel {
    members: HashMap<String, Held>,
    /// Connection → its key.
    conns: HashMap<ConnId, String>,
}

/// The channel presence of this process.
#[derive(Default)]
pub struct MemoryChannelPresence {
    channels: Mutex<HashMap<String, Channel>>,
}

impl MemoryChannelPresence {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ChannelPresence for MemoryChannelPresence {
    async fn join(
        &self,
        channel: &str,
        key: &str,
        info: &str,
        conn: &ConnId,
        max_members: usize,
    ) -> StoreResult<Joined> {
        let mut channels = self.lock();
        let ch = channels.entry(channel.to_owned()).or_default();
        if let Some(k) = ch.conns.get(conn) {
            if let Some(m) = ch.members.get_mut(k) {
                m.conns.insert(conn.clone(), info.to_owned());
            }
            return Ok(Joined::Again);
        }
        if let Some(m) = ch.members.get_mut(key) {
            m.conns.insert(conn.clone(), info.to_owned());
            ch.conns.insert(conn.clone(), key.to_owned());
            return Ok(Joined::Again);
        }
        if ch.members.len() >= max_members {
            if ch.members.is_empty() {
                channels.remove(channel);
            }
            return Ok(Joined::Full);
        }
        ch.members.insert(
            key.to_owned(),
            Held {
                info: info.to_owned(),
                conns: HashMap::from([(conn.clone(), info.to_owned())]),
            },
        );
        ch.conns.insert(conn.clone(), key.to_owned());
        Ok(Joined::First)
    }

    async fn leave(&self, channel: &str, _key: &str, conn: &ConnId) -> StoreResult<bool> {
        let mut channels = self.lock();
        let Some(ch) = channels.get_mut(channel) else {
            return Ok(false);
        };
        let Some(key) = ch.conns.remove(conn) else {
            return Ok(false);
        };
        let Some(m) = ch.members.get_mut(&key) else {
            return Ok(false);
        };
        m.conns.remove(conn);
        if !m.conns.is_empty() {
            return Ok(false);
        }
        ch.members.remove(&key);
        if ch.members.is_empty() {
            channels.remove(channel);
        }
        Ok(true)
    }

    async fn members(&self, channel: &str) -> StoreResult<Vec<Member>> {
        let channels = self.lock();
        let mut out: Vec<Member> = channels
            .get(channel)
            .map(|ch| {
                ch.members
                    .iter()
                    .map(|(k, m)| Member {
                        user_id: k.clone(),
                        info: m.info.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(out)
    }

    async fn entries(&self, channel: &str) -> StoreResult<Vec<Entry>> {
        let channels = self.lock();
        let mut out: Vec<Entry> = channels
            .get(channel)
            .map(|ch| {
                ch.members
                    .iter()
                    .flat_map(|(k, m)| {
                        m.conns.iter().map(|(c, i)| Entry {
                            key: k.clone(),
                            conn: c.clone(),
                            info: i.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        sort_entries(&mut out);
        Ok(out)
    }

    async fn user_count(&self, channel: &str) -> StoreResult<usize> {
        Ok(self.lock().get(channel).map_or(0, |ch| ch.members.len()))
    }

    async fn connection_count(&self, channel: &str) -> StoreResult<usize> {
        Ok(self.lock().get(channel).map_or(0, |ch| ch.conns.len()))
    }

    async fn channels(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut out: Vec<String> = self
            .lock()
            .keys()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect();
        out.sort();
        Ok(out)
    }
}

/// The order [`ChannelPresence::entries`] promises.
pub fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| (&a.key, &a.conn).cmp(&(&b.key, &b.conn)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> ConnId {
        s.to_owned()
    }

    #[tokio::test]
    async fn a_user_is_one_member_whatever_their_connections() {
        let p = MemoryChannelPresence::default();
        assert_eq!(
            p.join("ch", "u1", "{}", &c("1.1"), 100).await.ok(),
            Some(Joined::First)
        );
        assert_eq!(
            p.join("ch", "u1", "{\"x\":1}", &c("1.2"), 100).await.ok(),
            Some(Joined::Again)
        );
        assert_eq!(
            p.join("ch", "u1", "{}", &c("1.2"), 100).await.ok(),
            Some(Joined::Again)
        );
        assert_eq!(p.user_count("ch").await.ok(), Some(1));
        assert_eq!(p.connection_count("ch").await.ok(), Some(2));
        assert_eq!(p.channels("c").await.ok(), Some(vec!["ch".to_owned()]));
        assert_eq!(p.channels("x").await.ok(), Some(vec![]));
        assert_eq!(
            p.members("ch").await.ok(),
            Some(vec![Member {
                user_id: "u1".into(),
                info: "{}".into()
            }])
        );
        assert_eq!(p.leave("ch", "u1", &c("1.1")).await.ok(), Some(false));
        assert_eq!(p.leave("ch", "u1", &c("1.1")).await.ok(), Some(false));
        assert_eq!(p.leave("ch", "u1", &c("1.2")).await.ok(), Some(true));
        assert_eq!(p.leave("ch", "u1", &c("1.2")).await.ok(), Some(false));
        assert_eq!(p.user_count("ch").await.ok(), Some(0));
        assert_eq!(p.connection_count("ch").await.ok(), Some(0));
        assert!(p.lock().is_empty(), "empty channels are dropped");
        assert_eq!(p.entries("ch").await.ok(), Some(vec![]));
    }

    #[tokio::test]
    async fn a_full_channel_refuses_new_users_but_not_members() {
        let p = MemoryChannelPresence::default();
        for u in ["a", "b"] {
            assert_eq!(
                p.join("ch", u, "{}", &c(u), 2).await.ok(),
                Some(Joined::First)
            );
        }
        assert_eq!(
            p.join("ch", "c", "{}", &c("c"), 2).await.ok(),
            Some(Joined::Full)
        );
        assert_eq!(
            p.join("ch", "a", "{}", &c("a2"), 2).await.ok(),
            Some(Joined::Again)
        );
        assert_eq!(p.user_count("ch").await.ok(), Some(2));
        assert_eq!(
            p.join("empty", "x", "{}", &c("x"), 0).await.ok(),
            Some(Joined::Full)
        );
        assert!(!p.lock().contains_key("empty"));
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        crate::testkit::run_channel_presence(
            &|| {
                std::sync::Arc::new(MemoryChannelPresence::default())
                    as std::sync::Arc<dyn ChannelPresence>
            },
            "",
        )
        .await;
    }
}
