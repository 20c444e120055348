//! The composition root: picks the embedded store or MongoDB, the local adapter or Redis (decided
//! and logged once here), seeds, builds the core, registers the Socket.IO handlers and mounts the
//! HTTP routes. `serve` runs it on a bound listener until the shutdown future resolves.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, LocalAdapter};
use tokio::net::TcpListener;

use switchboard_handlers::core::data::live::{DeliverLocally, LiveData, PublishNothing};
use switchboard_handlers::core::hub::Hub;
use switchboard_handlers::core::hub::remote::{RemoteHealth, RemoteRooms};
use switchboard_handlers::core::memory::{MemoryPresence, MemoryStore};
use switchboard_handlers::core::metrics::Metrics;
use switchboard_handlers::core::ports::{ChangePublisher, PresenceStore, Store};
use switchboard_handlers::core::realtime_channels::{MemoryRealtimeStore, RealtimeStore};
use switchboard_handlers::core::{Core, Limits};
use switchboard_handlers::socketio::front_end::SocketIoFrontEnd;
use switchboard_handlers::socketio::limits::RefusalLog;

use crate::auth::JwtAuthenticator;
use crate::channel_members::ChannelMembers;
use crate::config::{Config, StoreKind};
use crate::connections::{AcceptBackoff, CloseConnection, ConnectionLimits, Gate, first_byte};
use crate::embedded::EmbeddedStore;
use crate::http::{self, AppState};
use crate::insforge::Insforge;
use crate::insforge::auth::AnonKeys;
use crate::mongo::{ChangeFeed, MongoStore};
use crate::presence::RedisPresence;
use crate::{bus, handshake, redis, room_bus, seed};

type CloseFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

pub struct App {
    pub router: Router,
    /// Where the data is (printed at start).
    pub data: String,
    /// Closed cleanly once the server has drained.
    embedded: Option<EmbeddedStore>,
    /// Disconnects every socket (they reconnect elsewhere) and closes the adapter.
    close_sockets: CloseFn,
    pub core: Arc<Core>,
    /// Consumed by `serve`, which runs it for as long as it serves.
    feed: Option<ChangeFeed>,
    /// The accept loop's connection caps and timeouts.
    connections: Arc<Gate>,
    /// Its housekeeping runs with the other background tasks.
    insforge: Arc<Insforge>,
    /// The protocol channels' presence sets; their sweep runs with the background tasks.
    channel_members: Arc<ChannelMembers>,
}

/// How long in-flight work may take after SIGTERM before the process exits anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);
/// How long shutdown waits for queued room broadcasts to reach Redis (within `DRAIN_TIMEOUT`).
const BUS_FLUSH_WAIT: Duration = Duration::from_secs(2);

pub async fn connect_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(connect_stores(config).await?.store)
}

/// The configured store behind both ports, with the concrete handle of MongoDB (its change
/// feed) or of the embedded store (closed at shutdown; export reads it).
pub struct Stores {
    pub store: Arc<dyn Store>,
    pub realtime: Arc<dyn RealtimeStore>,
    pub mongo: Option<MongoStore>,
    pub embedded: Option<EmbeddedStore>,
}

impl Stores {
    /// Where the data is, for the start-up line.
    pub fn describe(&self) -> String {
        match (&self.embedded, &self.mongo) {
            (Some(e), _) => {
                let at = std::fs::canonicalize(e.file()).unwrap_or_else(|_| e.file().to_owned());
                format!("embedded store {} (DATA_DIR)", at.display())
            }
            (None, Some(m)) => format!("MongoDB database {}", m.database().name()),
            (None, None) => "in memory only (STORE=memory): gone when the process stops".to_owned(),
        }
    }
}

pub async fn connect_stores(config: &Config) -> anyhow::Result<Stores> {
    Ok(match config.store_kind() {
        StoreKind::Mongo => {
            let uri = config
                .mongodb_uri
                .as_deref()
                .ok_or(crate::config::ConfigError::StoreWithoutMongo)?;
            let s = MongoStore::connect(uri, &config.mongodb_db).await?;
            tracing::info!(db = %config.mongodb_db, "store: MongoDB");
            Stores {
                store: Arc::new(s.clone()),
                realtime: Arc::new(s.clone()),
                mongo: Some(s),
                embedded: None,
            }
        }
        StoreKind::Embedded => {
            let dir = Path::new(&config.data_dir);
            // Opening reads the file; keep the runtime's threads free meanwhile.
            let owned = dir.to_owned();
            let s = tokio::task::spawn_blocking(move || EmbeddedStore::open(&owned))
                .await
                .map_err(|e| anyhow::anyhow!("opening the embedded store failed: {e}"))??;
            tracing::info!(file = %s.file().display(), "store: embedded (DATA_DIR)");
            if config.redis_url.is_some() {
                tracing::warn!(
                    "the embedded store belongs to this node alone: with REDIS_URL, nodes do not \
                     share chats, messages or documents; set MONGODB_URI for a cluster"
                );
            }
            Stores {
                store: Arc::new(s.clone()),
                realtime: Arc::new(s.clone()),
                mongo: None,
                embedded: Some(s),
            }
        }
        StoreKind::Memory => {
            tracing::info!("store: in memory (STORE=memory; data lasts as long as the process)");
            Stores {
                store: Arc::new(MemoryStore::new()),
                realtime: Arc::new(MemoryRealtimeStore::default()),
                mongo: None,
                embedded: None,
            }
        }
    })
}

/// Where document changes come from: a change stream when MongoDB has them, else this cluster's
/// own writes. Decided once at start and logged.
async fn open_change_feed(config: &Config, mongo: Option<&MongoStore>) -> Option<ChangeFeed> {
    let mongo = mongo?;
    if !config.change_streams {
        tracing::info!("document changes: this cluster's own writes only (CHANGE_STREAMS=false)");
        return None;
    }
    match mongo.open_change_feed().await {
        Ok(feed) => {
            tracing::info!("document changes: MongoDB change stream (any writer, every node)");
            Some(feed)
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "MongoDB cannot open a change stream (is it a replica set?); falling back to \
                 publishing this cluster's own writes: writes by other database clients are not \
                 delivered"
            );
            None
        }
    }
}

pub async fn build(config: &Config) -> anyhow::Result<App> {
    config.validate()?;
    if config.uses_dev_secret() {
        tracing::warn!(
            "JWT_SECRET is unset: using the fixed DEV secret. Never do this in production."
        );
    }
    let stores = connect_stores(config).await?;
    let data = stores.describe();
    let Stores {
        store,
        realtime,
        mongo,
        embedded,
    } = stores;
    if config.seed_demo() && store.is_empty().await? {
        let r = seed::load(store.as_ref(), Path::new(&config.seeds_dir)).await?;
        tracing::info!(
            projects = r.projects,
            messages = r.messages,
            documents = r.documents,
            "demo seed loaded"
        );
    }
    let feed = open_change_feed(config, mongo.as_ref()).await;
    let parts = Parts {
        has_feed: feed.is_some(),
        remote: Arc::default(),
        hub: Arc::new(Hub::new(config.max_rooms_per_socket)),
        store,
        metrics: Arc::new(Metrics::default()),
        limits: Limits {
            max_event_bytes: config.max_event_bytes,
            rate_per_sec: config.rate_limit_per_sec,
            rate_burst: config.rate_limit_burst,
            call_ring_timeout: std::time::Duration::from_secs(config.call_ring_timeout_secs),
            presence_heartbeat: std::time::Duration::from_secs(config.presence_heartbeat_secs),
            presence_ttl: std::time::Duration::from_secs(config.presence_ttl_secs),
            max_rooms_per_socket: config.max_rooms_per_socket,
            max_sockets_per_user: config.max_sockets_per_user,
            webhook_tolerance: std::time::Duration::from_secs(config.webhook_tolerance_secs),
            webhook_retention: std::time::Duration::from_secs(
                config.webhook_retention_days.saturating_mul(86_400),
            ),
            webhook_max_bytes: config.webhook_max_bytes,
            webhook_rate_per_sec: config.webhook_rate_per_sec,
            webhook_rate_burst: config.webhook_rate_burst,
            integration_max_concurrent: config.integration_max_concurrent,
            integration_rate_per_sec: config.integration_rate_per_sec,
            relay_bytes_per_sec: config.relay_bytes_per_sec,
            relay_bytes_burst: config.relay_bytes_burst,
            filter: config.filter_budget(),
            query_max_time: std::time::Duration::from_millis(config.query_max_time_ms),
            max_collections_per_project: config.max_collections_per_project,
        },
        auth: Arc::new(JwtAuthenticator::with_policy(
            config.jwt_secret(),
            config.api_keys(),
            config.token_policy(),
        )),
        outbound: Arc::new(crate::outbound::HttpOutbound::new(
            config.integration_allow_private,
            std::time::Duration::from_millis(config.integration_timeout_ms.max(1)),
        )?),
    };
    if config.integration_allow_private {
        tracing::warn!(
            "INTEGRATION_ALLOW_PRIVATE=true: integrations may call loopback and private addresses"
        );
    }
    let builder = SocketIo::builder()
        .max_payload(config.max_frame_bytes as u64)
        .ws_max_message_size(config.max_frame_bytes)
        .ws_max_frame_size(config.max_frame_bytes)
        // Room broadcasts can burst; the default of 128 queued packets drops events too early.
        .max_buffer_size(1024)
        // Engine default 4 KiB per connection, allocated up front; frames larger than the
        // buffer are read in several steps, so this trades a little CPU on big frames for
        // memory on every idle connection (docs/performance.md).
        .ws_read_buffer_size(1024)
        .ping_interval(Duration::from_millis(config.ping_interval_ms.max(1)))
        .ping_timeout(Duration::from_millis(config.ping_timeout_ms.max(1)));
    let anon_keys = AnonKeys::new(config.insforge_anon_keys()?);
    let mut app = match &config.redis_url {
        Some(url) => {
            let r = redis::connect(url, &config.redis_prefix).await?;
            let (layer, io) = builder.with_adapter::<redis::Adapter>(r.ctr).build_layer();
            let live = parts.live();
            let changes: Arc<dyn ChangePublisher> = if parts.has_feed {
                Arc::new(PublishNothing)
            } else {
                Arc::new(
                    bus::redis_changes(url, &config.redis_prefix, r.client.clone(), live.clone())
                        .await?,
                )
            };
            let presence = Arc::new(RedisPresence::new(
                r.client.clone(),
                &config.redis_prefix,
                parts.limits.presence_ttl,
            ));
            let bus = if config.room_bus {
                Some(
                    room_bus::start(
                        url,
                        &config.redis_prefix,
                        r.client.clone(),
                        parts.hub.clone(),
                        parts.remote.clone(),
                        parts.metrics.clone(),
                    )
                    .await?,
                )
            } else {
                None
            };
            let core = parts.core(live, changes, presence);
            let front_end =
                SocketIoFrontEnd::new(io.clone(), parts.metrics.clone(), parts.remote.clone());
            let front_end = match &bus {
                Some(bus) => {
                    parts.hub.set_remote(bus.clone() as Arc<dyn RemoteRooms>);
                    front_end
                }
                None => front_end.via_adapter(),
            };
            let front_end = parts.hub.register(Arc::new(front_end))?;
            switchboard_handlers::register(&io, core.clone(), front_end)
                .await
                .map_err(|e| anyhow::anyhow!("registering the namespace on Redis failed: {e}"))?;
            let members = ChannelMembers::new(Some((r.client.clone(), &config.redis_prefix)));
            let insforge = Insforge::setup(
                core.clone(),
                io.clone(),
                realtime.clone(),
                anon_keys.clone(),
                &members,
            )?;
            insforge.namespace(&io).await.map_err(|e| {
                anyhow::anyhow!("registering the /insforge namespace on Redis failed: {e}")
            })?;
            if let Some(admin) = admin_ui(config, &io, &core, Some(&r.client))? {
                admin.namespace().await.map_err(|e| {
                    anyhow::anyhow!("registering the /admin namespace on Redis failed: {e}")
                })?;
            }
            redis::spawn_health_watch(&r.driver, parts.remote.clone());
            tracing::info!(prefix = %config.redis_prefix, room_bus = config.room_bus, "adapter: Redis (rooms span every node)");
            finish(
                config,
                layer,
                io,
                core,
                Some(r.client),
                feed,
                bus,
                (insforge, members),
            )?
        }
        None => {
            let (layer, io) = builder.build_layer();
            let live = parts.live();
            let changes: Arc<dyn ChangePublisher> = if parts.has_feed {
                Arc::new(PublishNothing)
            } else {
                Arc::new(DeliverLocally(live.clone()))
            };
            let presence = Arc::new(MemoryPresence::new(parts.limits.presence_ttl));
            let core = parts.core(live, changes, presence);
            let front_end =
                SocketIoFrontEnd::new(io.clone(), parts.metrics.clone(), parts.remote.clone());
            let front_end = parts.hub.register(Arc::new(front_end))?;
            let () = switchboard_handlers::register::<LocalAdapter>(&io, core.clone(), front_end);
            let members = ChannelMembers::new(None);
            let insforge = Insforge::setup(
                core.clone(),
                io.clone(),
                realtime.clone(),
                anon_keys.clone(),
                &members,
            )?;
            let () = insforge.namespace(&io);
            if let Some(admin) = admin_ui(config, &io, &core, None)? {
                let () = admin.namespace();
            }
            tracing::info!("adapter: local (REDIS_URL unset; single node)");
            finish(
                config,
                layer,
                io,
                core,
                None,
                feed,
                None,
                (insforge, members),
            )?
        }
    };
    app.data = data;
    app.embedded = embedded;
    Ok(app)
}

/// The Socket.IO Admin UI's server side when `ADMIN_UI_USERNAME` is set (docs/console.md).
fn admin_ui<A: Adapter>(
    config: &Config,
    io: &SocketIo<A>,
    core: &Arc<Core>,
    redis: Option<&redis::Client>,
) -> anyhow::Result<Option<Arc<crate::admin_ui::AdminUi<A>>>> {
    let Some((username, password_hash)) = config.admin_ui()? else {
        return Ok(None);
    };
    let settings = crate::admin_ui::Settings {
        credentials: crate::admin_ui::Credentials {
            username,
            password_hash,
        },
        readonly: config.admin_ui_readonly,
        server_id: format!("{}#{}", crate::admin_ui::hostname(), std::process::id()),
        development: config.admin_ui_mode == crate::config::AdminUiMode::Development,
    };
    tracing::info!(
        readonly = config.admin_ui_readonly,
        development = settings.development,
        "Socket.IO Admin UI protocol on /admin"
    );
    Ok(Some(crate::admin_ui::AdminUi::setup(
        settings,
        io.clone(),
        core.hub.clone(),
        redis.map(|c| (c.clone(), config.redis_prefix.as_str())),
    )))
}

struct Parts {
    has_feed: bool,
    remote: Arc<RemoteHealth>,
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    limits: Limits,
    auth: Arc<JwtAuthenticator>,
    outbound: Arc<dyn switchboard_handlers::core::ports::Outbound>,
}

impl Parts {
    /// Per-connection deliveries (live data) go through the hub to the connection's front end.
    fn live(&self) -> Arc<LiveData> {
        Arc::new(LiveData::new(self.hub.clone()))
    }

    fn core(
        &self,
        live: Arc<LiveData>,
        changes: Arc<dyn ChangePublisher>,
        presence: Arc<dyn PresenceStore>,
    ) -> Arc<Core> {
        Arc::new(Core {
            live,
            changes,
            presence,
            local_conns: Default::default(),
            store: self.store.clone(),
            auth: self.auth.clone(),
            fanout: self.hub.clone(),
            hub: self.hub.clone(),
            metrics: self.metrics.clone(),
            limits: self.limits.clone(),
            typing: Default::default(),
            outbound: self.outbound.clone(),
            integration_calls: Default::default(),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn finish<A: Adapter, L>(
    config: &Config,
    layer: L,
    io: SocketIo<A>,
    core: Arc<Core>,
    redis: Option<redis::Client>,
    feed: Option<ChangeFeed>,
    bus: Option<Arc<room_bus::RedisRooms>>,
    (insforge, channel_members): (Arc<Insforge>, Arc<ChannelMembers>),
) -> anyhow::Result<App>
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Response:
        axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
{
    let pubsub_redis = redis.clone();
    let tail = Arc::new(crate::tail::Tail::default());
    tail.register(&core.hub)?;
    let nodes = crate::node_stats::NodeStats::new(
        core.hub.clone(),
        redis.clone().map(|c| (c, config.redis_prefix.as_str())),
    );
    nodes.spawn_publisher();
    let state = AppState {
        core: core.clone(),
        tail: tail.clone(),
        nodes,
        redis,
        started: Arc::new(AtomicBool::new(true)),
        metrics_token: config.metrics_token.as_deref().map(Arc::from),
    };
    state.started.store(true, Ordering::Release);
    // Inside the CORS and trace layers, which read the request's headers first.
    let (sb_anon, sb_service) = config.supabase_keys()?;
    let supabase_keys = crate::supabase::keys::ProjectKeys::new(sb_anon, sb_service);
    let mut router = http::router(state)
        .merge(crate::supabase::router(
            core.clone(),
            &channel_members,
            supabase_keys,
        )?)
        .merge(insforge.router());
    if config.raw_ws {
        router = router.merge(crate::raw_ws::router(core.clone())?);
        tracing::info!("raw JSON WebSocket front end at /raw-ws (RAW_WS=true)");
    }
    // Always served: apps may also be created at run time (`/api/pusher/apps`).
    let apps = config.pusher_apps()?;
    let n = apps.iter().count();
    let (routes, pusher) = crate::pusher::router(
        core.clone(),
        apps,
        config.binds_loopback(),
        &channel_members,
        std::time::Duration::from_secs(config.pusher_ping_secs),
    )?;
    router = router.merge(routes);
    tracing::info!(
        configured_apps = n,
        "Pusher front end at /app/{{key}} and /apps/{{id}}"
    );
    // Under `/{plateId}`: the fallback, so every fixed route above takes precedence.
    let (pubsub_routes, pubsub) = crate::pubsub::router(
        core.clone(),
        pubsub_redis.map(|c| (c, config.redis_prefix.as_str())),
    )?;
    let router = router.fallback_service(pubsub_routes);
    let router = router.layer(layer).layer(tower::util::MapRequestLayer::new(
        handshake::keep_socket_headers,
    ));
    let router = http::outer_layers(router, &config.cors_origins());
    Ok(App {
        router,
        data: String::new(),
        embedded: None,
        close_sockets: Box::new(move || {
            Box::pin(async move {
                // Pusher clients are told to reconnect (4200) alongside the Socket.IO ones.
                pusher.drain();
                // SSE streams never end by themselves; WebSockets get 1001.
                pubsub.drain();
                tail.drain();
                io.close().await;
                // The sockets' last broadcasts (presence going offline) are still queued.
                if let Some(bus) = bus {
                    bus.flush(BUS_FLUSH_WAIT).await;
                }
            })
        }),
        core,
        feed,
        insforge,
        channel_members,
        connections: Gate::new(ConnectionLimits {
            max_total: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms.max(1)),
        }),
    })
}

/// Cluster housekeeping every node runs while it serves; aborted when dropped.
struct BackgroundTasks(Vec<tokio::task::JoinHandle<()>>);

impl BackgroundTasks {
    fn start(
        core: &Arc<Core>,
        feed: Option<ChangeFeed>,
        insforge: Arc<Insforge>,
        channel_members: Arc<ChannelMembers>,
    ) -> Self {
        let mut tasks = vec![
            tokio::spawn(switchboard_handlers::core::calls::run_stale_call_sweeper(
                core.clone(),
            )),
            tokio::spawn(switchboard_handlers::core::presence::run_heartbeat(
                core.clone(),
            )),
            tokio::spawn(
                switchboard_handlers::core::integration::run_webhook_retention(core.clone()),
            ),
        ];
        tasks.push(tokio::spawn(insforge.housekeeping()));
        tasks.push(tokio::spawn(channel_members.run(core.clone())));
        if let Some(feed) = feed {
            tasks.push(tokio::spawn(feed.run(core.clone())));
        }
        Self(tasks)
    }
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Serves until `shutdown` resolves, then: stop accepting, disconnect every socket so clients
/// reconnect to another node, let in-flight requests finish, return within `DRAIN_TIMEOUT`.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let background = BackgroundTasks::start(&app.core, app.feed, app.insforge, app.channel_members);
    let embedded = app.embedded;
    let close_sockets = app.close_sockets;
    let router = app.router;
    let gate = app.connections;
    let metrics = app.core.metrics.clone();
    let header_timeout = gate.limits().header_read_timeout;
    let builder = Arc::new(connection_builder(header_timeout));
    // Every connection task holds a receiver: `stop` tells them to finish gracefully, and
    // `stop_tx.closed()` resolves once the last one has.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let accept = async {
        let mut backoff = AcceptBackoff::default();
        let mut refusals = RefusalLog::default();
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => {
                    backoff.succeeded();
                    accepted
                }
                Err(e) => {
                    // Out of file descriptors and the like: the error lasts until connections
                    // close (header-read timeouts close the stalled ones), so wait and keep
                    // serving those already open.
                    metrics.accept_failed();
                    let (wait, report) = backoff.failed(std::time::Instant::now());
                    if let Some(failures) = report {
                        tracing::warn!(error = %e, failures, "accept failed; backing off");
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let slot = match gate.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(why) => {
                    metrics.tcp_refused();
                    tracing::debug!(peer = %peer.ip(), ?why, "connection refused: over the cap");
                    if let Some(refused) = refusals.note(std::time::Instant::now()) {
                        tracing::warn!(peer = %peer.ip(), ?why, refused, "connections refused: over MAX_CONNECTIONS or MAX_CONNECTIONS_PER_IP; sampled");
                    }
                    drop(tcp);
                    continue;
                }
            };
            // Realtime traffic is many small frames: without TCP_NODELAY, Nagle's algorithm
            // and delayed ACKs held some of them for ~40 ms (measured: p99 44 ms at 5K msg/s).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            let close = CloseConnection::default();
            let svc = hyper_util::service::TowerToHyperService::new(
                tower::ServiceBuilder::new()
                    .map_request(handshake::detach_from_read_buffer)
                    .map_request({
                        let close = close.clone();
                        move |req| close.attach(req)
                    })
                    .service(router.clone()),
            );
            let builder = builder.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let _slot = slot;
                tokio::select! {
                    sent = first_byte(&tcp, header_timeout) => if !sent { return; },
                    _ = stop.changed() => return,
                }
                let conn =
                    builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tcp), svc);
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    // A handler gave up on the client (a pub/sub stream it stopped reading).
                    () = close.closed() => {}
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                drop(stop);
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = shutdown => {}
    }
    tracing::info!("shutting down: disconnecting sockets and draining");
    drop(background);
    drop(stop_rx);
    let drain = async {
        close_sockets().await;
        let _ = stop_tx.send(());
        stop_tx.closed().await;
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("drain timed out; exiting with connections still open");
    }
    // Parts of the server may hold the store until the process ends; its file must not wait.
    if let Some(store) = embedded {
        store.close();
    }
    Ok(())
}

/// HTTP/1 and HTTP/2 with upgrades. The HTTP/1 read buffer is capped at hyper's minimum
/// (8 KiB): the WebSocket handshake's buffer stays allocated for the socket's whole life, and
/// the default let it grow to 16 KiB (measured: −4.3 KB per idle connection).
///
/// The header-read timeout closes connections that trickle a request's headers, and keep-alive
/// connections idle between requests; it needs hyper's timer, without which it is silently off.
/// A request being answered (a long-poll) and an upgraded WebSocket are past it.
fn connection_builder(
    header_read_timeout: Duration,
) -> hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor> {
    let mut b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    b.http1()
        .max_buf_size(8192)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    b
}
