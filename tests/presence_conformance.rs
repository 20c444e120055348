//! The presence suites against both implementations: in process, and Redis (each part in a
//! key prefix of its own, so runs share one server without tearing anything down): the
//! Socket.IO presence store, and the protocol channels' shared presence sets.

mod support;

use std::sync::Arc;
use std::time::Duration;

use switchboard::channel_members::redis::RedisChannelPresence;
use switchboard::presence::RedisPresence;
use switchboard_handlers::core::channel_presence::{ChannelPresence, MemoryChannelPresence, Swept};
use switchboard_handlers::core::ids::UserId;
use switchboard_handlers::core::memory::MemoryPresence;
use switchboard_handlers::core::ports::PresenceStore;
use switchboard_handlers::testkit;

use support::services::{Kind, Service};

#[tokio::test]
async fn memory_presence_passes() {
    testkit::run_presence(&|ttl| Arc::new(MemoryPresence::new(ttl)) as Arc<dyn PresenceStore>)
        .await;
}

#[tokio::test]
async fn redis_presence_passes() {
    let redis = switchboard::redis::connect(&support::env::redis_url(), &support::unique("sio"))
        .await
        .expect("connect to Redis");
    let client = redis.client;
    testkit::run_presence(&|ttl| {
        Arc::new(RedisPresence::new(
            client.clone(),
            &support::unique("presence"),
            ttl,
        )) as Arc<dyn PresenceStore>
    })
    .await;
}

/// Redis going away mid-run: every call reports it within the command timeout, and the same
/// store works again once Redis is back.
#[tokio::test]
async fn redis_presence_reports_an_outage_and_recovers() {
    let mut server = Service::start(Kind::Redis);
    let redis = switchboard::redis::connect(&server.redis_url(), &support::unique("sio"))
        .await
        .expect("connect to Redis");
    let store = RedisPresence::new(
        redis.client.clone(),
        &support::unique("presence"),
        Duration::from_secs(60),
    );
    let user = UserId::try_from("alice").expect("id");
    assert!(
        store
            .add_connection(&user, &"c0".to_owned())
            .await
            .expect("add")
    );

    server.down();
    tokio::time::timeout(
        Duration::from_secs(60),
        testkit::presence_unavailable(&store),
    )
    .await
    .expect("every call answers within its timeout");

    server.up();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match store.add_connection(&user, &"c1".to_owned()).await {
            // The restarted server kept nothing, so this is the user's first connection again.
            Ok(first) => {
                assert!(first);
                break;
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("Redis is back but presence still fails: {e}"),
        }
    }
    assert_eq!(store.connections(&user).await.expect("count"), 1);
}

#[tokio::test]
async fn memory_channel_presence_passes() {
    testkit::run_channel_presence(
        &|| Arc::new(MemoryChannelPresence::default()) as Arc<dyn ChannelPresence>,
        "",
    )
    .await;
}

#[tokio::test]
async fn redis_channel_presence_passes() {
    let redis = switchboard::redis::connect(&support::env::redis_url(), &support::unique("sio"))
        .await
        .expect("connect to Redis");
    let client = redis.client;
    let prefix = support::unique("pchan");
    testkit::run_channel_presence(
        &|| {
            Arc::new(RedisChannelPresence::new(client.clone(), &prefix, 1))
                as Arc<dyn ChannelPresence>
        },
        "",
    )
    .await;
}

/// A node that stopped refreshing its liveness key: a live node's sweep removes its
/// connections once, each with its key and info, and says which was its key's last.
#[tokio::test]
async fn redis_channel_presence_sweeps_a_dead_nodes_connections() {
    let redis = switchboard::redis::connect(&support::env::redis_url(), &support::unique("sio"))
        .await
        .expect("connect to Redis");
    let prefix = support::unique("pchan");
    let live = RedisChannelPresence::new(redis.client.clone(), &prefix, 7);
    // Node 8 never beats: it is dead from the start.
    let dead = RedisChannelPresence::new(redis.client.clone(), &prefix, 8);
    let ch = "channel:demo:presence-x";
    for (key, info, conn) in [
        ("ann", r#"{"a":1}"#, "7.1"),
        ("ann", r#"{"a":2}"#, "8.1"),
        ("bob", r#"{"b":1}"#, "8.2"),
    ] {
        dead.join(ch, key, info, &conn.to_owned(), 10)
            .await
            .expect("join");
    }
    live.heartbeat().await.expect("heartbeat");
    let mut gone = live.sweep().await.expect("sweep");
    gone.sort_by(|a, b| a.conn.cmp(&b.conn));
    let swept = |key: &str, conn: &str, info: &str, last| Swept {
        channel: ch.into(),
        key: key.into(),
        conn: conn.into(),
        info: info.into(),
        last,
    };
    assert_eq!(
        gone,
        vec![
            swept("ann", "8.1", r#"{"a":2}"#, false),
            swept("bob", "8.2", r#"{"b":1}"#, true),
        ]
    );
    assert!(live.sweep().await.expect("sweep").is_empty(), "each once");
    let left = live.entries(ch).await.expect("entries");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].conn, "7.1");
}
