//! Data in MongoDB outlives the process: seed, stop, start again without seeding, read it back.

mod support;

use support::env::API_KEY;
use support::server::{Options, Server};

#[tokio::test]
async fn seeded_data_survives_a_restart() {
    let db = support::unique("restart");
    let first = Server::start(Options {
        mongodb_db: Some(db.clone()),
        seed_demo: true,
        ..Default::default()
    })
    .await;
    let (status, body) = first
        .get("/api/projects", Some(("X-API-Key", API_KEY)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["projects"].as_array().map(Vec::len), Some(2));
    assert_eq!(first.stop().code(), Some(0));

    let second = Server::start(Options {
        mongodb_db: Some(db),
        seed_demo: false,
        ..Default::default()
    })
    .await;
    let (status, body) = second
        .get("/api/projects/demo", Some(("X-API-Key", API_KEY)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["members"],
        serde_json::json!(["alice", "bob", "carol"])
    );
    assert_eq!(second.get("/ready", None).await.0, 200);
}

#[tokio::test]
async fn seed_command_is_idempotent() {
    let db = support::unique("seedcmd");
    for _ in 0..2 {
        let out = tokio::task::spawn_blocking({
            let db = db.clone();
            move || {
                let mut cmd = std::process::Command::new(support::server::bin());
                support::server::base_env(
                    &mut cmd,
                    &Options {
                        mongodb_db: Some(db),
                        ..Default::default()
                    },
                );
                cmd.arg("seed").output().expect("run seed")
            }
        })
        .await
        .expect("join");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("seeded 2 project(s), 4 message(s)"));
    }
    let s = Server::start(Options {
        mongodb_db: Some(db),
        seed_demo: false,
        ..Default::default()
    })
    .await;
    let (_, body) = s.get("/api/projects", Some(("X-API-Key", API_KEY))).await;
    assert_eq!(body["projects"].as_array().map(Vec::len), Some(2));
}
