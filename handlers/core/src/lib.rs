//! The transport-agnostic core: entities, ports, authorization, use cases, sessions and topics.
//! It is its own crate with no socketioxide (or any transport) in its dependencies, so the
//! compiler keeps protocol details out of it and every protocol front end reuses all of it.

pub mod access;
pub mod calls;
pub mod channel_presence;
pub mod chat;
pub mod custom;
pub mod data;
pub mod emit;
pub mod error;
pub mod events;
pub mod hub;
pub mod ids;
pub mod integration;
pub mod integration_gate;
pub mod integration_registry;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod payloads;
pub mod ports;
pub mod presence;
pub mod project;
pub mod query;
pub mod realtime_channels;
pub mod session;
#[cfg(test)]
pub mod test_doubles;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod topic;
pub mod wallet;

use std::sync::Arc;

use ports::{Authenticator, Fanout, Store};

/// Limits from the configuration that the core and front ends enforce.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    /// How long an unanswered call rings (contract: 45 s).
    pub call_ring_timeout: std::time::Duration,
    /// How often a node refreshes its presence entries, and how long an entry lives without.
    pub presence_heartbeat: std::time::Duration,
    pub presence_ttl: std::time::Duration,
    /// Rooms one socket may be in (its own user room included).
    pub max_rooms_per_socket: usize,
    /// Sockets one user may hold across the cluster.
    pub max_sockets_per_user: usize,
    /// How far a webhook's signed `X-Signature-Timestamp` may be from now, either side.
    pub webhook_tolerance: std::time::Duration,
    /// How long webhook events (and so their replay keys) are kept.
    pub webhook_retention: std::time::Duration,
    /// Largest webhook body, and the per-integration-URL request rate (per node).
    pub webhook_max_bytes: usize,
    pub webhook_rate_per_sec: u32,
    pub webhook_rate_burst: u32,
    /// Per integration on this node: calls in flight, and calls started per second.
    pub integration_max_concurrent: usize,
    pub integration_rate_per_sec: u32,
    /// Bytes per second (and burst) one socket may send in events relayed to other sockets.
    pub relay_bytes_per_sec: usize,
    pub relay_bytes_burst: usize,
    /// What one client filter (live query, REST `filter=`) may cost.
    pub filter: query::FilterBudget,
    /// How long one document find (a REST listing, a live query's initial result) may run.
    pub query_max_time: std::time::Duration,
    /// Collections (created by their first document) one project may hold.
    pub max_collections_per_project: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 256 * 1024,
            rate_per_sec: 100,
            rate_burst: 200,
            call_ring_timeout: calls::MISSED_AFTER,
            presence_heartbeat: presence::DEFAULT_HEARTBEAT,
            presence_ttl: presence::DEFAULT_TTL,
            max_rooms_per_socket: 500,
            max_sockets_per_user: 50,
            webhook_tolerance: std::time::Duration::from_secs(300),
            webhook_retention: std::time::Duration::from_secs(7 * 86_400),
            webhook_max_bytes: 256 * 1024,
            webhook_rate_per_sec: 50,
            webhook_rate_burst: 100,
            integration_max_concurrent: 16,
            integration_rate_per_sec: 50,
            relay_bytes_per_sec: 1024 * 1024,
            relay_bytes_burst: 4 * 1024 * 1024,
            filter: query::FilterBudget::default(),
            query_max_time: std::time::Duration::from_millis(5000),
            max_collections_per_project: 100,
        }
    }
}

/// Everything a use case needs, built once at start-up by the composition root.
pub struct Core {
    pub store: Arc<dyn Store>,
    pub auth: Arc<dyn Authenticator>,
    /// Where use cases publish: the hub in a server (test doubles in unit tests).
    pub fanout: Arc<dyn Fanout>,
    /// This node's connections of every front end and the rooms they are in.
    pub hub: Arc<hub::Hub>,
    pub metrics: Arc<metrics::Metrics>,
    pub limits: Limits,
    pub typing: chat::TypingTimers,
    /// This node's data subscriptions (collection, document, live query).
    pub live: Arc<data::live::LiveData>,
    /// Where this node's own document writes are announced (see `ports::ChangePublisher`).
    pub changes: Arc<dyn ports::ChangePublisher>,
    /// Cluster-wide presence (Redis) or this process's (no Redis).
    pub presence: Arc<dyn ports::PresenceStore>,
    /// This node's user connections, refreshed in `presence` every heartbeat.
    pub local_conns: presence::LocalConns,
    /// Integrations' HTTP client.
    pub outbound: Arc<dyn ports::Outbound>,
    /// Admission of integration calls per integration (see `integration_gate`).
    pub integration_calls: integration_gate::CallGate,
}
