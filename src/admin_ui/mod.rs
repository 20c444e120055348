//! The server side of the Socket.IO Admin UI (`@socket.io/admin-ui` 0.5) on the `/admin`
//! namespace (docs/console.md): basic auth from the configuration, `config`, `server_stats`
//! every two seconds with the aggregated events (`traffic`), in development mode `all_sockets`,
//! the socket and room events and every event a socket receives or is sent, and — unless
//! read-only — the `emit`, `join`, `leave` and `_disconnect` actions.
//!
//! Each node reports what happens on it: the hub tells this module about every connection
//! opened or closed and every join and leave ([`Observer`]), and the module emits the matching
//! Admin UI event to the `/admin` namespace through the adapter, so an Admin UI connected to any
//! node sees the whole cluster, as with Node's admin-ui over the Redis adapter. Actions and the
//! initial socket list go through the adapter too (`fetch_sockets`, room operators).

mod actions;
mod auth;
mod sockets;
mod traffic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::operators::BroadcastOperators;
use tokio::sync::mpsc;

use switchboard_handlers::core::hub::{Hub, Observer};
use switchboard_handlers::core::time::Timestamp;

pub use auth::Credentials;
use auth::Sessions;
use traffic::{AggregatedEvent, Traffic};

/// The namespace the Admin UI connects to (the package's default `namespaceName`).
pub const NAMESPACE: &str = "/admin";
/// How often each node sends its `server_stats` (the package's interval).
const STATS_PERIOD: Duration = Duration::from_secs(2);
/// Socket and room events waiting to be emitted; beyond, they are dropped and counted (the
/// Admin UI's view is a diagnostic, never a reason to slow connections down).
const EVENT_QUEUE: usize = 4_096;
/// Bytes of event frames (`event_received`, `event_sent`) waiting in that queue; beyond, they
/// are dropped like the rest, so large events cannot pile up memory.
const EVENT_QUEUE_BYTES: usize = 8 << 20;
/// How long a node waits for the cluster's answer to "is an Admin UI connected anywhere".
const WATCH_WAIT: Duration = Duration::from_secs(1);

/// What the Admin UI may do.
#[derive(Debug, Clone)]
pub struct Settings {
    pub credentials: Credentials,
    pub readonly: bool,
    /// This node's name in the Admin UI's server list.
    pub server_id: String,
    /// The package's development mode: sockets, rooms and every event, not only the stats.
    pub development: bool,
}

/// The Socket.IO namespaces of the hub's protocols: the Admin UI shows Socket.IO sockets only.
fn namespace_of(protocol: &str) -> Option<&'static str> {
    match protocol {
        "socket.io" => Some("/"),
        "insforge" => Some("/insforge"),
        _ => None,
    }
}

#[derive(Debug)]
enum Change {
    Opened(String, &'static str),
    Closed(String, &'static str),
    Joined(String, &'static str, String),
    Left(String, &'static str, String),
    /// A socket's event as it sent it (`["event", …]`).
    Received(String, &'static str, Box<RawValue>),
    Sent(String, &'static str, String, Box<RawValue>),
}

impl Change {
    /// The bytes it holds beyond its fixed size (counted against [`EVENT_QUEUE_BYTES`]).
    fn weight(&self) -> usize {
        match self {
            Change::Received(_, _, frame) => frame.get().len(),
            Change::Sent(_, _, event, payload) => event.len() + payload.get().len(),
            _ => 0,
        }
    }
}

/// This node's part of the Admin UI.
pub struct AdminUi<A: Adapter> {
    settings: Settings,
    io: SocketIo<A>,
    hub: Arc<Hub>,
    sessions: Sessions,
    started: Instant,
    dropped: AtomicU64,
    traffic: Arc<Traffic>,
    /// Bytes held by the queued changes (see [`EVENT_QUEUE_BYTES`]).
    queued: Arc<AtomicUsize>,
}

/// Tells the module about the hub's changes without holding it alive or blocking the hub.
struct HubObserver {
    tx: mpsc::Sender<Change>,
    dropped: Arc<AtomicU64>,
    queued: Arc<AtomicUsize>,
    traffic: Arc<Traffic>,
    /// Changes are queued only in development mode; production counts, and that is all.
    development: bool,
}

impl HubObserver {
    /// Queues a change for the Admin UIs (development mode only: the callers check).
    fn push(&self, c: Change) {
        let weight = c.weight();
        if self.queued.fetch_add(weight, Ordering::Relaxed) + weight > EVENT_QUEUE_BYTES {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.try_send(c).is_err() {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Observer for HubObserver {
    fn opened(&self, conn: &str, protocol: &'static str) {
        if let Some(nsp) = namespace_of(protocol) {
            self.traffic.connection();
            if self.development {
                self.push(Change::Opened(conn.to_owned(), nsp));
            }
        }
    }
    fn closed(&self, conn: &str, protocol: &'static str) {
        if let Some(nsp) = namespace_of(protocol) {
            self.traffic.disconnection();
            if self.development {
                self.push(Change::Closed(conn.to_owned(), nsp));
            }
        }
    }
    fn joined(&self, conn: &str, protocol: &'static str, room: &str) {
        if let Some(nsp) = namespace_of(protocol)
            && self.development
        {
            self.push(Change::Joined(conn.to_owned(), nsp, room.to_owned()));
        }
    }
    fn left(&self, conn: &str, protocol: &'static str, room: &str) {
        if let Some(nsp) = namespace_of(protocol)
            && self.development
        {
            self.push(Change::Left(conn.to_owned(), nsp, room.to_owned()));
        }
    }
    fn watching(&self) -> bool {
        self.traffic.watched.load(Ordering::Relaxed)
    }
    fn packets_in(&self, protocol: &'static str, packets: u64, bytes: u64) {
        if namespace_of(protocol).is_some() {
            self.traffic.inbound(packets, bytes);
        }
    }
    fn received(&self, conn: &str, protocol: &'static str, frame: &str) {
        if let Some(nsp) = namespace_of(protocol)
            && self.development
            && let Ok(frame) = RawValue::from_string(frame.to_owned())
        {
            self.push(Change::Received(conn.to_owned(), nsp, frame));
        }
    }
    fn sent(&self, conn: &str, protocol: &'static str, event: &str, payload: &RawValue) {
        if let Some(nsp) = namespace_of(protocol) {
            self.traffic.outbound(event, payload.get());
            if self.development {
                self.push(Change::Sent(
                    conn.to_owned(),
                    nsp,
                    event.to_owned(),
                    payload.to_owned(),
                ));
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceStats {
    name: &'static str,
    sockets_count: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerStats<'a> {
    server_id: &'a str,
    hostname: String,
    pid: u32,
    uptime: f64,
    clients_count: usize,
    polling_clients_count: usize,
    aggregated_events: Vec<AggregatedEvent>,
    namespaces: Vec<NamespaceStats>,
}

impl<A: Adapter> AdminUi<A> {
    /// Sets the module up on `io` and the hub (once, at start-up). `redis` shares login
    /// sessions between nodes.
    pub fn setup(
        settings: Settings,
        io: SocketIo<A>,
        hub: Arc<Hub>,
        redis: Option<(crate::redis::Client, &str)>,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let traffic = Arc::new(Traffic::default());
        hub.set_observer(Arc::new(HubObserver {
            tx,
            dropped: dropped.clone(),
            queued: queued.clone(),
            traffic: traffic.clone(),
            development: settings.development,
        }));
        let me = Arc::new(AdminUi {
            settings,
            io,
            hub,
            sessions: Sessions::new(redis),
            started: Instant::now(),
            dropped: AtomicU64::new(0),
            traffic,
            queued,
        });
        tokio::spawn(me.clone().relay(rx, dropped));
        tokio::spawn(me.clone().stats());
        me
    }

    /// The `/admin` namespace: the auth middleware, then the Admin UI's handlers.
    pub fn namespace(self: &Arc<Self>) -> A::InitRes
    where
        A: socketioxide_core::adapter::DefinedAdapter,
    {
        let st = self.clone();
        let middleware = move |s: SocketRef<A>, TryData(raw): TryData<Value>| {
            let st = st.clone();
            async move { auth::check(&st, &s, raw.ok()).await }
        };
        let st = self.clone();
        let on_connect = move |s: SocketRef<A>| {
            let st = st.clone();
            async move { st.connected(s).await }
        };
        self.io.ns(NAMESPACE, on_connect.with(middleware))
    }

    fn features(&self) -> Vec<&'static str> {
        let mut f = if self.settings.readonly {
            Vec::new()
        } else {
            vec![
                "EMIT",
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
            ]
        };
        f.push("AGGREGATED_EVENTS");
        if self.settings.development {
            f.push("ALL_EVENTS");
        }
        f
    }

    async fn connected(self: Arc<Self>, s: SocketRef<A>) {
        if let Some(id) = s.extensions.get::<auth::NewSession>() {
            let _ = s.emit("session", &id.0);
        }
        if !self.settings.readonly {
            actions::install(&self, &s);
        }
        // Counting starts now on this node; the others learn of it within a stats period.
        self.traffic.watched.store(true, Ordering::Relaxed);
        let _ = s.emit(
            "config",
            &serde_json::json!({ "supportedFeatures": self.features() }),
        );
        if self.settings.development {
            let all = sockets::all(&self).await;
            let _ = s.emit("all_sockets", &(all,));
        }
        let _ = s.emit("server_stats", &self.server_stats());
    }

    /// Emits each hub change to every Admin UI of the cluster, in the order they happened.
    async fn relay(self: Arc<Self>, mut rx: mpsc::Receiver<Change>, dropped: Arc<AtomicU64>) {
        while let Some(change) = rx.recv().await {
            // Looked up per change: the namespace is registered after this task starts.
            let Some(admin) = self.io.of(NAMESPACE) else {
                continue;
            };
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                self.dropped.fetch_add(lost, Ordering::Relaxed);
                tracing::info!(
                    lost,
                    "Admin UI events dropped: more socket, room and traffic events than it can relay"
                );
            }
            self.queued.fetch_sub(change.weight(), Ordering::Relaxed);
            let now = Timestamp::now();
            let res = match &change {
                Change::Opened(conn, nsp) => {
                    // Describing the socket may wait for it to enter its namespace; the other
                    // changes do not wait for that.
                    let me = self.clone();
                    let (conn, nsp) = (conn.clone(), *nsp);
                    tokio::spawn(async move {
                        let socket = sockets::local(&me, nsp, &conn).await;
                        if let Err(e) = admin.emit("socket_connected", &(socket, now)).await {
                            tracing::debug!(error = %e, "Admin UI event not emitted");
                        }
                    });
                    Ok(())
                }
                Change::Closed(conn, nsp) => {
                    admin
                        .clone()
                        .emit("socket_disconnected", &(nsp, conn, "transport close", now))
                        .await
                }
                Change::Joined(conn, nsp, room) => {
                    admin
                        .clone()
                        .emit("room_joined", &(nsp, room, conn, now))
                        .await
                }
                Change::Left(conn, nsp, room) => {
                    admin
                        .clone()
                        .emit("room_left", &(nsp, room, conn, now))
                        .await
                }
                Change::Received(conn, nsp, frame) => {
                    admin
                        .clone()
                        .emit("event_received", &(nsp, conn, frame, now))
                        .await
                }
                Change::Sent(conn, nsp, event, payload) => {
                    admin
                        .clone()
                        .emit("event_sent", &(nsp, conn, (event, payload), now))
                        .await
                }
            };
            if let Err(e) = res {
                tracing::debug!(error = %e, "Admin UI event not emitted");
            }
        }
    }

    fn server_stats(&self) -> ServerStats<'_> {
        let mut namespaces = vec![NamespaceStats {
            name: NAMESPACE,
            sockets_count: self
                .io
                .of(NAMESPACE)
                .map_or(0, |n| n.local().sockets().len()),
        }];
        let mut clients = 0;
        for (protocol, n) in self.hub.connections_by_protocol() {
            if let Some(name) = namespace_of(protocol) {
                clients += n;
                namespaces.push(NamespaceStats {
                    name,
                    sockets_count: n,
                });
            }
        }
        let aggregated_events = self.traffic.take(Timestamp::now().millis());
        ServerStats {
            server_id: &self.settings.server_id,
            hostname: hostname(),
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs_f64(),
            clients_count: clients,
            polling_clients_count: 0,
            aggregated_events,
            namespaces,
        }
    }

    /// Every [`STATS_PERIOD`], this node's stats to every Admin UI of the cluster.
    async fn stats(self: Arc<Self>) {
        let mut tick = tokio::time::interval(STATS_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(admin) = self.io.of(NAMESPACE) else {
                continue;
            };
            self.refresh_watched(&admin).await;
            let stats = self.server_stats();
            if let Err(e) = admin.emit("server_stats", &stats).await {
                tracing::debug!(error = %e, "Admin UI stats not emitted");
            }
        }
    }
}

impl<A: Adapter> AdminUi<A> {
    /// Whether an Admin UI is connected to any node: this node's first, else the cluster's
    /// (through the adapter, with a short wait; no answer keeps the last verdict).
    async fn refresh_watched(&self, admin: &BroadcastOperators<A>) {
        let watched = if !admin.clone().local().sockets().is_empty() {
            true
        } else {
            match tokio::time::timeout(WATCH_WAIT, admin.clone().fetch_sockets()).await {
                Ok(Ok(sockets)) => !sockets.is_empty(),
                _ => return,
            }
        };
        self.traffic.watched.store(watched, Ordering::Relaxed);
    }
}

/// The machine's name, as Node's `os.hostname()`.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "switchboard".to_owned())
}
