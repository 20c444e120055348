//! The Pusher front end in the hub: this node's Pusher connections and where their frames go.
//! A broadcast is framed once per channel it targets (a connection subscribed to two of a
//! trigger's channels gets it once per channel, as Pusher does) and the frame is shared by
//! every member.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use tokio::sync::watch;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::{Delivery, FrontEnd, Hub};

use super::apps::Dialect;
use super::channel::name_of_room;
use super::wire;
use crate::channel_members::change::{self, PresenceChange};
use crate::outbox::Outbox;

/// Frames queued for one connection; a connection that falls this far behind is closed.
pub const QUEUE: usize = 256;

/// The hub event that closes a signed-in user's connections (`terminate_connections`),
/// published on their `Topic::AppUser`: clients cannot publish there, and no other front end
/// has members in it.
pub const TERMINATE: &str = "pusher_internal:terminate";

/// What a connection's loop is told to do.
#[derive(Debug)]
pub enum Out {
    Frame(Utf8Bytes),
    /// Send `pusher:error` with this code and close with it.
    Close(u16, &'static str),
}

/// One connection's queue and the dialect its frames are written in.
struct Conn {
    tx: Arc<Outbox<Out>>,
    dialect: Dialect,
}

pub struct PusherFrontEnd {
    conns: Mutex<HashMap<String, Conn>>,
    /// Socket ids are `<node>.<counter>`: a random number per node, so ids are unique across
    /// the cluster and an HTTP trigger's `socket_id` names one connection wherever it lives.
    node: u32,
    next: AtomicU64,
    /// Set when the server drains: every connection closes with 4200 (reconnect at once).
    draining: watch::Sender<bool>,
    /// Ticks every liveness period; one timer for every connection rather than one each.
    ticks: watch::Sender<u64>,
}

impl Default for PusherFrontEnd {
    fn default() -> Self {
        PusherFrontEnd::new(rand::random())
    }
}

impl PusherFrontEnd {
    /// `node`: the process's number in the shared presence sets, which sweep a connection
    /// when its node's liveness key expires.
    pub fn new(node: u32) -> Self {
        PusherFrontEnd {
            conns: Mutex::default(),
            node,
            next: AtomicU64::new(1),
            draining: watch::Sender::new(false),
            ticks: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conn>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's number, the first part of its socket ids.
    pub fn node(&self) -> u32 {
        self.node
    }

    pub fn next_socket_id(&self) -> String {
        format!(
            "{}.{}",
            self.node,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub fn insert(&self, socket_id: &str, dialect: Dialect, tx: Arc<Outbox<Out>>) {
        self.lock()
            .insert(socket_id.to_owned(), Conn { tx, dialect });
    }

    pub fn remove(&self, socket_id: &str) {
        self.lock().remove(socket_id);
    }

    pub fn draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// The liveness ticks every connection checks its peer on.
    pub fn ticks(&self) -> watch::Receiver<u64> {
        self.ticks.subscribe()
    }

    /// Ticks every `period` until the server drains.
    pub async fn run_ticks(self: Arc<Self>, period: std::time::Duration) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut draining = self.draining();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = draining.changed() => return,
            }
            self.ticks.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Tells every connection to close with 4200 so its client reconnects to another node.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// Queues one frame for each connection, built once per dialect that has members (by
    /// `make`); a connection whose queue is full is dropped from the map and its queue
    /// closes, so its loop closes it. Nobody else waits for it.
    fn queue_all<S: AsRef<str>>(&self, conns: &[S], make: impl Fn(Dialect) -> Option<Utf8Bytes>) {
        let mut frames: [Option<Option<Utf8Bytes>>; 2] = [None, None];
        let mut map = self.lock();
        for conn in conns {
            let conn = conn.as_ref();
            let Some(c) = map.get(conn) else {
                continue;
            };
            let slot = &mut frames[c.dialect as usize];
            let Some(frame) = slot.get_or_insert_with(|| make(c.dialect)) else {
                continue;
            };
            if c.tx.push(Out::Frame(frame.clone())).is_err() {
                tracing::warn!(conn, "pusher connection too slow; closing it");
                map.remove(conn);
            }
        }
    }

    /// A change of a presence channel's shared set, as Pusher shows it: `member_added` when a
    /// member (a user id, whichever protocol it joined through) appears, `member_removed`
    /// when it is gone; a member's other connections say nothing.
    fn deliver_presence(&self, hub: &Hub, d: &Delivery<'_>) {
        let Some(change) = PresenceChange::read(d.payload) else {
            return;
        };
        for room in d.rooms {
            let Some(channel) = room
                .strip_prefix("channel-presence:")
                .and_then(|r| r.rsplit_once(':'))
                .map(|(_, name)| name)
                .filter(|n| n.starts_with("presence-"))
            else {
                continue;
            };
            let one = Delivery {
                rooms: std::slice::from_ref(room),
                ..*d
            };
            let members = hub.members_in(&one);
            if members.is_empty() {
                continue;
            }
            let removed = change.leaves.iter().filter(|s| s.edge).filter_map(|s| {
                wire::member_removed(&s.key).map(|data| ("pusher_internal:member_removed", data))
            });
            let added = change.joins.iter().filter(|s| s.edge).filter_map(|s| {
                let info = serde_json::value::to_raw_value(&s.info.pusher_info()).ok()?;
                wire::member_added(&s.key, &info).map(|data| ("pusher_internal:member_added", data))
            });
            for (event, data) in removed.chain(added).collect::<Vec<_>>() {
                self.queue_all(&members, |dialect| {
                    let fixed = (dialect == Dialect::Apinator
                        && event == "pusher_internal:member_added")
                        .then(|| wire::apinator_member_added(&data))
                        .flatten();
                    let data = fixed.as_deref().unwrap_or(&data);
                    wire::frame(dialect, event, Some(channel), data, None)
                });
            }
        }
    }
}

#[async_trait]
impl FrontEnd for PusherFrontEnd {
    fn protocol(&self) -> &'static str {
        "pusher"
    }

    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        if d.event == TERMINATE {
            let map = self.lock();
            for conn in hub.members_in(d) {
                if let Some(c) = map.get(&*conn) {
                    // A full queue is closed by its loop anyway.
                    let _ =
                        c.tx.push(Out::Close(4009, "You got disconnected by the app"));
                }
            }
            return Ok(());
        }
        if d.event == change::EVENT {
            self.deliver_presence(hub, d);
            return Ok(());
        }
        // A Pusher event carries its envelope; anything else published on a channel (a
        // Supabase broadcast, a server-side emit) is its payload, sent as Pusher data: its
        // JSON text (docs/protocols/pusher.md, "On the hub").
        let env = serde_json::from_str::<wire::Delivered<'_>>(d.payload.get()).ok();
        let (data, user_id) = match &env {
            Some(e) => (std::borrow::Cow::Borrowed(e.data), e.user_id.as_deref()),
            None => (wire::as_string(d.payload), None),
        };
        for room in d.rooms {
            let Some(channel) = name_of_room(room) else {
                continue;
            };
            let one = Delivery {
                rooms: std::slice::from_ref(room),
                except_rooms: d.except_rooms,
                except: d.except,
                event: d.event,
                payload: d.payload,
                scope: d.scope,
                front_end: d.front_end,
            };
            let members = hub.members_in(&one);
            if members.is_empty() {
                continue;
            }
            self.queue_all(&members, |dialect| {
                // The Apinator client drops a member_added whose info is not an object.
                let fixed = (dialect == Dialect::Apinator
                    && d.event == "pusher_internal:member_added")
                    .then(|| wire::apinator_member_added(&data))
                    .flatten();
                let data = fixed.as_deref().unwrap_or(&data);
                wire::frame(dialect, d.event, Some(channel), data, user_id)
            });
        }
        Ok(())
    }

    fn send(&self, conn: &str, event: &str, payload: &Value) {
        let data = serde_json::to_string(payload)
            .ok()
            .and_then(|t| serde_json::value::to_raw_value(&t).ok());
        if let Some(data) = data {
            self.queue_all(&[conn], |dialect| {
                wire::frame(dialect, event, None, &data, None)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use switchboard_handlers::core::hub::FrontEndId;
    use switchboard_handlers::core::ids::ProjectId;
    use switchboard_handlers::core::ports::Fanout;

    use super::*;
    use crate::pusher::channel::topic;

    struct Node {
        hub: Hub,
        fe: Arc<PusherFrontEnd>,
        id: FrontEndId,
        project: ProjectId,
    }

    fn node() -> Node {
        let hub = Hub::new(10);
        let fe = Arc::new(PusherFrontEnd::default());
        let id = hub.register(fe.clone()).expect("registers");
        Node {
            hub,
            fe,
            id,
            project: ProjectId::try_from("demo").expect("id"),
        }
    }

    impl Node {
        fn conn(&self, id: &str, capacity: usize, channels: &[&str]) -> Arc<Outbox<Out>> {
            self.hub.open(id, self.id);
            let rx = Arc::new(Outbox::new(capacity));
            self.fe.insert(id, Dialect::Pusher, rx.clone());
            for c in channels {
                self.hub.join(id, &topic(&self.project, c)).expect("joins");
            }
            rx
        }

        async fn publish(&self, channels: &[&str], event: &str, except: Option<&str>) {
            let data = serde_json::value::to_raw_value("{\"x\":1}").expect("raw");
            let payload = wire::Envelope {
                data: &data,
                user_id: Some("u1"),
            }
            .encode()
            .expect("payload");
            let topics: Vec<_> = channels.iter().map(|c| topic(&self.project, c)).collect();
            let except = except.map(str::to_owned);
            self.hub
                .publish_encoded(&topics, event, &payload, except.as_ref())
                .await
                .expect("published");
        }
    }

    fn channels_of(rx: &mut Arc<Outbox<Out>>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(Out::Frame(f)) = rx.try_pop() {
            let v: Value = serde_json::from_str(f.as_str()).expect("json");
            assert_eq!(v["data"], "{\"x\":1}");
            assert_eq!(v["user_id"], "u1");
            out.push(v["channel"].clone());
        }
        out
    }

    #[tokio::test]
    async fn one_frame_per_channel_for_its_members_but_the_sender() {
        let n = node();
        let mut both = n.conn("1.1", 8, &["a", "b"]);
        let mut only_a = n.conn("1.2", 8, &["a"]);
        let mut sender = n.conn("1.3", 8, &["b"]);
        n.publish(&["a", "b"], "ev", Some("1.3")).await;
        assert_eq!(channels_of(&mut both), ["a", "b"]);
        assert_eq!(channels_of(&mut only_a), ["a"]);
        assert!(channels_of(&mut sender).is_empty());
    }

    #[tokio::test]
    async fn a_slow_connection_is_dropped_and_the_others_still_get_everything() {
        let n = node();
        let mut slow = n.conn("1.1", 1, &["a"]);
        let mut fast = n.conn("1.2", 8, &["a"]);
        n.publish(&["a"], "one", None).await;
        n.publish(&["a"], "two", None).await;
        n.publish(&["a"], "three", None).await;
        assert_eq!(channels_of(&mut fast).len(), 3);
        assert_eq!(
            channels_of(&mut slow).len(),
            0,
            "a slow connection's backlog is dropped"
        );
        assert!(slow.is_closed());
    }

    #[tokio::test]
    async fn presence_changes_are_member_events_on_a_members_first_and_last_connection() {
        use crate::channel_members::change::Side;
        use crate::channel_members::info::{MemberInfo, Protocol};

        let n = node();
        let rx = n.conn("1.1", 8, &[]);
        let presence = change::topic(&n.project, "presence-a");
        n.hub.join("1.1", &presence).expect("joins");
        let side = |key: &str, edge| Side {
            key: key.into(),
            conn: "9.sb1".into(),
            info: MemberInfo {
                protocol: Protocol::Supabase,
                info: serde_json::json!({"name": "Bob", "phx_ref": "F1.1"}),
                at: String::new(),
            },
            edge,
        };
        let c = PresenceChange {
            joins: vec![side("bob", true), side("ann", false)],
            leaves: vec![side("cid", true), side("dan", false)],
        };
        let payload = serde_json::value::to_raw_value(&c).expect("raw");
        n.hub
            .publish_encoded(&[presence], change::EVENT, &payload, None)
            .await
            .expect("published");
        let mut frames = Vec::new();
        while let Some(Out::Frame(f)) = rx.try_pop() {
            let v: Value = serde_json::from_str(f.as_str()).expect("json");
            let data: Value =
                serde_json::from_str(v["data"].as_str().expect("data")).expect("json");
            frames.push((v["event"].clone(), v["channel"].clone(), data));
        }
        assert_eq!(
            frames,
            vec![
                (
                    "pusher_internal:member_removed".into(),
                    "presence-a".into(),
                    serde_json::json!({"user_id": "cid"})
                ),
                (
                    "pusher_internal:member_added".into(),
                    "presence-a".into(),
                    serde_json::json!({"user_id": "bob", "user_info": {"name": "Bob"}})
                ),
            ]
        );
    }
}
