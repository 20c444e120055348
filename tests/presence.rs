//! Cluster-wide presence on real Redis: tabs on two nodes, the cluster's online list, offline
//! exactly once when the last tab anywhere closes, and once when a node is killed.

mod support;

use std::time::Duration;

use serde_json::json;
use support::env::token;
use support::server::{Options, Server};
use support::sio::Client;

const WAIT: Duration = Duration::from_secs(6);

fn cluster() -> Options {
    Options {
        mongodb_db: Some(support::unique("presence")),
        redis_prefix: Some(support::unique("presence")),
        seed_demo: true,
        extra_env: vec![
            ("PRESENCE_HEARTBEAT_SECS".into(), "1".into()),
            ("PRESENCE_TTL_SECS".into(), "2".into()),
        ],
    }
}

async fn watcher(url: &str, user: &str) -> Client {
    let mut c = Client::connect_user(url, &token(user, None)).await;
    let ack = c.emit_with_ack("subscribe:project", json!("demo")).await;
    assert_eq!(ack["ok"], true, "{ack}");
    c
}

async fn online(url: &str, user: &str) -> Client {
    let mut c = Client::connect_user(url, &token(user, None)).await;
    let ack = c
        .emit_with_ack(
            "presence:online",
            json!({"projectId": "demo", "status": "busy", "metadata": {"tab": url}}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    c
}

#[tokio::test]
async fn tabs_on_two_nodes_go_offline_once() {
    let opts = cluster();
    let a = Server::start(opts.clone()).await;
    let b = Server::start(Options {
        seed_demo: false,
        ..opts
    })
    .await;
    let mut bob = watcher(&a.url(), "bob").await;
    let tab_a = online(&a.url(), "alice").await;
    let got = bob.expect("presence:user:online", WAIT).await;
    assert_eq!(
        (got["userId"].clone(), got["status"].clone()),
        (json!("alice"), json!("busy"))
    );
    let tab_b = online(&b.url(), "alice").await;
    bob.expect("presence:user:online", WAIT).await;

    let ack = bob
        .emit_with_ack("presence:get:online", json!({"projectId": "demo"}))
        .await;
    let users = ack["data"]["users"].as_array().cloned().unwrap_or_default();
    let alice = users
        .iter()
        .find(|u| u["userId"] == "alice")
        .expect("alice listed");
    assert_eq!(alice["connections"], 2, "{ack}");
    assert_eq!(
        bob.expect("presence:online:list", WAIT).await["projectId"],
        "demo"
    );

    drop(tab_a);
    bob.expect_none("presence:user:offline", Duration::from_secs(2))
        .await;
    drop(tab_b);
    let off = bob.expect("presence:user:offline", WAIT).await;
    assert_eq!(off["userId"], "alice");
    bob.expect_none("presence:user:offline", Duration::from_secs(3))
        .await;
}

#[tokio::test]
async fn a_killed_nodes_users_go_offline_once() {
    let opts = cluster();
    let a = Server::start(opts.clone()).await;
    let b = Server::start(Options {
        seed_demo: false,
        ..opts.clone()
    })
    .await;
    let c = Server::start(Options {
        seed_demo: false,
        ..opts
    })
    .await;
    let mut bob = watcher(&a.url(), "bob").await;
    let mut bob2 = watcher(&c.url(), "bob").await;
    let _carol = online(&b.url(), "carol").await;
    bob.expect("presence:user:online", WAIT).await;
    bob2.expect("presence:user:online", WAIT).await;
    b.kill9();
    // TTL 2 s + half a heartbeat, plus slack.
    let off = bob
        .expect("presence:user:offline", Duration::from_secs(8))
        .await;
    assert_eq!(off["userId"], "carol");
    assert_eq!(
        bob2.expect("presence:user:offline", WAIT).await["userId"],
        "carol"
    );
    // Once, although two surviving nodes sweep.
    bob.expect_none("presence:user:offline", Duration::from_secs(3))
        .await;
    bob2.expect_none("presence:user:offline", Duration::from_millis(300))
        .await;
    let ack = bob
        .emit_with_ack("presence:get:online", json!({"projectId": "demo"}))
        .await;
    assert!(
        !ack["data"]["users"]
            .as_array()
            .is_some_and(|u| u.iter().any(|x| x["userId"] == "carol")),
        "{ack}"
    );
}
