//! One Pusher WebSocket connection's life: the checks before the first frame (app key,
//! protocol version, the app's connection quota), `pusher:connection_established`, then one
//! loop that reads the client's frames, writes what the hub queued for it, pings it, and closes
//! it with the protocol's code when it is too slow, silent, or the server drains.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;

use switchboard_handlers::core::access::{Actor, ActorKind, Role};
use switchboard_handlers::core::ids::UserId;
use switchboard_handlers::core::session;

use super::Pusher;
use super::apps::{App, Dialect, Slot};
use super::front_end::{Out, QUEUE};
use super::subscriptions::Subscriptions;
use super::wire;
use crate::outbox::Outbox;

/// Largest frame a client may send: a client event carries at most 10 KB of data, and
/// presence `channel_data` at most 1 KB of user info.
const MAX_FRAME: usize = 32 * 1024;
/// Advertised to clients: pusher-js pings after this much silence (Pusher's own value).
pub const ACTIVITY_TIMEOUT_SECS: u64 = 120;
/// Advertised to Apinator clients (COMPAT-PROTOCOLS A.13): their only ping comes this long
/// after the handshake, so a long one makes their forced reconnects rare; liveness is the
/// server's WebSocket pings' job.
pub const APINATOR_ACTIVITY_TIMEOUT_SECS: u64 = 3600;
/// How long one write to a client may take before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued frames written together: tungstenite gathers up to this many bytes before it writes
/// (its buffer is only as large as what a connection was sent at once).
const WRITE_BATCH: usize = 16 * 1024;
/// Frames taken from the queue for one write.
const MAX_BATCH: usize = 64;

struct Refusal {
    dialect: Dialect,
    code: u16,
    message: &'static str,
}

/// The dialect of a connection that names no known app (A.14): Apinator's client always
/// connects to `ws-<cluster>.apinator.io`, so a deployment answering on such names gets its
/// refusals in that dialect.
fn dialect_of_host(headers: &HeaderMap) -> Dialect {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    if host.starts_with("ws-") && host.ends_with(".apinator.io") {
        Dialect::Apinator
    } else {
        Dialect::Pusher
    }
}

/// The activity timeout a client is told: Apinator's client pings once, that long after the
/// handshake, and reconnects 30 s later unless answered, so it is told a long one.
fn activity_timeout(dialect: Dialect) -> u64 {
    match dialect {
        Dialect::Pusher => ACTIVITY_TIMEOUT_SECS,
        Dialect::Apinator => APINATOR_ACTIVITY_TIMEOUT_SECS,
    }
}

pub(super) async fn upgrade(
    State(st): State<Pusher>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let checked = check(&st, &key, query.as_deref(), dialect_of_host(&headers));
    // tungstenite's defaults (a 128 KiB read buffer, 128 KiB of write batching) cost every idle
    // connection ~140 KB; frames larger than the read buffer are read in several steps.
    ws.read_buffer_size(crate::ws_limits::READ_BUFFER)
        .write_buffer_size(WRITE_BATCH)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| run(st, checked, socket))
}

/// `/app` without a key, or with more after it: 4005 for a WebSocket, 404 for anything else.
pub(super) async fn bad_path(
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let dialect = dialect_of_host(&headers);
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| refuse(socket, dialect, 4005, "Path not found")),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn check(
    st: &Pusher,
    key: &str,
    query: Option<&str>,
    host_dialect: Dialect,
) -> Result<Arc<App>, Refusal> {
    let apps = st.apps.current();
    let app = apps.by_key(key).ok_or(Refusal {
        dialect: host_dialect,
        code: 4001,
        message: "App key not in this cluster",
    })?;
    let protocol = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "protocol")
            .map(|(_, v)| v.into_owned())
    });
    match protocol.as_deref() {
        None | Some("") => Err(Refusal {
            dialect: app.dialect,
            code: 4008,
            message: "No protocol version supplied",
        }),
        Some(p) => match p.parse::<u8>() {
            Ok(5..=7) => Ok(app.clone()),
            _ => Err(Refusal {
                dialect: app.dialect,
                code: 4007,
                message: "Unsupported protocol version",
            }),
        },
    }
}

async fn write(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

/// Writes `first` and the frames queued behind it with one flush: under fan-out a connection
/// often has several waiting, and a flush per frame is a system call per frame. Returns the
/// close the queue ended with, if any; `Err` when the socket failed or stalled.
async fn write_queued(
    socket: &mut WebSocket,
    outbox: &Outbox<Out>,
    first: Utf8Bytes,
) -> Result<Option<(u16, &'static str)>, ()> {
    let batch = async {
        socket.feed(Message::Text(first)).await?;
        let mut close = None;
        for _ in 1..MAX_BATCH {
            match outbox.try_pop() {
                Some(Out::Frame(f)) => socket.feed(Message::Text(f)).await?,
                Some(Out::Close(code, message)) => {
                    close = Some((code, message));
                    break;
                }
                None => break,
            }
        }
        socket.flush().await?;
        Ok::<_, axum::Error>(close)
    };
    match tokio::time::timeout(WRITE_TIMEOUT, batch).await {
        Ok(Ok(close)) => Ok(close),
        _ => Err(()),
    }
}

/// `pusher:error` then a close with the same code: pusher-js acts on either.
async fn close_with(socket: &mut WebSocket, dialect: Dialect, code: u16, message: &str) {
    if write(
        socket,
        Message::Text(wire::error(dialect, Some(code), message)),
    )
    .await
    {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(message.to_owned()),
        };
        let _ = write(socket, Message::Close(Some(frame))).await;
    }
}

async fn refuse(mut socket: WebSocket, dialect: Dialect, code: u16, message: &'static str) {
    close_with(&mut socket, dialect, code, message).await;
}

fn actor_of(app: &App) -> Option<Actor> {
    Some(Actor {
        id: UserId::try_from(format!("pusher-app:{}", app.id)).ok()?,
        name: app.id.clone(),
        role: Role::User,
        kind: ActorKind::AppClient,
    })
}

/// A connection's state while it is served.
struct Conn {
    st: Pusher,
    app: Arc<App>,
    socket: WebSocket,
    socket_id: String,
    outbox: Arc<Outbox<Out>>,
    session: session::Session,
    subs: Subscriptions,
    _slot: Slot,
}

/// The connection's life. An idle connection's task is as large as its largest await, so
/// setting up and tearing down run boxed (the socket moves into the box at once rather than
/// being held by the task beside the state made from it) and the loop borrows the state
/// (docs/performance.md, "Pusher protocol").
fn run(
    st: Pusher,
    checked: Result<Arc<App>, Refusal>,
    socket: WebSocket,
) -> impl Future<Output = ()> + Send {
    let opening: Pin<Box<dyn Future<Output = Option<Conn>> + Send>> = match checked {
        Ok(app) => Box::pin(open(st, app, socket)),
        Err(r) => Box::pin(async move {
            refuse(socket, r.dialect, r.code, r.message).await;
            None
        }),
    };
    async move {
        let Some(mut c) = opening.await else {
            return;
        };
        let close = serve(&mut c).await;
        Box::pin(finish(c, close)).await;
    }
}

async fn open(st: Pusher, app: Arc<App>, mut socket: WebSocket) -> Option<Conn> {
    let Some(slot) = app.take_slot() else {
        refuse(
            socket,
            app.dialect,
            4004,
            "Application is over connection quota",
        )
        .await;
        return None;
    };
    let Some(actor) = actor_of(&app) else {
        refuse(socket, app.dialect, 4100, "Over capacity").await;
        return None;
    };
    let socket_id = st.front_end.next_socket_id();
    let established =
        wire::connection_established(app.dialect, &socket_id, activity_timeout(app.dialect));
    if !write(&mut socket, Message::Text(established)).await {
        return None;
    }
    let outbox = Arc::new(Outbox::<Out>::new(QUEUE));
    // A full queue closes, and the loop closes the socket.
    st.front_end.insert(&socket_id, app.dialect, outbox.clone());
    let session = match session::open_as(&st.core, st.id, socket_id.clone(), actor).await {
        Ok(s) => s,
        Err(refused) => {
            tracing::debug!(%refused, "pusher connection refused");
            st.front_end.remove(&socket_id);
            refuse(socket, app.dialect, 4100, "Over capacity").await;
            return None;
        }
    };
    let subs = Subscriptions::new(st.clone(), app.clone(), socket_id.clone());
    Some(Conn {
        st,
        app,
        socket,
        socket_id,
        outbox,
        session,
        subs,
        _slot: slot,
    })
}

/// Reads frames, writes what the hub queued, checks the peer is alive; returns the close code
/// and reason when the server ends the connection, `None` when the peer did.
async fn serve(c: &mut Conn) -> Option<(u16, &'static str)> {
    let mut draining = c.st.front_end.draining();
    let mut ticks = c.st.front_end.ticks();
    let (mut heard, mut pinged) = (false, false);
    loop {
        tokio::select! {
            msg = c.socket.recv() => {
                let Some(Ok(msg)) = msg else { return None };
                heard = true;
                let replies = match msg {
                    Message::Text(t) => Box::pin(c.subs.handle(t.as_str())).await,
                    Message::Close(_) => return None,
                    _ => continue,
                };
                for r in replies {
                    if !write(&mut c.socket, Message::Text(r)).await {
                        return None;
                    }
                }
                if let Some(close) = c.subs.close.take() {
                    return Some(close);
                }
            }
            out = c.outbox.pop() => match out {
                Some(Out::Frame(frame)) => {
                    // Boxed: an idle connection's task is as large as its largest await.
                    match Box::pin(write_queued(&mut c.socket, &c.outbox, frame)).await {
                        Ok(None) => {}
                        Ok(Some(close)) => return Some(close),
                        Err(()) => return None,
                    }
                }
                Some(Out::Close(code, message)) => return Some((code, message)),
                None => return Some((4100, "Connection too slow: its outgoing queue is full")),
            },
            Ok(()) = ticks.changed() => {
                if heard {
                    (heard, pinged) = (false, false);
                } else if pinged {
                    return Some((4201, "Pong reply not received"));
                } else {
                    pinged = true;
                    if !write(&mut c.socket, Message::Ping(Bytes::new())).await {
                        return None;
                    }
                }
            }
            _ = draining.changed() => {
                return Some((4200, "The server is restarting; reconnect"));
            }
        }
    }
}

async fn finish(mut c: Conn, close: Option<(u16, &'static str)>) {
    c.st.front_end.remove(&c.socket_id);
    c.subs.leave_all().await;
    session::close(&c.st.core, &c.session).await;
    if let Some((code, message)) = close {
        close_with(&mut c.socket, c.app.dialect, code, message).await;
    }
}
