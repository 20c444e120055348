//! One `/insforge` socket: the connect middleware (identity, the core session, the event
//! handlers) and the three client events — `realtime:subscribe` (acknowledged),
//! `realtime:unsubscribe` and `realtime:publish`, handled one at a time in arrival order
//! (`order`) — plus the clean-up when it goes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};

use switchboard_handlers::core::realtime_channels::{SenderType, StoredMessage, validate_channel};
use switchboard_handlers::core::session::{self, Session};
use switchboard_handlers::core::time::Timestamp;
use switchboard_handlers::socketio::limits::{RateLimiter, Verdict};

use super::Insforge;
use super::auth::{self, Identity, Kind, Refused};
use super::order::{Turn, Turns};
use super::presence;
use super::wire::{self, Code, Meta, Refusal};

/// Longest event name a client may publish under.
pub const MAX_EVENT_NAME: usize = 100;

/// A socket's channels. Once the socket is closed nothing more is recorded, so a subscribe
/// that completes after the clean-up knows it must undo itself.
#[derive(Default)]
pub struct Subscriptions(Mutex<SubscriptionSet>);

#[derive(Default)]
struct SubscriptionSet {
    names: HashSet<String>,
    closed: bool,
}

impl Subscriptions {
    fn lock(&self) -> std::sync::MutexGuard<'_, SubscriptionSet> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, channel: &str) -> bool {
        self.lock().names.contains(channel)
    }

    /// False when the socket is closed: nothing was recorded.
    pub fn insert(&self, channel: &str) -> bool {
        let mut set = self.lock();
        if set.closed {
            return false;
        }
        set.names.insert(channel.to_owned());
        true
    }

    pub fn remove(&self, channel: &str) -> bool {
        self.lock().names.remove(channel)
    }

    /// Marks the socket closed and returns its channels.
    pub fn close(&self) -> Vec<String> {
        let mut set = self.lock();
        set.closed = true;
        set.names.drain().collect()
    }
}

/// What one socket holds.
pub struct Conn {
    pub session: Session,
    pub identity: Identity,
    /// The presence member this socket counts for: the user id, or the socket id.
    pub presence_id: String,
    /// This socket in the presence store: `<node>.<sid>`, so a dead node's sockets are swept.
    pub presence_conn: String,
    /// Channels subscribed; bounded by the hub's room limit (two rooms per channel).
    pub channels: Subscriptions,
    limiter: Mutex<RateLimiter>,
}

impl Conn {
    fn admit(&self) -> Verdict {
        self.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(Instant::now())
    }
}

/// The connect middleware of `/insforge`.
pub async fn connect<A: Adapter>(
    st: Arc<Insforge>,
    s: SocketRef<A>,
    raw: Result<Value, ParserError>,
) -> Result<(), Refused> {
    let sid = s.id.to_string();
    let param = auth::project_param(s.req_parts().uri.query());
    let identity = match auth::identify(&st.core, &st.anon_keys, raw.ok(), param, &sid).await {
        Ok(i) => i,
        Err(r) => {
            st.core.metrics.refused();
            return Err(r);
        }
    };
    let opened = session::open_as(&st.core, st.id, sid.clone(), identity.actor.clone())
        .await
        .map_err(|r| match r {
            session::Refused::TooManyConnections(n) => Refused::TooManyConnections(n),
            session::Refused::Unauthorized(why) => Refused::InvalidToken(why),
        })?;
    // The socket enters the namespace only after this middleware: mirror what opening joined.
    for room in st.core.hub.topics_of(&opened.conn) {
        s.join(room);
    }
    let limits = &st.core.limits;
    let conn = Arc::new(Conn {
        presence_id: match identity.kind {
            Kind::Authenticated => identity.actor.id.as_str().to_owned(),
            Kind::Admin | Kind::Anon => sid.clone(),
        },
        presence_conn: format!("{}.{sid}", st.node),
        session: opened,
        identity,
        channels: Subscriptions::default(),
        limiter: Mutex::new(RateLimiter::new(
            limits.rate_per_sec,
            limits.rate_burst,
            Instant::now(),
        )),
    });
    s.extensions.insert(Arc::new(Turns::default()));
    install(&s, &st, &conn);
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ChannelReq {
    channel: String,
}

#[derive(Debug, Deserialize)]
struct PublishReq {
    channel: String,
    event: String,
    payload: Value,
}

/// The channel a request names, for the refusal of a malformed one.
fn channel_of(v: &Value) -> &str {
    v.get("channel").and_then(Value::as_str).unwrap_or("")
}

fn install<A: Adapter>(s: &SocketRef<A>, st: &Arc<Insforge>, conn: &Arc<Conn>) {
    let (st1, c1) = (st.clone(), conn.clone());
    s.on(
        "realtime:subscribe",
        async move |turn: Turn, s: SocketRef<A>, TryData(v): TryData<Value>, ack: AckSender<A>| {
            turn.run(async move {
                let v = v.unwrap_or(Value::Null);
                let reply = match gate(&s, &c1) {
                    Err(r) => wire::ack_refused(channel_of(&v), &r),
                    Ok(()) => match serde_json::from_value::<ChannelReq>(v.clone()) {
                        Err(e) => wire::ack_refused(
                            channel_of(&v),
                            &Refusal::new(Code::Unauthorized, format!("Invalid request: {e}")),
                        ),
                        Ok(req) => match presence::subscribe(&st1, &c1, &req.channel).await {
                            Ok(members) => wire::ack_ok(&req.channel, members),
                            Err(r) => wire::ack_refused(&req.channel, &r),
                        },
                    },
                };
                if let Err(e) = ack.send(&reply) {
                    tracing::debug!(error = %e, "insforge subscribe ack not sent");
                }
            });
        },
    );
    let (st2, c2) = (st.clone(), conn.clone());
    s.on(
        "realtime:unsubscribe",
        async move |turn: Turn, s: SocketRef<A>, TryData(v): TryData<Value>| {
            turn.run(async move {
                if gate(&s, &c2).is_err() {
                    return;
                }
                if let Ok(Ok(req)) = v.map(serde_json::from_value::<ChannelReq>) {
                    presence::unsubscribe(&st2, &c2, &req.channel).await;
                }
            });
        },
    );
    let (st3, c3) = (st.clone(), conn.clone());
    s.on(
        "realtime:publish",
        async move |turn: Turn, s: SocketRef<A>, TryData(v): TryData<Value>| {
            turn.run(async move {
                let v = v.unwrap_or(Value::Null);
                let res = match gate(&s, &c3) {
                    Err(r) => Err(r),
                    Ok(()) => match serde_json::from_value::<PublishReq>(v.clone()) {
                        Err(e) => Err(Refusal::new(
                            Code::InvalidEvent,
                            format!("Invalid publish request: {e}"),
                        )),
                        Ok(req) => publish(&st3, &c3, req).await,
                    },
                };
                if let Err(r) = res {
                    let channel = Some(channel_of(&v)).filter(|c| !c.is_empty());
                    if let Err(e) = s.emit("realtime:error", &wire::error_event(channel, &r)) {
                        tracing::debug!(error = %e, "insforge realtime:error not sent");
                    }
                }
            });
        },
    );
    let (st4, c4) = (st.clone(), conn.clone());
    s.on_disconnect(async move || {
        presence::leave_all(&st4, &c4).await;
        session::close(&st4.core, &c4.session).await;
    });
}

/// The per-socket event rate (`RATE_LIMIT_PER_SEC`, `RATE_LIMIT_BURST`): over it an event is
/// refused; far over it the socket is closed.
fn gate<A: Adapter>(s: &SocketRef<A>, conn: &Conn) -> Result<(), Refusal> {
    match conn.admit() {
        Verdict::Allow => Ok(()),
        Verdict::Limit => Err(Refusal::new(
            Code::RateLimited,
            "Too many events; slow down",
        )),
        Verdict::Disconnect => {
            s.clone().disconnect().ok();
            Err(Refusal::new(Code::RateLimited, "Too many events"))
        }
    }
}

fn check_event(event: &str) -> Result<(), Refusal> {
    let bad = |why: &str| Err(Refusal::new(Code::InvalidEvent, why.to_owned()));
    if event.is_empty() || event.len() > MAX_EVENT_NAME {
        return bad(&format!("event must be 1 to {MAX_EVENT_NAME} bytes"));
    }
    if wire::is_reserved_event(event) || switchboard_handlers::core::topic::is_protocol_event(event)
    {
        return bad("event name is reserved");
    }
    if event.chars().any(char::is_control) {
        return bad("event must not contain control characters");
    }
    Ok(())
}

async fn publish(st: &Insforge, conn: &Conn, req: PublishReq) -> Result<(), Refusal> {
    validate_channel(&req.channel).map_err(|e| Refusal::new(Code::InvalidEvent, e))?;
    if !conn.channels.contains(&req.channel) {
        return Err(Refusal::new(
            Code::NotSubscribed,
            "Must subscribe to channel before publishing messages",
        ));
    }
    check_event(&req.event)?;
    let Value::Object(payload) = req.payload else {
        return Err(Refusal::new(
            Code::InvalidEvent,
            "payload must be an object",
        ));
    };
    let size = serde_json::to_vec(&payload).map_or(usize::MAX, |b| b.len());
    let max = st.core.limits.max_event_bytes;
    if size > max {
        return Err(Refusal::new(
            Code::InvalidEvent,
            format!("payload is {size} bytes; the limit is {max}"),
        ));
    }
    let project = &conn.identity.project;
    let def = match st.definitions.admitting(project, &req.channel).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(Refusal::new(
                Code::Unauthorized,
                "Not authorized to publish to this channel",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "insforge publish: definitions unavailable");
            return Err(Refusal::new(Code::Internal, "Failed to publish message"));
        }
    };
    let (sender_type, sender_id) = match conn.identity.kind {
        Kind::Admin => (SenderType::System, None),
        Kind::Anon => (SenderType::User, None),
        Kind::Authenticated => (
            SenderType::User,
            Some(conn.identity.actor.id.as_str().to_owned()),
        ),
    };
    let audience = presence::audience(st, project, &req.channel).await;
    let now = Timestamp::now();
    let message = StoredMessage {
        id: uuid::Uuid::new_v4().to_string(),
        project: project.clone(),
        channel_id: Some(def.id.clone()),
        channel_name: req.channel.clone(),
        event_name: req.event.clone(),
        payload: Value::Object(payload),
        sender_type,
        sender_id,
        ws_audience_count: audience,
        wh_audience_count: def.webhook_urls.len() as u64,
        wh_delivered_count: 0,
        created_at: now.millis(),
    };
    if let Err(e) = st.definitions.store.insert_message(&message).await {
        tracing::warn!(error = %e, "insforge publish: message not stored");
        return Err(Refusal::new(Code::Internal, "Failed to publish message"));
    }
    st.deliver(&message, &def.webhook_urls, now).await;
    Ok(())
}

/// The delivered form of a stored message.
pub fn delivered_form(message: &StoredMessage, now: Timestamp) -> Value {
    let empty = Map::new();
    let fields = message.payload.as_object().unwrap_or(&empty);
    let room = wire::room_channel(&message.channel_name);
    wire::delivered(
        fields,
        &Meta {
            channel: &room,
            message_id: &message.id,
            sender_type: message.sender_type.as_str(),
            sender_id: message.sender_id.as_deref(),
            timestamp: now.to_iso(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_bounded_and_not_reserved() {
        assert!(check_event("status_changed").is_ok());
        assert!(check_event("").is_err());
        assert!(check_event(&"x".repeat(MAX_EVENT_NAME + 1)).is_err());
        assert!(check_event("presence:join").is_err());
        assert!(check_event("realtime:error").is_err());
        assert!(check_event("disconnect").is_err());
    }
}
