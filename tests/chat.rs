//! Chat, messages and calls through the real binary and a real socket: success paths, denials,
//! idempotent retries, `since` recovery, history over REST, and (with MongoDB) a restart.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::env::{API_KEY, token};
use support::server::{Options, Server};
use support::sio::Client;

const SHORT: Duration = Duration::from_millis(300);
const WAIT: Duration = Duration::from_secs(4);

fn opts_with(extra: &[(&str, &str)]) -> Options {
    Options {
        seed_demo: true,
        extra_env: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

async fn joined(url: &str, user: &str, chat: &str) -> Client {
    let mut c = Client::connect_user(url, &token(user, None)).await;
    let ack = c
        .emit_with_ack("chat:join", json!({"chatId": chat, "projectId": "demo"}))
        .await;
    assert_eq!(ack["ok"], true, "{user} joins {chat}: {ack}");
    c.expect("chat:joined", WAIT).await;
    c
}

fn send(chat: &str, text: &str) -> Value {
    json!({"chatId": chat, "projectId": "demo", "type": "text", "content": text})
}

#[tokio::test]
async fn join_send_react_edit_delete_read() {
    let s = Server::start(opts_with(&[])).await;
    let url = s.url();
    let mut alice = joined(&url, "alice", "general").await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let ack = bob
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(ack["data"]["participants"], json!(["alice", "bob"]));
    assert!(ack["data"]["unreadCount"].as_u64().is_some());
    assert_eq!(bob.expect("chat:joined", WAIT).await["chatId"], "general");
    assert_eq!(
        alice.expect("user:online", WAIT).await,
        json!({"chatId": "general", "userId": "bob"})
    );

    // Send: sender gets message:sent and the ack; the room gets message:new; not the sender.
    let ack = alice
        .emit_with_ack("message:send", send("general", "hello bob"))
        .await;
    let msg = ack["data"]["message"].clone();
    assert_eq!(msg["content"], "hello bob");
    assert_eq!(msg["senderId"], "alice");
    assert_eq!(msg["id"].as_str().map(str::len), Some(24));
    assert!(
        msg["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24)
    );
    assert_eq!(alice.expect("message:sent", WAIT).await["message"], msg);
    assert_eq!(bob.expect("message:new", WAIT).await, msg);
    alice.expect_none("message:new", SHORT).await;
    let id = msg["id"].as_str().expect("id").to_owned();

    // React toggles: added then removed, to room and sender.
    let r = json!({"chatId": "general", "projectId": "demo", "messageId": id, "emoji": "👍"});
    let ack = bob.emit_with_ack("message:react", r.clone()).await;
    assert_eq!(ack["data"]["action"], "added");
    assert_eq!(
        ack["data"]["reactions"],
        json!([{"emoji": "👍", "userIds": ["bob"], "count": 1}])
    );
    assert_eq!(
        alice.expect("message:reaction", WAIT).await["action"],
        "added"
    );
    assert_eq!(bob.expect("message:reaction", WAIT).await["userId"], "bob");
    let ack = bob.emit_with_ack("message:react", r).await;
    assert_eq!(ack["data"]["action"], "removed");
    assert_eq!(ack["data"]["reactions"], json!([]));

    // Edit: author only.
    let e =
        json!({"chatId": "general", "projectId": "demo", "messageId": id, "content": "hello, bob"});
    let ack = bob.emit_with_ack("message:edit", e.clone()).await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN");
    let ack = alice.emit_with_ack("message:edit", e).await;
    assert_eq!(ack["ok"], true);
    let edited = bob.expect("message:edited", WAIT).await;
    assert_eq!(edited["content"], "hello, bob");
    assert!(edited["editedAt"].is_string());

    // Read receipts.
    let ack = bob
        .emit_with_ack(
            "messages:mark:read",
            json!({"chatId": "general", "projectId": "demo", "messageIds": [id]}),
        )
        .await;
    assert_eq!(ack["data"]["messageIds"], json!([id]));
    let read = alice.expect("messages:read", WAIT).await;
    assert_eq!(
        (read["userId"].as_str(), read["messageIds"].clone()),
        (Some("bob"), json!([id]))
    );

    // Delete: not by bob (neither author nor owner of general), yes by alice.
    let d = json!({"chatId": "general", "projectId": "demo", "messageId": id});
    assert_eq!(
        bob.emit_with_ack("message:delete", d.clone()).await["error"]["code"],
        "FORBIDDEN"
    );
    assert_eq!(alice.emit_with_ack("message:delete", d).await["ok"], true);
    let del = bob.expect("message:deleted", WAIT).await;
    assert_eq!(del["deletedBy"], "alice");

    // History over REST: newest first, the deleted one with empty content.
    let bearer = format!("Bearer {}", token("bob", None));
    let (status, body) = s
        .get(
            "/api/chats/general/messages?limit=2",
            Some(("Authorization", &bearer)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let list = body["messages"].as_array().expect("messages");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["content"], "");
    assert!(list[0]["deletedAt"].is_string());
    let cursor = body["nextCursor"].as_str().expect("more pages").to_owned();
    let (_, older) = s
        .get(
            &format!("/api/chats/general/messages?limit=100&before={cursor}"),
            Some(("Authorization", &bearer)),
        )
        .await;
    assert_eq!(
        older["messages"].as_array().map(Vec::len),
        Some(2),
        "{older}"
    );
    assert!(older["nextCursor"].is_null());

    // Leave: the room is told, and the leaver receives nothing more from it.
    assert_eq!(
        bob.emit_with_ack("chat:leave", json!({"chatId": "general"}))
            .await["ok"],
        true
    );
    assert_eq!(
        bob.expect("chat:left", WAIT).await,
        json!({"chatId": "general"})
    );
    assert_eq!(alice.expect("user:offline", WAIT).await["userId"], "bob");
    alice
        .emit_with_ack("message:send", send("general", "gone?"))
        .await;
    bob.expect_none("message:new", SHORT).await;
}

#[tokio::test]
async fn denials_and_bad_payloads() {
    let s = Server::start(opts_with(&[])).await;
    let url = s.url();
    let mut carol = Client::connect_user(&url, &token("carol", None)).await;
    let mut alice = joined(&url, "alice", "general").await;

    // carol is not in general: join, send, typing, react all FORBIDDEN, and nothing reaches alice.
    let ack = carol
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN");
    assert_eq!(
        carol
            .emit_with_ack("message:send", send("general", "let me in"))
            .await["error"]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        carol
            .emit_with_ack("chat:typing:start", json!({"chatId": "general"}))
            .await["error"]["code"],
        "FORBIDDEN"
    );
    alice.expect_none("message:new", SHORT).await;
    alice.expect_none("user:typing:start", SHORT).await;

    // Unknown ids and a wrong project.
    let ack = alice
        .emit_with_ack("chat:join", json!({"chatId": "nope", "projectId": "demo"}))
        .await;
    assert_eq!(ack["error"]["code"], "NOT_FOUND");
    let ack = alice
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "acme"}),
        )
        .await;
    assert_eq!(ack["error"]["code"], "NOT_FOUND");
    let ack = alice.emit_with_ack("message:edit", json!({"chatId": "general", "projectId": "demo", "messageId": "000000000000000000000000", "content": "x"})).await;
    assert_eq!(ack["error"]["code"], "NOT_FOUND");

    // Validation, before any state change.
    for bad in [
        json!({"chatId": "general", "projectId": "demo", "type": "text", "content": ""}),
        json!({"chatId": "general", "projectId": "demo", "type": "text", "content": 5}),
        json!({"chatId": "general", "projectId": "demo", "type": "sticker", "content": "x"}),
        json!({"chatId": "general", "projectId": "demo", "type": "text"}),
        json!({"chatId": "general", "projectId": "demo", "type": "text", "content": "x".repeat(16 * 1024 + 1)}),
        json!({"chatId": "general", "projectId": "demo", "type": "text", "content": "hi", "mentions": ["carol"]}),
        json!({"chatId": "general", "projectId": "demo", "type": "text", "content": "hi", "replyTo": "6955b6d0aaaaaaaaaaaa0004"}),
        json!({"chatId": 1, "projectId": "demo", "type": "text", "content": "hi"}),
        json!(["general"]),
    ] {
        let ack = alice.emit_with_ack("message:send", bad.clone()).await;
        assert_eq!(ack["error"]["code"], "INVALID_PAYLOAD", "{bad}: {ack}");
    }
    let react = json!({"chatId": "general", "projectId": "demo", "messageId": "6955b6d0aaaaaaaaaaaa0001", "emoji": "not an emoji"});
    assert_eq!(
        alice.emit_with_ack("message:react", react).await["error"]["code"],
        "INVALID_PAYLOAD"
    );
    let read = json!({"chatId": "general", "projectId": "demo", "messageIds": []});
    assert_eq!(
        alice.emit_with_ack("messages:mark:read", read).await["error"]["code"],
        "INVALID_PAYLOAD"
    );
    let bearer = format!("Bearer {}", token("alice", None));
    let (_, body) = s
        .get(
            "/api/chats/general/messages",
            Some(("Authorization", &bearer)),
        )
        .await;
    assert_eq!(
        body["messages"].as_array().map(Vec::len),
        Some(3),
        "nothing was stored"
    );

    // REST denials.
    let carol_bearer = format!("Bearer {}", token("carol", None));
    assert_eq!(
        s.get("/api/chats/general", Some(("Authorization", &carol_bearer)))
            .await
            .0,
        403
    );
    assert_eq!(
        s.get(
            "/api/chats/general/messages",
            Some(("Authorization", &carol_bearer))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.get(
            "/api/chats/general/messages?limit=0",
            Some(("Authorization", &bearer))
        )
        .await
        .0,
        400
    );
    let (_, mine) = s
        .get(
            "/api/projects/demo/chats",
            Some(("Authorization", &carol_bearer)),
        )
        .await;
    let ids: Vec<&str> = mine["chats"]
        .as_array()
        .expect("chats")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["team"]);
}

#[tokio::test]
async fn retries_are_idempotent_and_since_recovers() {
    let s = Server::start(opts_with(&[])).await;
    let url = s.url();
    let mut alice = joined(&url, "alice", "general").await;
    let mut bob = joined(&url, "bob", "general").await;
    let mut m = send("general", "once");
    m["clientMessageId"] = json!("c-1");
    let first = alice.emit_with_ack("message:send", m.clone()).await;
    let again = alice.emit_with_ack("message:send", m).await;
    assert_eq!(first["data"]["message"], again["data"]["message"]);
    assert_eq!(again["data"]["clientMessageId"], "c-1");
    bob.expect("message:new", WAIT).await;
    bob.expect_none("message:new", SHORT).await;
    let last_seen = first["data"]["message"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // bob drops; alice sends three; bob rejoins with `since` and gets exactly those, in order.
    drop(bob);
    let mut sent = Vec::new();
    for i in 0..3 {
        let a = alice
            .emit_with_ack("message:send", send("general", &format!("missed {i}")))
            .await;
        sent.push(a["data"]["message"]["id"].clone());
    }
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let ack = bob
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo", "since": last_seen}),
        )
        .await;
    let got: Vec<Value> = ack["data"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(got, sent);
    assert_eq!(ack["data"]["hasMore"], false);
    assert!(ack["data"]["unreadCount"].as_u64().is_some_and(|n| n >= 4));

    // Typing: start reaches the room; a disconnect stops it at once.
    let mut alice2 = Client::connect_user(&url, &token("alice", None)).await;
    alice2
        .emit_with_ack("chat:typing:start", json!({"chatId": "general"}))
        .await;
    assert_eq!(
        bob.expect("user:typing:start", WAIT).await,
        json!({"chatId": "general", "userId": "alice"})
    );
    drop(alice2);
    assert_eq!(
        bob.expect("user:typing:stop", WAIT).await["userId"],
        "alice"
    );
    let _ = &mut alice;
}

#[tokio::test]
async fn typing_expires_after_eight_seconds() {
    let s = Server::start(opts_with(&[])).await;
    let mut alice = joined(&s.url(), "alice", "general").await;
    let mut bob = joined(&s.url(), "bob", "general").await;
    alice
        .emit_with_ack("chat:typing:start", json!({"chatId": "general"}))
        .await;
    bob.expect("user:typing:start", WAIT).await;
    bob.expect_none("user:typing:stop", Duration::from_secs(7))
        .await;
    bob.expect("user:typing:stop", Duration::from_secs(3)).await;
}

#[tokio::test]
async fn calls_ring_answer_signal_end_and_miss() {
    let s = Server::start(opts_with(&[("CALL_RING_TIMEOUT_SECS", "2")])).await;
    let url = s.url();
    let mut alice = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob_tab1 = Client::connect_user(&url, &token("bob", None)).await;
    let mut bob_tab2 = Client::connect_user(&url, &token("bob", None)).await;
    let mut carol = Client::connect_user(&url, &token("carol", None)).await;

    // carol is not in general: she cannot be called there, nor call.
    let bad = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "video", "participants": ["carol"]}),
        )
        .await;
    assert_eq!(bad["error"]["code"], "FORBIDDEN");
    let bad = carol
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "audio", "participants": ["bob"]}),
        )
        .await;
    assert_eq!(bad["error"]["code"], "FORBIDDEN");
    let bad = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "hologram", "participants": ["bob"]}),
        )
        .await;
    assert_eq!(bad["error"]["code"], "INVALID_PAYLOAD");

    let ack = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "video", "participants": ["bob"]}),
        )
        .await;
    let call_id = ack["data"]["callId"].as_str().expect("callId").to_owned();
    for tab in [&mut bob_tab1, &mut bob_tab2] {
        let inc = tab.expect("call:incoming", WAIT).await;
        assert_eq!(
            inc,
            json!({"callId": call_id, "chatId": "general", "type": "video", "callerId": "alice", "participants": ["bob"]})
        );
    }
    carol.expect_none("call:incoming", SHORT).await;

    // Signalling only between the call's parties.
    let sig = json!({"callId": call_id, "to": "bob", "signal": {"sdp": "offer"}});
    assert_eq!(
        carol.emit_with_ack("call:signal", sig.clone()).await["error"]["code"],
        "FORBIDDEN"
    );
    assert_eq!(alice.emit_with_ack("call:signal", sig).await["ok"], true);
    assert_eq!(
        bob_tab1.expect("call:signal", WAIT).await,
        json!({"callId": call_id, "from": "alice", "signal": {"sdp": "offer"}})
    );
    let to_carol = json!({"callId": call_id, "to": "carol", "signal": {}});
    assert_eq!(
        alice.emit_with_ack("call:signal", to_carol).await["error"]["code"],
        "FORBIDDEN"
    );

    let ack = bob_tab1
        .emit_with_ack(
            "call:accept",
            json!({"chatId": "general", "callerId": "alice"}),
        )
        .await;
    assert_eq!(ack["data"]["callId"], call_id.as_str());
    assert_eq!(
        alice.expect("call:accepted", WAIT).await,
        json!({"callId": call_id, "chatId": "general", "userId": "bob"})
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    alice.expect_none("call:missed", SHORT).await;

    let ack = bob_tab1
        .emit_with_ack(
            "call:end",
            json!({"chatId": "general", "participants": ["alice"], "callId": call_id}),
        )
        .await;
    assert_eq!(ack["ok"], true);
    let ended = alice.expect("call:ended", WAIT).await;
    assert_eq!(ended["endedBy"], "bob");
    assert!(ended["durationMs"].as_i64().is_some_and(|d| d >= 2000));
    bob_tab2.expect("call:ended", WAIT).await;
    bob_tab1.expect_none("call:ended", SHORT).await;
    let again = bob_tab1
        .emit_with_ack(
            "call:end",
            json!({"chatId": "general", "participants": [], "callId": call_id}),
        )
        .await;
    assert_eq!(again["error"]["code"], "CONFLICT");

    // Unanswered: both sides get call:missed once; a late accept is refused.
    let ack = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "audio", "participants": ["bob"]}),
        )
        .await;
    let missed_id = ack["data"]["callId"].clone();
    bob_tab1.expect("call:incoming", WAIT).await;
    assert_eq!(
        alice.expect("call:missed", WAIT).await,
        json!({"callId": missed_id, "chatId": "general"})
    );
    assert_eq!(
        bob_tab1.expect("call:missed", WAIT).await["callId"],
        missed_id
    );
    alice
        .expect_none("call:missed", Duration::from_millis(500))
        .await;
    let late = bob_tab1
        .emit_with_ack(
            "call:accept",
            json!({"chatId": "general", "callerId": "alice", "callId": missed_id}),
        )
        .await;
    assert_eq!(late["error"]["code"], "CONFLICT");

    // Reject.
    let ack = alice
        .emit_with_ack(
            "call:initiate",
            json!({"chatId": "general", "type": "audio", "participants": ["bob"]}),
        )
        .await;
    let rid = ack["data"]["callId"].clone();
    let rej = bob_tab2
        .emit_with_ack(
            "call:reject",
            json!({"chatId": "general", "callerId": "alice", "callId": rid}),
        )
        .await;
    assert_eq!(rej["ok"], true);
    assert_eq!(alice.expect("call:rejected", WAIT).await["userId"], "bob");
}

#[tokio::test]
async fn rest_creates_chats_and_mongo_history_survives_restart() {
    let db = support::unique("chat_restart");
    let opts = Options {
        mongodb_db: Some(db.clone()),
        seed_demo: true,
        ..Default::default()
    };
    let s = Server::start(opts.clone()).await;
    let alice_bearer = format!("Bearer {}", token("alice", None));
    let (status, chat) = s
        .post(
            "/api/projects/demo/chats",
            ("Authorization", &alice_bearer),
            json!({"name": "alice+carol", "participants": ["carol"]}),
        )
        .await;
    assert_eq!(status, 201, "{chat}");
    assert_eq!(chat["participants"], json!(["alice", "carol"]));
    assert_eq!(chat["ownerId"], "alice");
    let chat_id = chat["id"].as_str().expect("id").to_owned();
    let (status, _) = s
        .post(
            "/api/projects/demo/chats",
            ("Authorization", &alice_bearer),
            json!({"name": "x", "participants": ["dave"]}),
        )
        .await;
    assert_eq!(status, 400, "dave is not a member of demo");
    let (status, _) = s
        .post(
            "/api/projects/demo/chats",
            ("X-API-Key", API_KEY),
            json!({"name": "ops", "participants": ["bob"], "id": "ops"}),
        )
        .await;
    assert_eq!(status, 201);

    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    let join = json!({"chatId": chat_id, "projectId": "demo"});
    assert_eq!(alice.emit_with_ack("chat:join", join).await["ok"], true);
    for i in 0..5 {
        let m = json!({"chatId": chat_id, "projectId": "demo", "type": "text", "content": format!("m{i}")});
        assert_eq!(alice.emit_with_ack("message:send", m).await["ok"], true);
    }
    drop(alice);
    assert_eq!(s.stop().code(), Some(0));

    let s = Server::start(Options {
        seed_demo: false,
        ..opts
    })
    .await;
    let carol_bearer = format!("Bearer {}", token("carol", None));
    let (status, body) = s
        .get(
            &format!("/api/chats/{chat_id}/messages?limit=3"),
            Some(("Authorization", &carol_bearer)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let contents: Vec<&str> = body["messages"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, vec!["m4", "m3", "m2"]);
    let (_, got) = s
        .get(
            &format!("/api/chats/{chat_id}"),
            Some(("Authorization", &carol_bearer)),
        )
        .await;
    assert_eq!(got["name"], "alice+carol");
}
