//! What each node reports about itself for the admin views (`GET /api/admin/nodes`,
//! `GET /api/projects/{p}/rooms`): its open connections per protocol and its rooms with their
//! member counts. With Redis every node writes its report every [`PERIOD`] into one hash,
//! `<REDIS_PREFIX>:admin:nodes`, so any node can answer for the cluster; a report older than
//! [`STALE`] is a node that stopped (it is removed when read).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use switchboard_handlers::core::hub::Hub;
use switchboard_handlers::core::time::Timestamp;

/// How often a node rewrites its report.
pub const PERIOD: Duration = Duration::from_secs(5);
/// A report this old belongs to a node that is gone.
pub const STALE: Duration = Duration::from_secs(15);
/// Rooms a node reports (its largest): bounds the report and so every read of the hash.
pub const MAX_REPORTED_ROOMS: usize = 1_000;

/// One node's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub node: String,
    pub at: Timestamp,
    pub started_at: Timestamp,
    /// Open connections per protocol (`socket.io`, `pusher`, …).
    pub connections: BTreeMap<String, usize>,
    /// How many rooms have members on the node.
    pub rooms: usize,
    /// Its largest rooms (at most [`MAX_REPORTED_ROOMS`]) and their member counts here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub room_members: BTreeMap<String, usize>,
}

/// This node's identity and where the reports live.
pub struct NodeStats {
    pub node: String,
    started_at: Timestamp,
    hub: Arc<Hub>,
    redis: Option<(crate::redis::Client, String)>,
}

impl NodeStats {
    pub fn new(hub: Arc<Hub>, redis: Option<(crate::redis::Client, &str)>) -> Arc<Self> {
        Arc::new(NodeStats {
            node: format!("{:08x}", rand::random::<u32>()),
            started_at: Timestamp::now(),
            hub,
            redis: redis.map(|(c, prefix)| (c, format!("{prefix}:admin:nodes"))),
        })
    }

    /// This node's report, now.
    pub fn report(&self) -> NodeReport {
        let mut connections = BTreeMap::new();
        for (protocol, n) in self.hub.connections_by_protocol() {
            *connections.entry(protocol.to_owned()).or_insert(0) += n;
        }
        let mut rooms = self.hub.rooms();
        let total = rooms.len();
        if rooms.len() > MAX_REPORTED_ROOMS {
            rooms.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            rooms.truncate(MAX_REPORTED_ROOMS);
        }
        NodeReport {
            node: self.node.clone(),
            at: Timestamp::now(),
            started_at: self.started_at,
            connections,
            rooms: total,
            room_members: rooms.into_iter().collect(),
        }
    }

    /// Writes this node's report every [`PERIOD`] (with Redis; without, there is nothing to
    /// share).
    pub fn spawn_publisher(self: &Arc<Self>) {
        if self.redis.is_none() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.publish().await {
                    tracing::debug!(error = %e, "node report not written");
                }
            }
        });
    }

    async fn publish(&self) -> anyhow::Result<()> {
        let Some((client, key)) = &self.redis else {
            return Ok(());
        };
        let json = serde_json::to_string(&self.report())?;
        let _: i64 = client
            .query(::redis::cmd("HSET").arg(key).arg(&self.node).arg(json))
            .await?;
        Ok(())
    }

    /// Every live node's report, this one's fresh; without Redis (or when Redis does not
    /// answer) this node's only, and `false` for "the cluster's view".
    pub async fn cluster(&self) -> (Vec<NodeReport>, bool) {
        let mine = self.report();
        let Some((client, key)) = &self.redis else {
            return (vec![mine], false);
        };
        let all: Vec<(String, String)> = match client.query(::redis::cmd("HGETALL").arg(key)).await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "node reports not read");
                return (vec![mine], false);
            }
        };
        let now = Timestamp::now();
        let mut stale = Vec::new();
        let mut reports = vec![mine];
        for (node, json) in all {
            if node == self.node {
                continue;
            }
            match serde_json::from_str::<NodeReport>(&json) {
                Ok(r) if now.millis() - r.at.millis() <= STALE.as_millis() as i64 => {
                    reports.push(r)
                }
                _ => stale.push(node),
            }
        }
        if !stale.is_empty() {
            let mut cmd = ::redis::cmd("HDEL");
            cmd.arg(key);
            for n in &stale {
                cmd.arg(n);
            }
            let _: Result<i64, _> = client.query(&cmd).await;
        }
        reports.sort_by(|a, b| a.node.cmp(&b.node));
        (reports, true)
    }
}
