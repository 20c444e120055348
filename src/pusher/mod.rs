//! The Pusher Channels front end (protocol 7, pusher-js 8.x and the Pusher server SDKs) over the
//! hub: WebSocket connections at `/app/{key}` and the signed HTTP API under `/apps/{id}`.
//! docs/protocols/pusher.md says what is served and how it differs from Pusher.
//!
//! Modules: `apps` (configured apps and their quotas), `channel` (names, kinds, hub rooms),
//! `wire` (frames), `sign` (channel and HTTP signatures), `front_end` (the hub's delivery to
//! Pusher connections), `connection` (one WebSocket's life), `subscriptions` (what a connection
//! may subscribe to and send), `http_api` (the REST API), `occupancy` (which channels have subscribers,
//! cluster-wide),
//! `webhooks` (channel, member and client events to the apps' URLs).
//!
//! Apps speak the Pusher dialect or the Apinator one (seed 002): the same protocol with
//! `realtime:` event names, header-signed HTTP and its own webhooks (`apps::Dialect`).

mod admin_api;
pub mod apps;
pub mod channel;
mod connection;
pub mod front_end;
mod http_api;
mod occupancy;
pub mod sign;
mod subscriptions;
mod webhooks;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};

use switchboard_handlers::core::Core;
use switchboard_handlers::core::channel_presence::{ChannelPresence, Swept};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::FrontEndId;
use switchboard_handlers::core::ids::ProjectId;

use apps::{AppRegistry, Apps};
use front_end::PusherFrontEnd;
use webhooks::Webhooks;

use crate::channel_members::ChannelMembers;
use crate::channel_members::change::PresenceChange;

/// What every Pusher route and connection shares.
#[derive(Clone)]
struct Pusher {
    core: Arc<Core>,
    front_end: Arc<PusherFrontEnd>,
    id: FrontEndId,
    apps: Arc<AppRegistry>,
    /// The presence sets every protocol shares (`members.store()`), which also count each
    /// channel's subscriptions (`occupancy`).
    presence: Arc<dyn ChannelPresence>,
    webhooks: Arc<Webhooks>,
}
/// How often a node re-reads the apps stored in the database.
const APPS_RELOAD: Duration = Duration::from_secs(10);

/// Registers the front end in the hub and returns its routes and the handle that drains its
/// connections at shutdown. Presence channels are `members`' sets, shared with the other
/// protocols (and with every node when they are in Redis).
pub fn router(
    core: Arc<Core>,
    apps: Apps,
    loopback: bool,
    members: &ChannelMembers,
    ping_every: Duration,
) -> Result<(Router, Arc<PusherFrontEnd>), AppError> {
    let front_end = Arc::new(PusherFrontEnd::new(members.node()));
    let id = core.hub.register(front_end.clone())?;
    let webhooks = Webhooks::start(core.outbound.clone());
    let state = Pusher {
        core,
        front_end: front_end.clone(),
        id,
        apps: Arc::new(AppRegistry::new(apps, loopback)),
        presence: members.store().clone(),
        webhooks,
    };
    let hook = state.clone();
    members.on_sweep(Box::new(move |s| swept(&hook, s)));
    let hook = state.clone();
    members.on_change(Box::new(move |project, name, change| {
        member_webhooks(&hook, project, name, change);
    }));
    tokio::spawn(keep_apps(state.clone()));
    tokio::spawn(front_end.clone().run_ticks(ping_every));
    let router = Router::new()
        .route("/app/{key}", get(connection::upgrade))
        .route("/app", any(connection::bad_path))
        .route("/app/", any(connection::bad_path))
        .route("/app/{key}/{*rest}", any(connection::bad_path))
        .merge(http_api::routes())
        .merge(admin_api::routes())
        .with_state(state);
    Ok((router, front_end))
}

/// Re-reads the stored apps every [`APPS_RELOAD`], so an app created or deleted through any
/// node is served (or refused) by every node within that; ends when the server drains.
async fn keep_apps(st: Pusher) {
    let mut tick = tokio::time::interval(APPS_RELOAD);
    let mut draining = st.front_end.draining();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = draining.changed() => return,
        }
        reload_apps(&st).await;
    }
}

/// Makes the stored apps current on this node.
async fn reload_apps(st: &Pusher) {
    match st.core.store.list_apps().await {
        Ok(stored) => st.apps.set_stored(&stored),
        Err(e) => tracing::warn!(error = %e, "stored Pusher apps not re-read"),
    }
}

/// A connection of a dead node left a channel: `channel_vacated` for its last subscription.
/// (Members who left that way are told through the shared set, [`member_webhooks`].)
fn swept(st: &Pusher, s: &Swept) {
    if let (true, Some(channel_room)) = (s.last, occupancy::room_of(&s.channel)) {
        announce_vacated(st, &s.channel, channel_room);
    }
}

/// `member_added` / `member_removed` webhooks for a presence channel's members that another
/// protocol added or removed on this node, or that left with a node that died. Which app such
/// a member came through is not known (none, or one whose node is gone): every app of the
/// project hears it.
fn member_webhooks(st: &Pusher, project: &ProjectId, name: &str, change: &PresenceChange) {
    if channel::kind_of(name) != Ok(channel::Kind::Presence) {
        return;
    }
    let room = channel::topic(project, name).room();
    for app in st.apps.current().iter().filter(|a| &a.project == project) {
        for s in change.leaves.iter().filter(|s| s.edge) {
            st.webhooks
                .member_removed(app, &st.presence, &room, name, &s.key);
        }
        for s in change.joins.iter().filter(|s| s.edge) {
            st.webhooks.member_added(app, name, &s.key);
        }
    }
}

/// The project and channel name of a channel room.
fn parse_room(room: &str) -> Option<(ProjectId, &str)> {
    let name = channel::name_of_room(room)?;
    let project = room
        .strip_prefix("channel:")
        .and_then(|r| r.strip_suffix(name))
        .and_then(|r| r.strip_suffix(':'))
        .and_then(|p| ProjectId::try_from(p).ok())?;
    Some((project, name))
}

/// `channel_vacated` for a channel whose last subscribers were on a node that died.
fn announce_vacated(st: &Pusher, key: &str, room: &str) {
    if let Some((project, name)) = parse_room(room) {
        occupancy::vacated(st, &project, key, name);
    }
}
