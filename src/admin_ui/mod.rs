//! The server side of the Socket.IO Admin UI (`@socket.io/admin-ui` 0.5) on the `/admin`
//! namespace (docs/console.md): basic auth from the configuration, `config`, `all_sockets`,
//! `server_stats` every two seconds, the socket and room events, and — unless read-only — the
//! `emit`, `join`, `leave` and `_disconnect` actions.
//!
//! Each node reports what happens on it: the hub tells this module about every connection
//! opened or closed and every join and leave ([`Observer`]), and the module emits the matching
//! Admin UI event to the `/admin` namespace through the adapter, so an Admin UI connected to any
//! node sees the whole cluster, as with Node's admin-ui over the Redis adapter. Actions and the
//! initial socket list go through the adapter too (`fetch_sockets`, room operators).

mod actions;
mod auth;
mod sockets;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::sync::mpsc;

use switchboard_handlers::core::hub::{Hub, Observer};
use switchboard_handlers::core::time::Timestamp;

pub use auth::Credentials;
use auth::Sessions;

/// The namespace the Admin UI connects to (the package's default `namespaceName`).
pub const NAMESPACE: &str = "/admin";
/// How often each node sends its `server_stats` (the package's interval).
const STATS_PERIOD: Duration = Duration::from_secs(2);
/// Socket and room events waiting to be emitted; beyond, they are dropped and counted (the
/// Admin UI's view is a diagnostic, never a reason to slow connections down).
const EVENT_QUEUE: usize = 4_096;

/// What the Admin UI may do.
#[derive(Debug, Clone)]
pub struct Settings {
    pub credentials: Credentials,
    pub readonly: bool,
    /// This node's name in the Admin UI's server list.
    pub server_id: String,
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
}

/// This node's part of the Admin UI.
pub struct AdminUi<A: Adapter> {
    settings: Settings,
    io: SocketIo<A>,
    hub: Arc<Hub>,
    sessions: Sessions,
    started: Instant,
    dropped: AtomicU64,
    connections_total: AtomicU64,
    disconnections_total: AtomicU64,
}

/// Tells the module about the hub's changes without holding it alive or blocking the hub.
struct HubObserver(mpsc::Sender<Change>, Arc<AtomicU64>);

impl HubObserver {
    fn push(&self, c: Change) {
        if self.0.try_send(c).is_err() {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Observer for HubObserver {
    fn opened(&self, conn: &str, protocol: &'static str) {
        if let Some(nsp) = namespace_of(protocol) {
            self.push(Change::Opened(conn.to_owned(), nsp));
        }
    }
    fn closed(&self, conn: &str, protocol: &'static str) {
        if let Some(nsp) = namespace_of(protocol) {
            self.push(Change::Closed(conn.to_owned(), nsp));
        }
    }
    fn joined(&self, conn: &str, protocol: &'static str, room: &str) {
        if let Some(nsp) = namespace_of(protocol) {
            self.push(Change::Joined(conn.to_owned(), nsp, room.to_owned()));
        }
    }
    fn left(&self, conn: &str, protocol: &'static str, room: &str) {
        if let Some(nsp) = namespace_of(protocol) {
            self.push(Change::Left(conn.to_owned(), nsp, room.to_owned()));
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
struct AggregatedEvent {
    timestamp: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    count: u64,
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
        hub.set_observer(Arc::new(HubObserver(tx, dropped.clone())));
        let me = Arc::new(AdminUi {
            settings,
            io,
            hub,
            sessions: Sessions::new(redis),
            started: Instant::now(),
            dropped: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            disconnections_total: AtomicU64::new(0),
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
        f.extend(["AGGREGATED_EVENTS", "ALL_EVENTS"]);
        f
    }

    async fn connected(self: Arc<Self>, s: SocketRef<A>) {
        if let Some(id) = s.extensions.get::<auth::NewSession>() {
            let _ = s.emit("session", &id.0);
        }
        if !self.settings.readonly {
            actions::install(&self, &s);
        }
        let _ = s.emit(
            "config",
            &serde_json::json!({ "supportedFeatures": self.features() }),
        );
        let all = sockets::all(&self).await;
        let _ = s.emit("all_sockets", &(all,));
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
                    "Admin UI events dropped: more socket and room changes than it can relay"
                );
            }
            let now = Timestamp::now();
            let res = match &change {
                Change::Opened(conn, nsp) => {
                    self.connections_total.fetch_add(1, Ordering::Relaxed);
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
                    self.disconnections_total.fetch_add(1, Ordering::Relaxed);
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
        let now = Timestamp::now().millis() / 1000 * 1000;
        let aggregated_events = vec![
            AggregatedEvent {
                timestamp: now,
                kind: "rawConnection",
                count: self.connections_total.swap(0, Ordering::Relaxed),
            },
            AggregatedEvent {
                timestamp: now,
                kind: "rawDisconnection",
                count: self.disconnections_total.swap(0, Ordering::Relaxed),
            },
        ];
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
            let stats = self.server_stats();
            if let Err(e) = admin.emit("server_stats", &stats).await {
                tracing::debug!(error = %e, "Admin UI stats not emitted");
            }
        }
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
