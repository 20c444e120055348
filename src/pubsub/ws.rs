//! `GET /{plateId}/pubsub/{channel}/ws` (legacy `GET /{plateId}/ws/subscribe/{channel}`): a
//! WebSocket subscriber. With an `Authorization` header it is authorized and subscribed before
//! the upgrade (refusals are HTTP envelopes), so a client that sees the socket open misses
//! nothing published after that; without one the first text frame must be `{"auth": "<key>"}`
//! within 5 s, answered by `{"ok":true,"data":{channel, pattern}}` or by the error envelope
//! and close 1008. Data frames are `{"channel", "message"}`; the client's later frames are read
//! (for close and pong) and ignored.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use switchboard_handlers::core::access::Actor;
use switchboard_handlers::core::session;
use switchboard_handlers::socketio::limits::{RateLimiter, Verdict};

use super::error::PubSubError;
use super::front_end::{Closed, Frame, QueueRx, Transport, queue};
use super::sse::SubscribeQuery;
use super::target::{self, Target};
use super::{PubSub, auth, refused};

/// Time allowed for the first-message `{auth}`.
pub const AUTH_WINDOW: Duration = Duration::from_secs(5);
/// A ping goes out after this long without a frame from the client; two such silences close it.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Largest client frame: the auth message is all a client ever needs to send.
const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// How long a closing handshake may take to write before the socket is just dropped.
const CLOSE_WRITE: Duration = Duration::from_secs(1);

pub async fn subscribe(
    State(st): State<Arc<PubSub>>,
    Path((plate, channel)): Path<(String, String)>,
    query: Result<Query<SubscribeQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let prepared = async {
        let Query(q) = query.map_err(|e| PubSubError::InvalidQuery(e.body_text()))?;
        let project = target::plate(&plate)?;
        let pattern = target::flag(q.pattern.as_deref());
        let target = Target::new(project, target::channel(&channel, pattern)?, pattern)?;
        let ws = ws.map_err(|_| PubSubError::WebsocketRequired)?;
        let creds = auth::header(&headers).or(q.auth.as_deref());
        let actor = match creds {
            Some(c) => Some(auth::authorize(&st.core, Some(c), &target.project).await?),
            None => None,
        };
        Ok::<_, PubSubError>((ws, target, actor))
    };
    match prepared.await {
        Ok((ws, target, Some(actor))) => match subscribed(st, actor, target).await {
            Ok(sub) => upgrade(ws, move |socket| serve(sub, socket, None, false)),
            Err(e) => e.into_response(),
        },
        Ok((ws, target, None)) => upgrade(ws, move |socket| first_message(st, socket, target)),
        Err(e) => e.into_response(),
    }
}

pub fn upgrade<F, Fut>(ws: WebSocketUpgrade, f: F) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    // Small buffers: they are held by every idle connection (src/ws_limits.rs).
    ws.read_buffer_size(crate::ws_limits::READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(f)
}

#[derive(Debug, Deserialize)]
struct AuthMessage {
    auth: String,
}

async fn first_message(st: Arc<PubSub>, mut socket: WebSocket, target: Target) {
    let read = async {
        while let Some(Ok(m)) = socket.recv().await {
            match m {
                Message::Text(t) => return Some(t),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
        None
    };
    let text = match tokio::time::timeout(AUTH_WINDOW, read).await {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(_) => {
            let e = PubSubError::MissingAuthorization;
            return refuse(socket, &e, "no auth message within 5 s").await;
        }
    };
    let key = serde_json::from_str::<AuthMessage>(text.as_str()).map(|m| m.auth);
    let actor = match key {
        Ok(key) => auth::authorize(&st.core, Some(&key), &target.project).await,
        Err(_) => Err(PubSubError::MissingAuthorization),
    };
    match actor {
        Ok(actor) => run(st, socket, actor, target, None, true).await,
        Err(e) => refuse(socket, &e, "authorization denied").await,
    }
}

/// The error envelope, then close 1008.
pub async fn refuse(mut socket: WebSocket, e: &PubSubError, reason: &'static str) {
    let _ = tokio::time::timeout(CLOSE_WRITE, async {
        let _ = socket
            .send(Message::Text(e.body().to_string().into()))
            .await;
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1008,
                reason: reason.into(),
            })))
            .await;
    })
    .await;
}

/// A subscription made for a WebSocket (before its upgrade completes, with header auth). One
/// that is dropped without being served — the upgrade failed — undoes itself.
pub struct Subscribed {
    st: Arc<PubSub>,
    conn: Arc<str>,
    target: Target,
    parts: Option<(session::Session, QueueRx, oneshot::Receiver<Closed>)>,
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        if let Some((session, _, _)) = self.parts.take() {
            self.st.front_end.forget(&self.conn, &self.target);
            let st = self.st.clone();
            tokio::spawn(async move { session::close(&st.core, &session).await });
        }
    }
}

/// Opens the connection's session and subscribes it.
pub async fn subscribed(
    st: Arc<PubSub>,
    actor: Actor,
    target: Target,
) -> Result<Subscribed, PubSubError> {
    let conn = st.front_end.next_conn_id();
    let session = session::open_as(&st.core, st.id, conn.to_string(), actor)
        .await
        .map_err(refused)?;
    let (tx, rx) = queue();
    let (kill_tx, kill_rx) = oneshot::channel();
    st.front_end.insert(&conn, Transport::Ws, tx, kill_tx);
    if let Err(e) = st.front_end.subscribe(&st.core.hub, &conn, &target) {
        st.front_end.forget(&conn, &target);
        session::close(&st.core, &session).await;
        return Err(e);
    }
    Ok(Subscribed {
        st,
        conn,
        target,
        parts: Some((session, rx, kill_rx)),
    })
}

/// Subscribes, then serves the connection until it ends.
pub async fn run(
    st: Arc<PubSub>,
    socket: WebSocket,
    actor: Actor,
    target: Target,
    max_dur: Option<Duration>,
    confirm: bool,
) {
    match subscribed(st, actor, target).await {
        Ok(sub) => serve(sub, socket, max_dur, confirm).await,
        Err(e) => refuse(socket, &e, "subscription refused").await,
    }
}

/// A subscribed connection until it ends: the client closes or goes silent, the server drains,
/// the queue overflows, or `max_dur` passes.
pub async fn serve(
    mut sub: Subscribed,
    socket: WebSocket,
    max_dur: Option<Duration>,
    confirm: bool,
) {
    let Some((session, rx, kill_rx)) = sub.parts.take() else {
        return;
    };
    let (st, conn, target) = (sub.st.clone(), sub.conn.clone(), sub.target.clone());
    if confirm {
        let ok = json!({"ok": true, "data": {"channel": target.channel, "pattern": target.pattern.is_some()}});
        st.front_end
            .queue_one(&conn, Frame::Ws(ok.to_string().into()));
    }
    let (sink, stream) = socket.split();
    let mut writer = tokio::spawn(write(sink, rx, kill_rx));
    read(&st, &conn, stream, &mut writer, max_dur).await;
    st.front_end.forget(&conn, &target);
    // The writer has the queue's last frames (a close) to write; it ends once the queue is
    // gone, or is dropped after a short wait.
    if tokio::time::timeout(CLOSE_WRITE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    session::close(&st.core, &session).await;
}

async fn read(
    st: &PubSub,
    conn: &str,
    mut stream: SplitStream<WebSocket>,
    writer: &mut tokio::task::JoinHandle<()>,
    max_dur: Option<Duration>,
) {
    let limits = &st.core.limits;
    let mut limiter = RateLimiter::new(
        limits.rate_per_sec,
        limits.rate_burst,
        std::time::Instant::now(),
    );
    // A `max_dur` beyond the clock's range is no limit.
    let ends = max_dur.and_then(|d| tokio::time::Instant::now().checked_add(d));
    let mut silent = 0u8;
    loop {
        tokio::select! {
            m = tokio::time::timeout(PING_EVERY, stream.next()) => match m {
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return,
                Ok(Some(Ok(m))) => {
                    silent = 0;
                    if matches!(m, Message::Text(_) | Message::Binary(_))
                        && limiter.check(std::time::Instant::now()) == Verdict::Disconnect
                    {
                        return;
                    }
                }
                Err(_) => {
                    silent += 1;
                    if silent >= 2 {
                        return;
                    }
                    st.front_end.queue_one(conn, Frame::WsPing);
                }
            },
            _ = &mut *writer => return,
            () = sleep_until(ends) => {
                st.front_end.queue_one(conn, Frame::WsClose(1000, "max_dur"));
                return;
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: QueueRx,
    mut kill: oneshot::Receiver<Closed>,
) {
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    // Set once the kill sender is gone without a word: the connection is being forgotten, and
    // the frames still queued (a `max_dur` close) are written.
    let mut forgotten = false;
    loop {
        let msg = tokio::select! {
            biased;
            why = &mut kill, if !forgotten => match why {
                Ok(why) => {
                    let code = match why {
                        Closed::SlowConsumer => 1008,
                        Closed::ShuttingDown => 1001,
                    };
                    let _ = tokio::time::timeout(CLOSE_WRITE, sink.send(close(code, why.reason()))).await;
                    return;
                }
                Err(_) => {
                    forgotten = true;
                    continue;
                }
            },
            frame = rx.recv() => match frame {
                Some(Frame::Ws(t)) => Message::Text(t),
                Some(Frame::WsPing) => Message::Ping(Default::default()),
                Some(Frame::WsClose(code, reason)) => {
                    let _ = tokio::time::timeout(CLOSE_WRITE, sink.send(close(code, reason))).await;
                    return;
                }
                Some(Frame::Sse(_)) => continue,
                None => return,
            },
        };
        tokio::select! {
            biased;
            Ok(_) = &mut kill, if !forgotten => return,
            sent = sink.send(msg) => if sent.is_err() { return },
        }
    }
}
