//! The embedded store as a deployment uses it: acknowledged sends survive `kill -9`, a second
//! process on the same DATA_DIR is refused, and a store that is damaged or was written by a newer
//! version is refused with the reason and left exactly as it was.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use support::env::{API_KEY, token};
use support::server::{Options, Server, bin};
use support::sio::Client;
use switchboard::embedded::{EmbeddedStore, FILE, FORMAT, OpenError};
use switchboard_handlers::core::ports::{ProjectStore, Store};
use switchboard_handlers::testkit;

fn embedded(dir: &Path, seed: bool) -> Options {
    Options {
        seed_demo: seed,
        extra_env: vec![
            ("STORE".into(), "embedded".into()),
            ("DATA_DIR".into(), dir.display().to_string()),
        ],
        ..Default::default()
    }
}

/// Runs the server binary on `dir` and returns its stderr once it exits (within 10 s).
fn refused_start(dir: &Path) -> String {
    let mut cmd = Command::new(bin());
    support::server::base_env(&mut cmd, &embedded(dir, false));
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(!status.success(), "the second server must not start");
            let out = child.wait_with_output().expect("output");
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server started on a store it should refuse");
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9() {
    let dir = support::data_dir("kill9");
    let server = Server::start(embedded(&dir, true)).await;
    let mut alice = Client::connect_user(&server.url(), &token("alice", None)).await;
    let ack = alice
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let mut acked = Vec::new();
    for i in 0..40 {
        let ack = alice
            .emit_with_ack(
                "message:send",
                json!({"chatId": "general", "projectId": "demo", "type": "text",
                       "content": format!("durable {i}")}),
            )
            .await;
        let id = ack["data"]["message"]["id"].as_str().map(str::to_owned);
        acked.push(id.unwrap_or_else(|| panic!("no ack: {ack}")));
    }
    // Killed right after the last ack: nothing gets a chance to flush.
    server.kill9();

    let again = Server::start(embedded(&dir, false)).await;
    let (status, body) = again
        .get(
            "/api/chats/general/messages?limit=100",
            Some(("X-API-Key", API_KEY)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stored: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for id in &acked {
        assert!(stored.contains(&id.as_str()), "acked message {id} lost");
    }
    drop(again);
    let _ = std::fs::remove_dir_all(dir);
}

/// A stopped server leaves the file closed: the next start needs no crash recovery (which reads
/// the whole file).
#[tokio::test]
async fn a_graceful_stop_closes_the_store_cleanly() {
    let dir = support::data_dir("sigterm");
    let server = Server::start(embedded(&dir, true)).await;
    // Serving (the stop signal is handled from then on).
    assert_eq!(server.get("/ready", None).await.0, 200);
    assert_eq!(server.stop().code(), Some(0));
    let clean = redb::Database::builder().open_read_only(dir.join(FILE));
    assert!(clean.is_ok(), "{:?}", clean.err());
    drop(clean);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_second_process_on_the_same_data_dir_is_refused() {
    let dir = support::data_dir("locked");
    let first = Server::start(embedded(&dir, false)).await;
    let err = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || refused_start(&dir)
    })
    .await
    .expect("join");
    assert!(
        err.contains("in use by another Switchboard process"),
        "{err}"
    );
    // The first one is unharmed.
    assert_eq!(first.get("/ready", None).await.0, 200);
    // In-process too, with the typed error.
    assert!(matches!(
        EmbeddedStore::open(&dir),
        Err(OpenError::Locked { .. })
    ));
    drop(first);
    let _ = std::fs::remove_dir_all(dir);
}

fn bump_format(file: &Path, to: u64) {
    let db = redb::Database::open(file).expect("open the file directly");
    let txn = db.begin_write().expect("write");
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .expect("meta");
        meta.insert("format", to).expect("insert");
    }
    txn.commit().expect("commit");
}

#[tokio::test]
async fn a_store_from_a_newer_version_is_refused_and_left_alone() {
    let dir = support::data_dir("newer");
    {
        let store = EmbeddedStore::open(&dir).expect("open");
        store
            .put_project(&testkit::project("keep", &["alice"]))
            .await
            .expect("put");
    }
    let file = dir.join(FILE);
    bump_format(&file, FORMAT + 1);
    let before = std::fs::read(&file).expect("read");
    let err = match EmbeddedStore::open(&dir) {
        Ok(_) => panic!("opened a newer store"),
        Err(e) => e,
    };
    assert!(matches!(err, OpenError::Newer { found, .. } if found == FORMAT + 1));
    assert!(err.to_string().contains("newer Switchboard"), "{err}");
    let stderr = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || refused_start(&dir)
    })
    .await
    .expect("join");
    assert!(stderr.contains("newer Switchboard"), "{stderr}");
    assert_eq!(
        std::fs::read(&file).expect("read"),
        before,
        "the file changed"
    );
    // Back at this version's format, everything is still there.
    bump_format(&file, FORMAT);
    let store = EmbeddedStore::open(&dir).expect("open");
    assert!(!store.is_empty().await.expect("is_empty"));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// Turns a store of this version back into format 1: the same tables without the indexes
/// format 2 added.
fn downgrade_to_format_1(file: &Path) {
    let db = redb::Database::open(file).expect("open the file directly");
    let txn = db.begin_write().expect("write");
    for table in ["message_readers", "read_counts", "project_transactions"] {
        assert!(
            txn.delete_table(redb::TableDefinition::<&str, ()>::new(table))
                .expect("delete"),
            "{table} exists in format {FORMAT}"
        );
    }
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .expect("meta");
        meta.insert("format", 1).expect("insert");
    }
    txn.commit().expect("commit");
}

#[tokio::test]
async fn a_format_1_store_is_upgraded_with_its_receipts_and_transactions() {
    use redb::ReadableTable;
    use switchboard_handlers::core::ids::{ChatId, MessageId, ProjectId, UserId};
    use switchboard_handlers::core::model::{TxDirection, TxStatus, WalletTransaction};
    use switchboard_handlers::core::ports::{ChatStore, WalletStore};
    use switchboard_handlers::core::time::Timestamp;

    let dir = support::data_dir("format1");
    let chat = ChatId::try_from("general").expect("id");
    let project = ProjectId::try_from("demo").expect("id");
    let m0 = MessageId::try_from("m0").expect("id");
    {
        let store = EmbeddedStore::open(&dir).expect("open");
        for (id, at) in [("m0", 1_000), ("m1", 2_000)] {
            store
                .insert_message(testkit::message(id, "general", "demo", "alice", at), None)
                .await
                .expect("insert");
        }
        for i in 0..15 {
            let reader = UserId::try_from(format!("u{i:02}")).expect("id");
            store
                .mark_read(
                    &chat,
                    &reader,
                    std::slice::from_ref(&m0),
                    Timestamp::from_millis(10_000 - i),
                )
                .await
                .expect("mark");
        }
        for (n, at) in [("t1", 1_000), ("t2", 3_000), ("t3", 2_000)] {
            let tx = WalletTransaction {
                id: n.into(),
                address_id: "a1".to_owned().try_into().expect("id"),
                project_id: project.clone(),
                chain: "ethereum".into(),
                currency: "ETH".into(),
                amount: "1".into(),
                direction: TxDirection::In,
                tx_hash: format!("0x{n}"),
                status: TxStatus::Confirmed,
                confirmations: 1,
                created_at: Timestamp::from_millis(at),
            };
            store.put_transaction(&tx).await.expect("put");
        }
        store.close();
    }
    downgrade_to_format_1(&dir.join(FILE));

    let store = EmbeddedStore::open(&dir).expect("open and upgrade");
    let summaries = store
        .read_summaries(
            &chat,
            &[m0.clone(), MessageId::try_from("m1").expect("id")],
            10,
        )
        .await
        .expect("summaries");
    assert_eq!(summaries[0].read_count, 15);
    let first: Vec<String> = summaries[0]
        .read_by
        .iter()
        .map(|r| r.user_id.to_string())
        .collect();
    let expected: Vec<String> = (5..15).rev().map(|i| format!("u{i:02}")).collect();
    assert_eq!(first, expected, "the 10 earliest readers");
    assert_eq!(summaries[1].read_count, 0);
    let listed: Vec<String> = store
        .list_transactions(&project, None, 10, None)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, ["t2", "t3", "t1"]);
    // Upgraded once: the marker says so, and receipts go on being indexed.
    store.close();
    drop(store);
    let db = redb::Database::open(dir.join(FILE)).expect("open directly");
    let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
    let meta = txn
        .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
        .expect("meta");
    assert_eq!(
        meta.get("format").expect("get").map(|v| v.value()),
        Some(FORMAT)
    );
    drop((meta, txn, db));
    let store = EmbeddedStore::open(&dir).expect("open again");
    store
        .mark_read(
            &chat,
            &UserId::try_from("late").expect("id"),
            std::slice::from_ref(&m0),
            Timestamp::from_millis(20_000),
        )
        .await
        .expect("mark");
    let after = store
        .read_summaries(&chat, &[m0], 10)
        .await
        .expect("summaries");
    assert_eq!((after[0].read_count, after[0].read_by.len()), (16, 10));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_damaged_store_is_refused_and_left_alone() {
    let dir = support::data_dir("corrupt");
    drop(EmbeddedStore::open(&dir).expect("open"));
    let file = dir.join(FILE);
    let mut bytes = std::fs::read(&file).expect("read");
    // The header (magic number, format, checksums) overwritten.
    for b in bytes.iter_mut().take(512) {
        *b = 0x5a;
    }
    std::fs::write(&file, &bytes).expect("damage");
    let err = match EmbeddedStore::open(&dir) {
        Ok(_) => panic!("opened a damaged store"),
        Err(e) => e,
    };
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    let stderr = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || refused_start(&dir)
    })
    .await
    .expect("join");
    assert!(
        stderr.contains("is damaged or is not a Switchboard store"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&file).expect("read"),
        bytes,
        "the file changed"
    );

    // Some other file in its place is refused the same way, not taken over.
    std::fs::write(&file, b"not a database at all").expect("write");
    assert!(matches!(
        EmbeddedStore::open(&dir),
        Err(OpenError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::read(&file).expect("read"),
        b"not a database at all"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Start-up reads no messages: with a million stored (SB_STARTUP_MESSAGES to change it), the
/// server answers within 2 s of being started. Slow to fill, so run on demand:
/// `cargo test --test embedded_store -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn start_up_with_a_million_stored_messages() {
    use futures_util::StreamExt;
    use switchboard_handlers::core::ports::ChatStore;
    let n: i64 = std::env::var("SB_STARTUP_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = support::data_dir("million");
    let filled = std::time::Instant::now();
    {
        let store = EmbeddedStore::open(&dir).expect("open");
        switchboard::seed::load(&store, Path::new(&support::env::seeds_dir()))
            .await
            .expect("seed");
        let inserts = futures_util::stream::iter(0..n)
            .map(|i| {
                let at = 4_000_000_000_000 + i;
                let m = testkit::message(&format!("m{i:09}"), "general", "demo", "alice", at);
                let store = store.clone();
                async move { store.insert_message(m, None).await.map(|_| ()) }
            })
            .buffer_unordered(1024);
        inserts
            .for_each(|r| async move { r.expect("insert") })
            .await;
    }
    let size = std::fs::metadata(dir.join(FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "filled {n} messages in {:.1} s ({} MB)",
        filled.elapsed().as_secs_f64(),
        size >> 20
    );
    let started = std::time::Instant::now();
    let server = Server::start(embedded(&dir, false)).await;
    let took = started.elapsed();
    let (status, body) = server
        .get(
            "/api/chats/general/messages?limit=1",
            Some(("X-API-Key", API_KEY)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["id"], format!("m{:09}", n - 1));
    println!("start-up with {n} stored messages: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(2), "start-up took {took:?}");
    // After a crash the engine checks the file before serving: how long that takes.
    server.kill9();
    let started = std::time::Instant::now();
    let server = Server::start(embedded(&dir, false)).await;
    println!(
        "start-up after kill -9 with {n} stored messages: {} ms",
        started.elapsed().as_millis()
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// What a history page of 100 messages, each read by 1,000 participants, costs to summarise,
/// and what upgrading a format 1 file of those 100,000 receipts costs. Ignored (it writes
/// 100,000 receipts): `cargo test --test embedded_store -- --ignored --nocapture read_summaries`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn read_summaries_of_a_page_of_a_crowded_chat() {
    use std::time::Instant;
    use switchboard_handlers::core::ids::{ChatId, MessageId, UserId};
    use switchboard_handlers::core::ports::ChatStore;
    use switchboard_handlers::core::time::Timestamp;

    let dir = support::data_dir("crowded");
    let chat = ChatId::try_from("crowd").expect("id");
    let ids: Vec<MessageId> = (0..100)
        .map(|i| MessageId::try_from(format!("m{i:03}")).expect("id"))
        .collect();
    let store = EmbeddedStore::open(&dir).expect("open");
    for (i, id) in ids.iter().enumerate() {
        let m = testkit::message(id.as_str(), "crowd", "demo", "u0000", 1_000 + i as i64);
        store.insert_message(m, None).await.expect("insert");
    }
    let filled = Instant::now();
    for u in 0..1_000 {
        let reader = UserId::try_from(format!("u{u:04}")).expect("id");
        store
            .mark_read(&chat, &reader, &ids, Timestamp::from_millis(10_000 + u))
            .await
            .expect("mark");
    }
    println!("100,000 receipts in {:?}", filled.elapsed());
    let page = |store: EmbeddedStore| {
        let (chat, ids) = (chat.clone(), ids.clone());
        async move {
            let start = Instant::now();
            let mut got = Vec::new();
            for _ in 0..10 {
                got = store.read_summaries(&chat, &ids, 10).await.expect("sum");
            }
            assert!(
                got.iter()
                    .all(|s| s.read_count == 1_000 && s.read_by.len() == 10)
            );
            start.elapsed() / 10
        }
    };
    println!(
        "one page (100 messages × 1,000 readers): {:?}",
        page(store.clone()).await
    );
    store.close();
    drop(store);
    downgrade_to_format_1(&dir.join(FILE));
    let upgrade = Instant::now();
    let store = EmbeddedStore::open(&dir).expect("open and upgrade");
    println!(
        "format 1 → 2 upgrade of 100,000 receipts: {:?}",
        upgrade.elapsed()
    );
    println!(
        "one page after the upgrade: {:?}",
        page(store.clone()).await
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
