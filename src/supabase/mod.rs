//! Supabase Realtime front end (Phoenix channels) for `@supabase/realtime-js` 2.x:
//! `GET /realtime/v1/websocket?apikey=…&vsn=1.0.0|2.0.0&project=…`. Broadcast and presence over
//! the hub, postgres_changes over the live-data registry (`postgres_changes.rs`);
//! docs/protocols/supabase.md has the mapping, what is supported and what is not yet.
//!
//! A channel `realtime:<name>` of a connection in project `p` is the hub topic
//! `Channel(p, name)` — the same topic a Pusher channel of that name uses — so broadcasts reach
//! every protocol's subscribers; its presence set is the channel's one, shared with the other
//! protocols (`crate::channel_members`), whose changes travel on `ChannelPresence(p, name)` and
//! become `presence_diff`s here (`presence.rs`).

mod channel_access;
pub mod keys;
pub mod postgres_changes;
pub mod presence;
mod rest;
pub mod row_filter;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::access::Actor;
use switchboard_handlers::core::data::documents::scope;
use switchboard_handlers::core::data::rules::AccessRule;
use switchboard_handlers::core::error::{AppError, ErrorCode};
use switchboard_handlers::core::hub::{Delivery, FrontEnd, FrontEndId, Hub};
use switchboard_handlers::core::ids::{CollectionId, ProjectId};
use switchboard_handlers::core::project;
use switchboard_handlers::core::session::{self, Session};
use switchboard_handlers::core::topic::{Topic, is_protocol_event};
use switchboard_handlers::socketio::limits::{RateLimiter, Verdict};

use crate::channel_members::ChannelMembers;
use crate::channel_members::change::{self, PresenceChange};
use crate::http::rate_limit::KeyedLimiter;
use keys::{Caller, ProjectKeys};
use postgres_changes::{Binding, Change};
use presence::{PresenceSets, TrackError, TrackRefusal};
use switchboard_handlers::core::channel_presence::ChannelPresence;
use wire::{Msg, Vsn};

/// Frames queued for one connection; a connection that falls this far behind is closed.
const QUEUE: usize = 1024;
/// Largest client frame: above the broadcast payload limit (`MAX_EVENT_BYTES`), so an oversized
/// broadcast gets its error reply instead of a closed socket.
const MAX_FRAME: usize = 1024 * 1024;
/// Frames gathered before one write to the socket (tungstenite writes at once past this);
/// the buffer is only as large as what a connection was sent at once.
const WRITE_BATCH: usize = 16 * 1024;
/// Channels one connection may join.
const MAX_CHANNELS: usize = 100;
/// A connection silent this long is closed (Phoenix's default; realtime-js beats every 25 s).
const IDLE: Duration = Duration::from_secs(60);
/// A dropped connection's presence stays this long, so a client that reconnects and tracks the
/// same key again never drops out of anyone's presence state (no leave-then-join flap).
const PRESENCE_GRACE: Duration = Duration::from_secs(3);

struct ConnState {
    tx: mpsc::Sender<Message>,
    vsn: Vsn,
    project: ProjectId,
    /// The postgres_changes bindings of all its channels; shared, so a change is matched
    /// against them outside the lock.
    bindings: Arc<Vec<Binding>>,
}

/// This node's realtime-js connections.
pub struct Supabase {
    conns: Mutex<HashMap<String, ConnState>>,
    presence: PresenceSets,
    /// Connection ids are `sb.<node>.<n>`: unique across the cluster, since a broadcast's
    /// `except` travels to every node.
    node: u32,
    next: AtomicU64,
}

impl Supabase {
    /// `store`: the shared presence sets; `node`: their number for this process.
    fn new(store: Arc<dyn ChannelPresence>, node: u32) -> Self {
        Supabase {
            conns: Mutex::default(),
            presence: PresenceSets::new(store, node),
            node,
            next: AtomicU64::new(0),
        }
    }

    fn queue(&self, conn: &str, frame: Message) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = conns.get(conn) else {
            return;
        };
        if c.tx.try_send(frame).is_err() {
            // A slow reader: dropping its sender ends its writer and closes the socket; no
            // other connection waits for it.
            tracing::warn!(conn, "realtime connection too slow; closing it");
            conns.remove(conn);
        }
    }

    /// Replaces a channel's postgres_changes bindings on a connection.
    fn set_bindings(&self, conn: &str, topic: &str, new: Vec<Binding>) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = conns.get_mut(conn) {
            let mut all: Vec<Binding> = c
                .bindings
                .iter()
                .filter(|b| b.topic != topic)
                .cloned()
                .collect();
            all.extend(new);
            c.bindings = Arc::new(all);
        }
    }

    fn project_of(&self, conn: &str) -> Option<(ProjectId, Vsn)> {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.get(conn).map(|c| (c.project.clone(), c.vsn))
    }
}

#[async_trait]
impl FrontEnd for Supabase {
    fn protocol(&self) -> &'static str {
        "supabase"
    }

    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        // Each room is one channel; a connection in two targeted channels gets the event on
        // each, as it subscribed to each.
        for room in d.rooms {
            let single = std::slice::from_ref(room);
            let members = hub.members_in(&Delivery {
                rooms: single,
                ..*d
            });
            let Some(first) = members.first() else {
                continue;
            };
            let Some((project, _)) = self.project_of(first) else {
                continue;
            };
            let Some(name) = Topic::channel_name_in(room, &project) else {
                continue;
            };
            let topic = format!("realtime:{name}");
            let presence = room.starts_with("channel-presence:");
            let payload = if presence {
                let Some(change) = (d.event == change::EVENT)
                    .then(|| PresenceChange::read(d.payload))
                    .flatten()
                else {
                    continue;
                };
                match serde_json::value::to_raw_value(&presence::diff(&change)) {
                    Ok(p) => p,
                    Err(_) => continue,
                }
            } else {
                match wire::broadcast_payload(d.event, &wire::user_payload(d.payload)) {
                    Some(p) => p,
                    None => continue,
                }
            };
            let event = if presence {
                "presence_diff"
            } else {
                "broadcast"
            };
            // Encoded at most once per serializer for this channel, shared by its members;
            // one lock for the whole channel rather than one per member.
            let mut frames: [Option<Utf8Bytes>; 2] = [None, None];
            let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            for conn in &members {
                let Some(c) = conns.get(&**conn) else {
                    continue;
                };
                let vsn = c.vsn;
                let slot = &mut frames[vsn as usize];
                let frame = slot
                    .get_or_insert_with(|| {
                        wire::encode(vsn, None, None, &topic, event, &*payload).into()
                    })
                    .clone();
                if c.tx.try_send(Message::Text(frame)).is_err() {
                    tracing::warn!(conn = &**conn, "realtime connection too slow; closing it");
                    conns.remove(&**conn);
                }
            }
        }
        Ok(())
    }

    /// The live-data registry's `document:*` events for the collections this connection's
    /// postgres_changes bindings watch (already checked against the collection's read rule).
    fn send(&self, conn: &str, event: &str, payload: &Value) {
        let Some(change) = Change::read(event, payload) else {
            return;
        };
        let Some((bindings, vsn)) = ({
            let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            conns.get(conn).map(|c| (c.bindings.clone(), c.vsn))
        }) else {
            return;
        };
        for (topic, payload) in postgres_changes::frames(&bindings, &change) {
            let frame = wire::encode(vsn, None, None, &topic, "postgres_changes", &payload);
            self.queue(conn, Message::Text(frame.into()));
        }
    }
}

#[derive(Clone)]
struct SbState {
    core: Arc<Core>,
    front_end: Arc<Supabase>,
    id: FrontEndId,
    /// The channels' presence sets, shared with the other protocols.
    members: Arc<ChannelMembers>,
    /// REST broadcasts per caller (messages per second, as a connection's pushes).
    rest_limiter: Arc<KeyedLimiter>,
    keys: Arc<ProjectKeys>,
}

/// Registers the front end in the hub and returns its routes. Presence sets are `members`'
/// (each channel's one, shared with the other protocols and, with Redis, every node).
pub fn router(
    core: Arc<Core>,
    members: &Arc<ChannelMembers>,
    keys: ProjectKeys,
) -> Result<Router, AppError> {
    let front_end = Arc::new(Supabase::new(members.store().clone(), members.node()));
    let id = core.hub.register(front_end.clone())?;
    let rest_limiter = Arc::new(KeyedLimiter::new(
        core.limits.rate_per_sec,
        core.limits.rate_burst,
    ));
    Ok(Router::new()
        .route("/realtime/v1/websocket", get(upgrade))
        .route("/realtime/v1/api/broadcast", post(rest::batch))
        .route(
            "/realtime/v1/api/broadcast/{topic}/events/{event}",
            post(rest::single),
        )
        .layer(DefaultBodyLimit::max(rest::MAX_BODY))
        .with_state(SbState {
            core,
            front_end,
            id,
            members: members.clone(),
            rest_limiter,
            keys: Arc::new(keys),
        }))
}

#[derive(Debug, Default, Deserialize)]
struct ConnectQuery {
    apikey: Option<String>,
    vsn: Option<String>,
    project: Option<String>,
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(json!({ "error": why }))).into_response()
}

/// Authenticates before upgrading, so a bad key is an HTTP refusal as upstream answers it.
async fn upgrade(
    State(st): State<SbState>,
    Query(q): Query<ConnectQuery>,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(vsn) = Vsn::parse(q.vsn.as_deref()) else {
        return refuse(StatusCode::FORBIDDEN, "unsupported vsn");
    };
    let key = q.apikey.or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let Some(key) = key else {
        return refuse(StatusCode::UNAUTHORIZED, "apikey is required");
    };
    let caller = match keys::identify(&st.core, &st.keys, &key).await {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.public_message()),
    };
    let project = match admit(&st.core, &caller, q.project).await {
        Ok(p) => p,
        Err((status, why)) => return refuse(status, &why),
    };
    // tungstenite's defaults (a 128 KiB read buffer, 128 KiB of write batching) cost every idle
    // connection ~140 KB; frames larger than the read buffer are read in several steps.
    ws.read_buffer_size(crate::ws_limits::READ_BUFFER)
        .write_buffer_size(WRITE_BATCH)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| run(st, caller, project, vsn, socket))
}

/// The project a caller connects to: a key's own (a `project` parameter, if any, must name
/// it), else the `project` parameter, of which a Switchboard caller must be a member.
async fn admit(
    core: &Core,
    caller: &Caller,
    param: Option<String>,
) -> Result<ProjectId, (StatusCode, String)> {
    let param = match param.map(ProjectId::try_from) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return Err((StatusCode::BAD_REQUEST, format!("invalid project: {e}"))),
        None => None,
    };
    if let Some(own) = caller.key_project() {
        if param.as_ref().is_some_and(|p| p != own) {
            return Err((
                StatusCode::FORBIDDEN,
                format!("the key is for project {own}"),
            ));
        }
        return match core.store.get_project(own).await {
            Ok(Some(_)) => Ok(own.clone()),
            Ok(None) => Err((StatusCode::NOT_FOUND, format!("project {own} not found"))),
            Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.public_message())),
        };
    }
    let Some(project) = param else {
        return Err((
            StatusCode::BAD_REQUEST,
            "project is required (realtime params: {project})".to_owned(),
        ));
    };
    let Caller::Switchboard(actor) = caller else {
        return Err((StatusCode::UNAUTHORIZED, "unknown key".to_owned()));
    };
    if let Err(e) = project::subscribe(core, actor, &project).await {
        let status = match e.code() {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::FORBIDDEN,
        };
        return Err((status, e.public_message()));
    }
    Ok(project)
}

/// A joined channel on one connection.
struct Joined {
    join_ref: Option<String>,
    name: String,
    self_broadcast: bool,
    ack: bool,
    presence_key: Option<String>,
    /// `config.presence.key`, for a track on a channel joined without presence.
    config_key: String,
    /// The collections its postgres_changes bindings watch, and how many bindings it holds.
    tables: Vec<CollectionId>,
    bindings: usize,
    /// Who the channel acts as: the connection's caller, or the join's `access_token`.
    who: Who,
    private: bool,
}

/// Who a connection or one of its channels acts as.
#[derive(Debug, Clone)]
struct Who {
    actor: Actor,
    anon: bool,
}

struct Conn {
    st: SbState,
    session: Session,
    project: ProjectId,
    vsn: Vsn,
    channels: HashMap<String, Joined>,
    /// The last postgres_changes binding id handed out on this connection.
    binding_ids: u32,
    /// Who the connection's key or token proved.
    who: Who,
}

async fn run(st: SbState, caller: Caller, project: ProjectId, vsn: Vsn, socket: WebSocket) {
    let conn_id = format!(
        "sb.{}.{}",
        st.front_end.node,
        st.front_end.next.fetch_add(1, Ordering::Relaxed)
    );
    let Ok(actor) = caller.actor(&conn_id) else {
        return;
    };
    let who = Who {
        actor: actor.clone(),
        anon: caller.is_anon(),
    };
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    st.front_end
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            conn_id.clone(),
            ConnState {
                tx,
                vsn,
                project: project.clone(),
                bindings: Arc::default(),
            },
        );
    let (mut sink, mut stream) = socket.split();
    let session = match session::open_as(&st.core, st.id, conn_id.clone(), actor).await {
        Ok(s) => s,
        Err(refused) => {
            forget(&st, &conn_id);
            let _ = sink
                .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: 1008,
                    reason: refused.to_string().into(),
                })))
                .await;
            return;
        }
    };
    // Frames that queued up while the socket was busy go out in one write: under fan-out a
    // connection often has several waiting, and a write per frame is a system call per frame.
    let writer = tokio::spawn(async move {
        'write: while let Some(frame) = rx.recv().await {
            if sink.feed(frame).await.is_err() {
                break;
            }
            while let Ok(more) = rx.try_recv() {
                if sink.feed(more).await.is_err() {
                    break 'write;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let limits = &st.core.limits;
    let mut limiter = RateLimiter::new(
        limits.rate_per_sec,
        limits.rate_burst,
        std::time::Instant::now(),
    );
    let mut c = Conn {
        st: st.clone(),
        session,
        project,
        vsn,
        channels: HashMap::new(),
        binding_ids: 0,
        who,
    };
    loop {
        let next = match tokio::time::timeout(IDLE, stream.next()).await {
            Ok(Some(Ok(m))) => m,
            // Silent for too long, closed, or broken.
            _ => break,
        };
        let msg = match next {
            Message::Text(t) => wire::decode_text(vsn, t.as_str()),
            Message::Binary(b) if vsn == Vsn::V2 => wire::decode_binary(&b),
            Message::Close(_) => break,
            _ => continue,
        };
        let m = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(conn = %conn_id, why = e.0, "malformed realtime frame dropped");
                continue;
            }
        };
        // Every push but the heartbeat counts against the connection's event rate (the
        // Socket.IO front end's limits: RATE_LIMIT_PER_SEC, RATE_LIMIT_BURST).
        if m.topic != "phoenix" {
            match limiter.check(std::time::Instant::now()) {
                Verdict::Allow => {}
                Verdict::Limit => {
                    c.error(&m, "TooManyMessages: rate limited");
                    continue;
                }
                Verdict::Disconnect => break,
            }
        }
        c.handle(m).await;
    }
    c.leave_all().await;
    forget(&st, &conn_id);
    writer.abort();
    session::close(&st.core, &c.session).await;
}

fn forget(st: &SbState, conn: &str) {
    st.front_end
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(conn);
}

#[derive(Debug, Default, Deserialize)]
struct JoinPayload {
    #[serde(default)]
    config: JoinConfig,
    /// The app's current token (a user JWT, or the anon key when nobody is signed in).
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct JoinConfig {
    #[serde(default)]
    broadcast: BroadcastConfig,
    #[serde(default)]
    presence: PresenceConfig,
    #[serde(default)]
    postgres_changes: Vec<Value>,
    #[serde(default)]
    private: bool,
}

#[derive(Debug, Default, Deserialize)]
struct BroadcastConfig {
    #[serde(default, rename = "self")]
    self_: bool,
    #[serde(default)]
    ack: bool,
}

#[derive(Debug, Default, Deserialize)]
struct PresenceConfig {
    #[serde(default)]
    key: String,
    #[serde(default)]
    enabled: bool,
}

impl Conn {
    fn conn(&self) -> &str {
        &self.session.conn
    }

    fn push(&self, m: &Msg, join_ref: Option<&str>, event: &str, payload: &Value) {
        let frame = wire::encode(
            self.vsn,
            join_ref,
            m.reference.as_deref(),
            &m.topic,
            event,
            payload,
        );
        self.st
            .front_end
            .queue(self.conn(), Message::Text(frame.into()));
    }

    fn reply(&self, m: &Msg, status: &str, response: Value) {
        self.push(
            m,
            m.join_ref.as_deref(),
            "phx_reply",
            &wire::reply(status, response),
        );
    }

    fn error(&self, m: &Msg, reason: &str) {
        self.reply(m, "error", json!({ "reason": reason }));
    }

    async fn handle(&mut self, m: Msg) {
        if m.topic == "phoenix" {
            if m.event == "heartbeat" {
                self.reply(&m, "ok", json!({}));
            }
            return;
        }
        match m.event.as_str() {
            "phx_join" => self.join(m).await,
            "phx_leave" => {
                self.leave(&m.topic).await;
                self.reply(&m, "ok", json!({}));
            }
            "broadcast" => self.broadcast(m).await,
            "presence" => self.presence(m).await,
            "access_token" => self.access_token(m).await,
            _ if !self.channels.contains_key(&m.topic) => self.error(&m, "unmatched topic"),
            _ => tracing::debug!(event = %m.event, "unknown realtime event ignored"),
        }
    }

    fn topics(&self, name: &str) -> (Topic, Topic) {
        (
            Topic::Channel(self.project.clone(), name.to_owned()),
            Topic::ChannelPresence(self.project.clone(), name.to_owned()),
        )
    }

    async fn join(&mut self, m: Msg) {
        let name = match m.topic.strip_prefix("realtime:") {
            Some("") | None => {
                return self.error(&m, "TopicNameRequired: You must provide a topic name");
            }
            Some(n) => n.to_owned(),
        };
        if name.len() > 255 {
            return self.error(&m, "TopicNameTooLong: at most 255 bytes");
        }
        let (cfg, token) = match serde_json::from_value::<JoinPayload>(m.payload.clone()) {
            Ok(p) => (p.config, p.access_token),
            Err(e) => return self.error(&m, &format!("InvalidJoinPayload: {e}")),
        };
        let who = match self.who_for(token.as_deref()).await {
            Ok(w) => w,
            Err(reason) => return self.error(&m, &reason),
        };
        if let Err(reason) = channel_access::authorize(
            &self.st.core,
            &who.actor,
            who.anon,
            &self.project,
            &name,
            cfg.private,
        )
        .await
        {
            return self.error(&m, &reason);
        }
        if cfg.presence.key.len() > presence::MAX_KEY {
            return self.error(
                &m,
                &format!(
                    "InvalidJoinPayload: a presence key is at most {} bytes",
                    presence::MAX_KEY
                ),
            );
        }
        let mut ids = self.binding_ids;
        let parsed =
            postgres_changes::parse(&cfg.postgres_changes, &self.project, &m.topic, &mut || {
                ids = ids.wrapping_add(1).max(1);
                ids
            });
        self.binding_ids = ids;
        let pg = match parsed {
            Ok(p) => p,
            Err(e) => return self.error(&m, &format!("InvalidPostgresChanges: {e}")),
        };
        // Joining a topic again replaces the old join.
        if self.channels.contains_key(&m.topic) {
            self.leave(&m.topic).await;
        } else if self.channels.len() >= MAX_CHANNELS {
            return self.error(&m, "ChannelRateLimitReached: Too many channels");
        }
        let held: usize = self.channels.values().map(|j| j.bindings).sum();
        if held + pg.bindings.len() > postgres_changes::MAX_BINDINGS_PER_CONN {
            return self.error(
                &m,
                &format!(
                    "ChannelRateLimitReached: at most {} postgres_changes bindings per connection",
                    postgres_changes::MAX_BINDINGS_PER_CONN
                ),
            );
        }
        let mut tables: Vec<CollectionId> = Vec::new();
        for b in &pg.bindings {
            if !tables.contains(&b.table) {
                tables.push(b.table.clone());
            }
        }
        if let Err(reason) = self.watch_tables(&who.actor, &tables).await {
            self.release_tables(tables);
            return self.error(&m, &reason);
        }
        let (channel, presence) = self.topics(&name);
        let hub = &self.st.core.hub;
        if let Err(e) = hub.join(self.conn(), &channel) {
            self.release_tables(tables);
            return self.error(
                &m,
                &format!("ChannelRateLimitReached: {}", e.public_message()),
            );
        }
        let presence_key = if cfg.presence.enabled {
            if let Err(e) = hub.join(self.conn(), &presence) {
                hub.leave(self.conn(), &channel);
                self.release_tables(tables);
                return self.error(
                    &m,
                    &format!("ChannelRateLimitReached: {}", e.public_message()),
                );
            }
            Some(if cfg.presence.key.is_empty() {
                format!("{}-{}", self.conn(), m.join_ref.as_deref().unwrap_or(""))
            } else {
                cfg.presence.key.clone()
            })
        } else {
            None
        };
        let bindings = pg.bindings.len();
        self.st
            .front_end
            .set_bindings(self.conn(), &m.topic, pg.bindings);
        self.reply(&m, "ok", json!({ "postgres_changes": pg.reply }));
        if presence_key.is_some() {
            let state = self
                .st
                .front_end
                .presence
                .state(&ChannelMembers::channel(&self.project, &name))
                .await;
            self.push(&m, m.join_ref.as_deref(), "presence_state", &state);
        }
        if bindings > 0 {
            // Upstream's wording, which apps may look for; the feed is live from here.
            let system = json!({
                "extension": "postgres_changes",
                "status": "ok",
                "message": "Subscribed to PostgreSQL",
                "channel": name,
            });
            self.push(&m, m.join_ref.as_deref(), "system", &system);
        }
        self.channels.insert(
            m.topic.clone(),
            Joined {
                join_ref: m.join_ref.clone(),
                name,
                self_broadcast: cfg.broadcast.self_,
                ack: cfg.broadcast.ack,
                presence_key,
                config_key: cfg.presence.key.clone(),
                tables,
                bindings,
                who,
                private: cfg.private,
            },
        );
    }

    /// Who a channel acts as: the join's `access_token` when it carries one, else the
    /// connection's caller. A token of another project, or whose user is not a member, is
    /// refused; Supabase's own `sb_…` keys, which this server does not issue, are ignored.
    async fn who_for(&self, token: Option<&str>) -> Result<Who, String> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(self.who.clone());
        };
        let caller = match keys::identify(&self.st.core, &self.st.keys, token).await {
            Ok(c) => c,
            Err(_) if token.starts_with("sb_") => return Ok(self.who.clone()),
            Err(e) => return Err(format!("InvalidJWTToken: {}", e.public_message())),
        };
        if caller.key_project().is_some_and(|p| p != &self.project) {
            return Err(format!(
                "Unauthorized: the key is not for project {}",
                self.project
            ));
        }
        if let Caller::Switchboard(actor) = &caller
            && let Err(e) = project::subscribe(&self.st.core, actor, &self.project).await
        {
            return Err(format!("Unauthorized: {}", e.public_message()));
        }
        let actor = caller
            .actor(self.conn())
            .map_err(|e| format!("InvalidJWTToken: {}", e.public_message()))?;
        Ok(Who {
            actor,
            anon: caller.is_anon(),
        })
    }

    /// Subscribes the connection to each collection through the live-data registry, as
    /// Socket.IO's `subscribe:collection` does: project membership, a storable collection name,
    /// and the collection's read rule, which then applies to every change delivered.
    async fn watch_tables(&self, actor: &Actor, tables: &[CollectionId]) -> Result<(), String> {
        for t in tables {
            let s = scope(&self.st.core, actor, &self.project, t)
                .await
                .map_err(|e| {
                    let code = match e.code() {
                        ErrorCode::InvalidPayload => "InvalidPostgresChanges",
                        ErrorCode::Forbidden | ErrorCode::Unauthorized | ErrorCode::NotFound => {
                            "Unauthorized"
                        }
                        _ => "Unavailable",
                    };
                    format!("{code}: {}", e.public_message())
                })?;
            // Nothing of it would ever reach this connection: say so instead of staying silent.
            if s.rule == AccessRule::AdminsOnly && !actor.is_admin() {
                return Err(format!(
                    "Unauthorized: You do not have permissions to read from this table: {t}"
                ));
            }
            self.st
                .core
                .live
                .watch_collection(&self.session.conn, actor, s.key(), &s.rule, None);
        }
        Ok(())
    }

    /// Unsubscribes from each collection no joined channel binds any more.
    fn release_tables(&self, tables: Vec<CollectionId>) {
        for t in tables {
            if !self.channels.values().any(|j| j.tables.contains(&t)) {
                self.st
                    .core
                    .live
                    .unwatch_collection(&self.session.conn, &(self.project.clone(), t));
            }
        }
    }

    async fn leave(&mut self, topic: &str) {
        self.leave_with(topic, false).await;
    }

    /// `linger`: the connection dropped, so its presence stays for `PRESENCE_GRACE` (a quick
    /// reconnect tracks again before anyone sees it leave).
    async fn leave_with(&mut self, topic: &str, linger: bool) {
        let Some(j) = self.channels.remove(topic) else {
            return;
        };
        self.st
            .front_end
            .set_bindings(self.conn(), topic, Vec::new());
        self.release_tables(j.tables);
        let (channel, presence) = self.topics(&j.name);
        if linger {
            self.untrack_later(&j.name);
        } else {
            self.untrack(&j.name).await;
        }
        let hub = &self.st.core.hub;
        hub.leave(self.conn(), &channel);
        hub.leave(self.conn(), &presence);
    }

    async fn leave_all(&mut self) {
        let topics: Vec<String> = self.channels.keys().cloned().collect();
        for t in topics {
            self.leave_with(&t, true).await;
        }
    }

    async fn broadcast(&mut self, m: Msg) {
        let Some(j) = self.channels.get(&m.topic) else {
            return self.error(&m, "unmatched topic");
        };
        let (event, payload) = match (m.payload.get("event"), m.payload.get("payload")) {
            (Some(Value::String(e)), Some(p)) => (e.clone(), p),
            _ => {
                if j.ack {
                    self.error(&m, "broadcast needs an event name and a payload");
                }
                return;
            }
        };
        if is_protocol_event(&event) {
            if j.ack {
                self.error(&m, "the event name is reserved for protocol frames");
            }
            return;
        }
        let payload = match serde_json::value::to_raw_value(payload) {
            Ok(p) if p.get().len() <= self.st.core.limits.max_event_bytes => p,
            _ => {
                if j.ack {
                    self.error(&m, "payload_size_exceeded");
                }
                return;
            }
        };
        let (ack, self_broadcast) = (j.ack, j.self_broadcast);
        let (channel, _) = self.topics(&j.name);
        let except = (!self_broadcast).then(|| self.session.conn.clone());
        let res = self
            .st
            .core
            .fanout
            .publish_encoded(&[channel], &event, &payload, except.as_ref())
            .await;
        if ack {
            match res {
                Ok(()) => self.reply(&m, "ok", json!({})),
                Err(e) => self.error(&m, &e.public_message()),
            }
        }
    }

    async fn presence(&mut self, m: Msg) {
        let Some(j) = self.channels.get(&m.topic) else {
            return self.error(&m, "unmatched topic");
        };
        let (_, presence) = self.topics(&j.name);
        let key = j.presence_key.clone();
        let name = j.name.clone();
        match m.payload.get("event").and_then(Value::as_str) {
            Some("track") => {
                let Some(Value::Object(payload)) = m.payload.get("payload") else {
                    return self.error(&m, "Presence track payload must be a map");
                };
                if serde_json::to_vec(payload).map_or(usize::MAX, |v| v.len()) > 4096 {
                    return self.error(&m, "Presence payload too large (at most 4 KiB)");
                }
                // Tracking turns presence on for a channel joined without it.
                let key = match key {
                    Some(k) => k,
                    None => {
                        if let Err(e) = self.st.core.hub.join(self.conn(), &presence) {
                            return self.error(&m, &e.public_message());
                        }
                        // The key the join configured, else one of this join's own.
                        let k = if j.config_key.is_empty() {
                            format!("{}-{}", self.conn(), j.join_ref.as_deref().unwrap_or(""))
                        } else {
                            j.config_key.clone()
                        };
                        if let Some(j) = self.channels.get_mut(&m.topic) {
                            j.presence_key = Some(k.clone());
                        }
                        k
                    }
                };
                let channel = ChannelMembers::channel(&self.project, &name);
                let tracked = self
                    .st
                    .front_end
                    .presence
                    .track(&channel, &key, self.conn(), payload.clone())
                    .await;
                match tracked {
                    Ok(change) => {
                        self.reply(&m, "ok", json!({}));
                        if let Some(change) = change {
                            self.st
                                .members
                                .publish(&self.st.core, &self.project, &name, &change, None)
                                .await;
                        }
                    }
                    Err(TrackError { why, left }) => {
                        self.error(
                            &m,
                            &match why {
                                TrackRefusal::Full => format!(
                                    "PresenceFull: at most {} presence keys per channel",
                                    presence::MAX_MEMBERS
                                ),
                                TrackRefusal::Unavailable => {
                                    "PresenceUnavailable: try again later".to_owned()
                                }
                            },
                        );
                        if let Some(change) = left {
                            self.st
                                .members
                                .publish(&self.st.core, &self.project, &name, &change, None)
                                .await;
                        }
                    }
                }
            }
            Some("untrack") => {
                self.reply(&m, "ok", json!({}));
                self.untrack(&name).await;
            }
            _ => self.error(&m, "presence event must be track or untrack"),
        }
    }

    async fn untrack(&self, name: &str) {
        let channel = ChannelMembers::channel(&self.project, name);
        if let Some(change) = self
            .st
            .front_end
            .presence
            .untrack(&channel, self.conn())
            .await
        {
            self.st
                .members
                .publish(&self.st.core, &self.project, name, &change, None)
                .await;
        }
    }

    fn untrack_later(&self, name: &str) {
        let channel = ChannelMembers::channel(&self.project, name);
        let (st, conn) = (self.st.clone(), self.session.conn.clone());
        let (project, name) = (self.project.clone(), name.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(PRESENCE_GRACE).await;
            if let Some(change) = st.front_end.presence.untrack(&channel, &conn).await {
                st.members
                    .publish(&st.core, &project, &name, &change, None)
                    .await;
            }
        });
    }

    /// A refreshed token must still be valid, still belong to a member of the project (or be a
    /// key of it) and still pass the channel's authorization; otherwise the channel is closed as
    /// upstream does (`system` error, then `phx_close`). A passing token is what the channel
    /// acts as from then on.
    async fn access_token(&mut self, m: Msg) {
        let Some(token) = m.payload.get("access_token").and_then(Value::as_str) else {
            return;
        };
        let Some((name, private)) = self
            .channels
            .get(&m.topic)
            .map(|j| (j.name.clone(), j.private))
        else {
            return;
        };
        let who = match self.who_for(Some(token)).await {
            Ok(w) => channel_access::authorize(
                &self.st.core,
                &w.actor,
                w.anon,
                &self.project,
                &name,
                private,
            )
            .await
            .map(|()| w),
            Err(reason) => Err(reason),
        };
        let reason = match who {
            Ok(w) => {
                if let Some(j) = self.channels.get_mut(&m.topic) {
                    j.who = w;
                }
                return;
            }
            Err(reason) => reason,
        };
        let Some(j) = self.channels.get(&m.topic) else {
            return;
        };
        let join_ref = j.join_ref.clone();
        let name = j.name.clone();
        let message = if reason.starts_with("InvalidJWTToken") {
            "Invalid or expired access token".to_owned()
        } else {
            reason
        };
        let system = json!({
            "extension": "system",
            "status": "error",
            "message": message,
            "channel": name,
        });
        self.push(&m, join_ref.as_deref(), "system", &system);
        let close = wire::encode(
            self.vsn,
            join_ref.as_deref(),
            join_ref.as_deref(),
            &m.topic,
            "phx_close",
            &json!({}),
        );
        self.st
            .front_end
            .queue(self.conn(), Message::Text(close.into()));
        self.leave(&m.topic).await;
    }
}
