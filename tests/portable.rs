//! `switchboard export` / `import`: embedded → MongoDB (SecantusDB) → embedded gives
//! byte-identical exports, and importing twice changes nothing.

mod support;

use std::process::Command;

use serde_json::json;

use switchboard::embedded::EmbeddedStore;
use switchboard::mongo::MongoStore;
use switchboard::portable::{self, Dump};
use switchboard_handlers::core::ids::{MessageId, ProjectId};
use switchboard_handlers::core::model::{
    Document, TxDirection, TxStatus, WalletTransaction, WebhookEvent,
};
use switchboard_handlers::core::ports::{
    AppStore, CallStore, ChatStore, DocumentStore, IntegrationStore, Store, StoredApp, WalletStore,
};
use switchboard_handlers::core::realtime_channels::{
    ChannelDef, RealtimeStore, SenderType, StoredMessage,
};
use switchboard_handlers::core::time::Timestamp;
use switchboard_handlers::testkit;

fn pid(s: &str) -> ProjectId {
    ProjectId::try_from(s).expect("id")
}

/// The demo seed plus one record of every kind the seed lacks.
async fn fill(store: &EmbeddedStore) {
    switchboard::seed::load(store, std::path::Path::new(&support::env::seeds_dir()))
        .await
        .expect("seed");
    let demo = pid("demo");
    for i in 0..3 {
        let mut m = testkit::message(&format!("x{i}"), "general", "demo", "alice", 1_800_000 + i);
        m.content = json!({"text": "nested", "b": [1, 2.5, "z"], "a": null});
        ChatStore::insert_message(store, m, None)
            .await
            .expect("message");
    }
    let read: Vec<MessageId> = vec![MessageId::try_from("x0").expect("id")];
    let at = Timestamp::from_millis(1_900_000_000_000);
    let chat = "general".try_into().expect("id");
    let bob = "bob".try_into().expect("id");
    store.mark_read(&chat, &bob, &read, at).await.expect("read");
    store
        .toggle_reaction(&read[0], "👍", &bob)
        .await
        .expect("react");
    store
        .insert_call(&testkit::call(
            "call1", "general", "demo", "alice", 1_800_100,
        ))
        .await
        .expect("call");
    store
        .put_document(&Document {
            project_id: demo.clone(),
            collection_id: "zeta".try_into().expect("id"),
            body: json!({"id": "d1", "z": 1, "a": {"y": true, "b": "x"}})
                .as_object()
                .cloned()
                .expect("object"),
        })
        .await
        .expect("document");
    let integration = store.list_integrations(&demo).await.expect("list")[0]
        .id
        .clone();
    store
        .insert_webhook_event(&WebhookEvent {
            id: "ev1".into(),
            integration_id: integration,
            project_id: demo.clone(),
            body: json!({"hello": "hook"}),
            received_at: Timestamp::from_millis(1_800_200),
            signature: Some("abc".into()),
            delivery_id: None,
        })
        .await
        .expect("event");
    let address = store.list_addresses(&demo, None).await.expect("list")[0].clone();
    store
        .put_transaction(&WalletTransaction {
            id: "tx1".into(),
            address_id: address.id,
            project_id: demo.clone(),
            chain: address.chain,
            currency: address.currency,
            amount: "1.50".into(),
            direction: TxDirection::In,
            tx_hash: "0xabc".into(),
            status: TxStatus::Confirmed,
            confirmations: 3,
            created_at: Timestamp::from_millis(1_800_300),
        })
        .await
        .expect("tx");
    store
        .create_app(&StoredApp {
            id: "app1".into(),
            key: "key1".into(),
            project_id: demo.clone(),
            config: json!({"secret": "s", "dialect": "pusher"}),
            created_at: Timestamp::from_millis(1_800_400),
        })
        .await
        .expect("app");
    let def = ChannelDef {
        id: "ch1".into(),
        project: demo.clone(),
        pattern: "room:%".into(),
        description: Some("rooms".into()),
        webhook_urls: vec!["https://example.com/h".into()],
        enabled: true,
        created_at: 1_800_500,
        updated_at: 1_800_500,
    };
    RealtimeStore::put_channel(store, &def)
        .await
        .expect("channel");
    RealtimeStore::insert_message(
        store,
        &StoredMessage {
            id: "rm1".into(),
            project: demo.clone(),
            channel_id: Some("ch1".into()),
            channel_name: "room:1".into(),
            event_name: "say".into(),
            payload: json!({"k": [1, {"b": 2, "a": 1}]}),
            sender_type: SenderType::User,
            sender_id: Some("alice".into()),
            ws_audience_count: 2,
            wh_audience_count: 1,
            wh_delivered_count: 1,
            created_at: 1_800_600,
        },
    )
    .await
    .expect("realtime message");
    store
        .set_retention_days(&demo, Some(30))
        .await
        .expect("retention");
}

async fn export_of(
    store: &dyn Store,
    realtime: &dyn RealtimeStore,
    dump: &dyn Dump,
    project: Option<&ProjectId>,
) -> Vec<u8> {
    let mut out = Vec::new();
    portable::export(store, realtime, dump, project, &mut out)
        .await
        .expect("export");
    out
}

#[tokio::test]
async fn embedded_to_mongo_to_embedded_is_byte_identical() {
    let dir_a = support::data_dir("export-a");
    let a = EmbeddedStore::open(&dir_a).expect("open");
    fill(&a).await;
    let first = export_of(&a, &a, &a, None).await;
    let text = String::from_utf8(first.clone()).expect("utf8");
    for kind in [
        "project",
        "user",
        "chat",
        "message",
        "receipt",
        "call",
        "document",
        "integration",
        "webhookEvent",
        "walletAddress",
        "walletTransaction",
        "app",
        "realtimeChannel",
        "realtimeMessage",
        "realtimeRetention",
    ] {
        assert!(
            text.contains(&format!("\"kind\":\"{kind}\"")),
            "no {kind} in the export"
        );
    }

    let mongo = MongoStore::connect(&support::env::mongodb_uri(), &support::unique("export"))
        .await
        .expect("connect");
    let r = portable::import(&mongo, &mongo, first.as_slice())
        .await
        .expect("import into MongoDB");
    assert_eq!(r.skipped, 0);
    let second = export_of(&mongo, &mongo, &mongo, None).await;
    assert_eq!(
        String::from_utf8_lossy(&second),
        text,
        "MongoDB's export differs"
    );

    let dir_b = support::data_dir("export-b");
    let b = EmbeddedStore::open(&dir_b).expect("open");
    portable::import(&b, &b, second.as_slice())
        .await
        .expect("import into the embedded store");
    let third = export_of(&b, &b, &b, None).await;
    assert_eq!(
        String::from_utf8_lossy(&third),
        text,
        "the round trip differs"
    );

    // Again: nothing new is stored, nothing changes.
    let again = portable::import(&b, &b, first.as_slice())
        .await
        .expect("import again");
    assert!(again.skipped > 0);
    assert_eq!(export_of(&b, &b, &b, None).await, first);

    // One project: only its records.
    let acme = export_of(&a, &a, &a, Some(&pid("acme"))).await;
    let acme = String::from_utf8(acme).expect("utf8");
    assert!(acme.contains("\"id\":\"acme\""));
    assert!(!acme.contains("\"projectId\":\"demo\""), "{acme}");
    drop((a, b));
    let _ = std::fs::remove_dir_all(dir_a);
    let _ = std::fs::remove_dir_all(dir_b);
}

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(support::server::bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run")
}

#[tokio::test]
async fn the_commands_move_a_data_dir() {
    let (from, to) = (support::data_dir("cmd-from"), support::data_dir("cmd-to"));
    {
        let a = EmbeddedStore::open(&from).expect("open");
        fill(&a).await;
    }
    let file = from.join("export.jsonl");
    let (from_s, to_s, file_s) = (
        from.display().to_string(),
        to.display().to_string(),
        file.display().to_string(),
    );
    let out = tokio::task::spawn_blocking(move || {
        let export = run(
            &["export", "--out", &file_s],
            &[("STORE", "embedded"), ("DATA_DIR", &from_s)],
        );
        let import = run(
            &["import", &file_s],
            &[("STORE", "embedded"), ("DATA_DIR", &to_s)],
        );
        let memory = run(&["import", &file_s], &[("STORE", "memory")]);
        (export, import, memory)
    })
    .await
    .expect("join");
    let (export, import, memory) = out;
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(!memory.status.success());
    assert!(String::from_utf8_lossy(&memory.stderr).contains("STORE=memory"));
    let b = EmbeddedStore::open(&to).expect("open");
    let moved = export_of(&b, &b, &b, None).await;
    assert_eq!(moved, std::fs::read(&file).expect("read"));
    drop(b);
    let _ = std::fs::remove_dir_all(from);
    let _ = std::fs::remove_dir_all(to);
}
