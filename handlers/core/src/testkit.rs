//! Conformance suites for the ports (feature `testkit`). Each suite takes a store and a prefix
//! unique to this run, so it can run against a shared database without tearing anything down.
//! The handlers crate runs them on `MemoryStore`; `tests/store_conformance.rs` on MongoDB;
//! `tests/presence_conformance.rs` the presence suite on the memory and the Redis store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use futures_util::future::join_all;

use crate::error::AppError;
use crate::ids::{
    AddressId, CallId, ChatId, CollectionId, DocumentId, IntegrationId, MessageId, ProjectId,
    UserId,
};
use crate::model::{
    Call, CallState, CallType, Chat, Document, DocumentBody, Integration, IntegrationStats,
    Message, MessageType, Project, Reaction, ReadSummary, Reader, TxDirection, TxStatus, User,
    WalletAddress, WalletTransaction, WebhookEvent,
};
use crate::ports::{ConnId, DocQuery, FieldGuard, Inserted, Presence, PresenceStore, Store};
use crate::query::{Filter, Sort};
use crate::time::Timestamp;

fn id<T: TryFrom<String>>(s: impl Into<String>) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(s.into()).expect("valid test id")
}

pub fn project(pid: &str, members: &[&str]) -> Project {
    Project {
        id: id(pid),
        name: format!("Project {pid}"),
        members: members.iter().map(|m| id(*m)).collect(),
        collections: BTreeMap::new(),
        created_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

pub fn chat(cid: &str, pid: &str, participants: &[&str]) -> Chat {
    Chat {
        id: id(cid),
        project_id: id(pid),
        name: cid.to_owned(),
        participants: participants.iter().map(|m| id(*m)).collect(),
        owner_id: id(participants.first().copied().unwrap_or("owner")),
        created_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

pub fn message(mid: &str, cid: &str, pid: &str, sender: &str, at_ms: i64) -> Message {
    Message {
        id: id(mid),
        chat_id: id(cid),
        project_id: id(pid),
        sender_id: id(sender),
        kind: MessageType::Text,
        content: json!(format!("hello {mid}")),
        reply_to: None,
        mentions: vec![],
        reactions: vec![],
        created_at: Timestamp::from_millis(at_ms),
        edited_at: None,
        deleted_at: None,
    }
}

pub fn call(cid: &str, chat: &str, pid: &str, caller: &str, at_ms: i64) -> Call {
    Call {
        id: id(cid),
        chat_id: id(chat),
        project_id: id(pid),
        caller_id: id(caller),
        kind: CallType::Audio,
        participants: vec![id("callee")],
        state: CallState::Ringing,
        created_at: Timestamp::from_millis(at_ms),
        answered_at: None,
        ended_at: None,
    }
}

/// Every suite, in order.
pub async fn run_all(store: &dyn Store, prefix: &str) {
    projects_and_users(store, prefix).await;
    chats_and_history(store, prefix).await;
    chat_creation_is_insert_only(store, prefix).await;
    idempotent_messages(store, prefix).await;
    concurrent_messages(store, prefix).await;
    history_after(store, prefix).await;
    reactions(store, prefix).await;
    concurrent_reactions(store, prefix).await;
    reaction_caps(store, prefix).await;
    edit_and_delete(store, prefix).await;
    read_receipts(store, prefix).await;
    read_summaries(store, prefix).await;
    calls(store, prefix).await;
    call_races(store, prefix).await;
    latest_calls(store, prefix).await;
    ringing_counts(store, prefix).await;
    documents(store, prefix).await;
    registries(store, prefix).await;
    integration_creation(store, prefix).await;
    webhook_replays_and_retention(store, prefix).await;
    apps(store, prefix).await;
}

/// Protocol apps: ids and keys unique, listed by id, deleted once.
pub async fn apps(store: &dyn Store, prefix: &str) {
    use crate::ports::StoredApp;
    let app = |id: &str, key: &str| StoredApp {
        id: format!("{prefix}-{id}"),
        key: format!("{prefix}-{key}"),
        project_id: ProjectId::try_from(format!("{prefix}-p")).expect("project id"),
        config: serde_json::json!({"dialect": "pusher", "secret": "s", "nested": {"a": [1, 2]}}),
        created_at: Timestamp::from_millis(1_700_000_000_000),
    };
    let mine = |all: Vec<StoredApp>| -> Vec<StoredApp> {
        all.into_iter()
            .filter(|a| a.id.starts_with(&format!("{prefix}-")))
            .collect()
    };
    store.create_app(&app("b", "kb")).await.expect("creates");
    store.create_app(&app("a", "ka")).await.expect("creates");
    for (dup, what) in [(app("a", "kz"), "id"), (app("z", "kb"), "key")] {
        match store.create_app(&dup).await {
            Err(AppError::Conflict(_)) => {}
            other => panic!("a taken {what} must conflict, got {other:?}"),
        }
    }
    let listed = mine(store.list_apps().await.expect("lists"));
    assert_eq!(listed, vec![app("a", "ka"), app("b", "kb")]);
    assert!(store.delete_app(&app("a", "ka").id).await.expect("deletes"));
    assert!(!store.delete_app(&app("a", "ka").id).await.expect("deletes"));
    assert_eq!(
        mine(store.list_apps().await.expect("lists")),
        vec![app("b", "kb")]
    );
    store
        .create_app(&app("a", "ka"))
        .await
        .expect("the id is free again");
    assert!(store.delete_app(&app("a", "ka").id).await.expect("deletes"));
    assert!(store.delete_app(&app("b", "kb").id).await.expect("deletes"));
}

pub async fn projects_and_users(store: &dyn Store, prefix: &str) {
    let a = project(&format!("{prefix}-a"), &["u1", "u2"]);
    let b = project(&format!("{prefix}-b"), &["u3"]);
    store.put_project(&a).await.expect("put a");
    store.put_project(&b).await.expect("put b");
    assert_eq!(
        store.get_project(&a.id).await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(
        store
            .get_project(&id(format!("{prefix}-missing")))
            .await
            .expect("get"),
        None
    );
    let mine: Vec<ProjectId> = store
        .list_projects(Some(&id("u3")))
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.id)
        .filter(|p| p.as_str().starts_with(prefix))
        .collect();
    assert_eq!(mine, vec![b.id.clone()]);
    let all: Vec<ProjectId> = store
        .list_projects(None)
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.id)
        .filter(|p| p.as_str().starts_with(prefix))
        .collect();
    assert_eq!(all, vec![a.id.clone(), b.id.clone()], "ordered by id");

    // Upsert replaces.
    let mut a2 = a.clone();
    a2.members.push(id("u9"));
    store.put_project(&a2).await.expect("replace");
    assert_eq!(store.get_project(&a.id).await.expect("get"), Some(a2));
    assert!(!store.is_empty().await.expect("is_empty"));

    let u = User {
        id: id(format!("{prefix}-user")),
        name: "Ann".into(),
        email: None,
    };
    store.put_user(&u).await.expect("put user");
    assert_eq!(store.get_user(&u.id).await.expect("get user"), Some(u));
}

/// Concurrent creations of one chat id (here from two projects, each with its own owner): one
/// wins, every other is a CONFLICT, and the stored chat is the winner's.
pub async fn chat_creation_is_insert_only(store: &dyn Store, prefix: &str) {
    let cid = format!("{prefix}-created-once");
    let tries: Vec<Chat> = (0..20)
        .map(|i| {
            let owner = format!("owner{i}");
            chat(
                &cid,
                &format!("{prefix}-tenant{}", i % 2),
                &[owner.as_str()],
            )
        })
        .collect();
    let results = join_all(tries.iter().map(|c| store.insert_chat(c))).await;
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one creation wins: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, AppError::Conflict(_)), "{e:?}");
        }
    }
    let stored = store.get_chat(&id(&cid)).await.expect("get");
    assert_eq!(stored.as_ref(), Some(&tries[winners[0]]));

    // An existing chat (seeded with put_chat) is not replaced either.
    let seeded = chat(&format!("{prefix}-seeded"), prefix, &["u1"]);
    store.put_chat(&seeded).await.expect("put");
    let mut thief = seeded.clone();
    thief.owner_id = id("thief");
    thief.participants = vec![id("thief")];
    let err = store.insert_chat(&thief).await.expect_err("taken");
    assert!(matches!(err, AppError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_chat(&seeded.id).await.expect("get"), Some(seeded));
}

pub async fn chats_and_history(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-chats");
    let c1 = chat(&format!("{prefix}-c1"), &pid, &["u1", "u2"]);
    let c2 = chat(&format!("{prefix}-c2"), &pid, &["u2", "u3"]);
    store.put_chat(&c1).await.expect("put");
    store.put_chat(&c2).await.expect("put");
    assert_eq!(store.get_chat(&c1.id).await.expect("get"), Some(c1.clone()));
    let of_u1: Vec<ChatId> = store
        .list_chats(&id(pid.as_str()), Some(&id("u1")))
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(of_u1, vec![c1.id.clone()]);
    assert_eq!(
        store
            .list_chats(&id(pid.as_str()), None)
            .await
            .expect("list")
            .len(),
        2
    );

    // Five messages, two sharing a timestamp: history is newest first, ties broken by id.
    let times = [1_000, 2_000, 3_000, 3_000, 4_000];
    let mut ids = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let mid = format!("{prefix}-m{i}");
        let m = message(&mid, c1.id.as_str(), &pid, "u1", 1_700_000_000_000 + t);
        assert!(matches!(
            store.insert_message(m.clone(), None).await.expect("insert"),
            Inserted::New(_)
        ));
        ids.push(mid);
    }
    let page = |v: Vec<Message>| v.into_iter().map(|m| m.id.to_string()).collect::<Vec<_>>();
    let newest = page(store.list_messages(&c1.id, 2, None).await.expect("list"));
    assert_eq!(newest, vec![ids[4].clone(), ids[3].clone()]);
    let next = page(
        store
            .list_messages(&c1.id, 2, Some(&id(ids[3].as_str())))
            .await
            .expect("list"),
    );
    assert_eq!(next, vec![ids[2].clone(), ids[1].clone()]);
    let last = page(
        store
            .list_messages(&c1.id, 10, Some(&id(ids[1].as_str())))
            .await
            .expect("list"),
    );
    assert_eq!(last, vec![ids[0].clone()]);
    assert!(
        store
            .list_messages(&c2.id, 10, None)
            .await
            .expect("list")
            .is_empty()
    );
    let got = store
        .get_message(&id(ids[0].as_str()))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.created_at, Timestamp::from_millis(1_700_000_001_000));
    assert_eq!(got.content, json!(format!("hello {}", ids[0])));
}

pub async fn idempotent_messages(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-idem");
    let cid = format!("{prefix}-idem-chat");
    let first = message(&format!("{prefix}-x1"), &cid, &pid, "u1", 1_700_000_000_000);
    let retry = message(&format!("{prefix}-x2"), &cid, &pid, "u1", 1_700_000_000_500);
    let other_sender = message(&format!("{prefix}-x3"), &cid, &pid, "u2", 1_700_000_000_600);
    assert_eq!(
        store
            .insert_message(first.clone(), Some("k1"))
            .await
            .expect("insert"),
        Inserted::New(first.clone())
    );
    assert_eq!(
        store
            .insert_message(retry.clone(), Some("k1"))
            .await
            .expect("retry"),
        Inserted::Existing(first.clone())
    );
    // Same key, another sender: a different message.
    assert!(matches!(
        store
            .insert_message(other_sender.clone(), Some("k1"))
            .await
            .expect("insert"),
        Inserted::New(_)
    ));
    let chat_id: ChatId = id(cid.as_str());
    assert_eq!(
        store
            .list_messages(&chat_id, 10, None)
            .await
            .expect("list")
            .len(),
        2
    );
    let mid: MessageId = id(format!("{prefix}-x2"));
    assert_eq!(store.get_message(&mid).await.expect("get"), None);
}

fn body(v: serde_json::Value) -> DocumentBody {
    match v {
        serde_json::Value::Object(m) => m,
        _ => DocumentBody::new(),
    }
}

fn doc_ids(docs: &[Document]) -> Vec<String> {
    docs.iter()
        .filter_map(|d| d.body.get("id").and_then(|v| v.as_str()).map(str::to_owned))
        .collect()
}

fn query(filter: serde_json::Value, limit: usize) -> DocQuery {
    DocQuery {
        filter: Filter::parse(&filter, &crate::query::FilterBudget::default())
            .expect("valid filter"),
        sort: Sort::default(),
        limit,
        skip: 0,
        after: None,
        guard: None,
        max_time: std::time::Duration::from_secs(5),
    }
}

pub async fn documents(store: &dyn Store, prefix: &str) {
    let pid: ProjectId = id(format!("{prefix}-docs"));
    let cid: CollectionId = id("tasks");
    for (i, title) in ["b", "a", "c"].iter().enumerate() {
        let b = body(json!({
            "id": format!("d{i}"), "title": title, "n": i, "tags": ["x"],
            "nested": { "k": true }, "ownerId": if i == 2 { "bob" } else { "alice" },
        }));
        store
            .put_document(&Document {
                project_id: pid.clone(),
                collection_id: cid.clone(),
                body: b,
            })
            .await
            .expect("put");
    }
    let d1: DocumentId = id("d1");
    let got = store
        .get_document(&pid, &cid, &d1)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        serde_json::Value::Object(got.body),
        json!({ "id": "d1", "title": "a", "n": 1, "tags": ["x"], "nested": { "k": true }, "ownerId": "alice" })
    );

    // Listing: filter, default order by id, limit, skip, cursor, sort, guard.
    let all = store
        .find_documents(&pid, &cid, &query(json!({}), 10))
        .await
        .expect("find");
    assert_eq!(doc_ids(&all), vec!["d0", "d1", "d2"]);
    let two = store
        .find_documents(&pid, &cid, &query(json!({}), 2))
        .await
        .expect("find");
    assert_eq!(doc_ids(&two), vec!["d0", "d1"]);
    let mut q = query(json!({}), 10);
    q.after = Some(id("d0"));
    assert_eq!(
        doc_ids(&store.find_documents(&pid, &cid, &q).await.expect("find")),
        vec!["d1", "d2"]
    );
    let mut q = query(json!({ "n": { "$gte": 1 } }), 10);
    q.sort = Sort::parse_spec("-title").expect("sort");
    assert_eq!(
        doc_ids(&store.find_documents(&pid, &cid, &q).await.expect("find")),
        vec!["d2", "d1"]
    );
    q.skip = 1;
    assert_eq!(
        doc_ids(&store.find_documents(&pid, &cid, &q).await.expect("find")),
        vec!["d1"]
    );
    let mut q = query(json!({ "nested.k": true, "tags": "x" }), 10);
    q.guard = Some(FieldGuard {
        field: "ownerId".into(),
        value: "bob".into(),
    });
    assert_eq!(
        doc_ids(&store.find_documents(&pid, &cid, &q).await.expect("find")),
        vec!["d2"]
    );
    let id_filter = query(json!({ "id": { "$in": ["d1", "d2"] } }), 10);
    assert_eq!(
        doc_ids(
            &store
                .find_documents(&pid, &cid, &id_filter)
                .await
                .expect("find")
        ),
        vec!["d1", "d2"],
        "filters address the id as `id`"
    );
    let other: CollectionId = id("other");
    assert!(
        store
            .find_documents(&pid, &other, &query(json!({}), 10))
            .await
            .expect("find")
            .is_empty()
    );

    // Insert: a new id works once.
    let fresh = Document {
        project_id: pid.clone(),
        collection_id: cid.clone(),
        body: body(json!({ "id": "d9", "title": "z", "ownerId": "alice" })),
    };
    store.insert_document(&fresh).await.expect("insert");
    assert!(matches!(
        store.insert_document(&fresh).await,
        Err(AppError::Conflict(_))
    ));

    // Patch merges top-level fields and reports both images; the guard decides atomically.
    let d9: DocumentId = id("d9");
    let alice = FieldGuard {
        field: "ownerId".into(),
        value: "alice".into(),
    };
    let bob = FieldGuard {
        field: "ownerId".into(),
        value: "bob".into(),
    };
    let w = store
        .patch_document(
            &pid,
            &cid,
            &d9,
            &body(json!({ "done": true, "title": "y" })),
            Some(&alice),
        )
        .await
        .expect("patch")
        .expect("exists and passes");
    assert_eq!(
        serde_json::Value::Object(w.before.body),
        json!({ "id": "d9", "title": "z", "ownerId": "alice" })
    );
    assert_eq!(
        serde_json::Value::Object(w.after.body.clone()),
        json!({ "id": "d9", "title": "y", "ownerId": "alice", "done": true })
    );
    assert_eq!(
        store
            .get_document(&pid, &cid, &d9)
            .await
            .expect("get")
            .map(|d| d.body),
        Some(w.after.body)
    );
    assert_eq!(
        store
            .patch_document(&pid, &cid, &d9, &body(json!({ "x": 1 })), Some(&bob))
            .await
            .expect("patch"),
        None,
        "the guard refuses"
    );
    let missing: DocumentId = id("nope");
    assert_eq!(
        store
            .patch_document(&pid, &cid, &missing, &body(json!({ "x": 1 })), None)
            .await
            .expect("patch"),
        None
    );
    let same = store
        .patch_document(&pid, &cid, &d9, &DocumentBody::new(), None)
        .await
        .expect("empty patch")
        .expect("exists");
    assert_eq!(same.before, same.after);

    // Replace keeps only the id.
    let w = store
        .replace_document(
            &pid,
            &cid,
            &d9,
            &body(json!({ "title": "r", "ownerId": "alice" })),
            Some(&alice),
        )
        .await
        .expect("replace")
        .expect("exists");
    assert_eq!(
        serde_json::Value::Object(w.after.body.clone()),
        json!({ "id": "d9", "title": "r", "ownerId": "alice" })
    );
    assert_eq!(
        store
            .get_document(&pid, &cid, &d9)
            .await
            .expect("get")
            .map(|d| d.body),
        Some(w.after.body)
    );
    assert_eq!(
        store
            .replace_document(&pid, &cid, &d9, &body(json!({ "t": 1 })), Some(&bob))
            .await
            .expect("replace"),
        None
    );

    // Delete returns the document once.
    assert_eq!(
        store
            .delete_document(&pid, &cid, &d9, Some(&bob))
            .await
            .expect("delete"),
        None
    );
    let gone = store
        .delete_document(&pid, &cid, &d9, Some(&alice))
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(gone.body.get("title"), Some(&json!("r")));
    assert_eq!(
        store
            .delete_document(&pid, &cid, &d9, None)
            .await
            .expect("delete"),
        None
    );
    assert_eq!(
        store.get_document(&pid, &cid, &d9).await.expect("get"),
        None
    );
    collection_listing(store, prefix).await;
}

/// The collections of a project that hold documents, by name, paged by `after`.
async fn collection_listing(store: &dyn Store, prefix: &str) {
    let pid: ProjectId = id(format!("{prefix}-colls"));
    let other: ProjectId = id(format!("{prefix}-colls-other"));
    let put = |p: &ProjectId, c: &str, d: &str| Document {
        project_id: p.clone(),
        collection_id: id(c),
        body: body(json!({ "id": d })),
    };
    for (c, d) in [
        ("b", "1"),
        ("a", "1"),
        ("b", "2"),
        ("c", "1"),
        ("gone", "1"),
    ] {
        store.put_document(&put(&pid, c, d)).await.expect("put");
    }
    store
        .put_document(&put(&other, "z", "1"))
        .await
        .expect("put");
    // A collection whose documents were all deleted holds none: not listed.
    let gone = store
        .delete_document(&pid, &id("gone"), &id("1"), None)
        .await
        .expect("delete");
    assert!(gone.is_some());
    let names = |v: Vec<CollectionId>| v.into_iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let list = |after: Option<&'static str>, limit| {
        let pid = pid.clone();
        async move {
            let after = after.map(id::<CollectionId>);
            names(
                store
                    .list_collections(&pid, after.as_ref(), limit)
                    .await
                    .expect("list"),
            )
        }
    };
    assert_eq!(list(None, 10).await, ["a", "b", "c"]);
    assert_eq!(list(None, 2).await, ["a", "b"]);
    assert_eq!(list(Some("b"), 2).await, ["c"]);
    assert_eq!(list(Some("aa"), 10).await, ["b", "c"]);
    assert_eq!(list(Some("c"), 10).await, Vec::<String>::new());
    assert_eq!(list(None, 0).await, Vec::<String>::new());
    let empty: ProjectId = id(format!("{prefix}-colls-none"));
    assert!(
        store
            .list_collections(&empty, None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}

pub async fn registries(store: &dyn Store, prefix: &str) {
    let pid: ProjectId = id(format!("{prefix}-reg"));
    let integ = Integration {
        id: id(format!("{prefix}-integ")),
        project_id: pid.clone(),
        name: "I".into(),
        base_url: "https://example.com".into(),
        endpoints: BTreeMap::new(),
        headers: BTreeMap::from([("Authorization".to_owned(), "Bearer s".to_owned())]),
        webhook_secret: Some("w".into()),
        enabled: true,
    };
    store.put_integration(&integ).await.expect("put");
    let iid: IntegrationId = integ.id.clone();
    assert_eq!(
        store.get_integration(&iid).await.expect("get"),
        Some(integ.clone())
    );
    assert_eq!(
        store.list_integrations(&pid).await.expect("list"),
        vec![integ.clone()]
    );

    // Execution counters: atomic, last error cleared by a success.
    assert_eq!(
        store.integration_stats(&iid).await.expect("stats"),
        IntegrationStats::default()
    );
    let t1 = Timestamp::from_millis(1_700_000_000_000);
    let t2 = Timestamp::from_millis(1_700_000_001_000);
    store
        .record_integration_run(&iid, t1, Some("HTTP 500"))
        .await
        .expect("run");
    let s = store.integration_stats(&iid).await.expect("stats");
    assert_eq!(
        (s.executions, s.failures, s.last_error.as_deref()),
        (1, 1, Some("HTTP 500"))
    );
    store
        .record_integration_run(&iid, t2, None)
        .await
        .expect("run");
    let s = store.integration_stats(&iid).await.expect("stats");
    assert_eq!(
        s,
        IntegrationStats {
            executions: 2,
            failures: 1,
            last_executed_at: Some(t2),
            last_error: None,
        }
    );

    // Webhook events: newest first, bounded by limit.
    for (n, body) in [json!({"n": 1}), json!("text"), Value::Null]
        .into_iter()
        .enumerate()
    {
        store
            .insert_webhook_event(&WebhookEvent {
                id: format!("{prefix}-wh{n}"),
                integration_id: iid.clone(),
                project_id: pid.clone(),
                body,
                received_at: Timestamp::from_millis(1_700_000_000_000 + n as i64),
                signature: None,
                delivery_id: None,
            })
            .await
            .expect("insert");
    }
    let evs = store.list_webhook_events(&iid, 2).await.expect("list");
    assert_eq!(
        evs.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![format!("{prefix}-wh2"), format!("{prefix}-wh1")]
    );
    assert_eq!(evs[1].body, json!("text"));

    assert!(store.delete_integration(&iid).await.expect("delete"));
    assert!(!store.delete_integration(&iid).await.expect("delete"));
    assert_eq!(store.get_integration(&iid).await.expect("get"), None);
    assert_eq!(
        store.integration_stats(&iid).await.expect("stats"),
        IntegrationStats::default()
    );
    store.put_integration(&integ).await.expect("put again");

    for (a, u) in [("a1", "u1"), ("a2", "u2")] {
        let addr = WalletAddress {
            id: id::<AddressId>(format!("{prefix}-{a}")),
            user_id: id::<UserId>(u),
            project_id: pid.clone(),
            chain: "ethereum".into(),
            currency: "ETH".into(),
            address: format!("0x{a}"),
        };
        store.put_address(&addr).await.expect("put");
    }
    assert_eq!(
        store.list_addresses(&pid, None).await.expect("list").len(),
        2
    );
    let u2: UserId = id("u2");
    let mine = store.list_addresses(&pid, Some(&u2)).await.expect("list");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].address, "0xa2");
    assert_eq!(
        store.get_address(&mine[0].id).await.expect("get"),
        Some(mine[0].clone())
    );
    let nope: AddressId = id(format!("{prefix}-nope"));
    assert_eq!(store.get_address(&nope).await.expect("get"), None);

    // Transactions: insert or replace by id; the amount stays a decimal string.
    let mut tx = WalletTransaction {
        id: format!("{prefix}-tx1"),
        address_id: mine[0].id.clone(),
        project_id: pid.clone(),
        chain: "ethereum".into(),
        currency: "ETH".into(),
        amount: "0.000000000000000001".into(),
        direction: TxDirection::In,
        tx_hash: "0xabc".into(),
        status: TxStatus::Pending,
        confirmations: 0,
        created_at: Timestamp::from_millis(T0),
    };
    assert!(store.put_transaction(&tx).await.expect("put"), "new");
    tx.status = TxStatus::Confirmed;
    tx.confirmations = 12;
    assert!(!store.put_transaction(&tx).await.expect("put"), "replaced");
    assert_eq!(
        store.get_transaction(&tx.id).await.expect("get"),
        Some(tx.clone())
    );
    assert_eq!(
        store
            .get_transaction(&format!("{prefix}-tx-none"))
            .await
            .expect("get"),
        None
    );
    wallet_listing(store, prefix, &pid, &mine[0].id).await;
}

/// Transactions listed newest first by (createdAt, id), filtered by address, paged by `before`.
async fn wallet_listing(store: &dyn Store, prefix: &str, pid: &ProjectId, own: &AddressId) {
    let other: AddressId = id(format!("{prefix}-a1"));
    let listed = |v: Vec<WalletTransaction>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    // t2 and t3 share a time: the id breaks the tie. tx1 (above) is at T0 on `own`.
    for (n, at, addr) in [
        ("t2", T0 + 10, own),
        ("t3", T0 + 10, &other),
        ("t4", T0 + 20, own),
    ] {
        let tx = WalletTransaction {
            id: format!("{prefix}-{n}"),
            address_id: addr.clone(),
            project_id: pid.clone(),
            chain: "ethereum".into(),
            currency: "ETH".into(),
            amount: "1".into(),
            direction: TxDirection::Out,
            tx_hash: format!("0x{n}"),
            status: TxStatus::Confirmed,
            confirmations: 1,
            created_at: Timestamp::from_millis(at),
        };
        assert!(store.put_transaction(&tx).await.expect("put"));
    }
    let all = |limit, before: Option<String>| async move {
        let b = before;
        store
            .list_transactions(pid, None, limit, b.as_deref())
            .await
            .expect("list")
    };
    let p = |n: &str| format!("{prefix}-{n}");
    assert_eq!(
        listed(all(10, None).await),
        [p("t4"), p("t3"), p("t2"), p("tx1")]
    );
    assert_eq!(listed(all(2, None).await), [p("t4"), p("t3")]);
    assert_eq!(listed(all(2, Some(p("t3"))).await), [p("t2"), p("tx1")]);
    assert_eq!(listed(all(10, Some(p("tx1"))).await), Vec::<String>::new());
    assert_eq!(listed(all(0, None).await), Vec::<String>::new());
    // An unknown cursor gives nothing rather than the first page.
    assert!(all(10, Some(p("tx-none"))).await.is_empty());
    let mine = store
        .list_transactions(pid, Some(std::slice::from_ref(own)), 10, None)
        .await
        .expect("list");
    assert_eq!(listed(mine), [p("t4"), p("t2"), p("tx1")]);
    let mine = store
        .list_transactions(pid, Some(std::slice::from_ref(own)), 1, Some(&p("t4")))
        .await
        .expect("list");
    assert_eq!(listed(mine), [p("t2")]);
    assert!(
        store
            .list_transactions(pid, Some(&[]), 10, None)
            .await
            .expect("list")
            .is_empty()
    );
    // Another project sees none of them, and cannot page from their ids.
    let elsewhere: ProjectId = id(format!("{prefix}-elsewhere"));
    assert!(
        store
            .list_transactions(&elsewhere, None, 10, None)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .list_transactions(&elsewhere, None, 10, Some(&p("t4")))
            .await
            .expect("list")
            .is_empty()
    );
}

const T0: i64 = 1_700_000_000_000;

async fn insert(store: &dyn Store, m: &Message) {
    assert!(matches!(
        store.insert_message(m.clone(), None).await.expect("insert"),
        Inserted::New(_)
    ));
}

fn ids_of(v: Vec<Message>) -> Vec<String> {
    v.into_iter().map(|m| m.id.to_string()).collect()
}

fn reaction(emoji: &str, users: &[&str]) -> Reaction {
    Reaction {
        emoji: emoji.to_owned(),
        user_ids: users.iter().map(|u| id(*u)).collect(),
        count: users.len(),
    }
}

/// Many senders at once (a MongoDB store writes them in shared batches), some of them retries
/// of one client message: every message is stored once, and exactly one of the retries is new
/// while the others get that one back.
pub async fn concurrent_messages(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-conc");
    let cid = format!("{prefix}-conc-chat");
    let distinct = (0..64).map(|i| {
        let m = message(
            &format!("{prefix}-c{i}"),
            &cid,
            &pid,
            &format!("u{}", i % 8),
            1_700_000_000_000 + i,
        );
        async move {
            store
                .insert_message(m.clone(), Some(&format!("c{i}")))
                .await
                .map(|r| (m, r))
        }
    });
    let retries = (0..8).map(|i| {
        let m = message(
            &format!("{prefix}-r{i}"),
            &cid,
            &pid,
            "u1",
            1_700_000_100_000 + i,
        );
        async move { store.insert_message(m, Some("same")).await }
    });
    let (stored, retried) = futures_util::future::join(
        futures_util::future::join_all(distinct),
        futures_util::future::join_all(retries),
    )
    .await;
    for r in stored {
        let (m, r) = r.expect("insert");
        assert_eq!(r, Inserted::New(m));
    }
    let retried: Vec<_> = retried.into_iter().map(|r| r.expect("retry")).collect();
    let new: Vec<_> = retried
        .iter()
        .filter_map(|r| match r {
            Inserted::New(m) => Some(m.clone()),
            Inserted::Existing(_) => None,
        })
        .collect();
    assert_eq!(new.len(), 1, "exactly one retry is new: {retried:?}");
    for r in &retried {
        match r {
            Inserted::New(m) | Inserted::Existing(m) => assert_eq!(m, &new[0]),
        }
    }
    let chat_id: ChatId = id(cid.as_str());
    let listed = store
        .list_messages(&chat_id, 100, None)
        .await
        .expect("list");
    assert_eq!(listed.len(), 65);
}

pub async fn history_after(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-after");
    let cid = format!("{prefix}-after-chat");
    let other = format!("{prefix}-after-other");
    // Two share a timestamp: ties are broken by id, as in `list_messages`.
    let times = [1_000, 2_000, 2_000, 3_000, 4_000];
    let mut ids = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let mid = format!("{prefix}-a{i}");
        insert(store, &message(&mid, &cid, &pid, "u1", T0 + t)).await;
        ids.push(mid);
    }
    let foreign = format!("{prefix}-a-foreign");
    insert(store, &message(&foreign, &other, &pid, "u1", T0 + 1_500)).await;
    let chat: ChatId = id(cid.as_str());
    let after = |i: usize| -> MessageId { id(ids[i].as_str()) };

    let page = ids_of(
        store
            .list_messages_after(&chat, &after(0), 2)
            .await
            .expect("list"),
    );
    assert_eq!(page, vec![ids[1].clone(), ids[2].clone()], "oldest first");
    let page = ids_of(
        store
            .list_messages_after(&chat, &after(1), 10)
            .await
            .expect("list"),
    );
    assert_eq!(page, ids[2..].to_vec(), "after is exclusive, ties by id");
    let page = ids_of(
        store
            .list_messages_after(&chat, &after(2), 10)
            .await
            .expect("list"),
    );
    assert_eq!(page, ids[3..].to_vec());
    assert!(
        store
            .list_messages_after(&chat, &after(4), 10)
            .await
            .expect("list")
            .is_empty(),
        "nothing after the newest"
    );
    assert!(
        store
            .list_messages_after(&chat, &after(0), 0)
            .await
            .expect("list")
            .is_empty(),
        "limit 0"
    );
    assert!(
        store
            .list_messages_after(&chat, &id(format!("{prefix}-a-unknown")), 10)
            .await
            .expect("list")
            .is_empty(),
        "unknown after"
    );
    assert!(
        store
            .list_messages_after(&chat, &id(foreign.as_str()), 10)
            .await
            .expect("list")
            .is_empty(),
        "after from another chat"
    );
}

/// A message holds at most `MAX_REACTIONS_PER_MESSAGE` distinct emoji and a user at most
/// `MAX_REACTIONS_PER_USER` of them; a refused toggle is a CONFLICT and stores nothing.
pub async fn reaction_caps(store: &dyn Store, prefix: &str) {
    use crate::model::{MAX_REACTIONS_PER_MESSAGE, MAX_REACTIONS_PER_USER};
    let mid: MessageId = id(format!("{prefix}-capped"));
    let cid = format!("{prefix}-capped-chat");
    insert(store, &message(mid.as_str(), &cid, prefix, "u1", T0)).await;
    let users = MAX_REACTIONS_PER_MESSAGE.div_ceil(MAX_REACTIONS_PER_USER) + 1;
    let mut added = 0;
    let mut last = None;
    'fill: for u in 0..users {
        let user: UserId = id(format!("cap-u{u}"));
        for k in 0..MAX_REACTIONS_PER_USER {
            if added == MAX_REACTIONS_PER_MESSAGE {
                break 'fill;
            }
            let (m, on) = store
                .toggle_reaction(&mid, &format!(":u{u}e{k}:"), &user)
                .await
                .expect("under the caps")
                .expect("message exists");
            assert!(on);
            added += 1;
            last = Some(m);
        }
    }
    let full = last.expect("reactions added");
    assert_eq!(full.reactions.len(), MAX_REACTIONS_PER_MESSAGE);
    let refused = |r: Result<Option<(Message, bool)>, AppError>| match r {
        Err(AppError::Conflict(_)) => {}
        other => panic!("expected a CONFLICT, got {other:?}"),
    };
    // A new emoji on a full message, and a user's reaction beyond their own cap.
    let newcomer: UserId = id("cap-newcomer");
    refused(store.toggle_reaction(&mid, ":brand_new:", &newcomer).await);
    refused(store.toggle_reaction(&mid, ":u1e0:", &id("cap-u0")).await);
    let stored = store.get_message(&mid).await.expect("get").expect("exists");
    assert_eq!(stored.reactions, full.reactions, "refusals change nothing");
    // Joining an existing emoji is not a new one; removing always works and frees a place.
    let (m, on) = store
        .toggle_reaction(&mid, ":u0e0:", &newcomer)
        .await
        .expect("existing emoji")
        .expect("exists");
    assert!(on);
    assert_eq!(m.reactions.len(), MAX_REACTIONS_PER_MESSAGE);
    let (_, on) = store
        .toggle_reaction(&mid, ":u0e1:", &id("cap-u0"))
        .await
        .expect("removal")
        .expect("exists");
    assert!(!on);
    let (m, on) = store
        .toggle_reaction(&mid, ":brand_new:", &newcomer)
        .await
        .expect("a place is free")
        .expect("exists");
    assert!(on);
    assert_eq!(m.reactions.len(), MAX_REACTIONS_PER_MESSAGE);
}

pub async fn reactions(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-react");
    let cid = format!("{prefix}-react-chat");
    let mid: MessageId = id(format!("{prefix}-r1"));
    insert(store, &message(mid.as_str(), &cid, &pid, "u1", T0)).await;
    let (u1, u2): (UserId, UserId) = (id("u1"), id("u2"));
    let toggle = |emoji: &'static str, user: &UserId| {
        let (mid, user) = (mid.clone(), user.clone());
        async move {
            store
                .toggle_reaction(&mid, emoji, &user)
                .await
                .expect("toggle")
                .expect("message exists")
        }
    };

    let (m, added) = toggle("👍", &u1).await;
    assert!(added);
    assert_eq!(m.reactions, vec![reaction("👍", &["u1"])]);
    let (m, added) = toggle("❤️", &u2).await;
    assert!(added);
    assert_eq!(
        m.reactions,
        vec![reaction("👍", &["u1"]), reaction("❤️", &["u2"])],
        "first-reaction order"
    );
    let (m, added) = toggle("👍", &u2).await;
    assert!(added);
    assert_eq!(
        m.reactions,
        vec![reaction("👍", &["u1", "u2"]), reaction("❤️", &["u2"])]
    );
    let (m, added) = toggle("👍", &u1).await;
    assert!(!added, "a second toggle removes");
    assert_eq!(
        m.reactions,
        vec![reaction("👍", &["u2"]), reaction("❤️", &["u2"])]
    );
    let (m, added) = toggle("👍", &u2).await;
    assert!(!added);
    assert_eq!(
        m.reactions,
        vec![reaction("❤️", &["u2"])],
        "an emoji without users disappears"
    );
    let (m, added) = toggle("👍", &u1).await;
    assert!(added);
    assert_eq!(
        m.reactions,
        vec![reaction("❤️", &["u2"]), reaction("👍", &["u1"])],
        "a re-added emoji goes last"
    );
    assert_eq!(m.content, json!(format!("hello {mid}")), "rest untouched");
    let stored = store.get_message(&mid).await.expect("get").expect("exists");
    assert_eq!(stored, m, "the returned message is what is stored");
    assert_eq!(
        store
            .toggle_reaction(&id(format!("{prefix}-r-unknown")), "👍", &u1)
            .await
            .expect("toggle"),
        None
    );
}

pub async fn concurrent_reactions(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-crowd");
    let cid = format!("{prefix}-crowd-chat");
    let mid: MessageId = id(format!("{prefix}-crowd-m"));
    insert(store, &message(mid.as_str(), &cid, &pid, "u1", T0)).await;
    let users: Vec<UserId> = (0..20).map(|i| id(format!("crowd{i:02}"))).collect();
    let results = join_all(users.iter().map(|u| store.toggle_reaction(&mid, "🔥", u))).await;
    for r in results {
        let (_, added) = r.expect("toggle").expect("message exists");
        assert!(added, "every user added their reaction");
    }
    let m = store.get_message(&mid).await.expect("get").expect("exists");
    assert_eq!(m.reactions.len(), 1);
    let r = &m.reactions[0];
    assert_eq!(r.emoji, "🔥");
    assert_eq!(r.count, 20, "no toggle was lost: {:?}", r.user_ids);
    let mut got = r.user_ids.clone();
    got.sort();
    assert_eq!(got, users);
}

pub async fn edit_and_delete(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-edit");
    let cid = format!("{prefix}-edit-chat");
    let mid: MessageId = id(format!("{prefix}-e1"));
    insert(store, &message(mid.as_str(), &cid, &pid, "u1", T0)).await;
    store
        .toggle_reaction(&mid, "👍", &id("u2"))
        .await
        .expect("toggle")
        .expect("exists");

    let at = Timestamp::from_millis(T0 + 5_000);
    let m = store
        .edit_message(&mid, &json!("edited text"), at)
        .await
        .expect("edit")
        .expect("exists");
    assert_eq!(m.content, json!("edited text"));
    assert_eq!(m.edited_at, Some(at));
    assert_eq!(m.deleted_at, None);
    assert_eq!(
        m.reactions,
        vec![reaction("👍", &["u2"])],
        "edit keeps reactions"
    );
    assert_eq!(store.get_message(&mid).await.expect("get"), Some(m));

    let at2 = Timestamp::from_millis(T0 + 9_000);
    let m = store
        .delete_message(&mid, at2)
        .await
        .expect("delete")
        .expect("exists");
    assert_eq!(m.content, json!(""), "a deleted message has empty content");
    assert_eq!(m.deleted_at, Some(at2));
    assert_eq!(m.edited_at, Some(at));
    assert_eq!(store.get_message(&mid).await.expect("get"), Some(m.clone()));
    // The record stays in history.
    let history = store
        .list_messages(&id(cid.as_str()), 10, None)
        .await
        .expect("list");
    assert_eq!(history, vec![m]);

    let unknown: MessageId = id(format!("{prefix}-e-unknown"));
    assert_eq!(
        store
            .edit_message(&unknown, &json!("x"), at)
            .await
            .expect("edit"),
        None
    );
    assert_eq!(
        store.delete_message(&unknown, at).await.expect("delete"),
        None
    );
    assert_eq!(store.get_message(&unknown).await.expect("get"), None);
}

pub async fn read_receipts(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-read");
    let cid = format!("{prefix}-read-chat");
    let other = format!("{prefix}-read-other");
    let chat: ChatId = id(cid.as_str());
    let other_chat: ChatId = id(other.as_str());
    let mid = |n: &str| -> MessageId { id(format!("{prefix}-rd-{n}")) };
    for (n, sender, t) in [
        ("m0", "u1", 1_000),
        ("m1", "u2", 2_000),
        ("m2", "u2", 3_000),
        ("m3", "u2", 4_000),
        ("m4", "u3", 5_000),
    ] {
        insert(store, &message(mid(n).as_str(), &cid, &pid, sender, T0 + t)).await;
    }
    insert(store, &message(mid("o0").as_str(), &other, &pid, "u2", T0)).await;
    store
        .delete_message(&mid("m3"), Timestamp::from_millis(T0 + 6_000))
        .await
        .expect("delete")
        .expect("exists");
    let (u1, u2): (UserId, UserId) = (id("u1"), id("u2"));
    let unread = |chat: ChatId, user: UserId| async move {
        store.unread_count(&chat, &user).await.expect("unread")
    };

    // Others' messages only, deleted ones excluded.
    assert_eq!(unread(chat.clone(), u1.clone()).await, 3, "m1, m2, m4");
    assert_eq!(unread(chat.clone(), u2.clone()).await, 2, "m0, m4");
    assert_eq!(unread(other_chat.clone(), u1.clone()).await, 1);
    assert_eq!(
        unread(id(format!("{prefix}-read-nochat")), u1.clone()).await,
        0
    );

    let t1 = Timestamp::from_millis(T0 + 10_000);
    let recorded = store
        .mark_read(
            &chat,
            &u1,
            &[mid("m1"), mid("o0"), mid("m1"), mid("unknown")],
            t1,
        )
        .await
        .expect("mark");
    assert_eq!(
        recorded,
        vec![mid("m1")],
        "other chats' and unknown ids are ignored, repeats collapse"
    );
    assert_eq!(unread(chat.clone(), u1.clone()).await, 2);
    assert_eq!(
        unread(other_chat.clone(), u1.clone()).await,
        1,
        "the foreign id got no receipt"
    );

    // A repeated receipt is fine and reported again (it is read); the new one is added.
    let t2 = Timestamp::from_millis(T0 + 20_000);
    let recorded = store
        .mark_read(&chat, &u1, &[mid("m2"), mid("m1")], t2)
        .await
        .expect("mark");
    assert_eq!(recorded, vec![mid("m2"), mid("m1")]);
    assert_eq!(unread(chat.clone(), u1.clone()).await, 1, "m4 left");
    let recorded = store
        .mark_read(&chat, &u1, &[mid("m1"), mid("m2")], t2)
        .await
        .expect("mark again");
    assert_eq!(recorded, vec![mid("m1"), mid("m2")]);
    assert_eq!(unread(chat.clone(), u1.clone()).await, 1);

    // Receipts are per reader.
    assert_eq!(unread(chat.clone(), u2.clone()).await, 2);
    assert!(
        store
            .mark_read(&chat, &u2, &[], t2)
            .await
            .expect("empty")
            .is_empty()
    );
    assert!(
        store
            .mark_read(&chat, &u2, &[mid("o0")], t2)
            .await
            .expect("foreign only")
            .is_empty()
    );
    store
        .mark_read(&chat, &u2, &[mid("m0"), mid("m4"), mid("m1")], t2)
        .await
        .expect("mark");
    assert_eq!(unread(chat.clone(), u2.clone()).await, 0);
    assert_eq!(unread(chat.clone(), u1.clone()).await, 1);
}

/// Who read each message of a page: counted in full, the earliest `first` named (readAt, then
/// user id), the first readAt kept, other chats' and unknown ids empty.
pub async fn read_summaries(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-sum");
    let cid = format!("{prefix}-sum-chat");
    let other = format!("{prefix}-sum-other");
    let chat: ChatId = id(cid.as_str());
    let other_chat: ChatId = id(other.as_str());
    let mid = |n: &str| -> MessageId { id(format!("{prefix}-sm-{n}")) };
    for (n, t) in [("m0", 1_000), ("m1", 2_000), ("m2", 3_000)] {
        insert(
            store,
            &message(mid(n).as_str(), &cid, &pid, "author", T0 + t),
        )
        .await;
    }
    insert(
        store,
        &message(mid("o0").as_str(), &other, &pid, "author", T0),
    )
    .await;
    let user = |i: usize| -> UserId { id(format!("r{i:02}")) };
    // 15 readers of m0, in an order unlike their ids; r13 and r14 read at the same instant.
    for i in (0..15).rev() {
        let ms = match i {
            13 | 14 => 10_000,
            _ => 20_000 + i64::try_from(i).expect("small") * 1_000,
        };
        store
            .mark_read(
                &chat,
                &user(i),
                &[mid("m0")],
                Timestamp::from_millis(T0 + ms),
            )
            .await
            .expect("mark m0");
    }
    // A repeat keeps the first readAt, even an earlier one.
    store
        .mark_read(
            &chat,
            &user(0),
            &[mid("m0"), mid("m1")],
            Timestamp::from_millis(T0),
        )
        .await
        .expect("mark again");
    store
        .mark_read(
            &other_chat,
            &user(1),
            &[mid("o0")],
            Timestamp::from_millis(T0),
        )
        .await
        .expect("mark other");
    let ids = [mid("m0"), mid("m1"), mid("m2"), mid("o0"), mid("unknown")];
    let got = store
        .read_summaries(&chat, &ids, 10)
        .await
        .expect("summaries");
    let reader = |i: usize, ms: i64| Reader {
        user_id: user(i),
        read_at: Timestamp::from_millis(T0 + ms),
    };
    let mut first = vec![reader(13, 10_000), reader(14, 10_000)];
    first.extend((0..8).map(|i| reader(i, 20_000 + i64::try_from(i).expect("small") * 1_000)));
    assert_eq!(got.len(), ids.len(), "one summary per id, in order");
    assert_eq!(got[0].read_count, 15, "every reader counted");
    assert_eq!(got[0].read_by, first, "the 10 earliest, ties by user id");
    assert_eq!(
        got[1],
        ReadSummary {
            read_count: 1,
            read_by: vec![reader(0, 0)],
        }
    );
    assert_eq!(got[2], ReadSummary::default(), "unread");
    assert_eq!(got[3], ReadSummary::default(), "another chat's message");
    assert_eq!(got[4], ReadSummary::default(), "unknown id");
    let counted = store
        .read_summaries(&chat, &[mid("m0")], 0)
        .await
        .expect("count only");
    assert_eq!((counted[0].read_count, counted[0].read_by.len()), (15, 0));
    assert!(
        store
            .read_summaries(&chat, &[], 10)
            .await
            .expect("none")
            .is_empty()
    );
}

pub async fn calls(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-calls");
    let chat = format!("{prefix}-calls-chat");
    let c = call(&format!("{prefix}-call1"), &chat, &pid, "u1", T0);
    store.insert_call(&c).await.expect("insert");
    assert_eq!(store.get_call(&c.id).await.expect("get"), Some(c.clone()));
    assert!(matches!(
        store.insert_call(&c).await,
        Err(AppError::Conflict(_))
    ));
    let unknown: CallId = id(format!("{prefix}-call-unknown"));
    assert_eq!(store.get_call(&unknown).await.expect("get"), None);

    let t1 = Timestamp::from_millis(T0 + 3_000);
    let accepted = store
        .transition_call(&c.id, &[CallState::Ringing], CallState::Accepted, t1)
        .await
        .expect("transition")
        .expect("was ringing");
    assert_eq!(accepted.state, CallState::Accepted);
    assert_eq!(accepted.answered_at, Some(t1));
    assert_eq!(accepted.ended_at, None);
    assert_eq!(
        store
            .transition_call(&c.id, &[CallState::Ringing], CallState::Accepted, t1)
            .await
            .expect("transition"),
        None,
        "no longer ringing"
    );
    assert_eq!(
        store
            .transition_call(&c.id, &[CallState::Ringing], CallState::Missed, t1)
            .await
            .expect("transition"),
        None
    );
    assert_eq!(
        store.get_call(&c.id).await.expect("get"),
        Some(accepted.clone())
    );

    let t2 = Timestamp::from_millis(T0 + 60_000);
    let ended = store
        .transition_call(
            &c.id,
            &[CallState::Ringing, CallState::Accepted],
            CallState::Ended,
            t2,
        )
        .await
        .expect("transition")
        .expect("was accepted");
    assert_eq!(ended.state, CallState::Ended);
    assert_eq!(ended.answered_at, Some(t1), "kept");
    assert_eq!(ended.ended_at, Some(t2));
    assert_eq!(store.get_call(&c.id).await.expect("get"), Some(ended));

    // Rejected stamps answeredAt, missed stamps endedAt.
    let r = call(&format!("{prefix}-call2"), &chat, &pid, "u1", T0 + 1);
    store.insert_call(&r).await.expect("insert");
    let rejected = store
        .transition_call(&r.id, &[CallState::Ringing], CallState::Rejected, t1)
        .await
        .expect("transition")
        .expect("was ringing");
    assert_eq!(
        (rejected.state, rejected.answered_at, rejected.ended_at),
        (CallState::Rejected, Some(t1), None)
    );
    let m = call(&format!("{prefix}-call3"), &chat, &pid, "u1", T0 + 2);
    store.insert_call(&m).await.expect("insert");
    let missed = store
        .transition_call(&m.id, &[CallState::Ringing], CallState::Missed, t2)
        .await
        .expect("transition")
        .expect("was ringing");
    assert_eq!(
        (missed.state, missed.answered_at, missed.ended_at),
        (CallState::Missed, None, Some(t2))
    );

    assert_eq!(
        store
            .transition_call(&unknown, &[CallState::Ringing], CallState::Accepted, t1)
            .await
            .expect("transition"),
        None,
        "unknown call"
    );

    // The stale-ringing sweep sees only ringing calls older than the cutoff, oldest first.
    let old_a = call(&format!("{prefix}-stale-a"), &chat, &pid, "u1", T0 - 20_000);
    let old_b = call(&format!("{prefix}-stale-b"), &chat, &pid, "u1", T0 - 10_000);
    let fresh = call(
        &format!("{prefix}-stale-fresh"),
        &chat,
        &pid,
        "u1",
        T0 + 5_000,
    );
    for c in [&old_b, &fresh, &old_a] {
        store.insert_call(c).await.expect("insert");
    }
    let cutoff = Timestamp::from_millis(T0 + 4_000);
    let stale = store
        .stale_ringing_calls(cutoff, 1000)
        .await
        .expect("stale");
    let ours: Vec<&CallId> = stale
        .iter()
        .filter(|id| id.as_str().starts_with(&format!("{prefix}-stale")))
        .collect();
    assert_eq!(ours, vec![&old_a.id, &old_b.id]);
    assert!(!stale.contains(&c.id), "ended calls are not stale");
    assert!(!stale.contains(&m.id), "missed calls are not stale");
    assert!(
        store
            .stale_ringing_calls(cutoff, 1)
            .await
            .expect("stale")
            .len()
            <= 1
    );
}

pub async fn call_races(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-race");
    let chat = format!("{prefix}-race-chat");
    for round in 0..5 {
        let c = call(
            &format!("{prefix}-race{round}"),
            &chat,
            &pid,
            "u1",
            T0 + round,
        );
        store.insert_call(&c).await.expect("insert");
        let at = Timestamp::from_millis(T0 + 30_000);
        let (missed, accepted) = futures_util::future::join(
            store.transition_call(&c.id, &[CallState::Ringing], CallState::Missed, at),
            store.transition_call(&c.id, &[CallState::Ringing], CallState::Accepted, at),
        )
        .await;
        let (missed, accepted) = (missed.expect("missed"), accepted.expect("accepted"));
        let winner = match (missed, accepted) {
            (Some(w), None) | (None, Some(w)) => w,
            other => panic!("exactly one transition must win: {other:?}"),
        };
        assert_eq!(store.get_call(&c.id).await.expect("get"), Some(winner));
    }
}

/// `count_ringing` counts one caller's calls ringing one callee, in any chat, and nothing else.
pub async fn ringing_counts(store: &dyn Store, prefix: &str) {
    let caller = format!("{prefix}-ringer");
    let callee: UserId = id("callee");
    let mut calls = Vec::new();
    for (n, chat, from) in [
        ("a", "c1", caller.as_str()),
        ("b", "c2", caller.as_str()),
        ("c", "c1", caller.as_str()),
        ("other", "c1", "someone-else"),
    ] {
        let c = call(&format!("{prefix}-ring-{n}"), chat, prefix, from, T0);
        store.insert_call(&c).await.expect("insert");
        calls.push(c);
    }
    let ringer: UserId = id(caller.as_str());
    let count = || store.count_ringing(&ringer, &callee);
    assert_eq!(count().await.expect("count"), 3);
    assert_eq!(
        store
            .count_ringing(&ringer, &id("nobody"))
            .await
            .expect("count"),
        0
    );
    store
        .transition_call(
            &calls[0].id,
            &[CallState::Ringing],
            CallState::Accepted,
            Timestamp::from_millis(T0 + 1),
        )
        .await
        .expect("transition");
    assert_eq!(
        count().await.expect("count"),
        2,
        "an answered call rings no more"
    );
}

pub async fn latest_calls(store: &dyn Store, prefix: &str) {
    let pid = format!("{prefix}-latest");
    let chat = format!("{prefix}-latest-chat");
    let chat_id: ChatId = id(chat.as_str());
    let caller: UserId = id("u1");
    let at = Timestamp::from_millis(T0 + 100_000);
    let mk = |n: &str, chat: &str, caller: &str, t: i64| {
        call(&format!("{prefix}-lc-{n}"), chat, &pid, caller, T0 + t)
    };
    let old = mk("old", &chat, "u1", 1_000);
    let ringing = mk("ringing", &chat, "u1", 2_000);
    let accepted = mk("accepted", &chat, "u1", 3_000);
    let newest_ended = mk("ended", &chat, "u1", 4_000);
    let someone_else = mk("else", &chat, "u2", 5_000);
    let other_chat = mk("elsewhere", &format!("{prefix}-latest-other"), "u1", 6_000);
    for c in [
        &old,
        &ringing,
        &accepted,
        &newest_ended,
        &someone_else,
        &other_chat,
    ] {
        store.insert_call(c).await.expect("insert");
    }
    let to = |c: &Call, from: CallState, state: CallState| {
        let id = c.id.clone();
        async move {
            store
                .transition_call(&id, &[from], state, at)
                .await
                .expect("transition")
                .expect("applies")
        }
    };
    let accepted = to(&accepted, CallState::Ringing, CallState::Accepted).await;
    to(&newest_ended, CallState::Ringing, CallState::Ended).await;
    to(&old, CallState::Ringing, CallState::Ended).await;

    let latest = |states: &'static [CallState]| {
        let (chat_id, caller) = (chat_id.clone(), caller.clone());
        async move {
            store
                .latest_call(&chat_id, &caller, states)
                .await
                .expect("latest")
                .map(|c| c.id.to_string())
        }
    };
    assert_eq!(
        latest(&[CallState::Ringing, CallState::Accepted]).await,
        Some(accepted.id.to_string()),
        "newest among the given states"
    );
    assert_eq!(
        latest(&[CallState::Ringing]).await,
        Some(ringing.id.to_string())
    );
    assert_eq!(
        latest(&[CallState::Ended]).await,
        Some(newest_ended.id.to_string())
    );
    assert_eq!(latest(&[CallState::Missed]).await, None);
    assert_eq!(latest(&[]).await, None);
    assert_eq!(
        store
            .latest_call(&chat_id, &id("u3"), &[CallState::Ringing])
            .await
            .expect("latest"),
        None,
        "another caller"
    );
}

/// Creating an integration is insert-only: of many concurrent creations of one id, from two
/// projects, exactly one succeeds and the integration never changes project. Updates only
/// replace an integration of the same id and project.
pub async fn integration_creation(store: &dyn Store, prefix: &str) {
    let integ = |project: &str, name: &str| Integration {
        id: id(format!("{prefix}-race")),
        project_id: id(format!("{prefix}-{project}")),
        name: name.into(),
        base_url: "https://example.com".into(),
        endpoints: BTreeMap::new(),
        headers: BTreeMap::new(),
        webhook_secret: None,
        enabled: true,
    };
    let tries: Vec<Integration> = (0..40)
        .map(|n| integ(if n % 2 == 0 { "t1" } else { "t2" }, &format!("try {n}")))
        .collect();
    let results = join_all(tries.iter().map(|i| store.create_integration(i))).await;
    let won: Vec<&Integration> = tries
        .iter()
        .zip(&results)
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    assert_eq!(won.len(), 1, "exactly one creation wins");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, AppError::Conflict(_)), "{e:?}");
        }
    }
    let stored = store
        .get_integration(&won[0].id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(&stored, won[0], "the winner's integration, unchanged");

    let other = if stored.project_id.as_str().ends_with("t1") {
        "t2"
    } else {
        "t1"
    };
    let mut renamed = stored.clone();
    renamed.name = "renamed".into();
    assert!(store.update_integration(&renamed).await.expect("update"));
    assert!(
        !store
            .update_integration(&integ(other, "hijack"))
            .await
            .expect("update"),
        "another project's update writes nothing"
    );
    assert_eq!(
        store.get_integration(&stored.id).await.expect("get"),
        Some(renamed.clone())
    );
    assert!(store.delete_integration(&stored.id).await.expect("delete"));
    assert!(
        !store.update_integration(&renamed).await.expect("update"),
        "an update does not recreate a deleted integration"
    );
    assert_eq!(store.get_integration(&stored.id).await.expect("get"), None);
}

/// A webhook event with the signature or delivery id of a stored one is a replay: not stored,
/// also when the copies arrive concurrently. Events past retention are purged.
pub async fn webhook_replays_and_retention(store: &dyn Store, prefix: &str) {
    let iid: IntegrationId = id(format!("{prefix}-wh-replay"));
    let pid: ProjectId = id(format!("{prefix}-wh"));
    let ev = |n: i64, sig: &str, delivery: Option<&str>| WebhookEvent {
        id: format!("{prefix}-replay{n}"),
        integration_id: iid.clone(),
        project_id: pid.clone(),
        body: json!({ "n": n }),
        received_at: Timestamp::from_millis(1_700_000_000_000 + n),
        signature: Some(sig.into()),
        delivery_id: delivery.map(str::to_owned),
    };
    let copies: Vec<WebhookEvent> = (0..20).map(|n| ev(n, "aa", None)).collect();
    let stored = join_all(copies.iter().map(|e| store.insert_webhook_event(e))).await;
    assert_eq!(
        stored.iter().filter(|r| matches!(r, Ok(true))).count(),
        1,
        "{stored:?}"
    );
    assert!(stored.iter().all(Result::is_ok), "{stored:?}");
    assert!(
        store
            .insert_webhook_event(&ev(30, "bb", Some("d1")))
            .await
            .expect("insert")
    );
    assert!(
        !store
            .insert_webhook_event(&ev(31, "cc", Some("d1")))
            .await
            .expect("insert"),
        "same delivery id"
    );
    assert!(
        store
            .insert_webhook_event(&ev(32, "dd", Some("d2")))
            .await
            .expect("insert")
    );
    assert_eq!(
        store
            .list_webhook_events(&iid, 10)
            .await
            .expect("list")
            .len(),
        3
    );
    // Another integration may see the same signature.
    let mut elsewhere = ev(33, "aa", Some("d1"));
    elsewhere.integration_id = id(format!("{prefix}-wh-other"));
    assert!(
        store
            .insert_webhook_event(&elsewhere)
            .await
            .expect("insert")
    );

    let purged = store
        .purge_webhook_events(Timestamp::from_millis(1_700_000_000_031))
        .await
        .expect("purge");
    assert!(purged >= 2, "{purged}");
    let left: Vec<String> = store
        .list_webhook_events(&iid, 10)
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![format!("{prefix}-replay32")]);
    // Once purged, a key is free again.
    assert!(
        store
            .insert_webhook_event(&ev(40, "aa", None))
            .await
            .expect("insert")
    );
}

// ---------------------------------------------------------------------------------------------
// Presence

/// Makes an empty presence namespace whose connections live `ttl` unless a heartbeat refreshes
/// them. Two nodes of one cluster are two clones of the returned handle: the stores keep no
/// per-node state, so that is what a second node sees.
pub type PresenceFactory<'a> = &'a (dyn Fn(Duration) -> Arc<dyn PresenceStore> + Sync);

/// Long enough that nothing expires during a test that does not wait for it.
const PRESENCE_LONG_TTL: Duration = Duration::from_secs(600);
/// Short enough to wait out, long enough that a busy machine does not expire a connection
/// that was refreshed in time: every wait below keeps 400 ms from the nearest expiry.
const PRESENCE_SHORT_TTL: Duration = Duration::from_millis(1_000);

/// The `PresenceStore` suite. Each part takes a namespace of its own.
pub async fn run_presence(make: PresenceFactory<'_>) {
    presence_first_and_last(make(PRESENCE_LONG_TTL)).await;
    presence_multi_socket_races(make(PRESENCE_LONG_TTL)).await;
    presence_admission(make(PRESENCE_LONG_TTL)).await;
    presence_concurrent_admission(make(PRESENCE_LONG_TTL)).await;
    presence_announcements(make(PRESENCE_LONG_TTL)).await;
    presence_concurrent_announcements(make(PRESENCE_LONG_TTL)).await;
    // The waiting parts run side by side so the suite waits once.
    futures_util::join!(
        presence_expiry_and_sweep(make(PRESENCE_SHORT_TTL)),
        presence_admission_after_expiry(make(PRESENCE_SHORT_TTL)),
    );
}

fn conn(s: &str) -> ConnId {
    s.to_owned()
}

fn presence(user: &str, status: &str, metadata: Value, at_ms: i64, projects: &[&str]) -> Presence {
    Presence {
        user: id(user),
        status: status.to_owned(),
        metadata,
        last_seen: Timestamp::from_millis(at_ms),
        projects: projects.iter().map(|p| id(*p)).collect(),
    }
}

fn users_of(v: &[Presence]) -> Vec<String> {
    v.iter().map(|p| p.user.to_string()).collect()
}

/// "First" and "last" answers, one user with several sockets counting once.
pub async fn presence_first_and_last(store: Arc<dyn PresenceStore>) {
    let s = &*store;
    let (alice, bob): (UserId, UserId) = (id("alice"), id("bob"));
    assert_eq!(s.connections(&alice).await.expect("count"), 0);
    assert!(s.add_connection(&alice, &conn("a1")).await.expect("add"));
    assert!(!s.add_connection(&alice, &conn("a2")).await.expect("add"));
    // Another user's first socket is their own first, whatever alice holds.
    assert!(s.add_connection(&bob, &conn("b1")).await.expect("add"));
    // A socket added twice counts once.
    assert!(!s.add_connection(&alice, &conn("a2")).await.expect("add"));
    assert_eq!(s.connections(&alice).await.expect("count"), 2);
    assert_eq!(s.connections(&bob).await.expect("count"), 1);

    assert!(!s.remove_connection(&alice, &conn("a1")).await.expect("rm"));
    // Removing an unknown socket or one already removed is never "last".
    assert!(!s.remove_connection(&alice, &conn("a1")).await.expect("rm"));
    assert!(!s.remove_connection(&alice, &conn("zz")).await.expect("rm"));
    assert!(s.remove_connection(&alice, &conn("a2")).await.expect("rm"));
    assert!(!s.remove_connection(&alice, &conn("a2")).await.expect("rm"));
    assert!(
        !s.remove_connection(&id("nobody"), &conn("x"))
            .await
            .expect("rm")
    );
    assert_eq!(s.connections(&alice).await.expect("count"), 0);
    assert_eq!(s.connections(&bob).await.expect("count"), 1);

    // Back online after going offline is a first connection again.
    assert!(s.add_connection(&alice, &conn("a3")).await.expect("add"));
    // Nothing has expired, so a sweep finds nobody.
    assert_eq!(s.sweep().await.expect("sweep"), Vec::<UserId>::new());
    assert_eq!(s.connections(&alice).await.expect("count"), 1);
    // An empty heartbeat is allowed.
    s.heartbeat(&[]).await.expect("heartbeat");
}

/// Sockets of one user arriving and leaving at once on many nodes: exactly one add is the
/// first and exactly one remove is the last.
pub async fn presence_multi_socket_races(store: Arc<dyn PresenceStore>) {
    let user: UserId = id("racer");
    let conns: Vec<ConnId> = (0..16).map(|i| conn(&format!("r{i}"))).collect();
    let firsts = join_all(conns.iter().map(|c| {
        let (store, user) = (store.clone(), user.clone());
        async move { store.add_connection(&user, c).await.expect("add") }
    }))
    .await;
    assert_eq!(firsts.iter().filter(|f| **f).count(), 1, "{firsts:?}");
    assert_eq!(store.connections(&user).await.expect("count"), 16);

    let lasts = join_all(conns.iter().map(|c| {
        let (store, user) = (store.clone(), user.clone());
        async move { store.remove_connection(&user, c).await.expect("rm") }
    }))
    .await;
    assert_eq!(lasts.iter().filter(|l| **l).count(), 1, "{lasts:?}");
    assert_eq!(store.connections(&user).await.expect("count"), 0);
}

/// The per-user socket cap.
pub async fn presence_admission(store: Arc<dyn PresenceStore>) {
    let s = &*store;
    let user: UserId = id("capped");
    for i in 0..3 {
        assert!(
            s.admit_connection(&user, &conn(&format!("c{i}")), 3)
                .await
                .expect("admit")
        );
    }
    assert!(
        !s.admit_connection(&user, &conn("c3"), 3)
            .await
            .expect("admit")
    );
    assert_eq!(s.connections(&user).await.expect("count"), 3);
    // A socket already counted is not refused again, nor counted twice.
    assert!(
        s.admit_connection(&user, &conn("c0"), 3)
            .await
            .expect("admit")
    );
    assert_eq!(s.connections(&user).await.expect("count"), 3);
    // A refused socket was not recorded: removing it is not the last of anything.
    assert!(!s.remove_connection(&user, &conn("c3")).await.expect("rm"));
    assert_eq!(s.connections(&user).await.expect("count"), 3);
    // A disconnect frees a place.
    assert!(!s.remove_connection(&user, &conn("c1")).await.expect("rm"));
    assert!(
        s.admit_connection(&user, &conn("c3"), 3)
            .await
            .expect("admit")
    );
    assert!(
        !s.admit_connection(&user, &conn("c4"), 3)
            .await
            .expect("admit")
    );
    // The cap is per user, and plain adds count towards it.
    let other: UserId = id("other");
    assert!(s.add_connection(&other, &conn("o1")).await.expect("add"));
    assert!(
        s.admit_connection(&other, &conn("o2"), 2)
            .await
            .expect("admit")
    );
    assert!(
        !s.admit_connection(&other, &conn("o3"), 2)
            .await
            .expect("admit")
    );
    // An admitted socket is a connection like any other: removing them all is "last" once.
    for c in ["c0", "c2"] {
        assert!(!s.remove_connection(&user, &conn(c)).await.expect("rm"));
    }
    assert!(s.remove_connection(&user, &conn("c3")).await.expect("rm"));
    // A cap of zero admits nobody and records nothing.
    let none: UserId = id("none");
    assert!(
        !s.admit_connection(&none, &conn("n1"), 0)
            .await
            .expect("admit")
    );
    assert_eq!(s.connections(&none).await.expect("count"), 0);
    assert_eq!(s.sweep().await.expect("sweep"), Vec::<UserId>::new());
}

/// Admissions racing on many nodes never pass the cap together.
pub async fn presence_concurrent_admission(store: Arc<dyn PresenceStore>) {
    let user: UserId = id("crowded");
    let admitted = join_all((0..24).map(|i| {
        let (store, user) = (store.clone(), user.clone());
        async move {
            store
                .admit_connection(&user, &conn(&format!("k{i}")), 5)
                .await
                .expect("admit")
        }
    }))
    .await;
    assert_eq!(admitted.iter().filter(|a| **a).count(), 5, "{admitted:?}");
    assert_eq!(store.connections(&user).await.expect("count"), 5);
}

/// Connection entries expire unless refreshed; the sweep reports a dead node's users once.
/// Node A stops heartbeating (it died); node B keeps going.
pub async fn presence_expiry_and_sweep(store: Arc<dyn PresenceStore>) {
    let (node_a, node_b) = (store.clone(), store.clone());
    let (only_a, only_b, both): (UserId, UserId, UserId) = (id("only_a"), id("only_b"), id("both"));
    assert!(
        node_a
            .add_connection(&only_a, &conn("a1"))
            .await
            .expect("add")
    );
    assert!(
        node_b
            .add_connection(&only_b, &conn("b1"))
            .await
            .expect("add")
    );
    assert!(
        node_a
            .add_connection(&both, &conn("a2"))
            .await
            .expect("add")
    );
    assert!(
        !node_b
            .add_connection(&both, &conn("b2"))
            .await
            .expect("add")
    );
    let b_conns = vec![(only_b.clone(), conn("b1")), (both.clone(), conn("b2"))];

    tokio::time::sleep(Duration::from_millis(600)).await;
    node_b.heartbeat(&b_conns).await.expect("heartbeat");
    assert_eq!(node_b.sweep().await.expect("sweep"), Vec::<UserId>::new());
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Past node A's expiry, before the refreshed one.
    assert_eq!(store.connections(&only_a).await.expect("count"), 0);
    assert_eq!(store.connections(&only_b).await.expect("count"), 1);
    assert_eq!(store.connections(&both).await.expect("count"), 1);
    // Both surviving nodes sweep at once: the user who lost every connection is reported
    // once, the one who still holds node B's connection not at all.
    let (ga, gb) = futures_util::join!(node_a.sweep(), node_b.sweep());
    let mut gone = ga.expect("sweep");
    gone.extend(gb.expect("sweep"));
    assert_eq!(gone, vec![only_a.clone()]);
    assert_eq!(store.sweep().await.expect("sweep"), Vec::<UserId>::new());
    // The sweep claimed that moment: a late disconnect of the dead socket is not "last" too.
    assert!(
        !node_a
            .remove_connection(&only_a, &conn("a1"))
            .await
            .expect("rm")
    );
    // Node A's dead socket of `both` no longer counts; node B's still does.
    assert!(
        !node_b
            .remove_connection(&both, &conn("zz"))
            .await
            .expect("rm")
    );
    assert_eq!(store.connections(&both).await.expect("count"), 1);

    // A node that was only slow re-adds its swept connection with its next heartbeat.
    node_a
        .heartbeat(&[(only_a.clone(), conn("a1"))])
        .await
        .expect("heartbeat");
    assert_eq!(store.connections(&only_a).await.expect("count"), 1);
    assert!(
        node_a
            .remove_connection(&only_a, &conn("a1"))
            .await
            .expect("rm")
    );

    // Node B dies too: once its expiry passes, its users are swept, each once.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (ga, gb) = futures_util::join!(node_a.sweep(), node_b.sweep());
    let mut gone = ga.expect("sweep");
    gone.extend(gb.expect("sweep"));
    gone.sort();
    assert_eq!(gone, vec![both.clone(), only_b.clone()]);
    assert!(
        !node_b
            .remove_connection(&both, &conn("b2"))
            .await
            .expect("rm")
    );
    assert_eq!(store.connections(&only_b).await.expect("count"), 0);
}

/// Expired connections do not count towards the cap.
pub async fn presence_admission_after_expiry(store: Arc<dyn PresenceStore>) {
    let user: UserId = id("returning");
    assert!(
        store
            .admit_connection(&user, &conn("old"), 1)
            .await
            .expect("admit")
    );
    assert!(
        !store
            .admit_connection(&user, &conn("new"), 1)
            .await
            .expect("admit")
    );
    let dropped: UserId = id("dropped");
    assert!(
        store
            .admit_connection(&dropped, &conn("d1"), 1)
            .await
            .expect("admit")
    );
    tokio::time::sleep(Duration::from_millis(1_400)).await;
    assert!(
        store
            .admit_connection(&user, &conn("new"), 1)
            .await
            .expect("admit")
    );
    assert_eq!(store.connections(&user).await.expect("count"), 1);
    // A refused admission after the user's last connection expired does not hide that
    // expiry from the sweep.
    assert!(
        !store
            .admit_connection(&dropped, &conn("d2"), 0)
            .await
            .expect("admit")
    );
    // `user` never went without a live connection as far as the store is concerned: the new
    // socket replaced the dead one before any sweep. `dropped` lost theirs.
    assert_eq!(store.sweep().await.expect("sweep"), vec![dropped]);
    assert!(
        store
            .remove_connection(&user, &conn("new"))
            .await
            .expect("rm")
    );
}

/// Announced state: status and metadata replace, projects accumulate until a retraction.
pub async fn presence_announcements(store: Arc<dyn PresenceStore>) {
    let s = &*store;
    let (alice, bob, carol): (UserId, UserId, UserId) = (id("alice"), id("bob"), id("carol"));
    let (p1, p2, p3): (ProjectId, ProjectId, ProjectId) = (id("p1"), id("p2"), id("p3"));
    let meta = json!({"device": "phone", "tags": [], "nested": {"n": 1.5, "big": 9_007_199_254_740_993_i64}, "name": "Zoë ✓"});

    assert!(
        !s.touch(&alice, Timestamp::from_millis(1))
            .await
            .expect("touch")
    );
    assert_eq!(s.retract(&alice).await.expect("retract"), None);
    assert_eq!(s.announced_in(&p1).await.expect("list"), vec![]);

    let first = presence("alice", "online", meta.clone(), 1_000, &["p1"]);
    s.announce(&first).await.expect("announce");
    assert_eq!(
        s.announced_in(&p1).await.expect("list"),
        vec![first.clone()]
    );
    assert_eq!(s.announced_in(&p2).await.expect("list"), vec![]);

    // A second announcement replaces status, metadata and time, and adds its projects.
    s.announce(&presence(
        "alice",
        "away",
        json!({"x": 1}),
        2_000,
        &["p2", "p1"],
    ))
    .await
    .expect("announce");
    let merged = presence("alice", "away", json!({"x": 1}), 2_000, &["p1", "p2"]);
    assert_eq!(
        s.announced_in(&p1).await.expect("list"),
        vec![merged.clone()]
    );
    assert_eq!(
        s.announced_in(&p2).await.expect("list"),
        vec![merged.clone()]
    );

    // Touch moves lastSeen only.
    assert!(
        s.touch(&alice, Timestamp::from_millis(3_000))
            .await
            .expect("touch")
    );
    let touched = Presence {
        last_seen: Timestamp::from_millis(3_000),
        ..merged
    };
    assert_eq!(
        s.announced_in(&p2).await.expect("list"),
        vec![touched.clone()]
    );

    // Listed by user id.
    let carol_p = presence("carol", "busy", meta.clone(), 500, &["p1"]);
    let bob_p = presence("bob", "online", json!(null), 400, &["p1", "p3"]);
    s.announce(&carol_p).await.expect("announce");
    s.announce(&bob_p).await.expect("announce");
    assert_eq!(
        users_of(&s.announced_in(&p1).await.expect("list")),
        vec!["alice", "bob", "carol"]
    );
    assert_eq!(
        s.announced_in(&p3).await.expect("list"),
        vec![bob_p.clone()]
    );

    // Retraction returns the state once and removes the user from every project.
    assert_eq!(s.retract(&alice).await.expect("retract"), Some(touched));
    assert_eq!(s.retract(&alice).await.expect("retract"), None);
    assert!(
        !s.touch(&alice, Timestamp::from_millis(4_000))
            .await
            .expect("touch")
    );
    assert_eq!(
        users_of(&s.announced_in(&p1).await.expect("list")),
        vec!["bob", "carol"]
    );
    assert_eq!(s.announced_in(&p2).await.expect("list"), vec![]);

    // Announcing again starts from nothing: earlier projects do not come back.
    let again = presence("alice", "online", json!({}), 5_000, &["p3"]);
    s.announce(&again).await.expect("announce");
    assert_eq!(s.announced_in(&p2).await.expect("list"), vec![]);
    assert_eq!(
        s.announced_in(&p3).await.expect("list"),
        vec![again, bob_p.clone()]
    );
    // Presence state is apart from connections.
    assert_eq!(s.connections(&bob).await.expect("count"), 0);
    assert_eq!(s.retract(&carol).await.expect("retract"), Some(carol_p));
}

/// One user announcing in many projects at once (sockets on several nodes): every project is
/// kept, and a retraction afterwards leaves the user in none of them.
pub async fn presence_concurrent_announcements(store: Arc<dyn PresenceStore>) {
    let user: UserId = id("everywhere");
    let names: Vec<String> = (0..12).map(|i| format!("cp{i}")).collect();
    join_all(names.iter().map(|p| {
        let store = store.clone();
        async move {
            store
                .announce(&presence("everywhere", "online", json!({}), 1_000, &[p]))
                .await
                .expect("announce")
        }
    }))
    .await;
    for p in &names {
        let listed = store.announced_in(&id(p.as_str())).await.expect("list");
        assert_eq!(users_of(&listed), vec!["everywhere"], "in {p}");
        let mut projects: Vec<String> = listed[0].projects.iter().map(|p| p.to_string()).collect();
        projects.sort();
        let mut want = names.clone();
        want.sort();
        assert_eq!(projects, want, "announced projects");
    }

    // Touches racing a retraction never bring the state back.
    let touches = join_all((0..8).map(|i| {
        let (store, user) = (store.clone(), user.clone());
        async move {
            store
                .touch(&user, Timestamp::from_millis(2_000 + i))
                .await
                .expect("touch")
        }
    }));
    let (retracted, _) = futures_util::join!(store.retract(&user), touches);
    assert!(retracted.expect("retract").is_some());
    assert_eq!(store.retract(&user).await.expect("retract"), None);
    assert!(
        !store
            .touch(&user, Timestamp::from_millis(9_000))
            .await
            .expect("touch")
    );
    for p in &names {
        assert_eq!(
            store.announced_in(&id(p.as_str())).await.expect("list"),
            vec![]
        );
    }
    // Back in one project only: the others stay empty.
    store
        .announce(&presence(
            "everywhere",
            "online",
            json!({}),
            3_000,
            &["cp0"],
        ))
        .await
        .expect("announce");
    assert_eq!(store.announced_in(&id("cp5")).await.expect("list"), vec![]);

    // Of two nodes retracting at once, one gets the state.
    let (r1, r2) = futures_util::join!(store.retract(&user), store.retract(&user));
    let got = [r1.expect("retract"), r2.expect("retract")];
    assert_eq!(got.iter().filter(|r| r.is_some()).count(), 1);
}

/// A store whose backend is down: every method reports `Unavailable` (the handlers turn that
/// into an error reply or a retry), none panics or hangs.
pub async fn presence_unavailable(store: &dyn PresenceStore) {
    fn down<T: std::fmt::Debug>(what: &str, r: Result<T, AppError>) {
        match r {
            Err(AppError::Unavailable { .. }) => {}
            other => panic!("{what}: expected Unavailable, got {other:?}"),
        }
    }
    let (user, c): (UserId, ConnId) = (id("alice"), conn("c1"));
    let pid: ProjectId = id("p1");
    let p = presence("alice", "online", json!({}), 1, &["p1"]);
    let hb = [(user.clone(), c.clone())];
    // All at once: each waits out the client's command timeout.
    let (add, admit, remove, heartbeat, sweep, count, announce, touch, retract, listed) = futures_util::join!(
        store.add_connection(&user, &c),
        store.admit_connection(&user, &c, 3),
        store.remove_connection(&user, &c),
        store.heartbeat(&hb),
        store.sweep(),
        store.connections(&user),
        store.announce(&p),
        store.touch(&user, Timestamp::from_millis(2)),
        store.retract(&user),
        store.announced_in(&pid),
    );
    down("add_connection", add);
    down("admit_connection", admit);
    down("remove_connection", remove);
    down("heartbeat", heartbeat);
    down("sweep", sweep);
    down("connections", count);
    down("announce", announce);
    down("touch", touch);
    down("retract", retract);
    down("announced_in", listed);
}

/// Builds a fresh channel presence store for one part of the suite.
pub type ChannelPresenceFactory<'a> =
    &'a dyn Fn() -> Arc<dyn crate::channel_presence::ChannelPresence>;

/// The channel presence suite: keys are members, connections carry their own info, and first
/// and last are each seen once.
pub async fn run_channel_presence(make: ChannelPresenceFactory<'_>, prefix: &str) {
    use crate::channel_presence::{Entry, Joined, Member};
    let p = make();
    let ch = format!("{prefix}channel:demo:presence-a");
    let other = format!("{prefix}channel:demo:presence-b");
    let j = |key: &'static str, info: &'static str, c: &'static str, max: usize| {
        let (p, ch) = (p.clone(), ch.clone());
        async move { p.join(&ch, key, info, &conn(c), max).await.expect("join") }
    };
    assert_eq!(j("ann", r#"{"n":1}"#, "1.a", 10).await, Joined::First);
    assert_eq!(j("ann", r#"{"n":2}"#, "1.b", 10).await, Joined::Again);
    assert_eq!(j("bob", "null", "2.a", 10).await, Joined::First);
    assert_eq!(j("cid", "{}", "2.b", 2).await, Joined::Full, "full");
    // A connection joining again keeps its key and only replaces its own info.
    assert_eq!(j("ann", r#"{"n":3}"#, "1.b", 2).await, Joined::Again);
    assert_eq!(j("zed", r#"{"n":4}"#, "1.b", 2).await, Joined::Again);
    assert_eq!(
        p.members(&ch).await.expect("members"),
        vec![
            Member {
                user_id: "ann".into(),
                info: r#"{"n":1}"#.into()
            },
            Member {
                user_id: "bob".into(),
                info: "null".into()
            },
        ],
        "a member's info is its first connection's"
    );
    let e = |key: &str, c: &str, info: &str| Entry {
        key: key.into(),
        conn: conn(c),
        info: info.into(),
    };
    assert_eq!(
        p.entries(&ch).await.expect("entries"),
        vec![
            e("ann", "1.a", r#"{"n":1}"#),
            e("ann", "1.b", r#"{"n":4}"#),
            e("bob", "2.a", "null"),
        ]
    );
    assert_eq!(p.user_count(&ch).await.expect("users"), 2);
    assert_eq!(p.connection_count(&ch).await.expect("conns"), 3);
    p.join(&other, "ann", "{}", &conn("1.a"), 10)
        .await
        .expect("join");
    assert_eq!(
        p.channels(&format!("{prefix}channel:demo:"))
            .await
            .expect("channels"),
        vec![ch.clone(), other.clone()]
    );
    assert!(!p.leave(&ch, "ann", &conn("1.a")).await.expect("leave"));
    assert!(
        !p.leave(&ch, "ann", &conn("1.a")).await.expect("leave"),
        "once"
    );
    assert!(!p.leave(&ch, "ann", &conn("nope")).await.expect("leave"));
    assert!(
        p.leave(&ch, "ann", &conn("1.b")).await.expect("leave"),
        "last"
    );
    assert!(!p.leave(&ch, "ann", &conn("1.b")).await.expect("leave"));
    assert!(p.leave(&ch, "bob", &conn("2.a")).await.expect("leave"));
    assert_eq!(p.user_count(&ch).await.expect("users"), 0);
    assert!(p.entries(&ch).await.expect("entries").is_empty());
    assert_eq!(
        p.channels(&format!("{prefix}channel:demo:"))
            .await
            .expect("channels"),
        vec![other.clone()],
        "an empty channel is no longer listed"
    );
    // Concurrent joins and leaves of one key: exactly one first and one last.
    let joins = join_all((0..8).map(|i| {
        let (p, ch) = (p.clone(), ch.clone());
        async move {
            p.join(&ch, "k", "{}", &format!("3.{i}"), 10)
                .await
                .expect("join")
        }
    }))
    .await;
    assert_eq!(joins.iter().filter(|j| **j == Joined::First).count(), 1);
    let leaves = join_all((0..8).map(|i| {
        let (p, ch) = (p.clone(), ch.clone());
        async move { p.leave(&ch, "k", &format!("3.{i}")).await.expect("leave") }
    }))
    .await;
    assert_eq!(leaves.iter().filter(|l| **l).count(), 1);
    p.leave(&other, "ann", &conn("1.a")).await.expect("leave");
}
