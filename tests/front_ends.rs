//! The hub's seam, proved with a second front end: the raw JSON WebSocket protocol
//! (`RAW_WS=true`, src/raw_ws.rs) joins the same topics as Socket.IO clients, through the same
//! use cases and authorization, and receives the same broadcasts — on one node, and across two
//! nodes on the room bus.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::env::{API_KEY, token};
use support::server::{Options, Server};
use support::sio::Client;
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_millis(400);
const WAIT: Duration = Duration::from_secs(5);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw-ws client: frames in arrival order, and a bounded wait for each.
struct Raw {
    ws: Ws,
}

impl Raw {
    async fn connect(server: &Server, query: &str) -> (Raw, Value) {
        let url = format!(
            "{}/raw-ws?{query}",
            server.url().replacen("http://", "ws://", 1)
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connects in time")
            .expect("upgrade accepted");
        let mut raw = Raw { ws };
        loop {
            let f = raw
                .next_frame(WAIT)
                .await
                .expect("ready or refused in time");
            if f["type"] == "ready" || f["type"] == "refused" {
                return (raw, f);
            }
        }
    }

    async fn user(server: &Server, user: &str) -> Raw {
        let (raw, first) = Raw::connect(server, &format!("token={}", token(user, None))).await;
        assert_eq!(first["type"], "ready", "{first}");
        raw
    }

    async fn next_frame(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).ok();
            }
        }
    }

    async fn request(&mut self, op: &str, data: Value) -> Value {
        let frame = json!({"op": op, "data": data}).to_string();
        self.send_text(&frame).await
    }

    async fn send_text(&mut self, frame: &str) -> Value {
        self.ws
            .send(Message::Text(frame.into()))
            .await
            .expect("sent");
        loop {
            let f = self.next_frame(WAIT).await.expect("a reply in time");
            if f["type"] == "reply" {
                return f;
            }
        }
    }

    /// The data of the next `event` frame, skipping others.
    async fn expect(&mut self, event: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self
                .next_frame(left)
                .await
                .unwrap_or_else(|| panic!("no {event} within {within:?}"));
            if f["type"] == "event" && f["event"] == event {
                return f["data"].clone();
            }
        }
    }

    async fn expect_none(&mut self, event: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while let Some(f) = self
            .next_frame(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            assert!(
                !(f["type"] == "event" && f["event"] == event),
                "unexpected {event}: {f}"
            );
        }
    }
}

fn raw_ws(mut opts: Options) -> Options {
    opts.extra_env.push(("RAW_WS".into(), "true".into()));
    opts
}

fn general() -> Value {
    json!({"chatId": "general", "projectId": "demo"})
}

fn send(text: &str) -> Value {
    json!({"chatId": "general", "projectId": "demo", "type": "text", "content": text})
}

#[tokio::test]
async fn a_second_front_end_receives_the_same_broadcasts_on_one_node() {
    let s = Server::start(raw_ws(Options::memory())).await;
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    let mut bob = Client::connect_user(&s.url(), &token("bob", None)).await;
    let mut raw = Raw::user(&s, "bob").await;
    for c in [&mut alice, &mut bob] {
        assert_eq!(c.emit_with_ack("chat:join", general()).await["ok"], true);
    }
    let r = raw.request("chat:join", general()).await;
    assert_eq!(r["ok"], true, "{r}");

    let ack = alice
        .emit_with_ack("message:send", send("hello both"))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let over_sio = bob.expect("message:new", WAIT).await;
    let over_raw = raw.expect("message:new", WAIT).await;
    assert_eq!(over_raw, over_sio, "the same payload on both protocols");
    assert_eq!(over_raw["content"], "hello both");

    // A server-side emit into the project room reaches both protocols' subscribers.
    assert_eq!(
        bob.emit_with_ack("subscribe:project", json!("demo")).await["ok"],
        true
    );
    let r = raw
        .request("project:subscribe", json!({"projectId": "demo"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let (status, _) = s
        .post(
            "/api/projects/demo/emit",
            ("X-API-Key", API_KEY),
            json!({"room": "project:demo", "event": "note", "payload": {"n": 7}}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(bob.expect("note", WAIT).await, json!({"n": 7}));
    assert_eq!(raw.expect("note", WAIT).await, json!({"n": 7}));

    // The user's own room is joined by the core for every protocol.
    let (status, _) = s
        .post(
            "/api/projects/demo/emit",
            ("X-API-Key", API_KEY),
            json!({"room": "user:bob", "event": "direct", "payload": {"to": "bob"}}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(raw.expect("direct", WAIT).await, json!({"to": "bob"}));

    // After leaving, nothing more arrives on the raw connection; Socket.IO still gets it.
    let r = raw.request("leave", json!({"chatId": "general"})).await;
    assert_eq!(r["ok"], true);
    alice.emit("message:send", send("after leave"));
    assert_eq!(
        bob.expect("message:new", WAIT).await["content"],
        "after leave"
    );
    raw.expect_none("message:new", SHORT).await;
}

#[tokio::test]
async fn the_second_front_end_goes_through_the_same_authorization() {
    let s = Server::start(raw_ws(Options::memory())).await;
    // No credentials, a bad token: refused by the core with Socket.IO's reasons.
    let (_, first) = Raw::connect(&s, "").await;
    assert_eq!(first["type"], "refused", "{first}");
    assert!(
        first["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("UNAUTHORIZED"))
    );
    let (_, first) = Raw::connect(&s, "token=not.a.jwt").await;
    assert_eq!(first["type"], "refused", "{first}");

    let mut mallory = Raw::user(&s, "mallory").await;
    let r = mallory.request("chat:join", general()).await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        ["FORBIDDEN", "NOT_FOUND"].contains(&r["error"]["code"].as_str().unwrap_or_default()),
        "{r}"
    );
    let r = mallory
        .request("project:subscribe", json!({"projectId": "demo"}))
        .await;
    assert_eq!(r["ok"], false, "{r}");
    // Bad frames get a clear error and the connection stays usable.
    for bad in [
        "not json",
        r#"{"op":"nope"}"#,
        r#"{"op":"chat:join","data":{"chatId":7}}"#,
    ] {
        let r = mallory.send_text(bad).await;
        assert_eq!(r["ok"], false, "{bad}: {r}");
        assert_eq!(r["error"]["code"], "INVALID_PAYLOAD", "{bad}: {r}");
    }
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    assert_eq!(
        alice.emit_with_ack("chat:join", general()).await["ok"],
        true
    );
    alice.emit("message:send", send("not for mallory"));
    mallory.expect_none("message:new", SHORT).await;
}

#[tokio::test]
async fn a_second_front_end_receives_the_same_broadcasts_across_nodes() {
    let (a, b) = Server::start_pair(raw_ws(Options::cluster("front_ends"))).await;
    let mut alice = Client::connect_user(&a.url(), &token("alice", None)).await;
    let mut bob_b = Client::connect_user(&b.url(), &token("bob", None)).await;
    let mut raw_a = Raw::user(&a, "bob").await;
    let mut raw_b = Raw::user(&b, "bob").await;
    assert_eq!(
        alice.emit_with_ack("chat:join", general()).await["ok"],
        true
    );
    assert_eq!(
        bob_b.emit_with_ack("chat:join", general()).await["ok"],
        true
    );
    for raw in [&mut raw_a, &mut raw_b] {
        let r = raw.request("chat:join", general()).await;
        assert_eq!(r["ok"], true, "{r}");
    }
    for i in 0..20 {
        alice.emit("message:send", send(&format!("m{i}")));
    }
    for i in 0..20 {
        let want = format!("m{i}");
        assert_eq!(bob_b.expect("message:new", WAIT).await["content"], want);
        assert_eq!(
            raw_a.expect("message:new", WAIT).await["content"],
            want,
            "node A"
        );
        assert_eq!(
            raw_b.expect("message:new", WAIT).await["content"],
            want,
            "node B"
        );
    }
    // Exactly once: nothing after the twenty.
    raw_b.expect_none("message:new", SHORT).await;
    raw_a.expect_none("message:new", SHORT).await;
}
