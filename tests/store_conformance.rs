//! The store suite against the three implementations: in memory, embedded (redb under a fresh
//! directory) and MongoDB (SecantusDB in CI). A fresh database per run keeps runs independent.

mod support;

use switchboard::embedded::EmbeddedStore;
use switchboard::mongo::MongoStore;
use switchboard_handlers::core::memory::MemoryStore;
use switchboard_handlers::testkit;

#[tokio::test]
async fn memory_store_passes() {
    testkit::run_all(&MemoryStore::new(), "mem").await;
}

#[tokio::test]
async fn embedded_store_passes() {
    let dir = support::data_dir("conformance");
    let store = EmbeddedStore::open(&dir).expect("open the embedded store");
    assert!(
        switchboard_handlers::core::ports::Store::is_empty(&store)
            .await
            .expect("empty")
    );
    testkit::run_all(&store, "embedded").await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// Concurrent writes share commits; each still gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_passes_on_many_threads() {
    let dir = support::data_dir("conformance-mt");
    let store = EmbeddedStore::open(&dir).expect("open the embedded store");
    testkit::run_all(&store, "embedded-mt").await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn embedded_realtime_store_passes() {
    let dir = support::data_dir("realtime");
    let store = EmbeddedStore::open(&dir).expect("open the embedded store");
    switchboard_handlers::core::realtime_channels::conformance::run(&store, "embedded").await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mongo_store_passes() {
    let uri = support::env::mongodb_uri();
    let db = support::unique("conformance");
    let store = MongoStore::connect(&uri, &db)
        .await
        .expect("connect to MongoDB");
    testkit::run_all(&store, "mongo").await;
}

#[tokio::test]
async fn mongo_realtime_store_passes() {
    let uri = support::env::mongodb_uri();
    let db = support::unique("realtime");
    let store = MongoStore::connect(&uri, &db)
        .await
        .expect("connect to MongoDB");
    switchboard_handlers::core::realtime_channels::conformance::run(&store, "mongo").await;
}

#[tokio::test]
async fn unreachable_mongo_is_reported_clearly() {
    let err = match MongoStore::connect(
        "mongodb://127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=500",
        "x",
    )
    .await
    {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot reach MongoDB"), "{err}");
}
