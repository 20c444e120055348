//! One presence set per protocol channel, shared by every protocol: a Pusher `presence-`
//! channel, a Supabase Realtime channel and an InsForge channel of the same name in one project
//! are the hub topic `Channel(project, name)` and hold one set, keyed by that topic's room.
//! The store (the core's channel-presence port: in the process, or in Redis for the cluster)
//! is built once and handed to every front end; a member is a protocol-neutral key, each
//! connection keeps its own info (`info`), and changes travel once on the hub (`change`).
//!
//! Modules: `info` (the stored info and each protocol's view of it), `change` (the hub
//! event), `redis` (the Redis implementation of the port).

pub mod change;
pub mod info;
pub mod redis;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::channel_presence::{ChannelPresence, MemoryChannelPresence, Swept};
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::ConnId;
use switchboard_handlers::core::topic::Topic;

use change::{PresenceChange, Side};
use info::MemberInfo;

/// How often a node refreshes its liveness key and sweeps the connections of dead nodes (with
/// Redis): a dead node's members leave within `redis::NODE_TTL` plus this.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Told of every connection a sweep removed on this node (a front end's own bookkeeping:
/// Pusher's webhooks and channel occupancy).
pub type SweepHook = Box<dyn Fn(&Swept) + Send + Sync>;

/// Told, on the node that made it, of every change another protocol's front end publishes
/// (Pusher's member webhooks: the one node that knows of a change sends them).
pub type ChangeHook = Box<dyn Fn(&ProjectId, &str, &PresenceChange) + Send + Sync>;

pub struct ChannelMembers {
    store: Arc<dyn ChannelPresence>,
    /// This process's number, the first part of every connection id in the set: its liveness
    /// key keeps them from being swept.
    node: u32,
    shared: bool,
    hooks: Mutex<Vec<SweepHook>>,
    change_hooks: Mutex<Vec<ChangeHook>>,
}

impl ChannelMembers {
    /// The set of this process, or with Redis (`redis`: the command client and the key
    /// prefix) the cluster's.
    pub fn new(redis: Option<(crate::redis::Client, &str)>) -> Arc<Self> {
        let node: u32 = rand::random();
        let shared = redis.is_some();
        let store: Arc<dyn ChannelPresence> = match redis {
            Some((client, prefix)) => {
                Arc::new(redis::RedisChannelPresence::new(client, prefix, node))
            }
            None => Arc::new(MemoryChannelPresence::default()),
        };
        Arc::new(ChannelMembers {
            store,
            node,
            shared,
            hooks: Mutex::default(),
            change_hooks: Mutex::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn ChannelPresence> {
        &self.store
    }

    pub fn node(&self) -> u32 {
        self.node
    }

    /// The store's name of a channel: its hub room.
    pub fn channel(project: &ProjectId, name: &str) -> String {
        Topic::Channel(project.clone(), name.to_owned()).room()
    }

    /// Registers a front end's bookkeeping for swept connections.
    pub fn on_sweep(&self, hook: SweepHook) {
        self.hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Registers a front end's bookkeeping for changes the other protocols make on this node.
    pub fn on_change(&self, hook: ChangeHook) {
        self.change_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Sends a change made on this node to every protocol's subscribers (but `except`), and
    /// tells the hooks.
    pub async fn publish(
        &self,
        core: &Core,
        project: &ProjectId,
        name: &str,
        change: &PresenceChange,
        except: Option<&ConnId>,
    ) {
        for hook in self
            .change_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            hook(project, name, change);
        }
        change::publish(core, project, name, change, except).await;
    }

    /// Keeps this node's liveness key fresh and sweeps the connections of dead nodes,
    /// announcing each to every protocol; with one node there is nothing to do. Runs until
    /// aborted with the server's other background tasks.
    pub async fn run(self: Arc<Self>, core: Arc<Core>) {
        if !self.shared {
            return;
        }
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = self.store.heartbeat().await {
                tracing::warn!(error = %e, "channel presence heartbeat failed");
                continue;
            }
            match self.store.sweep().await {
                Ok(gone) => {
                    for s in &gone {
                        self.swept(&core, s).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "channel presence sweep failed"),
            }
        }
    }

    async fn swept(&self, core: &Core, s: &Swept) {
        for hook in self.hooks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            hook(s);
        }
        let Some((project, name)) = parse_channel(&s.channel) else {
            return;
        };
        let side = Side {
            key: s.key.clone(),
            conn: s.conn.clone(),
            info: MemberInfo::from_text(&s.info).unwrap_or_else(MemberInfo::unknown),
            edge: s.last,
        };
        self.publish(core, &project, name, &PresenceChange::leave(side), None)
            .await;
    }
}

/// The project and channel name of a store channel (a `channel:` room); `None` for the other
/// names in the store (Pusher's occupancy counters).
pub fn parse_channel(room: &str) -> Option<(ProjectId, &str)> {
    let (project, name) = room.strip_prefix("channel:")?.split_once(':')?;
    let project = project.replace("%3A", ":").replace("%25", "%");
    Some((ProjectId::try_from(project).ok()?, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_channels_are_hub_rooms_and_parse_back() {
        let p = ProjectId::try_from("a:b%").expect("id");
        let room = ChannelMembers::channel(&p, "c:d");
        assert_eq!(parse_channel(&room), Some((p, "c:d")));
        assert_eq!(parse_channel("occ:channel:x:y"), None);
    }
}
