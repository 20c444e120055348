//! Chat, messages, calls and custom relays through the real binary and a real socket: success
//! paths, denials, limits, idempotent retries, `since` recovery, history over REST, and (with
//! MongoDB) a restart and racing chat creations.

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
    // Each message says who has read it: bob's receipt, with the readAt the room was told.
    assert_eq!(list[0]["readCount"], 1, "{body}");
    assert_eq!(
        list[0]["readBy"],
        json!([{ "userId": "bob", "readAt": read["readAt"] }])
    );
    assert_eq!(
        (list[1]["readCount"].clone(), list[1]["readBy"].clone()),
        (json!(0), json!([]))
    );
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

/// Chat ids are global: two tenants racing to create the same id must not both win, and the
/// loser must not take the chat over (creation is insert-only, a duplicate is 409).
#[tokio::test]
async fn concurrent_creations_of_one_chat_id_have_one_winner() {
    for opts in [
        opts_with(&[]),
        Options {
            mongodb_db: Some(support::unique("chat_create_race")),
            seed_demo: true,
            ..Default::default()
        },
    ] {
        creation_race(Server::start(opts).await).await;
    }
}

async fn creation_race(s: Server) {
    let alice = format!("Bearer {}", token("alice", None));
    let dave = format!("Bearer {}", token("dave", None));
    let tries = 95;
    let mut races = Vec::new();
    for i in 0..tries {
        let id = format!("race-{i}");
        let a = s.post(
            "/api/projects/demo/chats",
            ("Authorization", &alice),
            json!({"id": id, "name": "demo's", "participants": ["bob"]}),
        );
        let d = s.post(
            "/api/projects/acme/chats",
            ("Authorization", &dave),
            json!({"id": id, "name": "acme's", "participants": []}),
        );
        races.push(async move { (id, tokio::join!(a, d)) });
    }
    let results = futures_util::future::join_all(races).await;
    for (id, ((sa, ca), (sd, cd))) in results {
        let mut statuses = [sa, sd];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [201, 409],
            "{id}: alice {sa} {ca}, dave {sd} {cd}"
        );
        let winner = if sa == 201 { &ca } else { &cd };
        let loser = if sa == 201 { &cd } else { &ca };
        assert_eq!(loser["error"]["code"], "CONFLICT", "{id}: {loser}");
        let (status, stored) = s
            .get(&format!("/api/chats/{id}"), Some(("X-API-Key", API_KEY)))
            .await;
        assert_eq!(status, 200, "{id}: {stored}");
        assert_eq!(
            stored["ownerId"], winner["ownerId"],
            "{id}: owner unchanged"
        );
        assert_eq!(stored["projectId"], winner["projectId"], "{id}");
    }
    // A later creation of an existing id is refused too, and changes nothing.
    let (status, body) = s
        .post(
            "/api/projects/acme/chats",
            ("Authorization", &dave),
            json!({"id": "general", "name": "mine now", "participants": []}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (_, general) = s
        .get("/api/chats/general", Some(("X-API-Key", API_KEY)))
        .await;
    assert_eq!(general["projectId"], "demo");
}

fn react(message: &str, emoji: &str) -> Value {
    json!({"chatId": "general", "projectId": "demo", "messageId": message, "emoji": emoji})
}

/// One user reacting with ever more distinct emoji: refused past the per-user cap, the refusal
/// changes nothing, the other participant can still react, and every event stays small.
#[tokio::test]
async fn reactions_are_capped_and_events_stay_bounded() {
    let s = Server::start(opts_with(&[
        ("RATE_LIMIT_PER_SEC", "1000"),
        ("RATE_LIMIT_BURST", "2000"),
    ]))
    .await;
    let url = s.url();
    let mut alice = joined(&url, "alice", "general").await;
    let mut bob = joined(&url, "bob", "general").await;
    let ack = alice
        .emit_with_ack("message:send", send("general", "react to me"))
        .await;
    let id = ack["data"]["message"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let per_user = 32;
    let mut refused = 0;
    for i in 0..per_user + 8 {
        let ack = alice
            .emit_with_ack("message:react", react(&id, &format!(":r{i}:")))
            .await;
        if i < per_user {
            assert_eq!(ack["ok"], true, "reaction {i}: {ack}");
        } else {
            assert_eq!(ack["error"]["code"], "CONFLICT", "reaction {i}: {ack}");
            refused += 1;
        }
    }
    assert_eq!(refused, 8);
    let events = {
        tokio::time::sleep(SHORT).await;
        bob.drain("message:reaction")
    };
    assert_eq!(events.len(), per_user, "refusals reach nobody");
    let largest = events
        .iter()
        .map(|e| e.to_string().len())
        .max()
        .unwrap_or(0);
    eprintln!(
        "{} reactions added, {refused} refused; largest message:reaction {largest} B",
        events.len()
    );
    assert!(largest < 4 * 1024, "largest message:reaction {largest} B");
    // Removing one of alice's own still works at the cap, and bob is not blocked by her.
    let ack = alice
        .emit_with_ack("message:react", react(&id, ":r0:"))
        .await;
    assert_eq!(ack["data"]["action"], "removed", "{ack}");
    let ack = bob.emit_with_ack("message:react", react(&id, "👍")).await;
    assert_eq!(ack["data"]["action"], "added", "{ack}");
    let bearer = format!("Bearer {}", token("alice", None));
    let (_, body) = s
        .get(
            "/api/chats/general/messages?limit=1",
            Some(("Authorization", &bearer)),
        )
        .await;
    assert_eq!(
        body["messages"][0]["reactions"].as_array().map(Vec::len),
        Some(per_user),
        "31 of alice's and bob's one"
    );
}

/// 150 `call:initiate` from one caller ring the callee at most 10 times; ending a ringing call
/// frees a place.
#[tokio::test]
async fn one_caller_rings_one_callee_at_most_ten_times() {
    let s = Server::start(opts_with(&[
        ("RATE_LIMIT_PER_SEC", "1000"),
        ("RATE_LIMIT_BURST", "2000"),
    ]))
    .await;
    let url = s.url();
    let mut alice = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let initiate = json!({"chatId": "general", "type": "audio", "participants": ["bob"]});
    let mut ringing = Vec::new();
    let mut refused = 0;
    for _ in 0..150 {
        let ack = alice.emit_with_ack("call:initiate", initiate.clone()).await;
        match ack["data"]["callId"].as_str() {
            Some(id) => ringing.push(id.to_owned()),
            None => {
                assert_eq!(ack["error"]["code"], "CONFLICT", "{ack}");
                refused += 1;
            }
        }
    }
    assert_eq!(ringing.len(), 10);
    assert_eq!(refused, 140);
    tokio::time::sleep(SHORT).await;
    let rang = bob.drain("call:incoming").len();
    eprintln!("150 call:initiate: {rang} rang, {refused} refused");
    assert_eq!(rang, 10, "bob rang 10 times");

    let end = json!({"chatId": "general", "participants": ["bob"], "callId": ringing[0]});
    assert_eq!(alice.emit_with_ack("call:end", end).await["ok"], true);
    let ack = alice.emit_with_ack("call:initiate", initiate.clone()).await;
    assert!(ack["data"]["callId"].is_string(), "a place is free: {ack}");
    let ack = alice.emit_with_ack("call:initiate", initiate).await;
    assert_eq!(ack["error"]["code"], "CONFLICT", "{ack}");
}

/// `custom:broadcast` cannot emit under the server's own `custom:*` names.
#[tokio::test]
async fn custom_broadcast_cannot_forge_server_events() {
    let s = Server::start(opts_with(&[])).await;
    let url = s.url();
    let mut alice = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    for c in [&mut alice, &mut bob] {
        let ack = c
            .emit_with_ack("subscribe:project", json!({"projectId": "demo"}))
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    let reserved = [
        "message",
        "presence",
        "joined",
        "left",
        "typing",
        "file:shared",
        "event",
        "broadcast",
        "join",
        "leave",
        "file:share",
    ];
    for name in reserved {
        let ack = alice
            .emit_with_ack(
                "custom:broadcast",
                json!({"projectId": "demo", "event": name, "payload": {"forged": true}}),
            )
            .await;
        assert_eq!(ack["error"]["code"], "INVALID_PAYLOAD", "{name}: {ack}");
    }
    tokio::time::sleep(SHORT).await;
    for name in reserved {
        assert!(
            bob.drain(&format!("custom:{name}")).is_empty(),
            "custom:{name} was forged"
        );
    }
    // App-defined names still pass, including ones that merely start like a reserved name.
    for name in ["cursor", "message:v2", "file:shared:preview"] {
        let ack = alice
            .emit_with_ack(
                "custom:broadcast",
                json!({"projectId": "demo", "event": name, "payload": 1}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{name}: {ack}");
        bob.expect(&format!("custom:{name}"), WAIT).await;
    }
}

/// For every event of the table: ids that name nothing plus one wrongly-typed field is
/// INVALID_PAYLOAD (validation runs before any lookup), never NOT_FOUND or FORBIDDEN.
#[tokio::test]
async fn wrong_types_are_invalid_payload_whatever_the_ids_name() {
    let nope = "000000000000000000000000";
    let cases: Vec<(&str, Value)> = vec![
        ("subscribe:project", json!({"projectId": 5})),
        ("unsubscribe:project", json!({"projectId": 5})),
        ("custom:event", json!({"projectId": 5, "event": "x"})),
        (
            "custom:broadcast",
            json!({"projectId": "nope", "event": "x", "room": 5}),
        ),
        ("custom:join", json!({"room": 5})),
        ("custom:leave", json!({"room": 5})),
        (
            "custom:message",
            json!({"targetUserId": "nope", "message": "hi", "type": 5}),
        ),
        ("custom:presence", json!({"projectId": "nope", "status": 5})),
        (
            "custom:typing",
            json!({"projectId": "nope", "isTyping": "yes"}),
        ),
        (
            "custom:file:share",
            json!({"projectId": "nope", "fileId": "f", "fileName": "a.txt", "recipients": "bob"}),
        ),
        ("auth:login", json!({"projectId": 5})),
        ("auth:logout", json!({"projectId": 5})),
        (
            "auth:session:update",
            json!({"projectId": 5, "sessionData": {}}),
        ),
        ("presence:online", json!({"projectId": "nope", "status": 5})),
        ("presence:get:online", json!({"projectId": 5})),
        (
            "integration:join",
            json!({"projectId": "nope", "integrationId": 5}),
        ),
        ("integration:leave", json!({"integrationId": 5})),
        (
            "integration:execute",
            json!({"projectId": "nope", "integrationId": "nope", "endpoint": "x", "params": 5}),
        ),
        (
            "integration:test",
            json!({"projectId": "nope", "integrationId": "nope", "endpoint": 5}),
        ),
        (
            "integration:status",
            json!({"projectId": "nope", "integrationId": 5}),
        ),
        (
            "integration:webhook:subscribe",
            json!({"projectId": "nope", "integrationId": 5}),
        ),
        (
            "integration:webhook:unsubscribe",
            json!({"integrationId": 5}),
        ),
        ("wallet:subscribe:address", json!({"addressId": 5})),
        ("wallet:subscribe:project", json!({"projectId": 5})),
        ("wallet:subscribe:chain", json!({"chain": 5})),
        ("wallet:subscribe:currency", json!({"currency": 5})),
        ("wallet:unsubscribe:address", json!({"addressId": 5})),
        ("wallet:unsubscribe:project", json!({"projectId": 5})),
        (
            "chat:join",
            json!({"chatId": "nope", "projectId": "demo", "since": 5}),
        ),
        ("chat:leave", json!({"chatId": 5})),
        ("chat:typing:start", json!({"chatId": 5})),
        ("chat:typing:stop", json!({"chatId": 5})),
        (
            "message:send",
            json!({"chatId": "nope", "projectId": "demo", "type": "text", "content": 5}),
        ),
        (
            "message:react",
            json!({"chatId": "nope", "projectId": "demo", "messageId": nope, "emoji": 5}),
        ),
        (
            "message:edit",
            json!({"chatId": "nope", "projectId": "demo", "messageId": nope, "content": 5}),
        ),
        (
            "message:delete",
            json!({"chatId": "nope", "projectId": "demo", "messageId": 5}),
        ),
        (
            "messages:mark:read",
            json!({"chatId": "nope", "projectId": "demo", "messageIds": nope}),
        ),
        (
            "call:initiate",
            json!({"chatId": "nope", "type": "audio", "participants": "bob"}),
        ),
        (
            "call:accept",
            json!({"chatId": "nope", "callerId": "nope", "callId": 5}),
        ),
        (
            "call:reject",
            json!({"chatId": "nope", "callerId": "nope", "callId": 5}),
        ),
        (
            "call:end",
            json!({"chatId": "nope", "participants": "bob", "callId": nope}),
        ),
        (
            "call:signal",
            json!({"callId": nope, "to": "bob", "signal": 5}),
        ),
        (
            "subscribe:collection",
            json!({"projectId": "nope", "collectionId": 5}),
        ),
        ("unsubscribe:collection", json!({"collectionId": 5})),
        (
            "subscribe:document",
            json!({"projectId": "nope", "collectionId": "c", "documentId": 5}),
        ),
        (
            "subscribe:query",
            json!({"projectId": "nope", "collectionId": "c", "queryId": "q", "query": 5}),
        ),
        ("unsubscribe:query", json!({"queryId": 5})),
    ];
    // These take no payload: there is no field to get wrong.
    let without_fields = ["presence:offline", "presence:update"];
    let mut covered: Vec<&str> = cases.iter().map(|(e, _)| *e).collect();
    covered.extend(without_fields);
    covered.sort_unstable();
    let mut all: Vec<&str> = switchboard_handlers::EVENTS.to_vec();
    all.sort_unstable();
    assert_eq!(covered, all, "every event of the table has a case");

    let s = Server::start(opts_with(&[])).await;
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    let ack = alice
        .emit_with_ack("subscribe:project", json!({"projectId": "demo"}))
        .await;
    assert_eq!(ack["ok"], true);
    let mut wrong = Vec::new();
    for (event, payload) in &cases {
        for p in [payload.clone(), json!(5)] {
            let ack = alice.emit_with_ack(event, p.clone()).await;
            if ack["error"]["code"] != "INVALID_PAYLOAD" {
                wrong.push(format!("{event} {p}: {ack}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not INVALID_PAYLOAD:\n{}",
        wrong.join("\n")
    );
}

/// The ringing cap holds when several tabs of the caller initiate at once against MongoDB
/// (each call is counted again after its write, so none of the racers can overshoot).
#[tokio::test]
async fn concurrent_tabs_ring_one_callee_at_most_ten_times() {
    let s = Server::start(Options {
        mongodb_db: Some(support::unique("call_ring_cap")),
        seed_demo: true,
        ..Default::default()
    })
    .await;
    let url = s.url();
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let mut tabs = Vec::new();
    for _ in 0..4 {
        tabs.push(Client::connect_user(&url, &token("alice", None)).await);
    }
    let initiate = json!({"chatId": "general", "type": "video", "participants": ["bob"]});
    let runs = tabs.iter_mut().map(|tab| {
        let initiate = initiate.clone();
        async move {
            let mut rang = 0;
            for _ in 0..10 {
                let ack = tab.emit_with_ack("call:initiate", initiate.clone()).await;
                if ack["data"]["callId"].is_string() {
                    rang += 1;
                } else {
                    assert_eq!(ack["error"]["code"], "CONFLICT", "{ack}");
                }
            }
            rang
        }
    });
    let admitted: usize = futures_util::future::join_all(runs).await.iter().sum();
    tokio::time::sleep(SHORT).await;
    let rang = bob.drain("call:incoming").len();
    eprintln!("4 tabs × 10 call:initiate at once: {admitted} admitted, bob rang {rang} times");
    assert!((1..=10).contains(&admitted), "{admitted} admitted");
    assert_eq!(rang, admitted);
}
