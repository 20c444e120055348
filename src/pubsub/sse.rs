//! `GET /{plateId}/pubsub/{channel}/subscribe` (legacy `GET /{plateId}/subscribe/{channel}`):
//! Server-Sent Events. Each message is `id: <n>`, `event: message`, `data: {channel, message}`;
//! a `: keepalive` comment every 15 s; the stream lasts until the client goes away. A
//! subscriber whose queue overflows gets `event: close` (`slow_consumer`) if it still reads,
//! and its connection is dropped either way.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use tokio::sync::oneshot;

use switchboard_handlers::core::session::{self, Session};

use super::error::PubSubError;
use super::front_end::{Closed, Frame, QueueRx, Transport, queue};
use super::target::{self, Target};
use super::{PubSub, auth, refused};
use crate::connections::CloseConnection;

pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long a slow consumer's connection may take to take its `close` event before it is
/// dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Frames already queued behind the one awaited go out with it in one body chunk (one chunk
/// header, one write) up to these bounds: under load a subscriber's queue holds several.
const BATCH_FRAMES: usize = 64;
const BATCH_BYTES: usize = 64 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct SubscribeQuery {
    pub pattern: Option<String>,
    /// For browsers, whose `EventSource` cannot send headers (it shows in logs: prefer a
    /// temporary client path).
    pub auth: Option<String>,
}

pub async fn subscribe(
    State(st): State<Arc<PubSub>>,
    Path((plate, channel)): Path<(String, String)>,
    query: Result<Query<SubscribeQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    close: Option<Extension<CloseConnection>>,
) -> Response {
    match open(&st, &plate, &channel, query, &headers, close.map(|c| c.0)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn open(
    st: &Arc<PubSub>,
    plate: &str,
    channel: &str,
    query: Result<Query<SubscribeQuery>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
    close: Option<CloseConnection>,
) -> Result<Response, PubSubError> {
    let Query(q) = query.map_err(|e| PubSubError::InvalidQuery(e.body_text()))?;
    let project = target::plate(plate)?;
    let pattern = target::flag(q.pattern.as_deref());
    let target = Target::new(project, target::channel(channel, pattern)?, pattern)?;
    let creds = auth::header(headers).or(q.auth.as_deref());
    let actor = auth::authorize(&st.core, creds, &target.project).await?;

    let conn = st.front_end.next_conn_id();
    let session = session::open_as(&st.core, st.id, conn.to_string(), actor)
        .await
        .map_err(refused)?;
    let (tx, rx) = queue();
    let (kill_tx, kill_rx) = oneshot::channel();
    st.front_end.insert(&conn, Transport::Sse, tx, kill_tx);
    if let Err(e) = st.front_end.subscribe(&st.core.hub, &conn, &target) {
        st.front_end.forget(&conn, &target);
        session::close(&st.core, &session).await;
        return Err(e);
    }
    let guard = Guard {
        st: st.clone(),
        session: Some(session),
        target,
    };
    let body = Body::from_stream(events(rx, kill_rx, close, guard));
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    // Proxies (nginx) would otherwise buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

/// Closes the session when the stream is dropped: the client went away, the connection was
/// dropped, or the server is shutting down.
struct Guard {
    st: Arc<PubSub>,
    session: Option<Session>,
    target: Target,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        self.st.front_end.forget(&session.conn, &self.target);
        let core = self.st.core.clone();
        // Dropped inside the runtime (hyper drops bodies on its tasks); outside, the process
        // is ending anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { session::close(&core, &session).await });
        }
    }
}

/// `first` and the SSE frames queued behind it (within the bounds), as one chunk.
fn batch(first: Bytes, rx: &mut QueueRx) -> Bytes {
    let Some(Frame::Sse(second)) = rx.try_recv() else {
        // Only SSE frames are queued for an SSE subscriber.
        return first;
    };
    let mut buf = Vec::with_capacity((first.len() + second.len()) * 4);
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    for _ in 2..BATCH_FRAMES {
        if buf.len() >= BATCH_BYTES {
            break;
        }
        match rx.try_recv() {
            Some(Frame::Sse(b)) => buf.extend_from_slice(&b),
            Some(_) => continue,
            None => break,
        }
    }
    Bytes::from(buf)
}

struct Stream {
    rx: QueueRx,
    kill: oneshot::Receiver<Closed>,
    keepalive: tokio::time::Interval,
    close: Option<CloseConnection>,
    done: bool,
    _guard: Guard,
}

fn events(
    rx: QueueRx,
    kill: oneshot::Receiver<Closed>,
    close: Option<CloseConnection>,
    guard: Guard,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let start = tokio::time::Instant::now() + KEEPALIVE;
    let s = Stream {
        rx,
        kill,
        keepalive: tokio::time::interval_at(start, KEEPALIVE),
        close,
        done: false,
        _guard: guard,
    };
    stream::unfold(s, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            tokio::select! {
                biased;
                why = &mut s.kill => {
                    s.done = true;
                    let Ok(why) = why else {
                        return None;
                    };
                    // A slow client may never read this: drop its connection shortly after.
                    if why == Closed::SlowConsumer && let Some(close) = s.close.clone() {
                        tokio::spawn(async move {
                            tokio::time::sleep(CLOSE_GRACE).await;
                            close.close();
                        });
                    }
                    let frame = format!("event: close\ndata: {{\"reason\":\"{}\"}}\n\n", why.reason());
                    return Some((Ok(Bytes::from(frame)), s));
                }
                frame = s.rx.recv() => match frame {
                    Some(Frame::Sse(b)) => return Some((Ok(batch(b, &mut s.rx)), s)),
                    Some(_) => continue,
                    None => return None,
                },
                _ = s.keepalive.tick() => {
                    return Some((Ok(Bytes::from_static(b": keepalive\n\n")), s));
                }
            }
        }
    })
}
