//! Service outages on real processes: MongoDB stopped mid-run (writes answer UNAVAILABLE and
//! nothing unstored is reported sent; /ready turns 503; the server recovers by itself, change
//! stream included) and Redis stopped mid-run (local delivery goes on; cross-node delivery
//! resumes after Redis returns, without a restart).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::env::{API_KEY, token};
use support::server::{Options, Server};
use support::services::{Kind, Service};
use support::sio::Client;

const WAIT: Duration = Duration::from_secs(8);

fn send(text: &str) -> Value {
    json!({"chatId": "general", "projectId": "demo", "type": "text", "content": text})
}

async fn joined(url: &str, user: &str) -> Client {
    let mut c = Client::connect_user(url, &token(user, None)).await;
    let ack = c
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    c
}

async fn ready_status(s: &Server) -> (u16, Value) {
    s.get("/ready", None).await
}

async fn wait_ready(s: &Server, want: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (st, body) = ready_status(s).await;
        if st == want {
            return body;
        }
        assert!(Instant::now() < deadline, "/ready stayed {st}: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn mongodb_outage_is_reported_and_recovered() {
    let mut db = Service::start(Kind::Mongo);
    let s = Server::start(Options {
        mongodb_db: Some(support::unique("outage")),
        redis_prefix: None,
        seed_demo: true,
        extra_env: vec![("MONGODB_URI".into(), db.mongodb_uri())],
    })
    .await;
    let mut alice = joined(&s.url(), "alice").await;
    let mut bob = joined(&s.url(), "bob").await;
    let ack = alice
        .emit_with_ack(
            "subscribe:collection",
            json!({"projectId": "demo", "collectionId": "tasks"}),
        )
        .await;
    assert_eq!(ack["ok"], true);
    let before = alice.emit_with_ack("message:send", send("before")).await;
    assert_eq!(before["ok"], true, "{before}");
    bob.expect("message:new", WAIT).await;

    db.down();
    let during = alice.emit_with_ack("message:send", send("during")).await;
    assert_eq!(during["ok"], false, "{during}");
    assert_eq!(during["error"]["code"], "UNAVAILABLE", "{during}");
    bob.expect_none("message:new", Duration::from_millis(500))
        .await;
    let body = wait_ready(&s, 503, Duration::from_secs(10)).await;
    assert!(body.to_string().contains("mongodb"), "{body}");
    let (_, metrics) = s.get("/metrics", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    let db_errors = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_database_errors_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(
        db_errors.is_some_and(|n| n >= 1),
        "/metrics counts the failed write as a database error:\n{metrics}"
    );

    db.up();
    wait_ready(&s, 200, Duration::from_secs(30)).await;
    let after = alice.emit_with_ack("message:send", send("after")).await;
    assert_eq!(after["ok"], true, "{after}");
    assert_eq!(bob.expect("message:new", WAIT).await["content"], "after");

    // Nothing reported sent is missing, and nothing that failed was stored.
    let (st, hist) = s
        .get(
            "/api/chats/general/messages?limit=100",
            Some(("x-api-key", API_KEY)),
        )
        .await;
    assert_eq!(st, 200);
    let contents: Vec<String> = hist["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["content"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(contents.contains(&"before".to_owned()), "{contents:?}");
    assert!(contents.contains(&"after".to_owned()), "{contents:?}");
    assert!(!contents.contains(&"during".to_owned()), "{contents:?}");

    // The change stream came back too: a write made now is delivered.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let (st, _) = s
            .send(
                "POST",
                "/api/projects/demo/collections/tasks/documents",
                ("x-api-key", API_KEY),
                Some(json!({"id": format!("after-outage-{n}")})),
            )
            .await;
        assert_eq!(st, 201);
        if let Some(got) = alice
            .try_expect("document:created", Duration::from_secs(2))
            .await
        {
            assert!(
                got["documentId"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("after-outage"))
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change stream did not resume: {}",
            s.log()
        );
    }
}

#[tokio::test]
async fn redis_outage_keeps_local_delivery_and_resumes_cross_node() {
    let mut redis = Service::start(Kind::Redis);
    let opts = Options {
        mongodb_db: None,
        redis_prefix: Some(support::unique("redis-outage")),
        seed_demo: true,
        extra_env: vec![("REDIS_URL".into(), redis.redis_url())],
    };
    let a = Server::start(opts.clone()).await;
    let b = Server::start(opts).await;
    let mut alice = joined(&a.url(), "alice").await;
    let mut bob_a = joined(&a.url(), "bob").await;
    let mut bob_b = joined(&b.url(), "bob").await;
    assert_eq!(
        alice.emit_with_ack("message:send", send("one")).await["ok"],
        true
    );
    bob_a.expect("message:new", WAIT).await;
    bob_b.expect("message:new", WAIT).await;

    redis.down();
    let ack = alice.emit_with_ack("message:send", send("local")).await;
    assert_eq!(
        bob_a.expect("message:new", WAIT).await["content"],
        "local",
        "local delivery must not depend on Redis ({ack})"
    );
    let body = wait_ready(&a, 503, Duration::from_secs(10)).await;
    assert!(body.to_string().contains("redis"), "{body}");

    redis.up();
    wait_ready(&a, 200, Duration::from_secs(30)).await;
    wait_ready(&b, 200, Duration::from_secs(30)).await;
    // Cross-node delivery resumes once both nodes have resubscribed.
    until_messages_cross(&mut alice, &mut bob_b, &a, &b, "the room bus").await;
}

/// Sends from `alice` (node A) until `bob_b` (node B) receives one, within 30 s.
async fn until_messages_cross(
    alice: &mut Client,
    bob_b: &mut Client,
    a: &Server,
    b: &Server,
    road: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let text = format!("resumed {n}");
        let ack = alice.emit_with_ack("message:send", send(&text)).await;
        assert_eq!(ack["ok"], true, "{ack}");
        if let Some(got) = bob_b
            .try_expect("message:new", Duration::from_secs(1))
            .await
            && got["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("resumed"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cross-node delivery through {road} did not resume:\nA: {}\nB: {}",
            a.log(),
            b.log()
        );
    }
}

/// The same outage with room broadcasts on the Socket.IO adapter (`ROOM_BUS=false`): the
/// adapter's own subscriptions come back after Redis returns, and so does the document change
/// bus, with no restart of either node.
#[tokio::test]
async fn redis_outage_resumes_the_adapter_and_the_change_bus() {
    let mut redis = Service::start(Kind::Redis);
    let opts = Options {
        mongodb_db: None,
        redis_prefix: Some(support::unique("redis-outage-adapter")),
        seed_demo: true,
        extra_env: vec![
            ("REDIS_URL".into(), redis.redis_url()),
            ("ROOM_BUS".into(), "false".into()),
        ],
    };
    let a = Server::start(opts.clone()).await;
    let b = Server::start(opts).await;
    let mut alice = joined(&a.url(), "alice").await;
    let mut bob_b = joined(&b.url(), "bob").await;
    let ack = bob_b
        .emit_with_ack(
            "subscribe:collection",
            json!({"projectId": "demo", "collectionId": "tasks"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        alice.emit_with_ack("message:send", send("one")).await["ok"],
        true
    );
    bob_b.expect("message:new", WAIT).await;

    redis.down();
    wait_ready(&a, 503, Duration::from_secs(10)).await;
    redis.up();
    wait_ready(&a, 200, Duration::from_secs(30)).await;
    wait_ready(&b, 200, Duration::from_secs(30)).await;

    until_messages_cross(&mut alice, &mut bob_b, &a, &b, "the adapter").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let (st, _) = a
            .send(
                "POST",
                "/api/projects/demo/collections/tasks/documents",
                ("x-api-key", API_KEY),
                Some(json!({"id": format!("after-redis-{n}")})),
            )
            .await;
        assert_eq!(st, 201);
        if let Some(got) = bob_b
            .try_expect("document:created", Duration::from_secs(1))
            .await
            && got["documentId"]
                .as_str()
                .is_some_and(|d| d.starts_with("after-redis"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "document changes did not cross nodes again:\nA: {}\nB: {}",
            a.log(),
            b.log()
        );
    }
    for (node, s) in [("A", &a), ("B", &b)] {
        assert!(
            s.log()
                .contains("Redis reconnected; channels subscribed again"),
            "node {node} should log its resubscription:\n{}",
            s.log()
        );
    }
}
