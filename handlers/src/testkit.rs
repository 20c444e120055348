//! Conformance suites for the ports (feature `testkit`). Each suite takes a store and a prefix
//! unique to this run, so it can run against a shared database without tearing anything down.
//! The handlers crate runs them on `MemoryStore`; `tests/store_conformance.rs` on MongoDB.

use std::collections::BTreeMap;

use serde_json::json;

use crate::core::ids::{
    AddressId, ChatId, CollectionId, DocumentId, IntegrationId, MessageId, ProjectId, UserId,
};
use crate::core::model::{
    Chat, Document, Integration, Message, MessageType, Project, User, WalletAddress,
};
use crate::core::ports::{Inserted, Store};
use crate::core::time::Timestamp;

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

/// Every suite, in order.
pub async fn run_all(store: &dyn Store, prefix: &str) {
    projects_and_users(store, prefix).await;
    chats_and_history(store, prefix).await;
    idempotent_messages(store, prefix).await;
    documents(store, prefix).await;
    registries(store, prefix).await;
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
            store.insert_message(&m, None).await.expect("insert"),
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
            .insert_message(&first, Some("k1"))
            .await
            .expect("insert"),
        Inserted::New(first.clone())
    );
    assert_eq!(
        store
            .insert_message(&retry, Some("k1"))
            .await
            .expect("retry"),
        Inserted::Existing(first.clone())
    );
    // Same key, another sender: a different message.
    assert!(matches!(
        store
            .insert_message(&other_sender, Some("k1"))
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

pub async fn documents(store: &dyn Store, prefix: &str) {
    let pid: ProjectId = id(format!("{prefix}-docs"));
    let cid: CollectionId = id("tasks");
    for (i, title) in ["b", "a", "c"].iter().enumerate() {
        let body = json!({ "id": format!("d{i}"), "title": title, "n": i, "tags": ["x"], "nested": { "k": true } });
        let serde_json::Value::Object(body) = body else {
            unreachable!("object literal")
        };
        store
            .put_document(&Document {
                project_id: pid.clone(),
                collection_id: cid.clone(),
                body,
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
        json!({ "id": "d1", "title": "a", "n": 1, "tags": ["x"], "nested": { "k": true } })
    );
    let ids: Vec<String> = store
        .list_documents(&pid, &cid, 2)
        .await
        .expect("list")
        .into_iter()
        .filter_map(|d| d.body.get("id").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    assert_eq!(ids, vec!["d0", "d1"]);
    let other: CollectionId = id("other");
    assert!(
        store
            .list_documents(&pid, &other, 10)
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
        vec![integ]
    );

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
}
