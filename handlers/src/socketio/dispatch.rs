//! The one path every client event takes: rate and size checks in arrival order, a per-socket
//! queue so events of one socket are handled in the order sent (socketioxide would otherwise run
//! them concurrently), decoding, the handler, and the single reply: an ack `{ok, data|error}`
//! plus, on failure, the `error` event to the sender. A panicking handler yields `INTERNAL`.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::FutureExt;
use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::{FromMessageParts, MessageHandler, Value as RawValue};
use socketioxide::socket::Socket;

use crate::core::Core;
use crate::core::error::{AppError, ErrorBody};
use crate::core::hub::Observer;

use super::limits::{ByteBucket, RateLimiter, Verdict};
use super::reply::Reply;
use super::{Ctx, Session};

/// Events a socket may have queued before new ones are refused with RATE_LIMITED.
const QUEUE_CAPACITY: usize = 1024;

struct Job<A: Adapter> {
    socket: SocketRef<A>,
    event: String,
    args: Value,
    ack: AckSender<A>,
    wants_ack: bool,
}

/// Registered as the socket's fallback handler, so it receives every event. Its `call` runs
/// synchronously in arrival order, which is what makes the queue ordered.
struct Ordered<A: Adapter> {
    queue: Arc<Queue<A>>,
    limits: Mutex<SocketLimits>,
    core: Arc<Core>,
    session: Arc<Session>,
}

/// A socket's budgets: events per second for everything it sends, bytes per second for what
/// it relays to others.
struct SocketLimits {
    events: RateLimiter,
    relayed: ByteBucket,
}

/// A socket's pending events. A drain task exists only while there are some: an idle socket
/// holds no task and no channel (a permanent worker task and its channel's first block of
/// 32 slots cost ≈1.5 KB of RSS per idle connection, docs/performance.md).
struct Queue<A: Adapter> {
    state: Mutex<QueueState<A>>,
    /// Detached events (integration calls) running now.
    detached: AtomicUsize,
}

struct QueueState<A: Adapter> {
    jobs: VecDeque<Job<A>>,
    /// A drain task is running; it is the only one taking jobs, so they run in order.
    draining: bool,
}

impl<A: Adapter> Queue<A> {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState<A>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marker for socketioxide's handler type parameter.
pub struct OrderedMarker;

pub fn install<A: Adapter>(s: &SocketRef<A>, core: Arc<Core>, session: Arc<Session>) {
    let now = Instant::now();
    let limits = SocketLimits {
        events: RateLimiter::new(core.limits.rate_per_sec, core.limits.rate_burst, now),
        relayed: ByteBucket::new(
            core.limits.relay_bytes_per_sec,
            core.limits.relay_bytes_burst,
            now,
        ),
    };
    s.on_fallback(Ordered {
        queue: Arc::new(Queue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                draining: false,
            }),
            detached: AtomicUsize::new(0),
        }),
        limits: Mutex::new(limits),
        core,
        session,
    });
}

impl<A: Adapter> MessageHandler<A, OrderedMarker> for Ordered<A> {
    fn call(&self, s: Arc<Socket<A>>, mut v: RawValue, ack_id: Option<i64>) {
        let wants_ack = ack_id.is_some();
        let Ok(ack) = AckSender::from_message_parts(&s, &mut v, &ack_id);
        let socket = SocketRef::from(s);
        let raw = v.as_str().map(|s| s.as_str()).unwrap_or("");
        let size = event_size(&v);
        let watcher = self.core.hub.watcher();
        if let Some(o) = watcher {
            count_inbound(o, &v, size, ack_id);
        }

        let (event, args) = match self.admit(raw, size, Instant::now()) {
            Ok(parts) => parts,
            Err(refusal) => {
                reply(
                    &self.core,
                    &self.session,
                    &socket,
                    &refusal.event,
                    ack,
                    wants_ack,
                    Err(refusal.error),
                    None,
                );
                if refusal.disconnect {
                    tracing::info!(sid = %socket.id, "disconnecting socket over the rate limit for 10 s");
                    let _ = socket.disconnect();
                }
                return;
            }
        };

        if let Some(o) = watcher {
            o.received(socket.id.as_str(), "socket.io", raw);
        }
        let job = Job {
            socket,
            event,
            args,
            ack,
            wants_ack,
        };
        let mut state = self.queue.lock();
        if state.jobs.len() >= QUEUE_CAPACITY {
            drop(state);
            reply(
                &self.core,
                &self.session,
                &job.socket,
                &job.event,
                job.ack,
                job.wants_ack,
                Err(AppError::RateLimited),
                None,
            );
            return;
        }
        state.jobs.push_back(job);
        if !state.draining {
            state.draining = true;
            drop(state);
            tokio::spawn(drain(
                self.queue.clone(),
                self.core.clone(),
                self.session.clone(),
            ));
        }
    }
}

/// Why a packet is answered at once instead of queued.
struct Refusal {
    event: String,
    error: AppError,
    /// Over twice the rate for 10 s: the socket is closed after the answer.
    disconnect: bool,
}

impl Refusal {
    fn new(event: String, error: AppError) -> Refusal {
        Refusal {
            event,
            error,
            disconnect: false,
        }
    }
}

impl<A: Adapter> Ordered<A> {
    fn limits(&self) -> std::sync::MutexGuard<'_, SocketLimits> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The checks a packet passes, in arrival order, before it is queued: the event rate, the
    /// size, a readable event name, and the relay byte budget. Returns the event and payload.
    fn admit(&self, raw: &str, size: usize, now: Instant) -> Result<(String, Value), Refusal> {
        // Every packet counts against the rate, refused ones too: oversized or unreadable
        // packets used to be answered before the limiter and cost nothing.
        match self.limits().events.check(now) {
            Verdict::Allow => {}
            Verdict::Limit => {
                return Err(Refusal::new(event_name_prefix(raw), AppError::RateLimited));
            }
            Verdict::Disconnect => {
                return Err(Refusal {
                    disconnect: true,
                    ..Refusal::new(event_name_prefix(raw), AppError::RateLimited)
                });
            }
        }
        let limit = self.core.limits.max_event_bytes;
        if size > limit {
            return Err(Refusal::new(
                event_name_prefix(raw),
                AppError::PayloadTooLarge { size, limit },
            ));
        }
        let (event, args) = split_packet(raw).map_err(|e| Refusal::new(String::new(), e))?;
        if crate::is_relayed_event(&event) && !self.limits().relayed.take(size, now) {
            return Err(Refusal::new(event, AppError::RateLimited));
        }
        Ok((event, args))
    }
}

/// One event packet from a client, as the Admin UI counts engine.io packets: the text frame
/// (`2`, the ack id, the JSON) and each binary attachment.
fn count_inbound(o: &dyn Observer, v: &RawValue, size: usize, ack_id: Option<i64>) {
    let attachments = match v {
        RawValue::Str(_, bins) => bins.as_ref().map_or(0, |b| b.len()),
        RawValue::Bytes(_) => 0,
    };
    let ack = ack_id.map_or(0, |id| id.to_string().len());
    o.packets_in(
        "socket.io",
        1 + attachments as u64,
        size.saturating_add(1 + ack) as u64,
    );
}

/// An event's size: its JSON text plus its binary attachments, which socketioxide delivers
/// beside the text (they used to pass `MAX_EVENT_BYTES` unmeasured: 9.5 MiB accepted).
fn event_size(v: &RawValue) -> usize {
    match v {
        RawValue::Str(text, bins) => {
            let bins: usize = bins.iter().flatten().map(|b| b.len()).sum();
            text.len().saturating_add(bins)
        }
        RawValue::Bytes(b) => b.len(),
    }
}

/// A Socket.IO event packet's data is `["event", arg0, arg1, ...]`; the contract's payload is
/// the first argument (absent → null).
fn split_packet(raw: &str) -> Result<(String, Value), AppError> {
    let parts: Vec<Value> = serde_json::from_str(raw)
        .map_err(|e| AppError::invalid(format!("unreadable packet: {e}")))?;
    let mut it = parts.into_iter();
    let event = match it.next() {
        Some(Value::String(s)) => s,
        _ => return Err(AppError::invalid("event name must be a string")),
    };
    Ok((event, it.next().unwrap_or(Value::Null)))
}

/// The event name of a packet too large to parse whole: `["name", ...`.
fn event_name_prefix(raw: &str) -> String {
    let head: String = raw.chars().take(200).collect();
    head.strip_prefix("[\"")
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_owned()
}

/// Detached events (integration calls) one socket may have running at once; more are answered
/// RATE_LIMITED.
const MAX_DETACHED: usize = 8;

/// Runs the socket's queued events one after another and ends when the queue is empty.
async fn drain<A: Adapter>(queue: Arc<Queue<A>>, core: Arc<Core>, session: Arc<Session>) {
    loop {
        let job = {
            let mut state = queue.lock();
            match state.jobs.pop_front() {
                Some(job) => job,
                None => {
                    state.draining = false;
                    // A burst may have grown the buffer; an idle socket keeps none of it.
                    state.jobs = VecDeque::new();
                    return;
                }
            }
        };
        if !crate::is_detached_event(&job.event) {
            handle(job, core.clone(), session.clone()).await;
            continue;
        }
        match DetachedSlot::take(&queue) {
            Some(slot) => {
                let (core, session) = (core.clone(), session.clone());
                tokio::spawn(async move {
                    handle(job, core, session).await;
                    drop(slot);
                });
            }
            None => {
                let id = integration_id(&job.args);
                reply(
                    &core,
                    &session,
                    &job.socket,
                    &job.event,
                    job.ack,
                    job.wants_ack,
                    Err(AppError::RateLimited),
                    id,
                );
            }
        }
    }
}

/// One of a socket's `MAX_DETACHED` slots, given back when dropped.
struct DetachedSlot<A: Adapter>(Arc<Queue<A>>);

impl<A: Adapter> DetachedSlot<A> {
    fn take(queue: &Arc<Queue<A>>) -> Option<Self> {
        queue
            .detached
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_DETACHED).then_some(n + 1)
            })
            .ok()
            .map(|_| DetachedSlot(queue.clone()))
    }
}

impl<A: Adapter> Drop for DetachedSlot<A> {
    fn drop(&mut self) {
        self.0.detached.fetch_sub(1, Ordering::AcqRel);
    }
}

fn integration_id(args: &Value) -> Option<String> {
    args.get("integrationId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

async fn handle<A: Adapter>(job: Job<A>, core: Arc<Core>, session: Arc<Session>) {
    let started = Instant::now();
    let integration_id = integration_id(&job.args);
    let cx = Ctx {
        socket: job.socket,
        session,
        core: core.clone(),
    };
    let known = crate::is_known_event(&job.event);
    let result = if known {
        // Boxed so the per-socket worker task stays small: the dispatch future is as large as
        // the largest handler's, and a spawned task is allocated at its full size for the
        // socket's whole life (measured: the bulk of an idle connection's memory).
        AssertUnwindSafe(Box::pin(crate::dispatch(&cx, &job.event, job.args)))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!(event = %job.event, "event handler panicked");
                Err(AppError::internal("handler panicked"))
            })
    } else {
        Err(AppError::invalid(format!(
            "unknown event {:?}",
            truncate(&job.event, 64)
        )))
    };
    let session = cx.session.clone();
    core.metrics
        .event(crate::event_label(&job.event), started.elapsed());
    if known {
        reply(
            &core,
            &session,
            &cx.socket,
            &job.event,
            job.ack,
            job.wants_ack,
            result,
            integration_id,
        );
    } else if job.wants_ack {
        // Contract: unknown events get an INVALID_PAYLOAD ack when one was asked for, and
        // nothing otherwise (no `error` event).
        if let Err(e) = &result {
            core.metrics.failure(e);
        }
        let body = match result {
            Ok(data) => ok_body(data),
            Err(e) => error_body(&e),
        };
        send_ack(&session, &cx.socket, job.ack, &body);
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The ack body: `{ok: true, data}` or `{ok: false, error}`, serialized straight from the
/// handler's answer (no intermediate JSON tree).
#[derive(Serialize)]
#[serde(untagged)]
enum AckBody {
    Ok { ok: bool, data: Reply },
    Err { ok: bool, error: ErrorBody },
}

fn ok_body(data: Reply) -> AckBody {
    AckBody::Ok { ok: true, data }
}

fn error_body(e: &AppError) -> AckBody {
    AckBody::Err {
        ok: false,
        error: ErrorBody::from(e),
    }
}

fn send_ack<A: Adapter>(
    session: &Session,
    socket: &SocketRef<A>,
    ack: AckSender<A>,
    body: &AckBody,
) {
    if let Err(e) = ack.send(body) {
        undelivered(session, socket, "ack", &e);
    }
}

/// A reply the socket's full outgoing buffer (or closed transport) refused. A client that
/// floods and does not read causes one per event, so they are sampled like refusals.
fn undelivered<A: Adapter>(
    session: &Session,
    socket: &SocketRef<A>,
    what: &'static str,
    e: &dyn std::fmt::Display,
) {
    tracing::debug!(sid = %socket.id, error = %e, what, "reply could not be sent");
    if let Some(n) = session.note_undelivered(Instant::now()) {
        tracing::warn!(sid = %socket.id, error = %e, undelivered = n, "replies to a socket could not be sent (outgoing buffer full or closed); sampled");
    }
}

/// The only place a handler's outcome reaches the client.
#[allow(clippy::too_many_arguments)]
fn reply<A: Adapter>(
    core: &Core,
    session: &Session,
    socket: &SocketRef<A>,
    event: &str,
    ack: AckSender<A>,
    wants_ack: bool,
    result: Result<Reply, AppError>,
    integration_id: Option<String>,
) {
    let e = match result {
        Ok(data) => {
            if wants_ack {
                send_ack(session, socket, ack, &ok_body(data));
            }
            return;
        }
        Err(e) => e,
    };
    if wants_ack {
        send_ack(session, socket, ack, &error_body(&e));
    }
    core.metrics.failure(&e);
    if e.is_client_error() {
        tracing::debug!(event, error = %e, "event refused");
    } else if matches!(e, AppError::RateLimited) {
        // A client over its limits is a client mistake too (docs/errors.md): debug for each
        // event, WARN for the first and then one summary per interval.
        tracing::debug!(event, sid = %socket.id, "event rate limited");
        if let Some(n) = session.note_rate_limited(Instant::now()) {
            tracing::warn!(event, sid = %socket.id, refused = n, "socket over its rate limits; further refusals are summed up every 10 s");
        }
    } else {
        tracing::error!(event, error = %e, "event failed");
    }
    let body = ErrorBody::from(&e);
    let emitted = if event.starts_with("integration:") {
        socket.emit(
            crate::core::events::INTEGRATION_ERROR,
            &json!({ "integrationId": integration_id, "code": body.code, "message": body.message }),
        )
    } else {
        socket.emit(
            crate::core::events::ERROR,
            &json!({ "event": event, "code": body.code, "message": body.message }),
        )
    };
    if let Err(err) = emitted {
        undelivered(session, socket, "error event", &err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_split_into_event_and_first_arg() {
        assert_eq!(
            split_packet(r#"["a",{"x":1},2]"#).expect("ok"),
            ("a".to_owned(), json!({"x":1}))
        );
        assert_eq!(
            split_packet(r#"["a"]"#).expect("ok"),
            ("a".to_owned(), Value::Null)
        );
        assert!(split_packet(r#"[1]"#).is_err());
        assert!(split_packet("nope").is_err());
        assert_eq!(event_name_prefix(r#"["custom:event",{"#), "custom:event");
        assert_eq!(event_name_prefix("garbage"), "");
    }
}
