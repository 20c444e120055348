//! The Engine.IO heartbeat (PING_INTERVAL_MS / PING_TIMEOUT_MS): the open packet advertises
//! it, a client that answers pings stays connected, and one that stops answering is closed
//! within interval + timeout. The heartbeat task is one of the places the vendored
//! engineioxide patch touches (vendor/README.md), so it is pinned here.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::env::token;
use support::server::{Options, Server};
use support::sio::Client;
use tokio_tungstenite::tungstenite::Message;

const INTERVAL_MS: u64 = 300;
const TIMEOUT_MS: u64 = 300;

async fn server() -> Server {
    let mut opts = Options::memory();
    opts.extra_env = vec![
        ("PING_INTERVAL_MS".into(), INTERVAL_MS.to_string()),
        ("PING_TIMEOUT_MS".into(), TIMEOUT_MS.to_string()),
    ];
    Server::start(opts).await
}

#[tokio::test]
async fn a_silent_client_is_closed_and_a_live_one_is_kept() {
    let server = server().await;

    // A raw client that completes the handshake and then never answers a ping.
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        server.url().replacen("http://", "ws://", 1)
    );
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    let (mut sink, mut stream) = ws.split();
    let next = async |stream: &mut futures_util::stream::SplitStream<_>| -> Option<String> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return None,
                Ok(Some(Ok(_))) => continue,
                Err(_) => panic!("nothing from the server within 5 s"),
            }
        }
    };
    let open = next(&mut stream).await.expect("open packet");
    let open: Value = serde_json::from_str(open.strip_prefix('0').expect("open packet"))
        .expect("open packet JSON");
    assert_eq!(open["pingInterval"], json!(INTERVAL_MS), "{open}");
    assert_eq!(open["pingTimeout"], json!(TIMEOUT_MS), "{open}");
    let auth = json!({ "token": token("alice", None) });
    sink.send(Message::Text(format!("40{auth}").into()))
        .await
        .expect("send CONNECT");

    // Meanwhile a well-behaved client on the same server.
    let mut live = Client::connect_user(&server.url(), &token("bob", None)).await;

    let started = Instant::now();
    let mut pings = 0;
    let mut connected = false;
    while let Some(text) = next(&mut stream).await {
        match text.as_str() {
            "2" => pings += 1,
            t if t.starts_with("40") => connected = true,
            _ => {}
        }
    }
    let closed_after = started.elapsed();
    assert!(connected, "the Socket.IO CONNECT was answered");
    assert!(pings >= 1, "the server pinged before closing");
    assert!(
        closed_after < Duration::from_millis(INTERVAL_MS + TIMEOUT_MS + 2_000),
        "closed after {closed_after:?}"
    );

    // Several intervals later the client that answers pings is still connected and served.
    tokio::time::sleep(Duration::from_millis(4 * INTERVAL_MS)).await;
    let ack = live.emit_with_ack("subscribe:project", json!("demo")).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
