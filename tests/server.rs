//! The binary on its own (embedded store, local adapter): CLI, configuration refusals, auth at
//! the handshake, the first events, REST routes and SIGTERM.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::env::{API_KEY, token};
use support::server::{Options, Server, bin};
use support::sio::{Client, ConnectError};

const SHORT: Duration = Duration::from_millis(300);
const WAIT: Duration = Duration::from_secs(3);

#[test]
fn token_command_prints_a_valid_jwt() {
    let out = Command::new(bin())
        .args(["token", "--user", "alice", "--role", "admin", "--ttl", "60"])
        .env_clear()
        .env("JWT_SECRET", support::env::JWT_SECRET)
        .output()
        .expect("run");
    assert!(out.status.success());
    let t = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(t.trim().matches('.').count(), 2, "{t}");
    let bad = Command::new(bin())
        .args(["token", "--user", "alice", "--role", "root"])
        .env_clear()
        .output()
        .expect("run");
    assert!(!bad.status.success());
}

#[test]
fn dev_secret_is_refused_with_mongodb_or_redis() {
    for (k, v) in [
        ("MONGODB_URI", "mongodb://127.0.0.1:1"),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ] {
        let out = Command::new(bin())
            .env_clear()
            .env(k, v)
            .env("PORT", "0")
            .output()
            .expect("run");
        assert!(
            !out.status.success(),
            "{k} with the dev secret must not start"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("JWT_SECRET"), "{err}");
    }
}

#[tokio::test]
async fn unreachable_redis_fails_start_up_clearly() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(bin())
            .env_clear()
            .env("PORT", "0")
            .env("JWT_SECRET", support::env::JWT_SECRET)
            .env("REDIS_URL", "redis://127.0.0.1:1/?protocol=resp3")
            .env("SEEDS_DIR", support::env::seeds_dir())
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach Redis"), "{err}");
}

#[tokio::test]
async fn handshake_auth() {
    let s = Server::start(Options::memory()).await;
    let url = s.url();
    for (auth, why) in [
        (json!({}), "missing"),
        (json!({ "token": "garbage" }), "invalid"),
        (
            json!({ "token": switchboard::auth::mint("another-secret-entirely", "alice", None, 60, None).expect("mint") }),
            "signature",
        ),
        (json!({ "apiKey": "wrong" }), "API key"),
        (json!({ "token": 42 }), "malformed"),
    ] {
        match Client::connect(&url, auth.clone()).await {
            Err(ConnectError::Refused(m)) => {
                assert!(m.starts_with("UNAUTHORIZED"), "{auth}: {m}");
                assert!(m.contains(why), "{auth}: {m} should mention {why}");
            }
            Err(e) => panic!("{auth}: {e:?}"),
            Ok(_) => panic!("{auth} was accepted"),
        }
    }
    Client::connect(&url, json!({ "apiKey": API_KEY }))
        .await
        .expect("api key accepted");
    Client::connect_user(&url, &token("alice", None)).await;
    assert_eq!(s.stop().code(), Some(0), "SIGTERM exits 0");
}

#[tokio::test]
async fn subscribe_and_custom_event_in_one_node() {
    let s = Server::start(Options::memory()).await;
    let url = s.url();
    let mut alice = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let mut carol = Client::connect_user(&url, &token("carol", None)).await;
    let mut dave = Client::connect_user(&url, &token("dave", None)).await;

    assert_eq!(
        alice
            .emit_with_ack("subscribe:project", json!("demo"))
            .await,
        json!({"ok": true, "data": {"projectId": "demo"}})
    );
    assert_eq!(
        bob.emit_with_ack("subscribe:project", json!({"projectId": "demo"}))
            .await["ok"],
        true
    );
    assert_eq!(
        dave.emit_with_ack("subscribe:project", json!("acme")).await["ok"],
        true
    );

    let ack = alice
        .emit_with_ack("custom:event", json!({"projectId": "demo", "x": 1}))
        .await;
    assert_eq!(ack, json!({"ok": true, "data": {}}));
    let got = bob.expect("custom:event", WAIT).await;
    assert_eq!(got["x"], 1);
    assert_eq!(got["from"]["userId"], "alice");
    alice.expect_none("custom:event", SHORT).await;
    carol.expect_none("custom:event", SHORT).await;
    dave.expect_none("custom:event", SHORT).await;

    // Non-member: FORBIDDEN, nothing joined, nothing emitted.
    let ack = alice
        .emit_with_ack("subscribe:project", json!("acme"))
        .await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN");
    let err = alice.expect("error", WAIT).await;
    assert_eq!(err["event"], "subscribe:project");
    let ack = alice
        .emit_with_ack("custom:event", json!({"projectId": "acme", "x": 2}))
        .await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN");
    dave.expect_none("custom:event", SHORT).await;

    // Bad payloads: INVALID_PAYLOAD, socket stays usable.
    for bad in [
        json!(null),
        json!(7),
        json!([]),
        json!({}),
        json!({"projectId": "x".repeat(129)}),
    ] {
        let ack = alice.emit_with_ack("custom:event", bad.clone()).await;
        assert_eq!(ack["error"]["code"], "INVALID_PAYLOAD", "{bad}");
    }
    let ack = alice.emit_with_ack("no:such:event", json!({})).await;
    assert_eq!(ack["error"]["code"], "INVALID_PAYLOAD");
    bob.expect_none("custom:event", SHORT).await;
    assert_eq!(
        alice
            .emit_with_ack("unsubscribe:project", json!("demo"))
            .await["ok"],
        true
    );
}

#[tokio::test]
async fn user_room_and_rest() {
    let s = Server::start(Options::memory()).await;
    let url = s.url();
    let mut tab1 = Client::connect_user(&url, &token("alice", None)).await;
    let mut tab2 = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let key = ("X-API-Key", API_KEY);
    let (status, _) = s
        .post(
            "/api/projects/demo/emit",
            key,
            json!({"room": "user:alice", "event": "note", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(tab1.expect("note", WAIT).await, json!({"n": 1}));
    assert_eq!(tab2.expect("note", WAIT).await, json!({"n": 1}));
    bob.expect_none("note", SHORT).await;

    let (status, body) = s
        .post(
            "/api/projects/demo/emit",
            key,
            json!({"room": "project:acme", "event": "x", "payload": {}}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    let alice_bearer = format!("Bearer {}", token("alice", None));
    let (status, _) = s
        .post(
            "/api/projects/demo/emit",
            ("Authorization", &alice_bearer),
            json!({"event": "x"}),
        )
        .await;
    assert_eq!(status, 403);

    assert_eq!(s.get("/health", None).await, (200, json!({"status": "ok"})));
    assert_eq!(s.get("/ready", None).await.0, 200);
    let (status, body) = s
        .get("/api/projects", Some(("Authorization", &alice_bearer)))
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["projects"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["demo"]);
    let (_, body) = s.get("/api/projects", Some(key)).await;
    assert_eq!(body["projects"].as_array().map(Vec::len), Some(2));
    let admin = format!("Bearer {}", token("root", Some("admin")));
    assert_eq!(
        s.get("/api/projects/acme", Some(("Authorization", &admin)))
            .await
            .0,
        200
    );
    assert_eq!(
        s.get("/api/projects/nope", Some(("Authorization", &admin)))
            .await
            .0,
        404
    );
    let (status, body) = s
        .get("/api/projects/acme", Some(("Authorization", &alice_bearer)))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let (status, body) = s.get("/api/projects", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let (status, body) = s.get("/api/nothing/here", Some(key)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (_, metrics) = s.get("/metrics", None).await;
    let metrics = metrics.as_str().expect("text").to_owned();
    assert!(metrics.contains("switchboard_connections 3"), "{metrics}");
}

#[tokio::test]
async fn room_and_socket_limits() {
    let s = Server::start(Options {
        extra_env: vec![
            ("MAX_ROOMS_PER_SOCKET".into(), "3".into()),
            ("MAX_SOCKETS_PER_USER".into(), "2".into()),
        ],
        ..Options::memory()
    })
    .await;
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    // user:alice + project:demo + chat:general = 3 rooms.
    assert_eq!(
        alice
            .emit_with_ack("subscribe:project", json!("demo"))
            .await["ok"],
        true
    );
    let ack = alice
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let over = alice
        .emit_with_ack(
            "subscribe:collection",
            json!({"projectId": "demo", "collectionId": "tasks"}),
        )
        .await;
    assert_eq!(over["error"]["code"], "INVALID_PAYLOAD", "{over}");
    // Re-joining a room it is in is not a new room.
    let again = alice
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(again["ok"], true, "{again}");

    let _second = Client::connect_user(&s.url(), &token("alice", None)).await;
    match Client::connect(&s.url(), json!({"token": token("alice", None)})).await {
        Err(ConnectError::Refused(m)) => assert!(m.starts_with("RATE_LIMITED"), "{m}"),
        Ok(_) => panic!("a third socket for alice was accepted"),
        Err(e) => panic!("unexpected: {e:?}"),
    }
    // Other users are unaffected.
    let _bob = Client::connect_user(&s.url(), &token("bob", None)).await;
}
