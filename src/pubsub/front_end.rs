//! The pub/sub front end in the hub: this node's SSE and WebSocket subscribers, where their
//! frames go, and the pattern subscriptions.
//!
//! An exact subscriber joins the hub room of its channel. A pattern subscriber joins no room
//! (rooms are exact names): it sits in this front end's per-plate pattern index, and the front
//! end [`FrontEnd::watches`] every channel room of a plate that has pattern subscribers on this
//! node, so the hub hands it those broadcasts too — from this node and from the bus — and
//! `deliver` matches the channel against the plate's distinct patterns. A connection holds one
//! channel or one pattern, so each message reaches it once.
//!
//! A broadcast is framed once per channel and transport, and the frame is shared by every
//! subscriber. Each connection has a bounded queue; one that falls `QUEUE` frames behind is
//! told to close (`slow_consumer`) and dropped, and nobody else waits for it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::{Delivery, FrontEnd, Hub};
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::topic::Topic;

use super::error::PubSubError;
use super::patterns::Glob;
use super::target::Target;

/// Frames queued for one connection before it counts as a slow consumer.
pub const QUEUE: usize = 256;
/// Bytes queued for one connection before it counts as a slow consumer: frames are shared
/// between subscribers, but one subscriber's backlog must not pin `QUEUE` messages of
/// `MAX_EVENT_BYTES` each.
pub const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// Distinct patterns per plate on one node: every publish on the plate is matched against
/// each of them, so this bounds a publish's matching cost.
pub const MAX_PATTERNS_PER_PLATE: usize = 64;

/// The hub event of a pub/sub publish.
pub const EVENT: &str = "message";

/// One frame, as its transport writes it.
#[derive(Debug, Clone)]
pub enum Frame {
    Sse(Bytes),
    Ws(Utf8Bytes),
    WsPing,
    /// Close the WebSocket with this code and reason after the frames before it.
    WsClose(u16, &'static str),
}

impl Frame {
    fn len(&self) -> usize {
        match self {
            Frame::Sse(b) => b.len(),
            Frame::Ws(t) => t.as_str().len(),
            Frame::WsPing | Frame::WsClose(..) => 0,
        }
    }
}

/// A subscriber's queue, bounded in frames and in bytes. The sending half stays in the front
/// end; the receiving half is the connection's writer (or SSE body).
pub struct QueueTx {
    tx: mpsc::Sender<Frame>,
    bytes: Arc<AtomicUsize>,
}

pub struct QueueRx {
    rx: mpsc::Receiver<Frame>,
    bytes: Arc<AtomicUsize>,
}

pub fn queue() -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        QueueTx {
            tx,
            bytes: bytes.clone(),
        },
        QueueRx { rx, bytes },
    )
}

impl QueueRx {
    pub async fn recv(&mut self) -> Option<Frame> {
        let f = self.rx.recv().await?;
        self.bytes.fetch_sub(f.len(), Ordering::Relaxed);
        Some(f)
    }

    /// A frame already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Frame> {
        let f = self.rx.try_recv().ok()?;
        self.bytes.fetch_sub(f.len(), Ordering::Relaxed);
        Some(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Ws,
}

/// Why the server ends a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    SlowConsumer,
    ShuttingDown,
}

impl Closed {
    pub fn reason(self) -> &'static str {
        match self {
            Closed::SlowConsumer => "slow_consumer",
            Closed::ShuttingDown => "shutting_down",
        }
    }
}

struct Conn {
    tx: QueueTx,
    transport: Transport,
    kill: Option<oneshot::Sender<Closed>>,
}

struct PatternSubs {
    glob: Glob,
    conns: Vec<Arc<str>>,
}

/// Distinct patterns of one plate, by their text.
type PlatePatterns = HashMap<String, PatternSubs>;

pub struct PubSubFrontEnd {
    conns: Mutex<HashMap<Arc<str>, Conn>>,
    /// Keyed by the plate's channel-room prefix (`channel:<escaped plate>:`).
    patterns: RwLock<HashMap<String, PlatePatterns>>,
    /// Pattern subscribers on this node: while 0, `watches` answers at once.
    pattern_conns: AtomicUsize,
    /// Connection ids are `ps.<node>.<n>`, unique across the cluster.
    node: u32,
    next: AtomicU64,
    /// SSE `id:` values: increasing for the node's life, and started from the clock so a
    /// restarted node's ids keep increasing (within JavaScript's safe integers).
    next_event_id: AtomicU64,
}

impl Default for PubSubFrontEnd {
    fn default() -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        PubSubFrontEnd {
            conns: Mutex::default(),
            patterns: RwLock::default(),
            pattern_conns: AtomicUsize::new(0),
            node: rand::random(),
            next: AtomicU64::new(0),
            next_event_id: AtomicU64::new(now_ms.saturating_mul(1000)),
        }
    }
}

/// `channel:<escaped plate>:`, the start of every channel room of the plate.
fn room_prefix(project: &ProjectId) -> String {
    Topic::Channel(project.clone(), String::new()).room()
}

/// A channel room's prefix (up to and with the `:` after the plate) and channel name. The
/// plate part is escaped, so it holds no `:`.
fn split_channel_room(room: &str) -> Option<(&str, &str)> {
    let rest = room.strip_prefix("channel:")?;
    let colon = rest.find(':')?;
    let cut = "channel:".len() + colon + 1;
    Some((room.get(..cut)?, room.get(cut..)?))
}

impl PubSubFrontEnd {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Conn>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn next_conn_id(&self) -> Arc<str> {
        Arc::from(format!(
            "ps.{}.{}",
            self.node,
            self.next.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Registers a connection's queue (before it subscribes, so nothing is missed).
    pub fn insert(
        &self,
        conn: &Arc<str>,
        transport: Transport,
        tx: QueueTx,
        kill: oneshot::Sender<Closed>,
    ) {
        self.lock().insert(
            conn.clone(),
            Conn {
                tx,
                transport,
                kill: Some(kill),
            },
        );
    }

    /// Subscribes a registered connection: the channel's hub room, or the plate's patterns.
    pub fn subscribe(
        &self,
        hub: &Hub,
        conn: &Arc<str>,
        target: &Target,
    ) -> Result<(), PubSubError> {
        let Some(glob) = &target.pattern else {
            return hub
                .join(conn, &target.topic())
                .map_err(|e| PubSubError::TooMany(e.public_message()));
        };
        let mut all = self.patterns.write().unwrap_or_else(|p| p.into_inner());
        let plate = all.entry(room_prefix(&target.project)).or_default();
        if !plate.contains_key(&target.channel) && plate.len() >= MAX_PATTERNS_PER_PLATE {
            return Err(PubSubError::TooMany(format!(
                "at most {MAX_PATTERNS_PER_PLATE} distinct patterns per plate"
            )));
        }
        plate
            .entry(target.channel.clone())
            .or_insert_with(|| PatternSubs {
                glob: glob.clone(),
                conns: Vec::new(),
            })
            .conns
            .push(conn.clone());
        self.pattern_conns.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The connection is gone: its queue and pattern entry. (The hub drops its rooms.)
    pub fn forget(&self, conn: &str, target: &Target) {
        self.lock().remove(conn);
        if target.pattern.is_none() {
            return;
        }
        let mut all = self.patterns.write().unwrap_or_else(|p| p.into_inner());
        let prefix = room_prefix(&target.project);
        let Some(plate) = all.get_mut(&prefix) else {
            return;
        };
        if let Some(subs) = plate.get_mut(&target.channel)
            && let Some(i) = subs.conns.iter().position(|c| &**c == conn)
        {
            subs.conns.swap_remove(i);
            self.pattern_conns.fetch_sub(1, Ordering::Relaxed);
            if subs.conns.is_empty() {
                plate.remove(&target.channel);
            }
        }
        if plate.is_empty() {
            all.remove(&prefix);
        }
    }

    /// Queues one frame for a connection (a confirmation, a ping).
    pub fn queue_one(&self, conn: &str, frame: Frame) {
        let mut map = self.lock();
        Self::queue(&mut map, conn, || Some(frame));
    }

    fn queue(map: &mut HashMap<Arc<str>, Conn>, conn: &str, frame: impl FnOnce() -> Option<Frame>) {
        let Some(c) = map.get_mut(conn) else {
            return;
        };
        let Some(frame) = frame() else {
            return;
        };
        if !Self::push(c, conn, frame) {
            map.remove(conn);
        }
    }

    /// Queues `frame` for `c`; false when the connection is to be forgotten (its queue
    /// overflowed, and it was told to close, or its reader is gone).
    fn push(c: &mut Conn, conn: &str, frame: Frame) -> bool {
        let len = frame.len();
        let over = c.tx.bytes.load(Ordering::Relaxed) + len > MAX_QUEUED_BYTES;
        let sent = if over {
            Err(mpsc::error::TrySendError::Full(frame))
        } else {
            c.tx.tx.try_send(frame)
        };
        match sent {
            Ok(()) => {
                c.tx.bytes.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(conn, "pub/sub subscriber too slow; closing it");
                if let Some(kill) = c.kill.take() {
                    let _ = kill.send(Closed::SlowConsumer);
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Subscribers on this node that `channel` of the plate reaches by pattern, minus `except`.
    fn pattern_matches(&self, prefix: &str, channel: &str, except: Option<&str>) -> Vec<Arc<str>> {
        let all = self.patterns.read().unwrap_or_else(|p| p.into_inner());
        let Some(plate) = all.get(prefix) else {
            return Vec::new();
        };
        plate
            .values()
            .filter(|s| s.glob.matches(channel))
            .flat_map(|s| s.conns.iter())
            .filter(|c| Some(&***c) != except)
            .cloned()
            .collect()
    }

    /// How many of this node's subscribers (every protocol) a publish to `target` reaches.
    pub fn receivers_here(&self, hub: &Hub, topic: &Topic) -> usize {
        let room = topic.room();
        let exact = hub.member_count(topic);
        let by_pattern = match split_channel_room(&room) {
            Some((prefix, channel)) if self.pattern_conns.load(Ordering::Relaxed) > 0 => {
                self.pattern_matches(prefix, channel, None).len()
            }
            _ => 0,
        };
        exact + by_pattern
    }

    /// Ends every subscription (shutdown): dropping the queues ends SSE streams and closes the
    /// WebSockets.
    pub fn drain(&self) {
        for (_, mut c) in self.lock().drain() {
            if let Some(kill) = c.kill.take() {
                let _ = kill.send(Closed::ShuttingDown);
            }
        }
    }

    fn next_event_id(&self) -> u64 {
        self.next_event_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A pub/sub publish travels as `{"data": "<the message's JSON text>"}`, the envelope a Pusher
/// event has on the hub, so Pusher and Supabase clients get it as they get each other's events.
pub fn envelope(message: &RawValue) -> Option<Box<RawValue>> {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        data: &'a str,
    }
    serde_json::value::to_raw_value(&Envelope {
        data: message.get(),
    })
    .ok()
}

/// `{"channel":…,"message":…}`, the body of every data frame. SSE needs it on one line: a
/// line break in JSON can only be whitespace between tokens, so it becomes a space.
fn data_json(channel: &str, message: &RawValue) -> Option<String> {
    let channel = serde_json::to_string(channel).ok()?;
    let message = message.get();
    let message: Cow<'_, str> = if message.contains(['\n', '\r']) {
        Cow::Owned(message.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(message)
    };
    Some(format!(r#"{{"channel":{channel},"message":{message}}}"#))
}

#[async_trait]
impl FrontEnd for PubSubFrontEnd {
    fn protocol(&self) -> &'static str {
        "pubsub"
    }

    fn watches(&self, rooms: &[String]) -> bool {
        if self.pattern_conns.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let all = self.patterns.read().unwrap_or_else(|p| p.into_inner());
        rooms
            .iter()
            .any(|r| split_channel_room(r).is_some_and(|(prefix, _)| all.contains_key(prefix)))
    }

    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        // Pusher's own control events travel on channels too; they are not messages.
        if d.event.starts_with("pusher_internal:") || d.event.starts_with("pusher:") {
            return Ok(());
        }
        let message = crate::supabase::wire::user_payload(d.payload);
        let watching = self.pattern_conns.load(Ordering::Relaxed) > 0;
        for room in d.rooms {
            let Some((prefix, channel)) = split_channel_room(room) else {
                continue;
            };
            let one = Delivery {
                rooms: std::slice::from_ref(room),
                ..*d
            };
            let mut to = hub.members_in(&one);
            if watching {
                to.extend(self.pattern_matches(prefix, channel, d.except));
            }
            if to.is_empty() {
                continue;
            }
            let Some(json) = data_json(channel, &message) else {
                continue;
            };
            // Built at most once per transport, shared by every subscriber of the channel.
            let mut sse: Option<Bytes> = None;
            let mut ws: Option<Utf8Bytes> = None;
            let mut map = self.lock();
            for conn in &to {
                // One lookup per subscriber; the frame is shared.
                let Some(c) = map.get_mut(&**conn) else {
                    continue;
                };
                let frame = match c.transport {
                    Transport::Sse => Frame::Sse(
                        sse.get_or_insert_with(|| {
                            Bytes::from(format!(
                                "id: {}\nevent: message\ndata: {json}\n\n",
                                self.next_event_id()
                            ))
                        })
                        .clone(),
                    ),
                    Transport::Ws => Frame::Ws(
                        ws.get_or_insert_with(|| Utf8Bytes::from(json.clone()))
                            .clone(),
                    ),
                };
                if !Self::push(c, conn, frame) {
                    map.remove(&**conn);
                }
            }
        }
        Ok(())
    }

    fn send(&self, _conn: &str, _event: &str, _payload: &Value) {
        // Per-connection deliveries (live queries) are not part of pub/sub.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_handlers::core::hub::FrontEndId;
    use switchboard_handlers::core::ports::Fanout;

    struct Sub {
        rx: QueueRx,
        kill: oneshot::Receiver<Closed>,
    }

    fn demo() -> ProjectId {
        ProjectId::try_from("demo").expect("id")
    }

    fn sub(
        hub: &Hub,
        fe: &PubSubFrontEnd,
        id: FrontEndId,
        channel: &str,
        pattern: bool,
    ) -> (Arc<str>, Sub) {
        let conn = fe.next_conn_id();
        hub.open(&conn, id);
        let (tx, rx) = queue();
        let (kill_tx, kill) = oneshot::channel();
        fe.insert(&conn, Transport::Ws, tx, kill_tx);
        let t = Target::new(demo(), channel.to_owned(), pattern).expect("target");
        fe.subscribe(hub, &conn, &t).expect("subscribed");
        (conn, Sub { rx, kill })
    }

    fn texts(s: &mut Sub) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(f) = s.rx.try_recv() {
            if let Frame::Ws(t) = f {
                out.push(t.as_str().to_owned());
            }
        }
        out
    }

    async fn publish(hub: &Hub, channel: &str, message: &str) {
        let raw = RawValue::from_string(message.to_owned()).expect("raw");
        let env = envelope(&raw).expect("envelope");
        hub.publish_encoded(
            &[Topic::Channel(demo(), channel.to_owned())],
            EVENT,
            &env,
            None,
        )
        .await
        .expect("published");
    }

    #[tokio::test]
    async fn exact_and_pattern_subscribers_get_each_message_once() {
        let hub = Hub::new(10);
        let fe = Arc::new(PubSubFrontEnd::default());
        let id = hub.register(fe.clone()).expect("registers");
        let (_, mut exact) = sub(&hub, &fe, id, "user:1", false);
        let (_, mut star) = sub(&hub, &fe, id, "user:*", true);
        let (_, mut all) = sub(&hub, &fe, id, "*", true);
        let (_, mut other) = sub(&hub, &fe, id, "users:*", true);
        publish(&hub, "user:1", "1").await;
        publish(&hub, "user:2", r#""two""#).await;
        assert_eq!(
            texts(&mut exact),
            vec![r#"{"channel":"user:1","message":1}"#]
        );
        let both = vec![
            r#"{"channel":"user:1","message":1}"#.to_owned(),
            r#"{"channel":"user:2","message":"two"}"#.to_owned(),
        ];
        assert_eq!(texts(&mut star), both);
        assert_eq!(texts(&mut all), both);
        assert!(texts(&mut other).is_empty());
        assert_eq!(
            fe.receivers_here(&hub, &Topic::Channel(demo(), "user:1".into())),
            3
        );
    }

    #[tokio::test]
    async fn a_full_queue_closes_that_subscriber_only() {
        let hub = Hub::new(10);
        let fe = Arc::new(PubSubFrontEnd::default());
        let id = hub.register(fe.clone()).expect("registers");
        let (slow_id, mut slow) = sub(&hub, &fe, id, "room", false);
        let (_, mut fast) = sub(&hub, &fe, id, "r*", true);
        for i in 0..QUEUE {
            publish(&hub, "room", &i.to_string()).await;
            assert_eq!(texts(&mut fast).len(), 1);
        }
        assert_eq!(
            slow.kill.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        publish(&hub, "room", "0").await;
        assert_eq!(slow.kill.try_recv(), Ok(Closed::SlowConsumer));
        assert_eq!(
            texts(&mut fast).len(),
            1,
            "the other subscriber keeps receiving"
        );
        assert_eq!(texts(&mut slow).len(), QUEUE);
        // Forgotten: later messages do not reach it.
        publish(&hub, "room", "1").await;
        assert!(texts(&mut slow).is_empty());
        fe.forget(
            &slow_id,
            &Target::new(demo(), "room".into(), false).expect("target"),
        );
    }

    #[tokio::test]
    async fn a_byte_backlog_closes_the_subscriber_too() {
        let hub = Hub::new(10);
        let fe = Arc::new(PubSubFrontEnd::default());
        let id = hub.register(fe.clone()).expect("registers");
        let (_, mut slow) = sub(&hub, &fe, id, "big", false);
        let big = format!("\"{}\"", "x".repeat(MAX_QUEUED_BYTES / 4));
        for _ in 0..3 {
            publish(&hub, "big", &big).await;
        }
        assert_eq!(
            slow.kill.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        // Reading frees the budget.
        assert_eq!(texts(&mut slow).len(), 3);
        for _ in 0..3 {
            publish(&hub, "big", &big).await;
        }
        assert_eq!(
            slow.kill.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        publish(&hub, "big", &big).await;
        assert_eq!(slow.kill.try_recv(), Ok(Closed::SlowConsumer));
    }

    #[test]
    fn the_pattern_cap_holds_per_plate() {
        let hub = Hub::new(10);
        let fe = Arc::new(PubSubFrontEnd::default());
        let id = hub.register(fe.clone()).expect("registers");
        let mut targets = Vec::new();
        for i in 0..MAX_PATTERNS_PER_PLATE {
            let (c, _) = sub(&hub, &fe, id, &format!("p{i}:*"), true);
            targets.push((c, format!("p{i}:*")));
        }
        let conn = fe.next_conn_id();
        let (tx, _rx) = queue();
        let (k, _kill) = oneshot::channel();
        fe.insert(&conn, Transport::Sse, tx, k);
        let more = Target::new(demo(), "more:*".into(), true).expect("target");
        assert!(matches!(
            fe.subscribe(&hub, &conn, &more),
            Err(PubSubError::TooMany(_))
        ));
        // A pattern already held is shared, not counted again.
        let same = Target::new(demo(), "p0:*".into(), true).expect("target");
        fe.subscribe(&hub, &conn, &same)
            .expect("an existing pattern");
        fe.forget(&conn, &same);
        for (c, p) in targets {
            fe.forget(&c, &Target::new(demo(), p, true).expect("target"));
        }
        assert!(!fe.watches(&[Topic::Channel(demo(), "p0:x".into()).room()]));
        assert_eq!(fe.pattern_conns.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn channel_rooms_split_at_the_plate() {
        let room = Topic::Channel(ProjectId::try_from("a:b").expect("id"), "c:d".into()).room();
        let (prefix, channel) = split_channel_room(&room).expect("a channel room");
        assert_eq!(channel, "c:d");
        assert_eq!(
            prefix,
            room_prefix(&ProjectId::try_from("a:b").expect("id"))
        );
        assert!(split_channel_room("channel-presence:a:b").is_none());
        assert!(split_channel_room("chat:x").is_none());
    }

    #[test]
    fn frames_stay_on_one_line() {
        let m = RawValue::from_string("{\n \"a\": [1,\r\n2]\n}".to_owned()).expect("raw");
        let j = data_json("x", &m).expect("json");
        assert!(!j.contains('\n') && !j.contains('\r'));
        let v: Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(v["message"]["a"][1], 2);
        assert_eq!(v["channel"], "x");
    }

    #[test]
    fn the_envelope_round_trips_every_json_kind() {
        for text in [r#""hello""#, "42", r#"{"type":"login"}"#, "[1,2]", "null"] {
            let raw = RawValue::from_string(text.to_owned()).expect("raw");
            let env = envelope(&raw).expect("envelope");
            let back = crate::supabase::wire::user_payload(&env);
            assert_eq!(back.get(), text);
        }
    }
}
