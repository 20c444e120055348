//! Channel presence in Redis, shared by every node and every protocol: per channel a hash of
//! connections (conn → key), of connection counts per key, of member infos (the key's first
//! connection's) and of connection infos, and a set of the channels with members. Join, leave
//! and sweep are Lua scripts, so "first connection" and "last connection" are decided once for
//! the cluster. Connection ids start with their node's number; each node keeps a liveness key
//! alive, and a node's connections are swept when its key expires (the node died without
//! leaving).

use std::collections::HashMap;
use std::time::Duration;

use ::redis::{RedisError, Script, cmd};
use async_trait::async_trait;

use switchboard_handlers::core::channel_presence::{
    ChannelPresence, Entry, Joined, Member, Swept, sort_entries,
};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ports::{ConnId, StoreResult};

use crate::redis::Client;

/// How long a node's liveness key lives without a heartbeat.
pub const NODE_TTL: Duration = Duration::from_secs(30);

struct Scripts {
    join: Script,
    leave: Script,
    sweep: Script,
}

pub struct RedisChannelPresence {
    client: Client,
    scripts: Scripts,
    prefix: String,
    node: u32,
}

fn err(e: RedisError) -> AppError {
    AppError::unavailable("redis", e)
}

impl RedisChannelPresence {
    pub fn new(client: Client, prefix: &str, node: u32) -> Self {
        RedisChannelPresence {
            client,
            scripts: Scripts {
                join: Script::new(include_str!("../lua/channel_presence_join.lua")),
                leave: Script::new(include_str!("../lua/channel_presence_leave.lua")),
                sweep: Script::new(include_str!("../lua/channel_presence_sweep.lua")),
            },
            prefix: format!("{prefix}:pchan:"),
            node,
        }
    }

    fn keys(&self, room: &str) -> [String; 5] {
        [
            format!("{}c:{room}", self.prefix),
            format!("{}n:{room}", self.prefix),
            format!("{}i:{room}", self.prefix),
            self.rooms(),
            format!("{}ci:{room}", self.prefix),
        ]
    }

    fn rooms(&self) -> String {
        format!("{}rooms", self.prefix)
    }

    fn nodes_prefix(&self) -> String {
        format!("{}node:", self.prefix)
    }
}

#[async_trait]
impl ChannelPresence for RedisChannelPresence {
    async fn join(
        &self,
        channel: &str,
        user: &str,
        info: &str,
        conn: &ConnId,
        max_members: usize,
    ) -> StoreResult<Joined> {
        let mut inv = self.scripts.join.prepare_invoke();
        for k in self.keys(channel) {
            inv.key(k);
        }
        inv.arg(conn)
            .arg(user)
            .arg(info)
            .arg(max_members)
            .arg(channel);
        let r: i64 = self.client.invoke(&inv).await.map_err(err)?;
        Ok(match r {
            0 => Joined::First,
            2 => Joined::Full,
            _ => Joined::Again,
        })
    }

    async fn leave(&self, channel: &str, _user: &str, conn: &ConnId) -> StoreResult<bool> {
        let mut inv = self.scripts.leave.prepare_invoke();
        for k in self.keys(channel) {
            inv.key(k);
        }
        inv.arg(conn).arg(channel);
        let r: i64 = self.client.invoke(&inv).await.map_err(err)?;
        Ok(r == 1)
    }

    async fn members(&self, channel: &str) -> StoreResult<Vec<Member>> {
        let [_, _, infos, _, _] = self.keys(channel);
        let all: HashMap<String, String> = self
            .client
            .query(cmd("HGETALL").arg(infos))
            .await
            .map_err(err)?;
        let mut out: Vec<Member> = all
            .into_iter()
            .map(|(user_id, info)| Member { user_id, info })
            .collect();
        out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(out)
    }

    async fn entries(&self, channel: &str) -> StoreResult<Vec<Entry>> {
        let [conns, _, _, _, infos] = self.keys(channel);
        let keys: HashMap<String, String> = self
            .client
            .query(cmd("HGETALL").arg(conns))
            .await
            .map_err(err)?;
        let mut infos: HashMap<String, String> = self
            .client
            .query(cmd("HGETALL").arg(infos))
            .await
            .map_err(err)?;
        // A connection that left between the two reads has no info any more: it is skipped.
        let mut out: Vec<Entry> = keys
            .into_iter()
            .filter_map(|(conn, key)| {
                let info = infos.remove(&conn)?;
                Some(Entry { key, conn, info })
            })
            .collect();
        sort_entries(&mut out);
        Ok(out)
    }

    async fn user_count(&self, channel: &str) -> StoreResult<usize> {
        let [_, counts, _, _, _] = self.keys(channel);
        self.client
            .query(cmd("HLEN").arg(counts))
            .await
            .map_err(err)
    }

    async fn connection_count(&self, channel: &str) -> StoreResult<usize> {
        let [conns, _, _, _, _] = self.keys(channel);
        self.client.query(cmd("HLEN").arg(conns)).await.map_err(err)
    }

    async fn channels(&self, prefix: &str) -> StoreResult<Vec<String>> {
        // The set holds only channels with members, so it stays as small as what is in use.
        let all: Vec<String> = self
            .client
            .query(cmd("SMEMBERS").arg(self.rooms()))
            .await
            .map_err(err)?;
        let mut out: Vec<String> = all.into_iter().filter(|c| c.starts_with(prefix)).collect();
        out.sort();
        Ok(out)
    }

    async fn heartbeat(&self) -> StoreResult<()> {
        let ttl = u64::try_from(NODE_TTL.as_millis()).unwrap_or(u64::MAX);
        self.client
            .query::<()>(
                cmd("SET")
                    .arg(format!("{}{}", self.nodes_prefix(), self.node))
                    .arg(1)
                    .arg("PX")
                    .arg(ttl),
            )
            .await
            .map_err(err)
    }

    async fn sweep(&self) -> StoreResult<Vec<Swept>> {
        let rooms: Vec<String> = self
            .client
            .query(cmd("SMEMBERS").arg(self.rooms()))
            .await
            .map_err(err)?;
        let mut gone = Vec::new();
        for room in rooms {
            let mut inv = self.scripts.sweep.prepare_invoke();
            for k in self.keys(&room) {
                inv.key(k);
            }
            inv.arg(&room).arg(self.nodes_prefix());
            let flat: Vec<String> = self.client.invoke(&inv).await.map_err(err)?;
            for c in flat.chunks_exact(4) {
                if let [conn, key, info, last] = c {
                    gone.push(Swept {
                        channel: room.clone(),
                        key: key.clone(),
                        conn: conn.clone(),
                        info: info.clone(),
                        last: last == "1",
                    });
                }
            }
        }
        Ok(gone)
    }
}
