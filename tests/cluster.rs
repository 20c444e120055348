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
    Options::cluster("cluster")
}

#[tokio::test]
async fn room_events_cross_nodes() {
    room_events_cross_nodes_with(cluster_options()).await;
}

/// `ROOM_BUS=false`: the same events through the socketioxide Redis adapter's own broadcast.
#[tokio::test]
async fn room_events_cross_nodes_through_the_adapter() {
    let mut opts = cluster_options();
    opts.extra_env.push(("ROOM_BUS".into(), "false".into()));
    room_events_cross_nodes_with(opts).await;
}

/// A burst from one sender reaches the other node complete and in order: the room bus batches
/// broadcasts, and batching must neither drop nor reorder them.
#[tokio::test]
async fn a_burst_crosses_nodes_in_order() {
    const N: usize = 300;
    let mut opts = cluster_options();
    opts.extra_env
        .push(("RATE_LIMIT_BURST".into(), (2 * N).to_string()));
    let opts_prefix = opts.redis_prefix.clone();
    let (a, b) = two_nodes(opts).await;
    let join = json!({"chatId": "general", "projectId": "demo"});
    let mut alice = Client::connect_user(&a.url(), &token("alice", None)).await;
    let mut bob = Client::connect_user(&b.url(), &token("bob", None)).await;
    let mut bob_a = Client::connect_user(&a.url(), &token("bob", None)).await;
    for c in [&mut alice, &mut bob, &mut bob_a] {
        assert_eq!(c.emit_with_ack("chat:join", join.clone()).await["ok"], true);
    }
    // Garbage on the bus channel (another program, a bad deploy) is logged and skipped.
    let prefix = opts_prefix
        .as_deref()
        .expect("cluster options have a prefix");
    publish_raw(&format!("{prefix}#rooms"), "not a batch").await;
    publish_raw(&format!("{prefix}#rooms"), r#"{"n":"x","b":[{"r":7}]}"#).await;
    for i in 0..N {
        alice.emit(
            "message:send",
            json!({"chatId": "general", "projectId": "demo", "type": "text", "content": format!("burst {i}")}),
        );
    }
    for (node, c) in [("B", &mut bob), ("A", &mut bob_a)] {
        let mut got = Vec::with_capacity(N);
        while got.len() < N {
            let m = c.expect("message:new", WAIT).await;
            if let Some(text) = m["content"].as_str().filter(|t| t.starts_with("burst ")) {
                got.push(text.to_owned());
            }
        }
        let want: Vec<String> = (0..N).map(|i| format!("burst {i}")).collect();
        assert_eq!(got, want, "node {node} got the burst out of order");
    }
    for (node, s) in [("A", &a), ("B", &b)] {
        assert_eq!(
            s.log().matches("unreadable batch on the room bus").count(),
            2,
            "node {node} should have skipped both bad batches:\n{}",
            s.log()
        );
    }
    assert_eq!(b.stop().code(), Some(0));
    assert_eq!(a.stop().code(), Some(0));
}

/// Two nodes on the same Redis and MongoDB; only the first seeds the demo data.
async fn two_nodes(opts: Options) -> (Server, Server) {
    Server::start_pair(opts).await
}

async fn publish_raw(channel: &str, body: &str) {
    let client = redis::Client::open(support::env::redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable");
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(body)
        .query_async::<()>(&mut conn)
        .await
        .expect("published");
}

async fn room_events_cross_nodes_with(opts: Options) {
    let (a, b) = two_nodes(opts).await;

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

/// alice on node A, bob (two tabs) on node B: chat, react, edit, delete, type and call across
/// nodes; the missed-call timeout fires once in the cluster.
#[tokio::test]
async fn chat_and_calls_cross_nodes() {
    let mut opts = cluster_options();
    opts.extra_env
        .push(("CALL_RING_TIMEOUT_SECS".into(), "2".into()));
    let (a, b) = two_nodes(opts).await;
    let join = json!({"chatId": "general", "projectId": "demo"});
    let mut alice = Client::connect_user(&a.url(), &token("alice", None)).await;
    let mut bob = Client::connect_user(&b.url(), &token("bob", None)).await;
    let mut bob_tab = Client::connect_user(&b.url(), &token("bob", None)).await;
    assert_eq!(
        alice.emit_with_ack("chat:join", join.clone()).await["ok"],
        true
    );
    assert_eq!(bob.emit_with_ack("chat:join", join).await["ok"], true);
    assert_eq!(alice.expect("user:online", WAIT).await["userId"], "bob");

    let m = alice
        .emit_with_ack("message:send", json!({"chatId": "general", "projectId": "demo", "type": "text", "content": "across", "mentions": ["bob"]}))
        .await;
    let msg = m["data"]["message"].clone();
    assert_eq!(bob.expect("message:new", WAIT).await, msg);
    // bob's second tab has not joined the chat room: it gets the mention instead.
    assert_eq!(
        bob_tab.expect("message:mention", WAIT).await["message"],
        msg
    );
    bob.expect_none("message:mention", SHORT).await;
    let id = msg["id"].clone();

    bob.emit_with_ack(
        "message:react",
        json!({"chatId": "general", "projectId": "demo", "messageId": id, "emoji": "🎉"}),
    )
    .await;
    assert_eq!(
        alice.expect("message:reaction", WAIT).await["reactions"][0]["count"],
        1
    );
    alice.emit_with_ack("message:edit", json!({"chatId": "general", "projectId": "demo", "messageId": id, "content": "across!"})).await;
    assert_eq!(
        bob.expect("message:edited", WAIT).await["content"],
        "across!"
    );
    bob.emit_with_ack("chat:typing:start", json!({"chatId": "general"}))
        .await;
    assert_eq!(
        alice.expect("user:typing:start", WAIT).await["userId"],
        "bob"
    );
    bob.emit_with_ack("chat:typing:stop", json!({"chatId": "general"}))
        .await;
    assert_eq!(
        alice.expect("user:typing:stop", WAIT).await["userId"],
        "bob"
    );
    alice
        .emit_with_ack(
            "message:delete",
            json!({"chatId": "general", "projectId": "demo", "messageId": id}),
        )
        .await;
    assert_eq!(bob.expect("message:deleted", WAIT).await["messageId"], id);

    // A call from node A rings every tab of bob on node B; unanswered, it is missed once.
    let c = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "audio", "participants": ["bob"]}),
        )
        .await;
    let call_id = c["data"]["callId"].clone();
    assert_eq!(bob.expect("call:incoming", WAIT).await["callId"], call_id);
    assert_eq!(
        bob_tab.expect("call:incoming", WAIT).await["callId"],
        call_id
    );
    assert_eq!(alice.expect("call:missed", WAIT).await["callId"], call_id);
    assert_eq!(bob.expect("call:missed", WAIT).await["callId"], call_id);
    alice
        .expect_none("call:missed", Duration::from_secs(1))
        .await;
    bob.expect_none("call:missed", SHORT).await;

    // Answered across nodes.
    let c = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "video", "participants": ["bob"]}),
        )
        .await;
    let call_id = c["data"]["callId"].clone();
    bob.expect("call:incoming", WAIT).await;
    bob.emit_with_ack(
        "call:accept",
        json!({"chatId": "general", "callerId": "alice", "callId": call_id}),
    )
    .await;
    assert_eq!(alice.expect("call:accepted", WAIT).await["userId"], "bob");
    alice
        .emit_with_ack(
            "call:signal",
            json!({"callId": call_id, "to": "bob", "signal": {"candidate": "x"}}),
        )
        .await;
    assert_eq!(bob_tab.expect("call:signal", WAIT).await["from"], "alice");
    alice
        .emit_with_ack(
            "call:end",
            json!({"chatId": "general", "participants": ["bob"], "callId": call_id}),
        )
        .await;
    assert_eq!(bob.expect("call:ended", WAIT).await["endedBy"], "alice");
    assert_eq!(bob_tab.expect("call:ended", WAIT).await["callId"], call_id);
}

/// The node that started a call dies while it rings: a surviving node's sweep misses the call,
/// once, so no call rings forever.
#[tokio::test]
async fn a_call_whose_node_dies_is_missed_by_the_survivor() {
    let mut opts = cluster_options();
    opts.extra_env
        .push(("CALL_RING_TIMEOUT_SECS".into(), "1".into()));
    let (a, b) = two_nodes(opts).await;
    let mut alice = Client::connect_user(&a.url(), &token("alice", None)).await;
    let mut bob = Client::connect_user(&b.url(), &token("bob", None)).await;
    let c = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "audio", "participants": ["bob"]}),
        )
        .await;
    let call_id = c["data"]["callId"].clone();
    assert_eq!(bob.expect("call:incoming", WAIT).await["callId"], call_id);
    a.kill9();
    // Ring timeout 1 s + sweep grace 5 s + one sweep interval.
    let missed = bob.expect("call:missed", Duration::from_secs(12)).await;
    assert_eq!(missed["callId"], call_id);
    bob.expect_none("call:missed", Duration::from_secs(2)).await;
    drop(alice);
    b.stop();
}
