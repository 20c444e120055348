//! Node loss under traffic: two nodes, alice on A and bob on B chatting back to back; B is
//! killed with SIGKILL; bob reconnects to A and recovers his gap with `chat:join { since }`.
//! Every message whose sender got an ack is in the history (zero acknowledged messages lost),
//! and bob ends up with every message alice had acknowledged.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use support::env::{API_KEY, token};
use support::server::{Options, Server};
use support::sio::Client;

const ACK: Duration = Duration::from_secs(3);

fn send(text: String) -> Value {
    json!({"chatId": "general", "projectId": "demo", "type": "text", "content": text})
}

async fn join(c: &mut Client, since: Option<&str>) -> Value {
    let mut p = json!({"chatId": "general", "projectId": "demo"});
    if let Some(s) = since {
        p["since"] = json!(s);
    }
    let ack = c.emit_with_ack("chat:join", p).await;
    assert_eq!(ack["ok"], true, "{ack}");
    ack["data"].clone()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn killing_a_node_loses_no_acknowledged_message() {
    let (a, b) = Server::start_pair(Options::cluster("nodeloss")).await;
    let mut alice = Client::connect_user(&a.url(), &token("alice", None)).await;
    let mut bob = Client::connect_user(&b.url(), &token("bob", None)).await;
    join(&mut alice, None).await;
    join(&mut bob, None).await;

    let mut acked: Vec<String> = Vec::new();
    let mut alice_acked: Vec<String> = Vec::new();
    let mut bob_seen: HashSet<String> = HashSet::new();
    let mut b = Some(b);
    let mut bob_on_a = false;
    let mut last_seen: Option<String> = None;
    for i in 0..120 {
        if let Some(ack) = alice
            .try_emit_with_ack("message:send", send(format!("a{i}")), ACK)
            .await
            && ack["ok"] == true
        {
            let id = id_of(&ack["data"]["message"]);
            acked.push(id.clone());
            alice_acked.push(id);
        }
        match bob
            .try_emit_with_ack("message:send", send(format!("b{i}")), ACK)
            .await
        {
            Some(ack) if ack["ok"] == true => acked.push(id_of(&ack["data"]["message"])),
            Some(_) => {}
            None if !bob_on_a => {
                // B is gone: reconnect to the survivor and fill the gap.
                bob = Client::connect_user(&a.url(), &token("bob", None)).await;
                bob_on_a = true;
                let data = join(&mut bob, last_seen.as_deref()).await;
                assert_eq!(data["hasMore"], false, "gap larger than one page: {data}");
                for m in data["messages"].as_array().cloned().unwrap_or_default() {
                    bob_seen.insert(id_of(&m));
                }
            }
            None => panic!("bob's send on the survivor got no ack"),
        }
        for m in bob.drain("message:new") {
            let id = id_of(&m);
            last_seen = Some(id.clone());
            bob_seen.insert(id);
        }
        if i == 40
            && let Some(node) = b.take()
        {
            node.kill9();
        }
    }
    assert!(bob_on_a, "bob never noticed the dead node");
    // Let the last live deliveries land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for m in bob.drain("message:new") {
        bob_seen.insert(id_of(&m));
    }

    let (st, hist) = a
        .get(
            "/api/chats/general/messages?limit=100",
            Some(("x-api-key", API_KEY)),
        )
        .await;
    assert_eq!(st, 200);
    let mut stored: HashSet<String> = hist["messages"]
        .as_array()
        .map(|m| m.iter().map(id_of).collect())
        .unwrap_or_default();
    let mut cursor = hist["nextCursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (_, page) = a
            .get(
                &format!("/api/chats/general/messages?limit=100&before={c}"),
                Some(("x-api-key", API_KEY)),
            )
            .await;
        for m in page["messages"].as_array().cloned().unwrap_or_default() {
            stored.insert(id_of(&m));
        }
        cursor = page["nextCursor"].as_str().map(str::to_owned);
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let missed: Vec<&String> = alice_acked
        .iter()
        .filter(|id| !bob_seen.contains(*id))
        .collect();
    assert!(missed.is_empty(), "bob never got: {missed:?}");
    eprintln!(
        "node loss: {} acknowledged messages, {} stored, 0 lost; bob recovered {} of alice's",
        acked.len(),
        stored.len(),
        alice_acked.len()
    );
}
