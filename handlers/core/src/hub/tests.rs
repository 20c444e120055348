//! The hub's rules with recording front ends and a recording bus: who gets a broadcast, how
//! often it is encoded and forwarded, and `except` for any front end's connection.

use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::ids::{ChatId, UserId};

#[derive(Default)]
struct Recorder {
    name: &'static str,
    /// (event, recipients) per delivery: one entry per broadcast = one encoding.
    deliveries: Mutex<Vec<(String, Vec<String>)>>,
    mirrored: Mutex<Vec<String>>,
}

#[async_trait]
impl FrontEnd for Recorder {
    fn protocol(&self) -> &'static str {
        self.name
    }
    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        let mut to: Vec<String> = hub.members_in(d).iter().map(|c| c.to_string()).collect();
        to.sort();
        self.deliveries
            .lock()
            .expect("lock")
            .push((d.event.to_owned(), to));
        Ok(())
    }
    fn send(&self, conn: &str, event: &str, _payload: &Value) {
        self.deliveries
            .lock()
            .expect("lock")
            .push((event.to_owned(), vec![conn.to_owned()]));
    }
    fn joined(&self, conn: &str, room: &str) {
        self.mirrored
            .lock()
            .expect("lock")
            .push(format!("+{conn}@{room}"));
    }
    fn left(&self, conn: &str, room: &str) {
        self.mirrored
            .lock()
            .expect("lock")
            .push(format!("-{conn}@{room}"));
    }
}

impl Recorder {
    fn named(name: &'static str) -> Arc<Self> {
        Arc::new(Recorder {
            name,
            ..Default::default()
        })
    }
    fn take(&self) -> Vec<(String, Vec<String>)> {
        std::mem::take(&mut *self.deliveries.lock().expect("lock"))
    }
}

#[derive(Default)]
struct Bus(Mutex<Vec<RoomBroadcast>>);

#[async_trait]
impl RemoteRooms for Bus {
    async fn forward(&self, b: RoomBroadcast) {
        self.0.lock().expect("lock").push(b);
    }
}

fn chat(id: &str) -> Topic {
    Topic::Chat(ChatId::try_from(id).expect("id"))
}

struct Two {
    hub: Hub,
    sio: Arc<Recorder>,
    raw: Arc<Recorder>,
    bus: Arc<Bus>,
}

fn two_front_ends() -> Two {
    let hub = Hub::new(10);
    let (sio, raw) = (Recorder::named("sio"), Recorder::named("raw"));
    let a = hub.register(sio.clone()).expect("registers");
    let b = hub.register(raw.clone()).expect("registers");
    let bus = Arc::new(Bus::default());
    hub.set_remote(bus.clone());
    for (c, fe) in [("s1", a), ("s2", a), ("r1", b), ("r2", b)] {
        hub.open(c, fe);
        hub.join(c, &chat("c1")).expect("joins");
    }
    Two { hub, sio, raw, bus }
}

#[tokio::test]
async fn every_front_end_with_members_gets_each_broadcast_once() {
    let t = two_front_ends();
    t.hub
        .publish(
            &[chat("c1"), chat("c2")],
            "message:new",
            &json!({"x": 1}),
            None,
        )
        .await
        .expect("published");
    assert_eq!(
        t.sio.take(),
        [(
            "message:new".to_owned(),
            vec!["s1".to_owned(), "s2".to_owned()]
        )]
    );
    assert_eq!(
        t.raw.take(),
        [(
            "message:new".to_owned(),
            vec!["r1".to_owned(), "r2".to_owned()]
        )]
    );
    assert_eq!(t.bus.0.lock().expect("lock").len(), 1, "forwarded once");
}

#[tokio::test]
async fn a_front_end_without_members_is_not_called() {
    let t = two_front_ends();
    t.hub.close("r1");
    t.hub.close("r2");
    t.hub
        .publish(&[chat("c1")], "message:new", &json!({}), None)
        .await
        .expect("published");
    assert!(t.raw.take().is_empty());
    assert_eq!(t.sio.take().len(), 1);
}

#[tokio::test]
async fn except_skips_the_sender_whatever_its_front_end() {
    let t = two_front_ends();
    let r1 = "r1".to_owned();
    t.hub
        .publish(&[chat("c1")], "message:new", &json!({}), Some(&r1))
        .await
        .expect("published");
    assert_eq!(t.raw.take()[0].1, ["r2"]);
    assert_eq!(t.sio.take()[0].1, ["s1", "s2"]);
    let s2 = "s2".to_owned();
    t.hub
        .publish(&[chat("c1")], "message:new", &json!({}), Some(&s2))
        .await
        .expect("published");
    assert_eq!(t.sio.take()[0].1, ["s1"]);
    assert_eq!(t.raw.take()[0].1, ["r1", "r2"]);
}

#[tokio::test]
async fn remote_broadcasts_reach_every_front_end_and_are_not_forwarded_again() {
    let t = two_front_ends();
    let b = RoomBroadcast {
        rooms: vec![chat("c1").room()],
        except_rooms: vec![],
        except: None,
        event: "message:new".into(),
        payload: serde_json::value::to_raw_value(&json!({"n": 1})).expect("encodes"),
    };
    t.hub.deliver_remote(&b).await;
    assert_eq!(t.sio.take().len(), 1);
    assert_eq!(t.raw.take().len(), 1);
    assert!(t.bus.0.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn except_travels_with_a_broadcast_and_applies_on_the_node_that_has_the_connection() {
    let t = two_front_ends();
    t.hub
        .publish(
            &[chat("c1")],
            "message:new",
            &json!({"n": 1}),
            Some(&"elsewhere".to_owned()),
        )
        .await
        .expect("published");
    let forwarded = t.bus.0.lock().expect("lock").pop().expect("forwarded");
    assert_eq!(forwarded.except.as_deref(), Some("elsewhere"));
    t.sio.take();
    t.raw.take();
    let b = RoomBroadcast {
        rooms: vec![chat("c1").room()],
        except_rooms: vec![],
        except: Some("r1".into()),
        event: "message:new".into(),
        payload: serde_json::value::to_raw_value(&json!({"n": 2})).expect("encodes"),
    };
    t.hub.deliver_remote(&b).await;
    assert_eq!(t.raw.take()[0].1, ["r2"]);
    assert_eq!(t.sio.take()[0].1, ["s1", "s2"]);
}

#[tokio::test]
async fn node_scope_is_not_forwarded_and_except_topics_apply_to_every_front_end() {
    let t = two_front_ends();
    t.hub.join("r2", &chat("muted")).expect("joins");
    t.hub.join("s1", &chat("muted")).expect("joins");
    t.hub
        .publish_except_topics(&[chat("c1")], "mention", &json!({}), &[chat("muted")])
        .await
        .expect("published");
    assert_eq!(t.sio.take()[0].1, ["s2"]);
    assert_eq!(t.raw.take()[0].1, ["r1"]);
    t.hub
        .publish_local(&[chat("c1")], "doc", &json!({}))
        .await
        .expect("published");
    assert_eq!(t.bus.0.lock().expect("lock").len(), 1, "only the first");
}

#[test]
fn joins_and_leaves_are_mirrored_to_the_connections_front_end_only() {
    let t = two_front_ends();
    t.hub.join("r1", &chat("c9")).expect("joins");
    assert!(t.hub.leave("r1", &chat("c9")));
    assert!(!t.hub.leave("r1", &chat("c9")));
    let raw = t.raw.mirrored.lock().expect("lock").clone();
    assert!(raw.ends_with(&["+r1@chat:c9".to_owned(), "-r1@chat:c9".to_owned()]));
    assert!(
        !t.sio
            .mirrored
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m.contains("c9"))
    );
}

#[test]
fn membership_answers_for_every_protocol() {
    let t = two_front_ends();
    let mut members = t.hub.members_of(&chat("c1"));
    members.sort();
    assert_eq!(
        members,
        [
            ("r1".to_owned(), "raw"),
            ("r2".to_owned(), "raw"),
            ("s1".to_owned(), "sio"),
            ("s2".to_owned(), "sio"),
        ]
    );
    assert_eq!(t.hub.topics_of("r1"), ["chat:c1"]);
    assert_eq!(t.hub.connections_by_protocol(), [("sio", 2), ("raw", 2)]);
    let u = Topic::User(UserId::try_from("u1").expect("id"));
    assert!(
        t.hub.join("closed", &u).is_ok(),
        "a closed connection joins nothing"
    );
    assert!(t.hub.members_of(&u).is_empty());
}

#[test]
fn the_room_limit_is_the_hubs() {
    let hub = Hub::new(2);
    let fe = hub.register(Recorder::named("x")).expect("registers");
    hub.open("c", fe);
    hub.join("c", &chat("a")).expect("joins");
    hub.join("c", &chat("b")).expect("joins");
    let err = hub.join("c", &chat("c")).expect_err("full");
    assert_eq!(
        err.to_string(),
        "invalid payload: a socket may be in at most 2 rooms; leave one first"
    );
    assert!(hub.can_join("c", &chat("c")).is_err());
    assert!(hub.can_join("c", &chat("a")).is_ok());
}

#[tokio::test]
async fn local_sends_go_to_the_connections_front_end() {
    let t = two_front_ends();
    t.hub.send(&"r2".to_owned(), "query:result", &json!({}));
    t.hub.send(&"gone".to_owned(), "query:result", &json!({}));
    assert_eq!(
        t.raw.take(),
        [("query:result".to_owned(), vec!["r2".to_owned()])]
    );
    assert!(t.sio.take().is_empty());
}

/// A front end without members that watches a room (pattern subscribers) still gets its
/// broadcasts, here and from other nodes; one that watches nothing does not.
#[derive(Default)]
struct Watcher {
    room: &'static str,
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl FrontEnd for Watcher {
    fn protocol(&self) -> &'static str {
        "watcher"
    }
    async fn deliver(&self, _hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        self.seen.lock().expect("lock").push(d.event.to_owned());
        Ok(())
    }
    fn send(&self, _conn: &str, _event: &str, _payload: &Value) {}
    fn watches(&self, rooms: &[String]) -> bool {
        rooms.iter().any(|r| r == self.room)
    }
}

#[tokio::test]
async fn a_watching_front_end_gets_broadcasts_without_members() {
    let hub = Hub::new(10);
    let w = Arc::new(Watcher {
        room: "chat:c9",
        ..Default::default()
    });
    hub.register(w.clone()).expect("registers");
    hub.publish(&[chat("c9")], "here", &json!({}), None)
        .await
        .expect("published");
    hub.publish(&[chat("c8")], "elsewhere", &json!({}), None)
        .await
        .expect("published");
    hub.deliver_remote(&RoomBroadcast {
        rooms: vec!["chat:c9".into()],
        except_rooms: Vec::new(),
        except: None,
        event: "remote".into(),
        payload: serde_json::value::to_raw_value(&json!(1)).expect("raw"),
    })
    .await;
    assert_eq!(*w.seen.lock().expect("lock"), vec!["here", "remote"]);
}

#[derive(Default)]
struct ObserverLog(Mutex<Vec<String>>);

impl Observer for ObserverLog {
    fn opened(&self, conn: &str, protocol: &'static str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("open {conn} {protocol}"));
    }
    fn closed(&self, conn: &str, protocol: &'static str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("close {conn} {protocol}"));
    }
    fn joined(&self, conn: &str, protocol: &'static str, room: &str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("+{conn} {protocol} {room}"));
    }
    fn left(&self, conn: &str, protocol: &'static str, room: &str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("-{conn} {protocol} {room}"));
    }
}

#[test]
fn the_observer_hears_each_recorded_change_once() {
    let hub = Hub::new(8);
    let sio = hub.register(Recorder::named("sio")).expect("registered");
    let seen = Arc::new(ObserverLog::default());
    hub.set_observer(seen.clone());
    hub.open("s1", sio);
    hub.join("s1", &chat("c1")).expect("joined");
    hub.join("s1", &chat("c1"))
        .expect("joined again: no change");
    hub.join("s1", &chat("c2")).expect("joined");
    assert!(hub.leave("s1", &chat("c2")));
    assert!(
        !hub.leave("s1", &chat("c2")),
        "not in it any more: no change"
    );
    hub.close("s1");
    hub.close("s1");
    assert_eq!(
        *seen.0.lock().expect("lock"),
        [
            "open s1 sio",
            "+s1 sio chat:c1",
            "+s1 sio chat:c2",
            "-s1 sio chat:c2",
            "-s1 sio chat:c1",
            "close s1 sio",
        ]
    );
}

/// Hears the events the hub hands out, but only while `watching`.
#[derive(Default)]
struct TrafficLog {
    watching: std::sync::atomic::AtomicBool,
    sent: Mutex<Vec<String>>,
}

impl Observer for TrafficLog {
    fn opened(&self, _: &str, _: &'static str) {}
    fn closed(&self, _: &str, _: &'static str) {}
    fn joined(&self, _: &str, _: &'static str, _: &str) {}
    fn left(&self, _: &str, _: &'static str, _: &str) {}
    fn watching(&self) -> bool {
        self.watching.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn sent(&self, conn: &str, protocol: &'static str, event: &str, payload: &RawValue) {
        self.sent
            .lock()
            .expect("lock")
            .push(format!("{conn} {protocol} {event} {}", payload.get()));
    }
}

#[tokio::test]
async fn a_watching_observer_hears_each_event_per_recipient_and_nothing_otherwise() {
    let t = two_front_ends();
    let w = Arc::new(TrafficLog::default());
    t.hub.set_observer(w.clone());
    let publish = |except: Option<String>| {
        let hub = &t.hub;
        async move {
            hub.publish(
                &[chat("c1")],
                "message:new",
                &json!({"x": 1}),
                except.as_ref(),
            )
            .await
            .expect("published");
        }
    };
    publish(None).await;
    t.hub.send(&"s1".to_owned(), "query:result", &json!([]));
    assert!(t.hub.watcher().is_none());
    assert!(
        w.sent.lock().expect("lock").is_empty(),
        "unwatched: nothing"
    );

    w.watching.store(true, std::sync::atomic::Ordering::Relaxed);
    publish(Some("s2".to_owned())).await;
    t.hub.send(&"s1".to_owned(), "query:result", &json!([]));
    let mut sent = std::mem::take(&mut *w.sent.lock().expect("lock"));
    sent.sort();
    assert_eq!(
        sent,
        [
            r#"r1 raw message:new {"x":1}"#,
            r#"r2 raw message:new {"x":1}"#,
            r#"s1 sio message:new {"x":1}"#,
            "s1 sio query:result []",
        ]
    );
}
