//! Who is in a presence channel (a Pusher `presence-` channel): channel → user → the user's
//! info and connections. Members are users, not connections: a user's second connection joins
//! silently and the user leaves with their last one, so "first" and "last" answers are what a
//! front end announces (`member_added` / `member_removed`), exactly once per transition.
//!
//! [`MemoryChannelPresence`] keeps the set in this process (one node); with Redis the set is
//! the cluster's (`src/pusher/redis_presence.rs`), and a dead node's members are swept.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{ConnId, StoreResult};

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The user's first connection in the channel: announce them.
    First,
    /// The user was a member already (another connection, or this one again): stay quiet.
    Again,
    /// The channel holds its maximum of members; nothing was recorded.
    Full,
}

/// One member as the channel's snapshot lists it: the user id and their info as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub info: String,
}

#[async_trait]
pub trait ChannelPresence: Send + Sync {
    /// Records `conn` as one of `user`'s connections in `channel`. A new user is refused when
    /// the channel has `max_members` already. The info of the user's first connection stays.
    async fn join(
        &self,
        channel: &str,
        user: &str,
        info: &str,
        conn: &ConnId,
        max_members: usize,
    ) -> StoreResult<Joined>;
    /// Forgets `conn`; true when it was the user's last connection in the channel (exactly
    /// one caller sees true for that moment).
    async fn leave(&self, channel: &str, user: &str, conn: &ConnId) -> StoreResult<bool>;
    /// The channel's members, each once.
    async fn members(&self, channel: &str) -> StoreResult<Vec<Member>>;
    /// How many users are in the channel.
    async fn user_count(&self, channel: &str) -> StoreResult<usize>;
    /// How many connections are in the channel (all users').
    async fn connection_count(&self, channel: &str) -> StoreResult<usize>;
    /// The channels with at least one member whose names start with `prefix`, sorted.
    async fn channels(&self, prefix: &str) -> StoreResult<Vec<String>>;
    /// Tells a store shared by several nodes that this node is alive.
    async fn heartbeat(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Removes the connections of nodes that died; returns `(channel, user)` for every user
    /// left with none, each to exactly one caller on one node.
    async fn sweep(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(Vec::new())
    }
}

struct Entry {
    info: String,
    conns: HashSet<ConnId>,
}

/// The channel presence of this process.
#[derive(Default)]
pub struct MemoryChannelPresence {
    channels: Mutex<HashMap<String, HashMap<String, Entry>>>,
}

impl MemoryChannelPresence {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Entry>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ChannelPresence for MemoryChannelPresence {
    async fn join(
        &self,
        channel: &str,
        user: &str,
        info: &str,
        conn: &ConnId,
        max_members: usize,
    ) -> StoreResult<Joined> {
        let mut channels = self.lock();
        let members = channels.entry(channel.to_owned()).or_default();
        if let Some(e) = members.get_mut(user) {
            e.conns.insert(conn.clone());
            return Ok(Joined::Again);
        }
        if members.len() >= max_members {
            if members.is_empty() {
                channels.remove(channel);
            }
            return Ok(Joined::Full);
        }
        members.insert(
            user.to_owned(),
            Entry {
                info: info.to_owned(),
                conns: HashSet::from([conn.clone()]),
            },
        );
        Ok(Joined::First)
    }

    async fn leave(&self, channel: &str, user: &str, conn: &ConnId) -> StoreResult<bool> {
        let mut channels = self.lock();
        let Some(members) = channels.get_mut(channel) else {
            return Ok(false);
        };
        let Some(e) = members.get_mut(user) else {
            return Ok(false);
        };
        if !e.conns.remove(conn) || !e.conns.is_empty() {
            return Ok(false);
        }
        members.remove(user);
        if members.is_empty() {
            channels.remove(channel);
        }
        Ok(true)
    }

    async fn members(&self, channel: &str) -> StoreResult<Vec<Member>> {
        let channels = self.lock();
        let mut out: Vec<Member> = channels
            .get(channel)
            .map(|m| {
                m.iter()
                    .map(|(u, e)| Member {
                        user_id: u.clone(),
                        info: e.info.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(out)
    }

    async fn user_count(&self, channel: &str) -> StoreResult<usize> {
        Ok(self.lock().get(channel).map_or(0, HashMap::len))
    }

    async fn connection_count(&self, channel: &str) -> StoreResult<usize> {
        Ok(self
            .lock()
            .get(channel)
            .map_or(0, |m| m.values().map(|e| e.conns.len()).sum()))
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
}
