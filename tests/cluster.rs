//! Two real nodes on one Redis and one MongoDB: room events cross nodes, the sender is excluded
//! everywhere, and both nodes shut down cleanly on SIGTERM.

mod support;

use std::time::Duration;

use serde_json::json;
use support::env::{API_KEY, token};
use support::server::{Options, Server};
use support::sio::Client;

const SHORT: Duration = Duration::from_millis(400);
const WAIT: Duration = Duration::from_secs(5);

fn cluster_options() -> Options {
    Options {
        mongodb_db: Some(support::unique("cluster")),
        redis_prefix: Some(support::unique("cluster")),
        seed_demo: true,
        extra_env: vec![],
    }
}

#[tokio::test]
async fn room_events_cross_nodes() {
    let opts = cluster_options();
    let a = Server::start(opts.clone()).await;
    let b = Server::start(Options {
        seed_demo: false,
        ..opts
    })
    .await;

    let mut alice = Client::connect_user(&a.url(), &token("alice", None)).await;
    let mut bob = Client::connect_user(&b.url(), &token("bob", None)).await;
    let mut carol_b = Client::connect_user(&b.url(), &token("carol", None)).await;
    let mut dave = Client::connect_user(&b.url(), &token("dave", None)).await;
    for (c, p) in [
        (&mut alice, "demo"),
        (&mut bob, "demo"),
        (&mut carol_b, "demo"),
        (&mut dave, "acme"),
    ] {
        assert_eq!(
            c.emit_with_ack("subscribe:project", json!(p)).await["ok"],
            true
        );
    }

    let ack = alice
        .emit_with_ack("custom:event", json!({"projectId": "demo", "n": 1}))
        .await;
    assert_eq!(ack["ok"], true);
    assert_eq!(bob.expect("custom:event", WAIT).await["n"], 1);
    assert_eq!(
        carol_b.expect("custom:event", WAIT).await["from"]["userId"],
        "alice"
    );
    alice.expect_none("custom:event", SHORT).await;
    dave.expect_none("custom:event", SHORT).await;

    // The other direction, and a REST emit on node B to a user connected to node A.
    assert_eq!(
        bob.emit_with_ack("custom:event", json!({"projectId": "demo", "n": 2}))
            .await["ok"],
        true
    );
    assert_eq!(alice.expect("custom:event", WAIT).await["n"], 2);
    let (status, _) = b
        .post(
            "/api/projects/demo/emit",
            ("X-API-Key", API_KEY),
            json!({"room": "user:alice", "event": "direct", "payload": {"hi": true}}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(alice.expect("direct", WAIT).await, json!({"hi": true}));
    bob.expect_none("direct", SHORT).await;

    assert_eq!(a.get("/ready", None).await.0, 200);
    assert_eq!(b.stop().code(), Some(0));
    assert_eq!(a.stop().code(), Some(0));
}
