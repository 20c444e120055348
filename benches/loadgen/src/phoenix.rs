//! The Supabase Realtime (Phoenix channels) scenarios, mirroring the Socket.IO `fanout` and
//! `rooms` ones through Switchboard's `/realtime/v1` front end (docs/protocols/supabase.md):
//! `phoenix-fanout` (one publisher broadcasting to N subscribers of one channel) and
//! `phoenix-rooms` (N pairs, each on a channel of its own, each member broadcasting to the
//! other). Clients speak the 1.0.0 serializer (JSON objects) as realtime-js does with
//! `vsn: '1.0.0'`, authenticate with a user JWT (`apikey`, members of project `bench`) and send
//! broadcasts with `ack: true`, so a sender keeps `inflight` broadcasts unanswered as the
//! Socket.IO senders keep `message:send` unacknowledged. The payload carries its send time
//! (`{"sbt":<µs>}`). Same JSON line as the other scenarios; `--url a,b` spreads clients over
//! nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::client::now_us;
use crate::pusher::{host_port, stamp_in};
use crate::ws::{self, Msg};
use crate::{Common, PROJECT, Shared, collect, emit, merge, percentiles};

const FAN_CHANNEL: &str = "realtime:fan";
const EVENT: &str = "bench";
/// Answer to a join.
const TIMEOUT: Duration = Duration::from_secs(10);
/// realtime-js's heartbeat period; the server closes connections silent for 60 s.
const HEARTBEAT: Duration = Duration::from_secs(25);

/// A `phx_reply` as the reader hands it to the sender: its `ref` and whether it was `ok`.
struct Reply {
    reference: u64,
    ok: bool,
    at_us: u64,
}

#[derive(Deserialize)]
struct Frame<'a> {
    event: &'a str,
    #[serde(default, rename = "ref")]
    reference: Option<&'a str>,
    #[serde(default)]
    payload: Option<ReplyPayload<'a>>,
}

#[derive(Deserialize)]
struct ReplyPayload<'a> {
    #[serde(default)]
    status: Option<&'a str>,
}

enum Out {
    Text(String),
    Pong(Vec<u8>),
    Close,
}

/// One realtime-js-like connection.
struct Conn {
    out: mpsc::UnboundedSender<Out>,
    replies: mpsc::UnboundedReceiver<Reply>,
    next_ref: AtomicU64,
    join_ref: Option<String>,
}

impl Conn {
    async fn connect(base: &str, token: &str, record: Option<Shared>) -> anyhow::Result<Conn> {
        let addr = host_port(base)?;
        let path = format!("/realtime/v1/websocket?apikey={token}&project={PROJECT}&vsn=1.0.0");
        let (mut reader, writer) = tokio::time::timeout(TIMEOUT, ws::connect(&addr, &path))
            .await
            .context("websocket connect timed out")??;
        let (out, mut out_rx) = mpsc::unbounded_channel::<Out>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let sent = match &m {
                    Out::Text(t) => writer.text(t).await,
                    Out::Pong(p) => writer.pong(p).await,
                    Out::Close => writer.close().await,
                };
                if sent.is_err() || matches!(m, Out::Close) {
                    break;
                }
            }
        });
        let heartbeat = out.clone();
        tokio::spawn(async move {
            let frame = r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"hb"}"#;
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if heartbeat.send(Out::Text(frame.to_owned())).is_err() {
                    break;
                }
            }
        });
        let (reply_tx, replies) = mpsc::unbounded_channel();
        let pongs = out.clone();
        tokio::spawn(async move {
            let origin = crate::client::epoch_unix_us();
            loop {
                let (msg, arrival) = match reader.next().await {
                    Ok((Msg::Text(t), at)) => (t, at),
                    Ok((Msg::Ping(p), _)) => {
                        let _ = pongs.send(Out::Pong(p));
                        continue;
                    }
                    Ok((Msg::Binary, _)) => continue,
                    Ok((Msg::Close, _)) | Err(_) => break,
                };
                // Deliveries are matched without a parse: only they carry the stamp.
                if msg.contains("\"event\":\"broadcast\"") {
                    if let (Some(r), Some(sent)) = (&record, stamp_in(msg)) {
                        let now = now_us();
                        let since =
                            |t: u64| u32::try_from(t.saturating_sub(sent)).unwrap_or(u32::MAX);
                        let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
                        r.latencies.push(since(now));
                        if let Some(at) = arrival {
                            r.arrivals.push(since(at.saturating_sub(origin)));
                        }
                        r.last_us = now;
                    }
                    continue;
                }
                let Ok(frame) = serde_json::from_str::<Frame>(msg) else {
                    continue;
                };
                if frame.event != "phx_reply" {
                    continue;
                }
                let Some(reference) = frame.reference.and_then(|r| r.parse().ok()) else {
                    continue;
                };
                let ok = frame.payload.and_then(|p| p.status) == Some("ok");
                let _ = reply_tx.send(Reply {
                    reference,
                    ok,
                    at_us: now_us(),
                });
            }
        });
        Ok(Conn {
            out,
            replies,
            next_ref: AtomicU64::new(1),
            join_ref: None,
        })
    }

    fn push(&self, topic: &str, event: &str, payload: serde_json::Value) -> u64 {
        let reference = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let frame = json!({
            "topic": topic, "event": event, "payload": payload,
            "ref": reference.to_string(), "join_ref": self.join_ref,
        });
        let _ = self.out.send(Out::Text(frame.to_string()));
        reference
    }

    /// Joins `topic` for broadcasts (acked, not to self) and waits for the ok.
    async fn join(&mut self, topic: &str) -> anyhow::Result<()> {
        let config = json!({ "config": {
            "broadcast": { "ack": true, "self": false },
            "presence": { "key": "", "enabled": false },
            "postgres_changes": [], "private": false,
        }});
        let reference = self.push(topic, "phx_join", config);
        self.join_ref = Some(reference.to_string());
        loop {
            let reply = tokio::time::timeout(TIMEOUT, self.replies.recv())
                .await
                .with_context(|| format!("joining {topic}: no answer in {TIMEOUT:?}"))?
                .ok_or_else(|| anyhow!("joining {topic}: connection closed"))?;
            if reply.reference == reference {
                if reply.ok {
                    return Ok(());
                }
                bail!("joining {topic}: refused");
            }
        }
    }

    fn broadcast(&self, topic: &str) -> u64 {
        let payload = json!({
            "type": "broadcast", "event": EVENT, "payload": { "sbt": now_us() },
        });
        self.push(topic, "broadcast", payload)
    }

    fn close(&self) {
        let _ = self.out.send(Out::Close);
    }
}

/// Sends `n` broadcasts keeping `window` unanswered; returns ack latencies (µs) and failures.
async fn send_windowed(
    conn: &mut Conn,
    topic: &str,
    n: usize,
    window: usize,
    deadline: Instant,
) -> (Vec<u32>, usize) {
    let mut sent_at = HashMap::with_capacity(window * 2);
    let (mut sent, mut acked, mut failed) = (0usize, 0usize, 0usize);
    let mut lat = Vec::with_capacity(n);
    while acked < n && Instant::now() < deadline {
        while sent < n && sent - acked < window.max(1) {
            let r = conn.broadcast(topic);
            sent_at.insert(r, now_us());
            sent += 1;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.replies.recv()).await {
            Ok(Some(reply)) => {
                if let Some(t) = sent_at.remove(&reply.reference) {
                    acked += 1;
                    if reply.ok {
                        lat.push(u32::try_from(reply.at_us.saturating_sub(t)).unwrap_or(u32::MAX));
                    } else {
                        failed += 1;
                    }
                }
            }
            _ => break,
        }
    }
    (lat, failed + (n - acked))
}

/// Connects `(user, node, topic, record)` clients, joined, a bounded number at once.
async fn connect_all(
    common: &Common,
    clients: Vec<(String, usize, String, bool)>,
) -> anyhow::Result<Vec<(Conn, Shared)>> {
    let urls = common.urls();
    let results: Vec<anyhow::Result<(Conn, Shared)>> = stream::iter(clients)
        .map(|(user, node, topic, record)| {
            let url = urls[node % urls.len()].clone();
            let token = common.token(&user);
            async move {
                let shared: Shared = Arc::default();
                let mut conn = Conn::connect(&url, &token?, record.then(|| shared.clone()))
                    .await
                    .with_context(|| format!("connecting {user} to {url}"))?;
                conn.join(&topic)
                    .await
                    .with_context(|| format!("{user} on {url}"))?;
                Ok((conn, shared))
            }
        })
        .buffered(common.connect_concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

pub async fn fanout(
    common: Common,
    subscribers: usize,
    messages: usize,
    inflight: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let subs = (1..=subscribers)
        .map(|i| (format!("u{i}"), i, FAN_CHANNEL.to_owned(), true))
        .collect();
    let receivers = connect_all(&common, subs).await?;
    let mut publisher = connect_all(
        &common,
        vec![("u0".into(), 0, FAN_CHANNEL.to_owned(), false)],
    )
    .await?;
    let (mut pubconn, _) = publisher.pop().context("publisher")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = now_us();
    let (mut lat, failed) =
        send_windowed(&mut pubconn, FAN_CHANNEL, messages, inflight, deadline).await;
    let mut out = json!({ "mode": "inflight", "inflight": inflight, "sendFailures": failed });
    out["ackP99Ms"] = percentiles(&mut lat)["p99Ms"].clone();
    let shared: Vec<Shared> = receivers.iter().map(|(_, s)| s.clone()).collect();
    let stats = collect(&shared, messages * subscribers, first, deadline).await;
    merge(&mut out, stats);
    out["subscribers"] = json!(subscribers);
    out["messages"] = json!(messages);
    out["nodes"] = json!(common.urls().len());
    emit(out, "phoenix-fanout", &common.label);
    for (c, _) in &receivers {
        c.close();
    }
    pubconn.close();
    Ok(())
}

pub async fn rooms(
    common: Common,
    pairs: usize,
    messages: usize,
    inflight: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let topic_of = |i: usize| format!("realtime:pair-{}", i / 2);
    // Members 2p and 2p+1 alternate between nodes: with two nodes every message crosses.
    let clients = (0..pairs * 2)
        .map(|i| (format!("p{i}"), i, topic_of(i), true))
        .collect();
    let conns = connect_all(&common, clients).await?;
    let shared: Vec<Shared> = conns.iter().map(|(_, s)| s.clone()).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = now_us();
    let senders = conns.len();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, (mut conn, _))| {
            let topic = topic_of(i);
            tokio::spawn(async move {
                let r = send_windowed(&mut conn, &topic, messages, inflight, deadline).await;
                (conn, r)
            })
        })
        .collect();
    let mut failures = 0;
    let mut conns = Vec::new();
    for t in tasks {
        let (conn, (_, f)) = t.await?;
        failures += f;
        conns.push(conn);
    }
    let mut out = json!({ "mode": "inflight", "inflight": inflight, "sendFailures": failures });
    let stats = collect(&shared, senders * messages, first, deadline).await;
    merge(&mut out, stats);
    out["pairs"] = json!(pairs);
    out["messagesPerSender"] = json!(messages);
    out["nodes"] = json!(common.urls().len());
    emit(out, "phoenix-rooms", &common.label);
    for c in &conns {
        c.close();
    }
    Ok(())
}
