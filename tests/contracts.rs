//! The published contracts (docs/contracts.md): the committed files equal what the code
//! generates, docs/protocol.md lists exactly the events of the table, the OpenAPI document and
//! the router hold the same routes, and what a running server sends validates against the
//! schemas it serves.
//!
//! `SB_REGENERATE=1 cargo test --test contracts` rewrites the committed files instead of
//! comparing them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use support::env::{API_KEY, token};
use support::server::{Options, Server};
use support::sio::Client;

use switchboard_handlers::EVENTS;
use switchboard_handlers::core::events::SERVER_EVENTS;

const WAIT: Duration = Duration::from_secs(4);

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn committed_contracts_match_the_code() {
    let regenerate = std::env::var("SB_REGENERATE").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for a in switchboard::contracts::artifacts().expect("the types describe unambiguously") {
        let path = repo(a.path);
        if regenerate {
            std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
            std::fs::write(&path, &a.content).expect("write");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != a.content {
            stale.push(a.path);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from what the code generates: run `cargo run -- contracts` \
         (or SB_REGENERATE=1 cargo test --test contracts) and commit the result"
    );
}

/// The first cell's backticked names of each table row in the client events part of the doc.
fn documented_client_events(doc: &str) -> BTreeSet<String> {
    let start = doc.find("## Events implemented").expect("events section");
    let end = doc[start..]
        .find("\n## REST")
        .map_or(doc.len(), |e| start + e);
    let mut names = BTreeSet::new();
    for line in doc[start..end].lines() {
        let Some(first) = line.strip_prefix("| `").map(|l| l.split(" | ").next()) else {
            continue;
        };
        let Some(first) = first else { continue };
        let cell = format!("`{first}");
        names.extend(cell.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    names
}

#[test]
fn protocol_doc_lists_exactly_the_event_table() {
    let doc = std::fs::read_to_string(repo("docs/protocol.md")).expect("docs/protocol.md");
    let documented = documented_client_events(&doc);
    let table: BTreeSet<String> = EVENTS.iter().map(|e| (*e).to_owned()).collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/protocol.md's event tables and the handlers' event table differ: \
         undocumented {missing:?}, documented but not handled {unknown:?}"
    );
    let unmentioned: Vec<_> = SERVER_EVENTS
        .iter()
        .filter(|e| !doc.contains(&format!("`{e}`")))
        .collect();
    assert!(
        unmentioned.is_empty(),
        "server events docs/protocol.md never names: {unmentioned:?}"
    );
}

#[tokio::test]
async fn openapi_documents_every_route_of_the_router_and_no_other() {
    let doc = switchboard::http::openapi::document().expect("document");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let table = switchboard::http::routes::documented();
    let routed: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed);
    assert_eq!(routed.len(), table.len(), "a route is listed twice");
    // The router is built from the table; nothing may be added beside it.
    let router_src = std::fs::read_to_string(repo("src/http/mod.rs")).expect("src");
    assert_eq!(
        router_src.matches(".route(").count(),
        2,
        "src/http/mod.rs routes only the table's rows (api and root)"
    );
    // And every row is served: none answers the router's "no such route".
    let server = Server::start(Options::memory()).await;
    let client = reqwest::Client::new();
    for r in &table {
        let path = r
            .path
            .replace("{file}", "SendMessage.json")
            .replace(['{', '}'], "");
        let resp = client
            .request(
                reqwest::Method::from_bytes(r.method.as_str().as_bytes()).expect("method"),
                format!("{}{path}", server.url()),
            )
            .header("X-API-Key", API_KEY)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            status != 405 && !body.contains("route not found"),
            "{} {}: {status} {body}",
            r.method,
            r.path
        );
    }
    let (status, page) = server.get("/api/docs", None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().is_some_and(|p| p.contains("swagger-ui")));
    let (status, page) = server.get("/api/docs?x=%22%3E%3Cscript%3E", None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().is_some_and(|p| !p.contains("<script>\"")));
}

/// Validators built from the schemas the server serves.
struct Schemas {
    base: String,
    index: Value,
    cache: BTreeMap<String, jsonschema::Validator>,
    checked: BTreeSet<String>,
}

impl Schemas {
    async fn load(server: &Server) -> Self {
        let (status, index) = server.get("/api/schemas", None).await;
        assert_eq!(status, 200, "{index}");
        Schemas {
            base: server.url(),
            index,
            cache: BTreeMap::new(),
            checked: BTreeSet::new(),
        }
    }

    async fn validator(&mut self, url: &str) -> &jsonschema::Validator {
        if !self.cache.contains_key(url) {
            let schema: Value = reqwest::get(format!("{}{url}", self.base))
                .await
                .expect("schema")
                .json()
                .await
                .expect("json");
            let v = jsonschema::validator_for(&schema).expect("a valid schema");
            self.cache.insert(url.to_owned(), v);
        }
        &self.cache[url]
    }

    async fn check(&mut self, url: &str, what: &str, value: &Value) {
        let v = self.validator(url).await;
        let errors: Vec<String> = v.iter_errors(value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{what} {value} breaks {url}: {errors:?}");
        self.checked.insert(what.to_owned());
    }

    /// Sends `event`, checks the request against its schema, and the ack against its ack
    /// schema; answers the ack's data.
    async fn call(&mut self, c: &mut Client, event: &str, payload: Value) -> Value {
        let req_url = self.index["clientEvents"][event]["request"]
            .as_str()
            .unwrap_or_else(|| panic!("{event} is in the index"))
            .to_owned();
        self.check(&req_url, &format!("{event} request"), &payload)
            .await;
        let ack = c.emit_with_ack(event, payload).await;
        assert_eq!(ack["ok"], true, "{event}: {ack}");
        let ack_url = self.index["clientEvents"][event]["ack"]
            .as_str()
            .expect("ack schema")
            .to_owned();
        self.check(&ack_url, &format!("{event} ack"), &ack["data"])
            .await;
        ack["data"].clone()
    }

    /// Waits for `event` on `c` and checks it against its payload schema.
    async fn expect(&mut self, c: &mut Client, event: &str) -> Value {
        let payload = c.expect(event, WAIT).await;
        let url = self.index["serverEvents"][event]
            .as_str()
            .unwrap_or_else(|| panic!("{event} is in the index"))
            .to_owned();
        self.check(&url, event, &payload).await;
        payload
    }

    /// Every server event `c` received so far, against its payload schema.
    async fn check_received(&mut self, c: &mut Client) {
        for event in SERVER_EVENTS {
            let url = self.index["serverEvents"][event]
                .as_str()
                .expect("payload schema")
                .to_owned();
            for payload in c.drain(event) {
                self.check(&url, event, &payload).await;
            }
        }
    }
}

#[tokio::test]
async fn served_schemas_accept_good_payloads_and_refuse_bad_ones() {
    let server = Server::start(Options::memory()).await;
    let mut s = Schemas::load(&server).await;
    let send = s.index["clientEvents"]["message:send"]["request"]
        .as_str()
        .expect("message:send")
        .to_owned();
    assert_eq!(send, "/api/schemas/SendMessage.json");
    let good = json!({"chatId": "general", "projectId": "demo", "type": "text", "content": "hi"});
    assert!(s.validator(&send).await.is_valid(&good));
    for bad in [
        json!({"chatId": "general", "projectId": "demo", "type": "gif", "content": "hi"}),
        json!({"chatId": "general", "type": "text", "content": "hi"}),
        json!({"chatId": 3, "projectId": "demo", "type": "text", "content": "hi"}),
        json!({"chatId": "general", "projectId": "demo", "type": "text", "content": "hi", "extra": 1}),
    ] {
        assert!(!s.validator(&send).await.is_valid(&bad), "{bad}");
    }
    let project = "/api/schemas/ProjectRef.json";
    assert!(s.validator(project).await.is_valid(&json!("demo")));
    assert!(
        s.validator(project)
            .await
            .is_valid(&json!({"projectId": "demo"}))
    );
    assert!(!s.validator(project).await.is_valid(&json!(7)));
    let (status, body) = server.get("/api/schemas/Nope.json", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

/// A tour of the events with two users: every request, ack and server event on the way is
/// validated against the served schemas, so the payload types cannot drift from what the
/// handlers build.
#[tokio::test]
async fn what_the_server_sends_matches_the_published_schemas() {
    let server = Server::start(Options::memory()).await;
    let url = server.url();
    let mut s = Schemas::load(&server).await;
    let mut alice = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let chat = json!({"chatId": "general", "projectId": "demo"});

    s.call(&mut bob, "subscribe:project", json!("demo")).await;
    s.call(
        &mut alice,
        "subscribe:project",
        json!({"projectId": "demo"}),
    )
    .await;
    s.call(&mut bob, "chat:join", chat.clone()).await;
    s.call(&mut alice, "chat:join", chat.clone()).await;
    s.expect(&mut bob, "user:online").await;
    let sent = s
        .call(
            &mut alice,
            "message:send",
            json!({"chatId": "general", "projectId": "demo", "type": "text",
                   "content": "hello", "clientMessageId": "c1", "mentions": ["bob"]}),
        )
        .await;
    let id = sent["message"]["id"].clone();
    s.expect(&mut bob, "message:new").await;
    let msg = json!({"chatId": "general", "projectId": "demo", "messageId": id});
    let mut react = msg.clone();
    react["emoji"] = json!("👍");
    s.call(&mut bob, "message:react", react).await;
    s.expect(&mut alice, "message:reaction").await;
    let mut edit = msg.clone();
    edit["content"] = json!("hello again");
    s.call(&mut alice, "message:edit", edit).await;
    s.expect(&mut bob, "message:edited").await;
    s.call(
        &mut bob,
        "messages:mark:read",
        json!({"chatId": "general", "projectId": "demo", "messageIds": [id]}),
    )
    .await;
    s.expect(&mut alice, "messages:read").await;
    s.call(
        &mut alice,
        "chat:typing:start",
        json!({"chatId": "general"}),
    )
    .await;
    s.expect(&mut bob, "user:typing:start").await;
    s.call(&mut alice, "chat:typing:stop", json!({"chatId": "general"}))
        .await;
    s.call(&mut alice, "message:delete", msg).await;
    s.expect(&mut bob, "message:deleted").await;

    let call = s
        .call(
            &mut alice,
            "call:initiate",
            json!({"chatId": "general", "type": "video", "participants": ["bob"]}),
        )
        .await;
    s.expect(&mut bob, "call:incoming").await;
    let call_id = call["callId"].clone();
    s.call(
        &mut bob,
        "call:accept",
        json!({"chatId": "general", "callerId": "alice", "callId": call_id}),
    )
    .await;
    s.expect(&mut alice, "call:accepted").await;
    s.call(
        &mut alice,
        "call:signal",
        json!({"callId": call_id, "to": "bob", "signal": {"sdp": "x"}}),
    )
    .await;
    s.expect(&mut bob, "call:signal").await;
    s.call(
        &mut alice,
        "call:end",
        json!({"chatId": "general", "participants": ["bob"], "callId": call_id}),
    )
    .await;
    s.expect(&mut bob, "call:ended").await;

    s.call(
        &mut alice,
        "presence:online",
        json!({"projectId": "demo", "status": "busy"}),
    )
    .await;
    s.expect(&mut bob, "presence:user:online").await;
    s.call(&mut alice, "presence:update", Value::Null).await;
    s.call(
        &mut bob,
        "presence:get:online",
        json!({"projectId": "demo"}),
    )
    .await;
    s.call(&mut alice, "presence:offline", json!({})).await;
    s.expect(&mut bob, "presence:user:offline").await;
    s.call(&mut alice, "auth:login", json!({"projectId": "demo"}))
        .await;
    s.expect(&mut bob, "user:online").await;
    s.call(&mut alice, "auth:logout", json!({"projectId": "demo"}))
        .await;
    s.expect(&mut bob, "user:offline").await;

    s.call(&mut alice, "custom:join", json!({"room": "lobby"}))
        .await;
    s.call(&mut bob, "custom:join", json!({"room": "lobby"}))
        .await;
    let b = s
        .call(
            &mut alice,
            "custom:broadcast",
            json!({"projectId": "demo", "event": "ping", "payload": {"n": 1}, "room": "lobby"}),
        )
        .await;
    let broadcast = bob.expect("custom:ping", WAIT).await;
    s.check(
        "/api/schemas/CustomBroadcast.json",
        "custom:<event>",
        &broadcast,
    )
    .await;
    assert_eq!(b["event"], "custom:ping");
    s.call(
        &mut alice,
        "custom:event",
        json!({"projectId": "demo", "kind": "x", "n": 2}),
    )
    .await;
    s.expect(&mut bob, "custom:event").await;
    s.call(
        &mut alice,
        "custom:message",
        json!({"targetUserId": "bob", "message": {"hi": true}}),
    )
    .await;
    s.expect(&mut bob, "custom:message").await;
    s.call(
        &mut alice,
        "custom:presence",
        json!({"projectId": "demo", "status": "away"}),
    )
    .await;
    s.expect(&mut bob, "custom:presence").await;
    s.call(
        &mut alice,
        "custom:typing",
        json!({"projectId": "demo", "isTyping": true}),
    )
    .await;
    s.expect(&mut bob, "custom:typing").await;
    s.call(
        &mut alice,
        "custom:file:share",
        json!({"projectId": "demo", "fileId": "f1", "fileName": "a.txt"}),
    )
    .await;
    s.expect(&mut bob, "custom:file:shared").await;
    s.call(&mut alice, "custom:leave", json!({"room": "lobby"}))
        .await;
    let mut alice2 = Client::connect_user(&url, &token("alice", None)).await;
    s.call(
        &mut alice,
        "auth:session:update",
        json!({"projectId": "demo", "sessionData": {"theme": "dark"}}),
    )
    .await;
    s.expect(&mut alice2, "session:updated").await;

    let data = |c: &str| json!({"projectId": "demo", "collectionId": c});
    s.call(&mut alice, "subscribe:collection", data("tasks"))
        .await;
    let mut q = data("tasks");
    q["queryId"] = json!("q1");
    q["query"] = json!({"done": false});
    s.call(&mut alice, "subscribe:query", q).await;
    let (status, doc) = server
        .post(
            "/api/projects/demo/collections/tasks/documents",
            ("X-API-Key", API_KEY),
            json!({"id": "t-contract", "title": "check", "done": false}),
        )
        .await;
    assert_eq!(status, 201, "{doc}");
    s.expect(&mut alice, "document:created").await;
    s.expect(&mut alice, "query:added").await;
    let mut d = data("tasks");
    d["documentId"] = json!("t-contract");
    s.call(&mut alice, "subscribe:document", d).await;
    s.call(&mut alice, "unsubscribe:query", json!({"queryId": "q1"}))
        .await;
    s.call(&mut alice, "unsubscribe:collection", data("tasks"))
        .await;
    s.call(&mut alice, "subscribe:collection", json!("tasks"))
        .await;

    s.call(
        &mut alice,
        "wallet:subscribe:project",
        json!({"projectId": "demo"}),
    )
    .await;
    s.call(
        &mut alice,
        "wallet:subscribe:chain",
        json!({"chain": "ethereum"}),
    )
    .await;
    s.call(
        &mut alice,
        "wallet:unsubscribe:project",
        json!({"projectId": "demo"}),
    )
    .await;

    // A refusal: the ack's error and the `error` event.
    let refused = alice.emit_with_ack("chat:join", json!({"chatId": 5})).await;
    assert_eq!(refused["ok"], false);
    s.check(
        "/api/schemas/ErrorBody.json",
        "refusal ack",
        &refused["error"],
    )
    .await;
    s.expect(&mut alice, "error").await;

    s.call(&mut alice, "unsubscribe:project", json!("demo"))
        .await;
    s.call(&mut alice, "chat:leave", json!({"chatId": "general"}))
        .await;
    s.expect(&mut bob, "user:offline").await;
    // Give stragglers (typing expiry, late fan-out) a moment, then check all that arrived.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in [&mut alice, &mut bob, &mut alice2] {
        s.check_received(c).await;
    }
    for event in [
        "message:new",
        "message:sent",
        "chat:joined",
        "call:incoming",
        "subscribed",
        "unsubscribed",
        "document:created",
        "query:added",
        "wallet:subscribed",
        "presence:online:list",
        "error",
    ] {
        assert!(s.checked.contains(event), "{event} was never checked");
    }
}

/// A REST call of the tour: method, the documented path, the path called, a header, a body.
type RestCall<'a> = (&'a str, &'a str, String, (&'a str, &'a str), Option<Value>);

/// Checks `body` against the schema the OpenAPI document gives `method path` for `status`.
fn check_rest(openapi: &Value, method: &str, path: &str, status: &str, body: &Value) {
    let response = &openapi["paths"][path][method]["responses"][status];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} documents no JSON {status} answer"
    );
    // The document's components resolve the `$ref`s; OpenAPI 3.1 schemas are draft 2020-12.
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": openapi["components"],
    });
    let v = jsonschema::validator_for(&root).expect("a valid schema");
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {body} breaks its schema: {errors:?}"
    );
}

#[tokio::test]
async fn rest_answers_match_the_openapi_document() {
    let server = Server::start(Options::memory()).await;
    let (status, doc) = server.get("/api/openapi.json", None).await;
    assert_eq!(status, 200);
    let key = ("X-API-Key", API_KEY);
    let alice = format!("Bearer {}", token("alice", None));
    let as_alice = ("Authorization", alice.as_str());
    let docs = "/api/projects/{project}/collections/{collection}/documents";
    let one_doc = "/api/projects/{project}/collections/{collection}/documents/{document}";
    let integration = "/api/projects/{project}/integrations/{integration}";
    let calls: Vec<RestCall> = vec![
        ("get", "/health", "/health".into(), key, None),
        ("get", "/ready", "/ready".into(), key, None),
        (
            "get",
            "/api/projects",
            "/api/projects".into(),
            as_alice,
            None,
        ),
        (
            "get",
            "/api/projects/{project}",
            "/api/projects/demo".into(),
            key,
            None,
        ),
        (
            "get",
            "/api/projects/{project}/chats",
            "/api/projects/demo/chats".into(),
            as_alice,
            None,
        ),
        (
            "post",
            "/api/projects/{project}/chats",
            "/api/projects/demo/chats".into(),
            as_alice,
            Some(json!({"name": "contract", "participants": ["bob"]})),
        ),
        (
            "get",
            "/api/chats/{chat}",
            "/api/chats/general".into(),
            as_alice,
            None,
        ),
        (
            "get",
            "/api/chats/{chat}/messages",
            "/api/chats/general/messages?limit=2".into(),
            as_alice,
            None,
        ),
        (
            "post",
            docs,
            "/api/projects/demo/collections/tasks/documents".into(),
            key,
            Some(json!({"id": "rest-1", "title": "x"})),
        ),
        (
            "get",
            docs,
            "/api/projects/demo/collections/tasks/documents?limit=2".into(),
            key,
            None,
        ),
        (
            "get",
            one_doc,
            "/api/projects/demo/collections/tasks/documents/rest-1".into(),
            key,
            None,
        ),
        (
            "patch",
            one_doc,
            "/api/projects/demo/collections/tasks/documents/rest-1".into(),
            key,
            Some(json!({"done": true})),
        ),
        (
            "put",
            one_doc,
            "/api/projects/demo/collections/tasks/documents/rest-1".into(),
            key,
            Some(json!({"title": "y"})),
        ),
        (
            "get",
            "/api/projects/{project}/integrations",
            "/api/projects/demo/integrations".into(),
            key,
            None,
        ),
        (
            "get",
            integration,
            "/api/projects/demo/integrations/status-api".into(),
            key,
            None,
        ),
        (
            "get",
            "/api/projects/{project}/integrations/{integration}/webhook-events",
            "/api/projects/demo/integrations/status-api/webhook-events".into(),
            key,
            None,
        ),
        (
            "get",
            "/api/projects/{project}/wallet/addresses",
            "/api/projects/demo/wallet/addresses".into(),
            as_alice,
            None,
        ),
        (
            "post",
            "/api/projects/{project}/wallet/transactions",
            "/api/projects/demo/wallet/transactions".into(),
            key,
            Some(
                json!({"addressId": "addr-alice", "amount": "1.5", "direction": "in",
                        "txHash": "0xabc", "status": "pending"}),
            ),
        ),
        // Refusals answer the documented error shape.
        (
            "get",
            "/api/chats/{chat}",
            "/api/chats/nope".into(),
            as_alice,
            None,
        ),
        (
            "get",
            "/api/projects/{project}",
            "/api/projects/demo".into(),
            ("X-API-Key", "wrong"),
            None,
        ),
    ];
    for (method, template, path, auth, body) in calls {
        let (status, answer) = server.send(&method.to_uppercase(), &path, auth, body).await;
        let range = match status {
            400..=499 => "4XX".to_owned(),
            500..=599 => "5XX".to_owned(),
            s => s.to_string(),
        };
        check_rest(&doc, method, template, &range, &answer);
    }
}
