//! Live data end to end on real services: writes made outside Switchboard (a plain MongoDB
//! client) reach subscribers through the change stream, and in a two-node cluster every socket
//! gets each change exactly once, in change-stream mode and in own-writes mode.

mod support;

use std::time::Duration;

use bson::doc;
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
        .collection::<bson::Document>("data.demo.tasks");
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
async fn live_query_enters_changes_and_leaves_in_memory() {
    live_query_enters_changes_and_leaves(Options::memory()).await;
}

/// The embedded store's writes feed live queries the way MongoDB's change stream does.
#[tokio::test]
async fn live_query_enters_changes_and_leaves_on_the_embedded_store() {
    let dir = support::data_dir("live");
    let mut opts = Options::memory();
    opts.extra_env = vec![
        ("STORE".into(), "embedded".into()),
        ("DATA_DIR".into(), dir.display().to_string()),
    ];
    live_query_enters_changes_and_leaves(opts).await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn live_query_enters_changes_and_leaves(opts: Options) {
    let s = Server::start(opts).await;
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

fn zeros(n: usize) -> Vec<Value> {
    vec![json!(0); n]
}

fn encode(v: &Value) -> String {
    url::form_urlencoded::byte_serialize(v.to_string().as_bytes()).collect()
}

#[tokio::test]
async fn filters_over_budget_are_refused_on_sockets_and_rest() {
    let s = Server::start(Options::memory()).await;
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    let regexes: Vec<Value> = (0..40)
        .map(|i| json!({"title": {"$regex": format!("^(a|aa)+{i}$")}}))
        .collect();
    for (qid, query) in [
        ("in", json!({"tags": {"$in": zeros(20_000)}})),
        ("regexes", json!({"$or": regexes})),
    ] {
        let ack = alice
            .emit_with_ack(
                "subscribe:query",
                json!({"projectId": "demo", "collectionId": "tasks", "queryId": qid,
                       "query": query}),
            )
            .await;
        assert_eq!(ack["error"]["code"], "INVALID_PAYLOAD", "{qid}: {ack}");
    }
    let path = "/api/projects/demo/collections/tasks/documents";
    let (st, body) = s
        .send(
            "GET",
            &format!(
                "{path}?filter={}",
                encode(&json!({"tags": {"$in": zeros(1_001)}}))
            ),
            ("x-api-key", API_KEY),
            None,
        )
        .await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (400, &json!("INVALID_PAYLOAD")),
        "{body}"
    );
    // Within the budget: answered.
    let (st, body) = s
        .send(
            "GET",
            &format!(
                "{path}?filter={}",
                encode(&json!({"tags": {"$in": zeros(1_000)}}))
            ),
            ("x-api-key", API_KEY),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
}

/// The scenario, scaled to the budget: live queries as heavy as a filter may be, and a
/// write whose document makes matching them take a while (`$all` checks each of its values
/// against the whole array, and the zero sits at its end). Meanwhile the node answers.
#[tokio::test]
async fn a_heavily_matched_write_stalls_neither_health_nor_other_tenants() {
    let s = Server::start(Options::memory()).await;
    let path = "/api/projects/demo/collections/heavy/documents";
    let tags = |last: i64| {
        let mut t = vec![json!(1); 19_999];
        t.push(json!(last));
        Value::Array(t)
    };
    let (st, body) = s
        .send(
            "POST",
            path,
            ("x-api-key", API_KEY),
            Some(json!({"id": "big", "tags": tags(1)})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    for i in 0..8 {
        let ack = alice
            .emit_with_ack(
                "subscribe:query",
                json!({"projectId": "demo", "collectionId": "heavy", "queryId": format!("q{i}"),
                       "query": {"tags": {"$all": zeros(1_000)}}}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    let mut dave = Client::connect_user(&s.url(), &token("dave", None)).await;

    let writer = {
        let url = s.url();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let resp = reqwest::Client::new()
                .patch(format!("{url}{path}/big"))
                .header("x-api-key", API_KEY)
                .json(&json!({"tags": tags(0)}))
                .send()
                .await
                .expect("patch");
            (resp.status().as_u16(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (health, other_tenant) = tokio::join!(
        async {
            let t = std::time::Instant::now();
            let r = reqwest::Client::new()
                .get(format!("{}/health", s.url()))
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .expect("health");
            (r.status().as_u16(), t.elapsed())
        },
        async {
            let t = std::time::Instant::now();
            let ack = dave
                .emit_with_ack(
                    "subscribe:collection",
                    json!({"projectId": "acme", "collectionId": "things"}),
                )
                .await;
            (ack, t.elapsed())
        }
    );
    let (patched, write_took) = writer.await.expect("writer");
    eprintln!(
        "heavy write took {write_took:?}; meanwhile /health {:?}, other tenant's subscribe {:?}",
        health.1, other_tenant.1
    );
    assert_eq!(patched, 200);
    let added = alice.expect("query:added", WAIT).await;
    assert_eq!(added["documentId"], "big", "{added}");
    assert_eq!(health.0, 200);
    assert_eq!(other_tenant.0["ok"], true, "{}", other_tenant.0);
    assert!(
        health.1 < Duration::from_millis(500),
        "/health took {:?}",
        health.1
    );
    assert!(
        other_tenant.1 < Duration::from_millis(500),
        "another tenant's subscribe took {:?}",
        other_tenant.1
    );
}

#[tokio::test]
async fn an_invisible_document_looks_missing_on_create_by_id() {
    let s = Server::start(Options::memory()).await;
    let notes = "/api/projects/demo/collections/notes/documents";
    let bob = format!("Bearer {}", token("bob", None));
    // note-alice-1 exists but bob cannot see it; fresh-1 does not exist: same answer.
    let (taken, taken_body) = s
        .send(
            "POST",
            notes,
            ("authorization", &bob),
            Some(json!({"id": "note-alice-1", "text": "probe"})),
        )
        .await;
    let (free, free_body) = s
        .send(
            "POST",
            notes,
            ("authorization", &bob),
            Some(json!({"id": "fresh-1", "text": "probe"})),
        )
        .await;
    assert_eq!((taken, &taken_body), (free, &free_body));
    assert_eq!(taken, 403, "{taken_body}");
    let (st, _) = s
        .send(
            "GET",
            &format!("{notes}/note-alice-1"),
            ("authorization", &bob),
            None,
        )
        .await;
    assert_eq!(st, 404);
    // Without an id, members create as before; admins may still choose ids.
    let (st, body) = s
        .send(
            "POST",
            notes,
            ("authorization", &bob),
            Some(json!({"text": "mine"})),
        )
        .await;
    assert_eq!((st, &body["ownerId"]), (201, &json!("bob")), "{body}");
    let (st, body) = s
        .send(
            "POST",
            notes,
            ("x-api-key", API_KEY),
            Some(json!({"id": "admin-made", "ownerId": "bob"})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, _) = s
        .send(
            "POST",
            notes,
            ("x-api-key", API_KEY),
            Some(json!({"id": "admin-made", "ownerId": "bob"})),
        )
        .await;
    assert_eq!(st, 409);
}

#[tokio::test]
async fn concurrent_creates_of_one_id_make_one_document() {
    creates_race(Options::memory()).await;
}

#[tokio::test]
async fn concurrent_creates_of_one_id_make_one_document_on_mongodb() {
    creates_race(Options {
        mongodb_db: Some(support::unique("data-race")),
        seed_demo: true,
        ..Default::default()
    })
    .await;
}

async fn creates_race(opts: Options) {
    let s = Server::start(opts).await;
    let path = "/api/projects/demo/collections/tasks/documents";
    let url = s.url();
    let tries = (0..16).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}{path}"))
                .header("x-api-key", API_KEY)
                .json(&json!({"id": "race-1", "writer": i}))
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        })
    });
    let mut codes = Vec::new();
    for t in tries {
        codes.push(t.await.expect("task"));
    }
    codes.sort_unstable();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 201 || *c == 409), "{codes:?}");
}

#[tokio::test]
async fn reserved_id_fields_in_bodies_are_refused() {
    let s = Server::start(Options::memory()).await;
    let path = "/api/projects/demo/collections/tasks/documents";
    for (method, p, body) in [
        ("PATCH", format!("{path}/task-1"), json!({"_id": "task-2"})),
        (
            "PUT",
            format!("{path}/task-1"),
            json!({"_id": "task-2", "title": "x"}),
        ),
        (
            "POST",
            path.to_owned(),
            json!({"_id": "other", "title": "x"}),
        ),
    ] {
        let (st, resp) = s.send(method, &p, ("x-api-key", API_KEY), Some(body)).await;
        assert_eq!(
            (st, &resp["error"]["code"]),
            (400, &json!("INVALID_PAYLOAD")),
            "{method} {p}: {resp}"
        );
    }
    let (_, doc) = s
        .send(
            "GET",
            &format!("{path}/task-1"),
            ("x-api-key", API_KEY),
            None,
        )
        .await;
    assert!(doc.get("_id").is_none(), "{doc}");
}

/// `owner:meta.owner`: the owner sits inside an object, so a write that replaces that object
/// (with an array, a string, another object) must still name the caller there.
#[tokio::test]
async fn a_dotted_owner_cannot_be_dodged_by_reshaping_its_parent() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(support::unique("seeds"));
    std::fs::create_dir_all(&dir).expect("seed dir");
    std::fs::write(
        dir.join("dotted.json"),
        json!({
            "projects": [{"id": "dotted", "name": "Dotted", "members": ["alice", "bob"],
                          "collections": {"items": {"access": "owner:meta.owner"}},
                          "createdAt": "2026-01-01T09:00:00.000Z"}],
            "users": [], "chats": [], "messages": [], "collections": [],
            "integrations": [], "walletAddresses": []
        })
        .to_string(),
    )
    .expect("seed file");
    let s = Server::start(Options {
        seed_demo: true,
        extra_env: vec![("SEEDS_DIR".into(), dir.display().to_string())],
        ..Default::default()
    })
    .await;
    let items = "/api/projects/dotted/collections/items/documents";
    let alice = format!("Bearer {}", token("alice", None));
    let (st, body) = s
        .send(
            "POST",
            items,
            ("authorization", &alice),
            Some(json!({"meta": {"owner": "alice"}, "n": 1})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    for (method, reshaped) in [
        ("PATCH", json!({"meta": [{"owner": "bob"}]})),
        (
            "PATCH",
            json!({"meta": [{"owner": "alice"}, {"owner": "bob"}]}),
        ),
        ("PATCH", json!({"meta": "nobody"})),
        ("PATCH", json!({"meta": {"other": 1}})),
        ("PUT", json!({"meta": [{"owner": "alice"}]})),
    ] {
        let (st, resp) = s
            .send(
                method,
                &format!("{items}/{id}"),
                ("authorization", &alice),
                Some(reshaped.clone()),
            )
            .await;
        assert_eq!(st, 403, "{method} {reshaped}: {resp}");
    }
    let (st, resp) = s
        .send(
            "PATCH",
            &format!("{items}/{id}"),
            ("authorization", &alice),
            Some(json!({"meta": {"owner": "alice", "tag": "x"}, "n": 2})),
        )
        .await;
    assert_eq!(st, 200, "{resp}");
}

async fn collections_are_capped_per_project(mut opts: Options) {
    opts.extra_env
        .push(("MAX_COLLECTIONS_PER_PROJECT".into(), "3".into()));
    let s = Server::start(opts).await;
    let post = |c: &'static str| {
        let s = &s;
        async move {
            s.send(
                "POST",
                &format!("/api/projects/demo/collections/{c}/documents"),
                ("x-api-key", API_KEY),
                Some(json!({"n": 1})),
            )
            .await
        }
    };
    // The seed made tasks and notes: one more fits.
    assert_eq!(post("third").await.0, 201);
    let (st, body) = post("fourth").await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (400, &json!("INVALID_PAYLOAD")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 collections"))
    );
    // Existing collections still take documents; other projects have their own room.
    assert_eq!(post("tasks").await.0, 201);
    assert_eq!(post("third").await.0, 201);
    let (st, body) = s
        .send(
            "POST",
            "/api/projects/acme/collections/fourth/documents",
            ("x-api-key", API_KEY),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
}

#[tokio::test]
async fn collections_per_project_are_capped() {
    collections_are_capped_per_project(Options::memory()).await;
}

#[tokio::test]
async fn collections_per_project_are_capped_on_mongodb() {
    collections_are_capped_per_project(Options {
        mongodb_db: Some(support::unique("data-colls")),
        seed_demo: true,
        ..Default::default()
    })
    .await;
}
