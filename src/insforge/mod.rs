//! InsForge-compatible realtime (`@insforge/sdk` 1.5.x, seed 000) over the hub: the Socket.IO
//! namespace `/insforge` (apps set the SDK's `baseUrl` to `https://host/insforge?project=<id>`),
//! channel definitions and message history under `/api/realtime/`, and webhooks.
//! docs/protocols/insforge.md has the decisions and what differs from upstream.
//!
//! Modules: `auth` (who a connection is and its project), `connection` (a socket's events),
//! `order` (one socket's events in arrival order), `presence` (channel membership and
//! presence events), `definitions` (which channels the
//! definitions admit, cached), `front_end` (the hub's delivery to the namespace), `wire` (what
//! clients see), `rest` (the admin API), `webhooks` (each message to its channel's URLs).

pub mod auth;
mod connection;
mod definitions;
pub mod front_end;
mod order;
mod presence;
mod rest;
mod webhooks;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::channel_presence::ChannelPresence;
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::FrontEndId;
use switchboard_handlers::core::realtime_channels::{RealtimeStore, StoredMessage};
use switchboard_handlers::core::time::Timestamp;
use switchboard_handlers::core::topic::Topic;

use auth::AnonKeys;
use definitions::Definitions;
use front_end::InsforgeFrontEnd;
use webhooks::Webhooks;

use crate::channel_members::ChannelMembers;

/// The namespace InsForge clients connect to.
pub const NAMESPACE: &str = "/insforge";
/// How often a node purges messages past their retention.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// What every `/insforge` socket and REST route shares.
pub struct Insforge {
    core: Arc<Core>,
    id: FrontEndId,
    definitions: Arc<Definitions>,
    /// The channels' presence sets, shared with the other protocols (`members.store()`).
    presence: Arc<dyn ChannelPresence>,
    members: Arc<ChannelMembers>,
    anon_keys: AnonKeys,
    /// The process's number in the presence sets, the first part of each socket's presence
    /// connection id.
    node: u32,
    webhooks: Arc<Webhooks>,
}

impl Insforge {
    /// Registers the front end of `io`'s `/insforge` namespace in the hub. Presence is
    /// `members`' (each channel's set, shared with the other protocols and, with Redis, every
    /// node).
    pub fn setup<A: Adapter>(
        core: Arc<Core>,
        io: SocketIo<A>,
        store: Arc<dyn RealtimeStore>,
        anon_keys: AnonKeys,
        members: &Arc<ChannelMembers>,
    ) -> Result<Arc<Self>, AppError> {
        let definitions = Arc::new(Definitions::new(store));
        let id = core
            .hub
            .register(Arc::new(InsforgeFrontEnd::new(io, definitions.clone())))?;
        let node = members.node();
        let presence = members.store().clone();
        let webhooks = Webhooks::start(core.outbound.clone(), definitions.store.clone());
        Ok(Arc::new(Insforge {
            core,
            id,
            definitions,
            presence,
            members: members.clone(),
            anon_keys,
            node,
            webhooks,
        }))
    }

    /// The namespace's connect middleware on `io`.
    pub fn namespace<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
        self: &Arc<Self>,
        io: &SocketIo<A>,
    ) -> A::InitRes {
        let st = self.clone();
        let middleware = move |s: SocketRef<A>, TryData(raw): TryData<Value>| {
            let st = st.clone();
            async move { connection::connect(st, s, raw).await }
        };
        io.ns(NAMESPACE, (async || {}).with(middleware))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        rest::routes(self.clone())
    }

    /// A stored message to every subscriber of its channel (the publisher included) and to
    /// its channel's webhooks.
    async fn deliver(&self, message: &StoredMessage, webhook_urls: &[String], now: Timestamp) {
        let payload = connection::delivered_form(message, now);
        let topic = Topic::Channel(message.project.clone(), message.channel_name.clone());
        if let Err(e) = self
            .core
            .fanout
            .publish(&[topic], &message.event_name, &payload, None)
            .await
        {
            tracing::warn!(error = %e, "insforge message not delivered to every node");
        }
        if !webhook_urls.is_empty() {
            self.webhooks.queue(message, webhook_urls);
        }
    }

    /// Retention; ends when the task is aborted with the server's other background tasks.
    pub async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            match self
                .definitions
                .store
                .purge_expired(Timestamp::now().millis())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "insforge messages past retention removed"),
                Err(e) => tracing::warn!(error = %e, "insforge retention purge failed"),
            }
        }
    }
}
