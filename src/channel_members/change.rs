//! A change of a channel's presence set as it travels the hub: once, protocol-neutral, on the
//! channel's `ChannelPresence` topic, which only protocol front ends join. Each front end's
//! `deliver` shows it in its own protocol (Pusher `member_added` / `member_removed` on first
//! and last, Supabase `presence_diff` per connection, InsForge `presence:join` / `leave` on
//! first and last).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::ConnId;
use switchboard_handlers::core::topic::Topic;

use super::info::MemberInfo;

/// The hub event a change travels as. Its `presence:` prefix is a protocol event's, so no
/// client can publish one anywhere.
pub const EVENT: &str = "presence:change";

/// One connection joining or leaving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub key: String,
    /// The connection as the set knows it (`<node>.<rest>`).
    pub conn: ConnId,
    pub info: MemberInfo,
    /// For a join: the key's first connection (the member appeared). For a leave: its last
    /// (the member is gone).
    pub edge: bool,
}

/// What one operation did: a re-track is a leave and a join at once, so nobody sees the
/// member drop out between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PresenceChange {
    pub joins: Vec<Side>,
    pub leaves: Vec<Side>,
}

impl PresenceChange {
    pub fn join(side: Side) -> Self {
        PresenceChange {
            joins: vec![side],
            leaves: Vec::new(),
        }
    }

    pub fn leave(side: Side) -> Self {
        PresenceChange {
            joins: Vec::new(),
            leaves: vec![side],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// Read back from a hub payload; `None` for anything else.
    pub fn read(payload: &RawValue) -> Option<Self> {
        serde_json::from_str(payload.get()).ok()
    }
}

/// The topic a channel's presence changes travel on.
pub fn topic(project: &ProjectId, name: &str) -> Topic {
    Topic::ChannelPresence(project.clone(), name.to_owned())
}

/// Sends `change` to every protocol's subscribers of the channel on every node; `except` is a
/// connection that must not hear it (one that sees the set in its join reply instead).
pub async fn publish(
    core: &Core,
    project: &ProjectId,
    name: &str,
    change: &PresenceChange,
    except: Option<&ConnId>,
) {
    if change.is_empty() {
        return;
    }
    let Ok(raw) = serde_json::value::to_raw_value(change) else {
        return;
    };
    if let Err(e) = core
        .fanout
        .publish_encoded(&[topic(project, name)], EVENT, &raw, except)
        .await
    {
        tracing::warn!(error = %e, "presence change not delivered everywhere");
    }
}
