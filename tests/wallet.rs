//! Wallet feeds on real services: transactions from REST and from another service writing to
//! MongoDB reach every matching room once per socket, on one node and across two, in change
//! stream mode and in own-writes mode; ownership is enforced: a member's project, chain and
//! currency feeds carry only their own addresses' transactions, an admin's carry all.

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

async fn ok(c: &mut Client, event: &str, payload: Value) -> Value {
    let ack = c.emit_with_ack(event, payload).await;
    assert_eq!(ack["ok"], true, "{event}: {ack}");
    ack["data"].clone()
}

/// alice: her address + project + chain ethereum (three matching rooms, one socket).
async fn alice_everywhere(url: &str) -> Client {
    let mut a = Client::connect_user(url, &token("alice", None)).await;
    ok(&mut a, "subscribe:project", json!("demo")).await;
    ok(
        &mut a,
        "wallet:subscribe:address",
        json!({"addressId": "addr-alice"}),
    )
    .await;
    ok(
        &mut a,
        "wallet:subscribe:project",
        json!({"projectId": "demo"}),
    )
    .await;
    ok(
        &mut a,
        "wallet:subscribe:chain",
        json!({"chain": "ethereum"}),
    )
    .await;
    ok(
        &mut a,
        "wallet:subscribe:currency",
        json!({"currency": "ETH"}),
    )
    .await;
    a
}

async fn project_feed(url: &str, user: &str, role: Option<&str>) -> Client {
    let mut b = Client::connect_user(url, &token(user, role)).await;
    ok(
        &mut b,
        "wallet:subscribe:project",
        json!({"projectId": "demo"}),
    )
    .await;
    b
}

async fn once(c: &mut Client, id: &str) -> Value {
    let got = c.expect("wallet:transaction", WAIT).await;
    assert_eq!(got["id"], id, "{got}");
    c.expect_none("wallet:transaction", QUIET).await;
    got
}

async fn post_tx(s: &Server, body: Value) -> (u16, Value) {
    s.send(
        "POST",
        "/api/projects/demo/wallet/transactions",
        ("x-api-key", API_KEY),
        Some(body),
    )
    .await
}

async fn exactly_once_across(opts: Options, external: bool) {
    let db_name = opts.mongodb_db.clone().expect("db");
    let a = Server::start(opts.clone()).await;
    let b = Server::start(Options {
        seed_demo: false,
        ..opts
    })
    .await;
    let mut alice = alice_everywhere(&a.url()).await;
    let mut bob = project_feed(&b.url(), "bob", None).await;
    let mut admin = project_feed(&a.url(), "root", Some("admin")).await;
    let (st, body) = post_tx(
        &b,
        json!({"id": "tx-1", "addressId": "addr-alice", "amount": "0.000000000000000001",
               "direction": "in", "txHash": "0xabc", "status": "pending"}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    for c in [&mut alice, &mut admin] {
        let got = once(c, "tx-1").await;
        assert_eq!(got["amount"], "0.000000000000000001");
        assert_eq!(
            (
                got["chain"].clone(),
                got["currency"].clone(),
                got["projectId"].clone()
            ),
            (json!("ethereum"), json!("ETH"), json!("demo"))
        );
        assert_eq!(got["confirmations"], 0);
    }
    // A status update is the same id again: delivered again, once.
    let (st, _) = post_tx(
        &a,
        json!({"id": "tx-1", "addressId": "addr-alice", "amount": "0.000000000000000001",
               "direction": "in", "txHash": "0xabc", "status": "confirmed", "confirmations": 12}),
    )
    .await;
    assert_eq!(st, 200);
    for c in [&mut alice, &mut admin] {
        assert_eq!(once(c, "tx-1").await["status"], "confirmed");
    }
    // bob's project feed shows his own addresses only: alice's transaction never reached him.
    bob.expect_none("wallet:transaction", QUIET).await;
    if external {
        let client = mongodb::Client::with_uri_str(mongodb_uri())
            .await
            .expect("mongo client");
        let coll = client
            .database(&db_name)
            .collection::<bson::Document>("wallet_transactions");
        let amount: bson::Decimal128 = "1.50".parse().expect("decimal");
        coll.insert_one(
            doc! { "_id": "tx-ext", "addressId": "addr-bob", "amount": amount,
            "direction": "out", "txHash": "0xdef", "status": "pending" },
        )
        .await
        .expect("insert");
        let got = once(&mut bob, "tx-ext").await;
        assert_eq!(got["amount"], "1.50");
        assert_eq!(got["currency"], "USDC");
        once(&mut admin, "tx-ext").await;
        // alice watches project demo too, but bob's address is not hers.
        alice.expect_none("wallet:transaction", QUIET).await;
        client.database(&db_name).drop().await.expect("drop");
    }
}

#[tokio::test]
async fn transactions_reach_each_socket_once_with_change_streams() {
    exactly_once_across(cluster("wallet-cs", &[]), true).await;
}

#[tokio::test]
async fn transactions_reach_each_socket_once_without_change_streams() {
    exactly_once_across(cluster("wallet-own", &[("CHANGE_STREAMS", "false")]), false).await;
}

#[tokio::test]
async fn ownership_scope_and_validation() {
    let s = Server::start(Options::memory()).await;
    let mut bob = Client::connect_user(&s.url(), &token("bob", None)).await;
    // Another user's address and a missing one answer alike: no existence oracle.
    let denied = bob
        .emit_with_ack(
            "wallet:subscribe:address",
            json!({"addressId": "addr-alice"}),
        )
        .await;
    let unknown = bob
        .emit_with_ack(
            "wallet:subscribe:address",
            json!({"addressId": "addr-nope"}),
        )
        .await;
    assert_eq!(denied["error"]["code"], "NOT_FOUND", "{denied}");
    assert_eq!(unknown["error"]["code"], "NOT_FOUND", "{unknown}");
    assert_eq!(
        denied["error"]["message"]
            .as_str()
            .map(|m| m.replace("addr-alice", "ID")),
        unknown["error"]["message"]
            .as_str()
            .map(|m| m.replace("addr-nope", "ID")),
    );
    let no_project = bob
        .emit_with_ack("wallet:subscribe:chain", json!({"chain": "ethereum"}))
        .await;
    assert_eq!(
        no_project["error"]["code"], "INVALID_PAYLOAD",
        "{no_project}"
    );
    let mut dave = Client::connect_user(&s.url(), &token("dave", None)).await;
    let outsider = dave
        .emit_with_ack("wallet:subscribe:project", json!({"projectId": "demo"}))
        .await;
    assert_eq!(outsider["error"]["code"], "FORBIDDEN", "{outsider}");
    let mut admin = Client::connect_user(&s.url(), &token("root", Some("admin"))).await;
    ok(
        &mut admin,
        "wallet:subscribe:address",
        json!({"addressId": "addr-alice"}),
    )
    .await;

    for (body, why) in [
        (
            json!({"addressId": "addr-alice", "amount": 1.5, "direction": "in", "txHash": "h", "status": "pending"}),
            "float amount",
        ),
        (
            json!({"addressId": "addr-alice", "amount": "1e3", "direction": "in", "txHash": "h", "status": "pending"}),
            "exponent",
        ),
        (
            json!({"addressId": "addr-alice", "amount": "1", "direction": "sideways", "txHash": "h", "status": "pending"}),
            "direction",
        ),
        (
            json!({"addressId": "addr-alice", "amount": "1", "direction": "in", "txHash": "h", "status": "lost"}),
            "status",
        ),
        (
            json!({"addressId": "addr-nope", "amount": "1", "direction": "in", "txHash": "h", "status": "pending"}),
            "unknown address",
        ),
    ] {
        let (st, b) = post_tx(&s, body).await;
        assert_eq!(st, 400, "{why}: {b}");
        assert_eq!(b["error"]["code"], "INVALID_PAYLOAD", "{why}");
    }
    admin.expect_none("wallet:transaction", QUIET).await;

    // A transaction as the server delivers it can be posted back (a status update, say);
    // fields the address decides are checked, and a contradiction names the field.
    let (st, first) = post_tx(
        &s,
        json!({"id": "tx-echo", "addressId": "addr-alice", "amount": "2", "direction": "in",
               "txHash": "0x1", "status": "pending"}),
    )
    .await;
    assert_eq!(st, 201, "{first}");
    let delivered = admin.expect("wallet:transaction", WAIT).await;
    assert_eq!(delivered, first);
    let mut echo = delivered.clone();
    echo["status"] = json!("confirmed");
    let (st, b) = post_tx(&s, echo.clone()).await;
    assert_eq!(st, 200, "{b}");
    admin.expect("wallet:transaction", WAIT).await;
    for (field, wrong) in [
        ("projectId", json!("acme")),
        ("chain", json!("bitcoin")),
        ("currency", json!("BTC")),
    ] {
        let mut bad = echo.clone();
        bad[field] = wrong;
        let (st, b) = post_tx(&s, bad).await;
        assert_eq!(st, 400, "{field}: {b}");
        assert_eq!(b["error"]["code"], "INVALID_PAYLOAD", "{field}");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with(field), "{field}: {msg}");
    }
    admin.expect_none("wallet:transaction", QUIET).await;

    let (st, _) = s
        .send(
            "POST",
            "/api/projects/demo/wallet/transactions",
            ("authorization", &format!("Bearer {}", token("alice", None))),
            Some(json!({"addressId": "addr-alice", "amount": "1", "direction": "in", "txHash": "h", "status": "pending"})),
        )
        .await;
    assert_eq!(st, 403, "members do not record transactions");
    let (st, list) = s
        .get(
            "/api/projects/demo/wallet/addresses",
            Some(("authorization", &format!("Bearer {}", token("bob", None)))),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        list["addresses"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
}
