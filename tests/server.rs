//! The binary on its own (embedded store, local adapter): CLI, configuration refusals, auth at
//! the handshake, the first events, REST routes and SIGTERM.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::env::{API_KEY, token};
use support::server::{Options, Server, bin};
use support::sio::{Client, ConnectError};

const SHORT: Duration = Duration::from_millis(300);
const WAIT: Duration = Duration::from_secs(3);

#[test]
fn token_command_prints_a_valid_jwt() {
    let out = Command::new(bin())
        .args(["token", "--user", "alice", "--role", "admin", "--ttl", "60"])
        .env_clear()
        .env("JWT_SECRET", support::env::JWT_SECRET)
        .output()
        .expect("run");
    assert!(out.status.success());
    let t = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(t.trim().matches('.').count(), 2, "{t}");
    let bad = Command::new(bin())
        .args(["token", "--user", "alice", "--role", "root"])
        .env_clear()
        .output()
        .expect("run");
    assert!(!bad.status.success());
}

#[test]
fn dev_secret_is_refused_with_mongodb_or_redis() {
    for (k, v) in [
        ("MONGODB_URI", "mongodb://127.0.0.1:1"),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ] {
        let out = Command::new(bin())
            .env_clear()
            .env(k, v)
            .env("PORT", "0")
            .output()
            .expect("run");
        assert!(
            !out.status.success(),
            "{k} with the dev secret must not start"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("JWT_SECRET"), "{err}");
    }
}

#[tokio::test]
async fn unreachable_redis_fails_start_up_clearly() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(bin())
            .env_clear()
            .env("PORT", "0")
            .env("JWT_SECRET", support::env::JWT_SECRET)
            .env("REDIS_URL", "redis://127.0.0.1:1/?protocol=resp3")
            .env("SEEDS_DIR", support::env::seeds_dir())
            .env("STORE", "memory")
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach Redis"), "{err}");
}

#[tokio::test]
async fn handshake_auth() {
    let s = Server::start(Options::memory()).await;
    let url = s.url();
    for (auth, why) in [
        (json!({}), "missing"),
        (json!({ "token": "garbage" }), "invalid"),
        (
            json!({ "token": switchboard::auth::mint("another-secret-entirely", "alice", None, 60, None).expect("mint") }),
            "signature",
        ),
        (json!({ "apiKey": "wrong" }), "API key"),
        (json!({ "token": 42 }), "malformed"),
    ] {
        match Client::connect(&url, auth.clone()).await {
            Err(ConnectError::Refused(m)) => {
                assert!(m.starts_with("UNAUTHORIZED"), "{auth}: {m}");
                assert!(m.contains(why), "{auth}: {m} should mention {why}");
            }
            Err(e) => panic!("{auth}: {e:?}"),
            Ok(_) => panic!("{auth} was accepted"),
        }
    }
    Client::connect(&url, json!({ "apiKey": API_KEY }))
        .await
        .expect("api key accepted");
    Client::connect_user(&url, &token("alice", None)).await;
    assert_eq!(s.stop().code(), Some(0), "SIGTERM exits 0");
}

#[tokio::test]
async fn subscribe_and_custom_event_in_one_node() {
    let s = Server::start(Options::memory()).await;
    let url = s.url();
    let mut alice = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let mut carol = Client::connect_user(&url, &token("carol", None)).await;
    let mut dave = Client::connect_user(&url, &token("dave", None)).await;

    assert_eq!(
        alice
            .emit_with_ack("subscribe:project", json!("demo"))
            .await,
        json!({"ok": true, "data": {"projectId": "demo"}})
    );
    assert_eq!(
        bob.emit_with_ack("subscribe:project", json!({"projectId": "demo"}))
            .await["ok"],
        true
    );
    assert_eq!(
        dave.emit_with_ack("subscribe:project", json!("acme")).await["ok"],
        true
    );

    let ack = alice
        .emit_with_ack("custom:event", json!({"projectId": "demo", "x": 1}))
        .await;
    assert_eq!(ack, json!({"ok": true, "data": {}}));
    let got = bob.expect("custom:event", WAIT).await;
    assert_eq!(got["x"], 1);
    assert_eq!(got["from"]["userId"], "alice");
    alice.expect_none("custom:event", SHORT).await;
    carol.expect_none("custom:event", SHORT).await;
    dave.expect_none("custom:event", SHORT).await;

    // Non-member: FORBIDDEN, nothing joined, nothing emitted.
    let ack = alice
        .emit_with_ack("subscribe:project", json!("acme"))
        .await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN");
    let err = alice.expect("error", WAIT).await;
    assert_eq!(err["event"], "subscribe:project");
    let ack = alice
        .emit_with_ack("custom:event", json!({"projectId": "acme", "x": 2}))
        .await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN");
    dave.expect_none("custom:event", SHORT).await;

    // Bad payloads: INVALID_PAYLOAD, socket stays usable.
    for bad in [
        json!(null),
        json!(7),
        json!([]),
        json!({}),
        json!({"projectId": "x".repeat(129)}),
    ] {
        let ack = alice.emit_with_ack("custom:event", bad.clone()).await;
        assert_eq!(ack["error"]["code"], "INVALID_PAYLOAD", "{bad}");
    }
    let ack = alice.emit_with_ack("no:such:event", json!({})).await;
    assert_eq!(ack["error"]["code"], "INVALID_PAYLOAD");
    bob.expect_none("custom:event", SHORT).await;
    assert_eq!(
        alice
            .emit_with_ack("unsubscribe:project", json!("demo"))
            .await["ok"],
        true
    );
}

#[tokio::test]
async fn user_room_and_rest() {
    let s = Server::start(Options::memory()).await;
    let url = s.url();
    let mut tab1 = Client::connect_user(&url, &token("alice", None)).await;
    let mut tab2 = Client::connect_user(&url, &token("alice", None)).await;
    let mut bob = Client::connect_user(&url, &token("bob", None)).await;
    let key = ("X-API-Key", API_KEY);
    let (status, _) = s
        .post(
            "/api/projects/demo/emit",
            key,
            json!({"room": "user:alice", "event": "note", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(tab1.expect("note", WAIT).await, json!({"n": 1}));
    assert_eq!(tab2.expect("note", WAIT).await, json!({"n": 1}));
    bob.expect_none("note", SHORT).await;

    let (status, body) = s
        .post(
            "/api/projects/demo/emit",
            key,
            json!({"room": "project:acme", "event": "x", "payload": {}}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    let alice_bearer = format!("Bearer {}", token("alice", None));
    let (status, _) = s
        .post(
            "/api/projects/demo/emit",
            ("Authorization", &alice_bearer),
            json!({"event": "x"}),
        )
        .await;
    assert_eq!(status, 403);

    assert_eq!(s.get("/health", None).await, (200, json!({"status": "ok"})));
    assert_eq!(s.get("/ready", None).await.0, 200);
    let (status, body) = s
        .get("/api/projects", Some(("Authorization", &alice_bearer)))
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["projects"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["demo"]);
    let (_, body) = s.get("/api/projects", Some(key)).await;
    assert_eq!(body["projects"].as_array().map(Vec::len), Some(2));
    let admin = format!("Bearer {}", token("root", Some("admin")));
    assert_eq!(
        s.get("/api/projects/acme", Some(("Authorization", &admin)))
            .await
            .0,
        200
    );
    assert_eq!(
        s.get("/api/projects/nope", Some(("Authorization", &admin)))
            .await
            .0,
        404
    );
    let (status, body) = s
        .get("/api/projects/acme", Some(("Authorization", &alice_bearer)))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let (status, body) = s.get("/api/projects", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let (status, body) = s.get("/api/nothing/here", Some(key)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (_, metrics) = s.get("/metrics", None).await;
    let metrics = metrics.as_str().expect("text").to_owned();
    assert!(metrics.contains("switchboard_connections 3"), "{metrics}");
}

#[tokio::test]
async fn room_and_socket_limits() {
    let s = Server::start(Options {
        extra_env: vec![
            ("MAX_ROOMS_PER_SOCKET".into(), "3".into()),
            ("MAX_SOCKETS_PER_USER".into(), "2".into()),
        ],
        ..Options::memory()
    })
    .await;
    let mut alice = Client::connect_user(&s.url(), &token("alice", None)).await;
    // user:alice + project:demo + chat:general = 3 rooms.
    assert_eq!(
        alice
            .emit_with_ack("subscribe:project", json!("demo"))
            .await["ok"],
        true
    );
    let ack = alice
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let over = alice
        .emit_with_ack(
            "subscribe:collection",
            json!({"projectId": "demo", "collectionId": "tasks"}),
        )
        .await;
    assert_eq!(over["error"]["code"], "INVALID_PAYLOAD", "{over}");
    // Re-joining a room it is in is not a new room.
    let again = alice
        .emit_with_ack(
            "chat:join",
            json!({"chatId": "general", "projectId": "demo"}),
        )
        .await;
    assert_eq!(again["ok"], true, "{again}");

    let _second = Client::connect_user(&s.url(), &token("alice", None)).await;
    match Client::connect(&s.url(), json!({"token": token("alice", None)})).await {
        Err(ConnectError::Refused(m)) => assert!(m.starts_with("RATE_LIMITED"), "{m}"),
        Ok(_) => panic!("a third socket for alice was accepted"),
        Err(e) => panic!("unexpected: {e:?}"),
    }
    // Other users are unaffected.
    let _bob = Client::connect_user(&s.url(), &token("bob", None)).await;
}

/// Runs the binary with exactly `env` (plus PATH and the seeds) and returns its output when it
/// exits within 10 s; a server that starts and keeps running instead is stopped and gives None.
fn exit_of(env: &[(&str, &str)]) -> Option<std::process::Output> {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .env("SEEDS_DIR", support::env::seeds_dir())
        .envs(env.iter().copied());
    // Not ./data, which parallel tests must not share.
    if !env
        .iter()
        .any(|(k, _)| *k == "MONGODB_URI" || *k == "STORE")
    {
        cmd.env("STORE", "memory");
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn assert_refused(env: &[(&str, &str)], mention: &str) {
    let out = exit_of(env).unwrap_or_else(|| panic!("{env:?} started a server"));
    assert!(!out.status.success(), "{env:?} must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(mention),
        "{env:?}: {err} should mention {mention}"
    );
}

/// 32 bytes, many distinct characters: the shape of `openssl rand -hex 16`.
const STRONG: &str = "f3a91c07d2b84e65a0c9d1e27b3f4a58";

#[test]
fn public_binds_and_weak_or_public_secrets_are_refused() {
    // The container's HOST=0.0.0.0 with no JWT_SECRET would sign with the public dev secret.
    for host in ["0.0.0.0", "::", "192.0.2.1", "example.com"] {
        assert_refused(&[("HOST", host)], "JWT_SECRET");
    }
    let sixteen_a = "a".repeat(16);
    let long_repeat = "ab".repeat(20);
    for secret in [
        switchboard::config::DEV_JWT_SECRET,
        sixteen_a.as_str(),
        long_repeat.as_str(),
        "0123456789abcdef!",
        "only-31-bytes-0123456789abcdefg",
    ] {
        assert_refused(
            &[("HOST", "127.0.0.1"), ("JWT_SECRET", secret)],
            "JWT_SECRET",
        );
        assert_refused(&[("HOST", "0.0.0.0"), ("JWT_SECRET", secret)], "JWT_SECRET");
    }
}

#[test]
fn weak_api_keys_are_refused_at_start_up() {
    let thirty_two_x = "x".repeat(32);
    for keys in [
        "short",
        "rust-tests-admin-key",
        thirty_two_x.as_str(),
        &format!("{STRONG},{}", "1".repeat(40)),
    ] {
        assert_refused(
            &[
                ("HOST", "127.0.0.1"),
                ("JWT_SECRET", STRONG),
                ("API_KEYS", keys),
            ],
            "API_KEYS",
        );
    }
}

#[tokio::test]
async fn a_deployment_seeds_only_when_told() {
    let key = ("X-API-Key", API_KEY);
    let projects = |body: serde_json::Value| body["projects"].as_array().map(Vec::len);

    // A public bind: no demo tenants unless SEED_DEMO says so.
    let public = Options {
        extra_env: vec![("HOST".into(), "0.0.0.0".into())],
        ..Default::default()
    };
    let s = Server::start_without(public.clone(), &["SEED_DEMO"]).await;
    let (status, body) = s.get("/api/projects", Some(key)).await;
    assert_eq!((status, projects(body)), (200, Some(0)));
    drop(s);
    let mut told = public;
    told.extra_env.push(("SEED_DEMO".into(), "true".into()));
    let s = Server::start_without(told, &[]).await;
    let (_, body) = s.get("/api/projects", Some(key)).await;
    assert_eq!(projects(body), Some(2));
    drop(s);

    // The README's first command: loopback, embedded store, nothing set: demo data and the
    // dev secret, with the hint to mint a token.
    let s = Server::start_without(Options::default(), &["SEED_DEMO", "JWT_SECRET"]).await;
    let (_, body) = s.get("/api/projects", Some(key)).await;
    assert_eq!(projects(body), Some(2));
    let dev = switchboard::auth::mint(switchboard::config::DEV_JWT_SECRET, "alice", None, 60, None)
        .expect("mint");
    Client::connect_user(&s.url(), &dev).await;
}

fn signed(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(support::env::JWT_SECRET.as_bytes()),
    )
    .expect("encode")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn refused(url: &str, token: String, why: &str) {
    match Client::connect(url, json!({ "token": token })).await {
        Err(ConnectError::Refused(m)) => {
            assert!(m.starts_with("UNAUTHORIZED"), "{why}: {m}");
        }
        Err(e) => panic!("{why}: {e:?}"),
        Ok(_) => panic!("{why}: accepted"),
    }
}

#[tokio::test]
async fn token_time_claims_and_reserved_ids_are_checked() {
    let s = Server::start(Options::memory()).await;
    let url = s.url();
    let t = now();
    let cases = [
        (
            json!({ "sub": "alice", "nbf": t + 3600, "exp": t + 7200 }),
            "nbf an hour ahead",
        ),
        (
            json!({ "sub": "alice", "exp": 32_472_144_000u64 }),
            "exp in year 2999",
        ),
        (
            json!({ "sub": "alice", "iat": t - 40 * 86_400, "exp": t + 3600 }),
            "lifetime of 40 days",
        ),
        (
            json!({ "sub": "alice", "iat": t + 3600, "exp": t + 7200 }),
            "iat in the future",
        ),
        (
            json!({ "sub": "apikey:1", "exp": t + 3600 }),
            "an API key's identity",
        ),
        (
            json!({ "sub": "APIKEY:2", "exp": t + 3600 }),
            "an API key's identity, upper case",
        ),
        (
            json!({ "sub": "system:server", "exp": t + 3600 }),
            "a reserved prefix",
        ),
    ];
    for (claims, why) in cases {
        refused(&url, signed(claims), why).await;
    }
    let fine = json!({ "sub": "alice", "iat": t, "nbf": t, "exp": t + 3600 });
    Client::connect_user(&url, &signed(fine)).await;
    // REST goes through the same checks.
    let bearer = format!(
        "Bearer {}",
        signed(json!({ "sub": "apikey:1", "exp": t + 60 }))
    );
    let (status, _) = s
        .get("/api/projects", Some(("Authorization", &bearer)))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_set() {
    let s = Server::start(Options {
        extra_env: vec![
            ("JWT_ISSUER".into(), "https://id.example.com".into()),
            ("JWT_AUDIENCE".into(), "switchboard".into()),
        ],
        ..Options::memory()
    })
    .await;
    let url = s.url();
    let exp = now() + 3600;
    for (claims, why) in [
        (json!({ "sub": "alice", "exp": exp }), "no iss nor aud"),
        (
            json!({ "sub": "alice", "exp": exp, "aud": "switchboard" }),
            "no iss",
        ),
        (
            json!({ "sub": "alice", "exp": exp, "iss": "https://id.example.com" }),
            "no aud",
        ),
        (
            json!({ "sub": "alice", "exp": exp, "iss": "https://evil.example", "aud": "switchboard" }),
            "another issuer",
        ),
        (
            json!({ "sub": "alice", "exp": exp, "iss": "https://id.example.com", "aud": "other" }),
            "another audience",
        ),
    ] {
        refused(&url, signed(claims), why).await;
    }
    let good = json!({ "sub": "alice", "exp": exp, "iss": "https://id.example.com", "aud": "switchboard" });
    Client::connect_user(&url, &signed(good)).await;
}

#[test]
fn token_command_refuses_reserved_ids_and_overlong_lifetimes() {
    for args in [
        vec!["token", "--user", "apikey:1"],
        vec!["token", "--user", "alice", "--ttl", "315360000"],
    ] {
        let out = Command::new(bin())
            .args(&args)
            .env_clear()
            .env("JWT_SECRET", support::env::JWT_SECRET)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} must be refused");
    }
}

#[tokio::test]
async fn metrics_token_guards_metrics_when_set() {
    let s = Server::start(Options {
        extra_env: vec![("METRICS_TOKEN".into(), STRONG.into())],
        ..Options::memory()
    })
    .await;
    let (status, _) = s.get("/metrics", None).await;
    assert_eq!(status, 401);
    let (status, _) = s
        .get("/metrics", Some(("Authorization", "Bearer wrong")))
        .await;
    assert_eq!(status, 401);
    let bearer = format!("Bearer {STRONG}");
    let (status, body) = s.get("/metrics", Some(("Authorization", &bearer))).await;
    assert_eq!(status, 200);
    assert!(
        body.as_str().is_some_and(|m| m.contains("switchboard_")),
        "{body}"
    );
    drop(s);
    assert_refused(
        &[("HOST", "127.0.0.1"), ("METRICS_TOKEN", "metrics")],
        "METRICS_TOKEN",
    );
}
