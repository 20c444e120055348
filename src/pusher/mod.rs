//! The Pusher Channels front end (protocol 7, pusher-js 8.x and the Pusher server SDKs) over the
//! hub: WebSocket connections at `/app/{key}` and the signed HTTP API under `/apps/{id}`.
//! docs/protocols/pusher.md says what is served and how it differs from Pusher.
//!
//! Modules: `apps` (configured apps and their quotas), `channel` (names, kinds, hub rooms),
//! `wire` (frames), `sign` (channel and HTTP signatures), `front_end` (the hub's delivery to
//! Pusher connections), `connection` (one WebSocket's life), `subscriptions` (what a connection
//! may subscribe to and send), `http_api` (the REST API), `redis_presence` (presence channel
//! membership shared by the nodes), `webhooks` (member and client events to the apps' URLs).

pub mod apps;
pub mod channel;
mod connection;
pub mod front_end;
mod http_api;
pub(crate) mod redis_presence;
pub mod sign;
mod subscriptions;
mod webhooks;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};

use switchboard_handlers::core::Core;
use switchboard_handlers::core::channel_presence::{ChannelPresence, MemoryChannelPresence};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::FrontEndId;
use switchboard_handlers::core::ids::ProjectId;

use apps::Apps;
use front_end::PusherFrontEnd;
use redis_presence::RedisChannelPresence;
use webhooks::Webhooks;

/// What every Pusher route and connection shares.
#[derive(Clone)]
struct Pusher {
    core: Arc<Core>,
    front_end: Arc<PusherFrontEnd>,
    id: FrontEndId,
    apps: Arc<Apps>,
    presence: Arc<dyn ChannelPresence>,
    webhooks: Arc<Webhooks>,
}

/// How often a node refreshes its liveness key and sweeps the members of dead nodes (with
/// Redis): a dead node's members leave within `NODE_TTL` plus this.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Registers the front end in the hub and returns its routes and the handle that drains its
/// connections at shutdown. With Redis (`redis`: the command client and the key prefix),
/// presence channels are shared by every node.
pub fn router(
    core: Arc<Core>,
    apps: Apps,
    redis: Option<(crate::redis::Client, &str)>,
) -> Result<(Router, Arc<PusherFrontEnd>), AppError> {
    let front_end = Arc::new(PusherFrontEnd::default());
    let id = core.hub.register(front_end.clone())?;
    let shared = redis.is_some();
    let presence: Arc<dyn ChannelPresence> = match redis {
        Some((client, prefix)) => {
            Arc::new(RedisChannelPresence::new(client, prefix, front_end.node()))
        }
        None => Arc::new(MemoryChannelPresence::default()),
    };
    let webhooks = Webhooks::start(core.outbound.clone());
    let state = Pusher {
        core,
        front_end: front_end.clone(),
        id,
        apps: Arc::new(apps),
        presence,
        webhooks,
    };
    if shared {
        tokio::spawn(keep_presence(state.clone()));
    }
    let router = Router::new()
        .route("/app/{key}", get(connection::upgrade))
        .route("/app", any(connection::bad_path))
        .route("/app/", any(connection::bad_path))
        .route("/app/{key}/{*rest}", any(connection::bad_path))
        .merge(http_api::routes())
        .with_state(state);
    Ok((router, front_end))
}

/// Keeps this node's liveness key fresh and sweeps the members of dead nodes, announcing each
/// user who left that way; ends when the server drains.
async fn keep_presence(st: Pusher) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    let mut draining = st.front_end.draining();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = draining.changed() => return,
        }
        if let Err(e) = st.presence.heartbeat().await {
            tracing::warn!(error = %e, "pusher presence heartbeat failed");
            continue;
        }
        match st.presence.sweep().await {
            Ok(gone) => {
                for (room, user) in gone {
                    announce_left(&st, &room, &user).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "pusher presence sweep failed"),
        }
    }
}

/// `member_removed` for a user whose connections were all on a node that died.
async fn announce_left(st: &Pusher, room: &str, user: &str) {
    let Some(name) = channel::name_of_room(room) else {
        return;
    };
    let project = room
        .strip_prefix("channel:")
        .and_then(|r| r.strip_suffix(name))
        .and_then(|r| r.strip_suffix(':'))
        .and_then(|p| ProjectId::try_from(p).ok());
    let Some(project) = project else {
        return;
    };
    subscriptions::publish_member(
        st,
        &channel::topic(&project, name),
        "pusher_internal:member_removed",
        wire::member_removed(user),
        None,
    )
    .await;
    // The node that held the user's connections is gone, and with it which app they came
    // through: every app of the project hears it.
    for app in st.apps.iter().filter(|a| a.project == project) {
        st.webhooks
            .member_removed(app, &st.presence, room, name, user);
    }
}
