//! Live data end to end on real services: writes made outside Switchboard (a plain MongoDB
//! client) reach subscribers through the change stream, and in a two-node cluster every socket
//! gets each change exactly once, in change-stream mode and in own-writes mode.

mod support;

use std::time::Duration;

use mongodb::bson::doc;
use serde_json::{Value, json};
use support::env::{API_KEY, mongodb_uri, token};
use support::server::{Options, Server};
use support::sio::Client;

const WAIT: Duration = Duration::from_secs(8);
const QUIET: Duration = Duration::from_millis(700);

fn cluster(tag: &str, extra: &[(&str, &str)]) -> Options {
    Options {
        mongodb_db: Some(support::unique(tag)),
        redis_prefix: Some(support::unique(tag)),
        seed_demo: true,
        extra_env: extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

async fn second(opts: &Options) -> Server {
    Server::start(Options {
        seed_demo: false,
        ..opts.clone()
    })
    .await
}

async fn watcher(url: &str, user: &str, doc_too: Option<&str>) -> Client {
    let mut c = Client::connect_user(url, &token(user, None)).await;
    let ack = c
        .emit_with_ack(
            "subscribe:collection",
            json!({"projectId": "demo", "collectionId": "tasks"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    if let Some(d) = doc_too {
        let ack = c
            .emit_with_ack(
                "subscribe:document",
                json!({"projectId": "demo", "collectionId": "tasks", "documentId": d}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    c
}

/// Receives `event` for `doc` once, then nothing more for it.
async fn once(c: &mut Client, event: &str, doc: &str) -> Value {
    let got = c.expect(event, WAIT).await;
    assert_eq!(got["documentId"], doc, "{got}");
    c.expect_none(event, QUIET).await;
    got
}

#[tokio::test]
async fn external_writes_reach_every_node_once() {
    let opts = cluster("data-cs", &[]);
    let db_name = opts.mongodb_db.clone().expect("db");
    let a = Server::start(opts.clone()).await;
    let b = second(&opts).await;
    let mut alice = watcher(&a.url(), "alice", Some("ext-1")).await;
    let mut bob = watcher(&b.url(), "bob", Some("ext-1")).await;

    let client = mongodb::Client::with_uri_str(mongodb_uri())
        .await
        .expect("mongo client");
    let coll = client
        .database(&db_name)
        .collection::<mongodb::bson::Document>("data.demo.tasks");
    coll.insert_one(doc! { "_id": "ext-1", "title": "from another service" })
        .await
        .expect("insert");
    for c in [&mut alice, &mut bob] {
        let got = once(c, "document:created", "ext-1").await;
        assert_eq!(got["document"]["title"], "from another service");
        assert_eq!(got["document"]["id"], "ext-1");
        assert_eq!(got["projectId"], "demo");
        assert_eq!(got["collectionId"], "tasks");
    }

    // A REST write on node B: once for each, on both nodes.
    let (status, body) = b
        .send(
            "PATCH",
            "/api/projects/demo/collections/tasks/documents/ext-1",
            ("x-api-key", API_KEY),
            Some(json!({"done": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for c in [&mut alice, &mut bob] {
        let got = once(c, "document:updated", "ext-1").await;
        assert_eq!(got["document"]["done"], true);
    }

    coll.delete_one(doc! { "_id": "ext-1" })
        .await
        .expect("delete");
    for c in [&mut alice, &mut bob] {
        let got = once(c, "document:deleted", "ext-1").await;
        assert_eq!(got["document"], Value::Null);
    }
    client.database(&db_name).drop().await.expect("drop");
}

#[tokio::test]
async fn own_writes_cross_nodes_once_without_change_streams() {
    let opts = cluster("data-own", &[("CHANGE_STREAMS", "false")]);
    let a = Server::start(opts.clone()).await;
    let b = second(&opts).await;
    let mut alice = watcher(&a.url(), "alice", Some("own-1")).await;
    let mut bob = watcher(&b.url(), "bob", None).await;
    let (status, body) = a
        .send(
            "POST",
            "/api/projects/demo/collections/tasks/documents",
            ("authorization", &format!("Bearer {}", token("carol", None))),
            Some(json!({"id": "own-1", "title": "made on A"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for c in [&mut alice, &mut bob] {
        let got = once(c, "document:created", "own-1").await;
        assert_eq!(got["document"]["title"], "made on A");
    }
    let (status, _) = b
        .send(
            "DELETE",
            "/api/projects/demo/collections/tasks/documents/own-1",
            ("x-api-key", API_KEY),
            None,
        )
        .await;
    assert_eq!(status, 204);
    for c in [&mut alice, &mut bob] {
        let got = once(c, "document:deleted", "own-1").await;
        assert_eq!(
            got["previous"]["title"], "made on A",
            "own writes know the previous"
        );
    }
}

#[tokio::test]
async fn live_query_enters_changes_and_leaves_on_the_embedded_store() {
    let s = Server::start(Options::memory()).await;
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    let ack = alice
        .emit_with_ack(
            "subscribe:query",
            json!({"projectId": "demo", "collectionId": "tasks", "queryId": "big",
                   "query": {"points": {"$gte": 5}}}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let sub = alice.expect("subscribed", WAIT).await;
    assert_eq!(sub["queryId"], "big");
    let rest = |m: &'static str, p: String, b: Option<Value>| {
        let s = &s;
        async move { s.send(m, &p, ("x-api-key", API_KEY), b).await }
    };
    let path = "/api/projects/demo/collections/tasks/documents".to_owned();
    let (st, _) = rest("POST", path.clone(), Some(json!({"id": "q1", "points": 3}))).await;
    assert_eq!(st, 201);
    alice.expect_none("query:added", QUIET).await;
    let (st, _) = rest("PATCH", format!("{path}/q1"), Some(json!({"points": 8}))).await;
    assert_eq!(st, 200);
    let added = alice.expect("query:added", WAIT).await;
    assert_eq!(
        (added["queryId"].clone(), added["documentId"].clone()),
        (json!("big"), json!("q1"))
    );
    let (st, _) = rest("PATCH", format!("{path}/q1"), Some(json!({"points": 9}))).await;
    assert_eq!(st, 200);
    assert_eq!(
        alice.expect("query:changed", WAIT).await["document"]["points"],
        9
    );
    let (st, _) = rest("PATCH", format!("{path}/q1"), Some(json!({"points": 1}))).await;
    assert_eq!(st, 200);
    assert_eq!(
        alice.expect("query:removed", WAIT).await["documentId"],
        "q1"
    );
    // Invalid filters register nothing.
    let bad = alice
        .emit_with_ack(
            "subscribe:query",
            json!({"projectId": "demo", "collectionId": "tasks", "queryId": "x",
                   "query": {"$where": "true"}}),
        )
        .await;
    assert_eq!(bad["error"]["code"], "INVALID_PAYLOAD", "{bad}");
}
