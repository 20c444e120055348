//! The presence suite against both implementations: in process, and Redis (each part in a
//! key prefix of its own, so runs share one server without tearing anything down).

mod support;

use std::sync::Arc;
use std::time::Duration;

use switchboard::presence::RedisPresence;
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
