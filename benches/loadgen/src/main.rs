//! `loadgen`: drives any server that speaks the contract's `chat:join` / `message:send` /
//! `message:new` (Switchboard, or the Node reference in benches/reference) with many Socket.IO
//! clients over WebSocket, and prints one JSON line per scenario. Every loop is bounded in count
//! and time; traffic goes only to the URLs given (loopback in benches/run.sh).
//!
//!   loadgen seed --out DIR                      seed file (project `bench`, its chats)
//!   loadgen fanout --url U --secret S [--inflight 16 | --rate 40]
//!   loadgen rooms  --url U --secret S [--inflight 4 | --rate 5000]
//!   loadgen idle   --url U --secret S --pid P --connections 5000
//!   loadgen persist --url U --secret S          message:send acked after the database write
//!   loadgen driver --mongo-uri M                the same inserts from a bare driver loop
//!   loadgen floor --port P [--split 2]          the least work a fan-out server can do (floor.rs)
//!
//! Pusher Channels protocol 7 (pusher_bench.rs; any Pusher server, e.g. Soketi):
//!
//!   loadgen pusher-fanout   --url U --secret S [--inflight 16 | --rate 40]   HTTP API triggers
//!   loadgen pusher-channels --url U --secret S [--via client | http]      pairs, private channels
//!   loadgen pusher-idle     --url U --secret S --pid P --connections 5000
//!
//! InsForge realtime (insforge.rs; the `/insforge` namespace of Switchboard or the reference):
//!
//!   loadgen insforge-fanout --url U --secret S [--api-key K] [--inflight 16] [--publishers 1]
//!
//! HTTP pub/sub (sse.rs; Switchboard's `/{plate}/pubsub/…` routes):
//!
//!   loadgen sse-fanout --url U --secret S [--inflight 16]   HTTP publishes, SSE subscribers
//!   loadgen sse-idle   --url U --secret S --pid P --connections 5000
//!
//! `--url a,b` spreads clients over several nodes (cross-node scenarios).

mod client;
mod floor;
mod insforge;
mod phoenix;
mod pusher;
mod pusher_bench;
mod sse;
mod ws;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use client::{Conn, now_us, stamp_in};

const PROJECT: &str = "bench";
const FAN_CHAT: &str = "fan";
const PERSIST_CHAT: &str = "persist";

#[derive(Parser)]
#[command(about = "Socket.IO load generator for the Switchboard contract")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes DIR/bench.json: project `bench` with the users and chats the scenarios use.
    Seed {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        #[arg(long, default_value_t = 16)]
        senders: usize,
    },
    /// 1 publisher, N subscribers in one chat.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// Messages the publisher keeps unacknowledged (max-rate mode).
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        /// Messages per second (fixed offered load); 0 = max-rate mode.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// InsForge `/insforge`: P publishers, N subscribers of one channel (insforge.rs).
    InsforgeFanout {
        #[command(flatten)]
        common: Common,
        /// An API key: creates the channel's definition over REST first (Switchboard needs
        /// one; the Node reference has no definitions).
        #[arg(long)]
        api_key: Option<String>,
        #[arg(long, default_value = "bench-fan")]
        channel: String,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        /// Messages over all publishers.
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// Per publisher: its own messages not yet delivered back to it.
        #[arg(long, default_value_t = 16)]
        inflight: usize,
    },
    /// N pairs, each user sending to its pair's chat.
    Rooms {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        /// Messages per sender.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        /// Per sender, in max-rate mode.
        #[arg(long, default_value_t = 4)]
        inflight: usize,
        /// Total messages per second over all senders; 0 = max-rate mode.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// N idle authenticated connections; the server's RSS per connection.
    Idle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 5000)]
        connections: usize,
        /// The server's process id (RSS from /proc/<pid>/status).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 3)]
        settle_secs: u64,
    },
    /// Senders sending acknowledged messages to one chat.
    Persist {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 16)]
        senders: usize,
        #[arg(long, default_value_t = 8)]
        inflight: usize,
        /// Messages per sender.
        #[arg(long, default_value_t = 500)]
        messages: usize,
    },
    /// A stand-in server doing the least work fan-out needs (what the machine allows; floor.rs).
    Floor {
        #[arg(long)]
        port: u16,
        /// Tasks that write one broadcast in parallel (1: all from the publisher's task).
        #[arg(long, default_value_t = 1)]
        split: usize,
    },
    /// The same inserts as `persist` from a bare MongoDB driver loop (the database's ceiling).
    Driver {
        #[arg(long)]
        mongo_uri: String,
        #[arg(long, default_value = "loadgen_driver")]
        db: String,
        /// Concurrent inserts (senders × inflight of `persist`).
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        #[arg(long, default_value_t = 8000)]
        inserts: usize,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Supabase Realtime (Phoenix): 1 publisher, N subscribers of one channel (phoenix.rs).
    PhoenixFanout {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// Broadcasts the publisher keeps unanswered (`ack: true`).
        #[arg(long, default_value_t = 16)]
        inflight: usize,
    },
    /// Supabase Realtime (Phoenix): N pairs, each on its own channel.
    PhoenixRooms {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        /// Messages per sender.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        /// Per sender: broadcasts unanswered.
        #[arg(long, default_value_t = 4)]
        inflight: usize,
    },
    /// HTTP pub/sub: 1 HTTP publisher, N SSE subscribers of one channel.
    SseFanout {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// Publishes unanswered (each on its own keep-alive connection).
        #[arg(long, default_value_t = 16)]
        inflight: usize,
    },
    /// HTTP pub/sub: N idle SSE subscribers, each of its own channel; the server's RSS per
    /// connection.
    SseIdle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 5000)]
        connections: usize,
        /// The server's process id (RSS from /proc/<pid>/status).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 3)]
        settle_secs: u64,
    },
    /// Pusher: 1 HTTP API publisher, N subscribers of one public channel.
    PusherFanout {
        #[command(flatten)]
        common: pusher_bench::PusherCommon,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// HTTP requests in flight (each on its own keep-alive connection; max-rate mode).
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        /// Messages per second (fixed offered load); 0 = max-rate mode.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// Pusher: N pairs, each on its private channel; every message reaches the other member.
    PusherChannels {
        #[command(flatten)]
        common: pusher_bench::PusherCommon,
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        /// Messages per member.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        /// Per member, undelivered at its partner (client events, max-rate mode).
        #[arg(long, default_value_t = 4)]
        inflight: usize,
        /// Total messages per second over all members; 0 = max-rate mode.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        #[arg(long, value_enum, default_value = "client")]
        via: pusher_bench::Via,
        /// HTTP requests in flight with `--via http`.
        #[arg(long, default_value_t = 32)]
        http_conns: usize,
        /// Client events: one write each, rather than what the window allows in one write.
        #[arg(long)]
        write_each: bool,
    },
    /// Pusher: N idle connections; the server's RSS per connection.
    PusherIdle {
        #[command(flatten)]
        common: pusher_bench::PusherCommon,
        #[arg(long, default_value_t = 5000)]
        connections: usize,
        /// The server's process id (RSS from /proc/<pid>/status).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 3)]
        settle_secs: u64,
        /// Each connection subscribes to a public channel of its own.
        #[arg(long)]
        subscribe: bool,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Server base URL(s), comma-separated: clients are spread over them.
    #[arg(long)]
    url: String,
    /// HS256 secret the server verifies tokens with.
    #[arg(long, env = "JWT_SECRET")]
    secret: String,
    /// Printed in the JSON line (e.g. `switchboard`, `node`).
    #[arg(long, default_value = "")]
    label: String,
    /// Upper bound on a scenario's run time.
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
}

impl Common {
    fn urls(&self) -> Vec<String> {
        self.url.split(',').map(|s| s.trim().to_owned()).collect()
    }

    fn token(&self, sub: &str) -> anyhow::Result<String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            sub: &'a str,
            exp: u64,
        }
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            + 24 * 3600;
        Ok(jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &Claims { sub, exp },
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )?)
    }
}

/// Latencies (µs) and the last arrival time of one receiving connection. `latencies` end when
/// the load tool reads a message; `arrivals` end when the kernel queued its bytes on the socket
/// (`SO_TIMESTAMPNS`), before the load tool's own scheduling — the figure a client on another
/// machine would see, where the load tool does not share the server's cores.
#[derive(Default)]
struct Received {
    latencies: Vec<u32>,
    arrivals: Vec<u32>,
    last_us: u64,
}

type Shared = Arc<Mutex<Received>>;

fn recorder(into: Shared) -> client::OnEvent {
    Box::new(move |data: &str, arrival: Option<u64>| {
        if !data.starts_with("[\"message:new\"") {
            return;
        }
        if let Some(sent) = stamp_in(data) {
            let now = now_us();
            let since = |t: u64| u32::try_from(t.saturating_sub(sent)).unwrap_or(u32::MAX);
            let mut r = into.lock().unwrap_or_else(|p| p.into_inner());
            r.latencies.push(since(now));
            if let Some(at) = arrival {
                r.arrivals.push(since(at));
            }
            r.last_us = now;
        }
    })
}

/// Connects `users[i]` to `urls[node_of(i)]`, joining `chat_of(i)`, a bounded number at once.
async fn connect_all(
    common: &Common,
    users: Vec<(String, usize, Option<String>)>,
    record: bool,
) -> anyhow::Result<Vec<(Conn, Shared)>> {
    let urls = common.urls();
    let results: Vec<anyhow::Result<(Conn, Shared)>> = stream::iter(users)
        .map(|(user, node, chat)| {
            let url = urls[node % urls.len()].clone();
            let token = common.token(&user);
            async move {
                let shared: Shared = Arc::default();
                let on_event: client::OnEvent = if record {
                    recorder(shared.clone())
                } else {
                    Box::new(|_: &str, _: Option<u64>| {})
                };
                let mut conn = Conn::connect(&url, &token?, on_event)
                    .await
                    .with_context(|| format!("connecting {user} to {url}"))?;
                if let Some(chat) = chat {
                    let join = json!({ "chatId": chat, "projectId": PROJECT }).to_string();
                    conn.call("chat:join", &join)
                        .await
                        .with_context(|| format!("{user} joining {chat}"))?;
                }
                Ok((conn, shared))
            }
        })
        .buffered(common.connect_concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

fn send_payload(chat: &str) -> String {
    json!({ "chatId": chat, "projectId": PROJECT, "type": "text", "content": format!("t={}", now_us()) })
        .to_string()
}

/// Sends `n` messages keeping `window` unacknowledged; returns ack latencies (µs) and failures.
async fn send_windowed(
    conn: &mut Conn,
    chat: &str,
    n: usize,
    window: usize,
    deadline: Instant,
) -> (Vec<u32>, usize) {
    let mut sent_at = std::collections::HashMap::with_capacity(window * 2);
    let (mut sent, mut acked, mut failed) = (0usize, 0usize, 0usize);
    let mut lat = Vec::with_capacity(n);
    while acked < n && Instant::now() < deadline {
        while sent < n && sent - acked < window.max(1) {
            let id = conn.emit_ack("message:send", &send_payload(chat));
            sent_at.insert(id, now_us());
            sent += 1;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.acks.recv()).await {
            Ok(Some(ack)) => {
                if let Some(t) = sent_at.remove(&ack.id) {
                    acked += 1;
                    if ack.ok {
                        lat.push(u32::try_from(ack.at_us.saturating_sub(t)).unwrap_or(u32::MAX));
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

/// Sends `n` messages at `rate` per second, not waiting for acks.
async fn send_paced(conn: &mut Conn, chat: &str, n: usize, rate: f64, deadline: Instant) {
    let start = tokio::time::Instant::now();
    for i in 0..n {
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        conn.emit_ack("message:send", &send_payload(chat));
        while conn.acks.try_recv().is_ok() {}
    }
}

/// Waits until `expected` deliveries arrived (or the deadline), then summarises them.
async fn collect(recv: &[Shared], expected: usize, first_send_us: u64, deadline: Instant) -> Value {
    let count = || {
        recv.iter()
            .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()).latencies.len())
            .sum::<usize>()
    };
    let mut last_count = 0;
    let mut stalled_since = Instant::now();
    while Instant::now() < deadline {
        let c = count();
        if c >= expected {
            break;
        }
        if c != last_count {
            last_count = c;
            stalled_since = Instant::now();
        } else if stalled_since.elapsed() > Duration::from_secs(10) {
            break; // nothing arrives any more: report what did
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut all = Vec::with_capacity(expected);
    let mut arrivals = Vec::with_capacity(expected);
    let mut last = first_send_us;
    for r in recv {
        let r = r.lock().unwrap_or_else(|p| p.into_inner());
        all.extend_from_slice(&r.latencies);
        arrivals.extend_from_slice(&r.arrivals);
        last = last.max(r.last_us);
    }
    let elapsed = (last.saturating_sub(first_send_us)) as f64 / 1e6;
    let mut v = percentiles(&mut all);
    // Only when every delivery was stamped: a partial set would describe some other population.
    if !arrivals.is_empty() && arrivals.len() == all.len() {
        v["arrival"] = percentiles(&mut arrivals);
    }
    v["expected"] = json!(expected);
    v["delivered"] = json!(all.len());
    v["lost"] = json!(expected.saturating_sub(all.len()));
    v["elapsedS"] = json!(round3(elapsed));
    v["deliveredPerSec"] = json!(if elapsed > 0.0 {
        (all.len() as f64 / elapsed).round()
    } else {
        0.0
    });
    v
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn percentiles(v: &mut [u32]) -> Value {
    v.sort_unstable();
    let p = |q: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 * q) as usize).min(v.len() - 1);
        round3(f64::from(v[i]) / 1000.0)
    };
    json!({ "p50Ms": p(0.50), "p99Ms": p(0.99), "maxMs": p(1.0) })
}

fn emit(mut v: Value, scenario: &str, common_label: &str) {
    v["scenario"] = json!(scenario);
    v["label"] = json!(common_label);
    println!("{v}");
}

async fn fanout(
    common: Common,
    subscribers: usize,
    messages: usize,
    inflight: usize,
    rate: f64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let subs: Vec<_> = (1..=subscribers)
        .map(|i| (format!("u{i}"), i, Some(FAN_CHAT.to_owned())))
        .collect();
    let receivers = connect_all(&common, subs, true).await?;
    let mut publisher = connect_all(
        &common,
        vec![("u0".into(), 0, Some(FAN_CHAT.to_owned()))],
        false,
    )
    .await?;
    let (mut pubconn, _) = publisher.pop().context("publisher")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = now_us();
    let mut out = if rate > 0.0 {
        send_paced(&mut pubconn, FAN_CHAT, messages, rate, deadline).await;
        json!({ "mode": "rate", "rate": rate })
    } else {
        let (mut lat, failed) =
            send_windowed(&mut pubconn, FAN_CHAT, messages, inflight, deadline).await;
        let mut v = json!({ "mode": "inflight", "inflight": inflight, "sendFailures": failed });
        v["ackP99Ms"] = percentiles(&mut lat)["p99Ms"].clone();
        v
    };
    let shared: Vec<Shared> = receivers.iter().map(|(_, s)| s.clone()).collect();
    let stats = collect(&shared, messages * subscribers, first, deadline).await;
    merge(&mut out, stats);
    out["subscribers"] = json!(subscribers);
    out["messages"] = json!(messages);
    out["nodes"] = json!(common.urls().len());
    emit(out, "fanout", &common.label);
    for (c, _) in &receivers {
        c.close();
    }
    pubconn.close();
    Ok(())
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

async fn rooms(
    common: Common,
    pairs: usize,
    messages: usize,
    inflight: usize,
    rate: f64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let users: Vec<_> = (0..pairs * 2)
        .map(|i| (format!("p{i}"), i, Some(format!("pair-{}", i / 2))))
        .collect();
    let conns = connect_all(&common, users, true).await?;
    let shared: Vec<Shared> = conns.iter().map(|(_, s)| s.clone()).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = now_us();
    let senders = conns.len();
    let per_sender_rate = rate / senders.max(1) as f64;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, (mut conn, _))| {
            let chat = format!("pair-{}", i / 2);
            tokio::spawn(async move {
                let r = if per_sender_rate > 0.0 {
                    // Stagger the senders over one period so the offered load is smooth.
                    let offset = (i as f64 / senders as f64) / per_sender_rate;
                    tokio::time::sleep(Duration::from_secs_f64(offset)).await;
                    send_paced(&mut conn, &chat, messages, per_sender_rate, deadline).await;
                    (Vec::new(), 0)
                } else {
                    send_windowed(&mut conn, &chat, messages, inflight, deadline).await
                };
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
    let mut out = if rate > 0.0 {
        json!({ "mode": "rate", "rate": rate })
    } else {
        json!({ "mode": "inflight", "inflight": inflight, "sendFailures": failures })
    };
    let stats = collect(&shared, senders * messages, first, deadline).await;
    merge(&mut out, stats);
    out["pairs"] = json!(pairs);
    out["messagesPerSender"] = json!(messages);
    out["nodes"] = json!(common.urls().len());
    emit(out, "rooms", &common.label);
    for c in &conns {
        c.close();
    }
    Ok(())
}

/// VmRSS and VmHWM of a process, in KiB.
fn rss_kb(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

async fn idle(common: Common, connections: usize, pid: u32, settle: u64) -> anyhow::Result<()> {
    let (before, _) = rss_kb(pid)?;
    let users: Vec<_> = (0..connections)
        .map(|i| (format!("idle{i}"), i, None))
        .collect();
    let started = Instant::now();
    let conns = connect_all(&common, users, false).await?;
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let (after, hwm) = rss_kb(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / connections.max(1) as f64;
    emit(
        json!({
            "connections": conns.len(),
            "connectS": round3(connect_s),
            "rssBeforeKb": before,
            "rssAfterKb": after,
            "hwmKb": hwm,
            "bytesPerConn": per.round(),
        }),
        "idle",
        &common.label,
    );
    for (c, _) in &conns {
        c.close();
    }
    Ok(())
}

async fn persist(
    common: Common,
    senders: usize,
    inflight: usize,
    messages: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let users: Vec<_> = (0..senders)
        .map(|i| (format!("s{i}"), i, Some(PERSIST_CHAT.to_owned())))
        .collect();
    let conns = connect_all(&common, users, false).await?;
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(mut conn, _)| {
            tokio::spawn(async move {
                let r = send_windowed(&mut conn, PERSIST_CHAT, messages, inflight, deadline).await;
                conn.close();
                r
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await?;
        lat.extend(l);
        failures += f;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut out = percentiles(&mut lat);
    out["acked"] = json!(lat.len());
    out["failures"] = json!(failures);
    out["elapsedS"] = json!(round3(secs));
    out["sendsPerSec"] = json!((lat.len() as f64 / secs).round());
    out["senders"] = json!(senders);
    out["inflight"] = json!(inflight);
    emit(out, "persist", &common.label);
    Ok(())
}

async fn driver(
    uri: String,
    db: String,
    concurrency: usize,
    inserts: usize,
    label: String,
) -> anyhow::Result<()> {
    use mongodb::bson::{DateTime, doc, oid::ObjectId};
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let coll = client
        .database(&db)
        .collection::<mongodb::bson::Document>("messages");
    coll.drop().await.ok();
    // The indexes Switchboard's messages collection has, so both sides pay the same write cost.
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "chatId": 1, "createdAt": -1, "_id": -1 })
            .build(),
    )
    .await?;
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "chatId": 1, "senderId": 1, "clientMessageId": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .unique(true)
                    .partial_filter_expression(doc! { "clientMessageId": { "$exists": true } })
                    .build(),
            )
            .build(),
    )
    .await?;
    let started = Instant::now();
    let mut lat: Vec<u32> = stream::iter(0..inserts)
        .map(|i| {
            let coll = coll.clone();
            async move {
                let t = now_us();
                let d = doc! {
                    "_id": ObjectId::new().to_hex(), "chatId": PERSIST_CHAT, "projectId": PROJECT,
                    "senderId": format!("s{}", i % 16), "type": "text",
                    "content": format!("t={t}"), "replyTo": null, "mentions": [],
                    "reactions": [], "createdAt": DateTime::now(), "editedAt": null,
                    "deletedAt": null,
                };
                coll.insert_one(d)
                    .await
                    .map(|_| u32::try_from(now_us().saturating_sub(t)).unwrap_or(u32::MAX))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|r| async move { r.ok() })
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut out = percentiles(&mut lat);
    out["inserted"] = json!(lat.len());
    out["elapsedS"] = json!(round3(secs));
    out["insertsPerSec"] = json!((lat.len() as f64 / secs).round());
    out["concurrency"] = json!(concurrency);
    emit(out, "driver", &label);
    client.database(&db).drop().await.ok();
    Ok(())
}

fn seed(out: PathBuf, subscribers: usize, pairs: usize, senders: usize) -> anyhow::Result<()> {
    let fan: Vec<String> = (0..=subscribers).map(|i| format!("u{i}")).collect();
    let pair_users: Vec<String> = (0..pairs * 2).map(|i| format!("p{i}")).collect();
    let senders_: Vec<String> = (0..senders).map(|i| format!("s{i}")).collect();
    let members: Vec<&String> = fan.iter().chain(&pair_users).chain(&senders_).collect();
    let at = "2026-01-01T00:00:00.000Z";
    let mut chats = vec![
        json!({ "id": FAN_CHAT, "projectId": PROJECT, "name": "Fan-out", "participants": fan,
                "ownerId": "u0", "createdAt": at }),
        json!({ "id": PERSIST_CHAT, "projectId": PROJECT, "name": "Persisted sends",
                "participants": senders_, "ownerId": "s0", "createdAt": at }),
    ];
    for p in 0..pairs {
        chats.push(
            json!({ "id": format!("pair-{p}"), "projectId": PROJECT, "name": "Pair",
            "participants": [format!("p{}", 2 * p), format!("p{}", 2 * p + 1)],
            "ownerId": format!("p{}", 2 * p), "createdAt": at }),
        );
    }
    let file = json!({
        "projects": [{ "id": PROJECT, "name": "Benchmarks", "members": members, "createdAt": at }],
        "chats": chats,
    });
    std::fs::create_dir_all(&out)?;
    let path = out.join("bench.json");
    std::fs::write(&path, serde_json::to_vec(&file)?)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    client::start_clock();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Seed {
            out,
            subscribers,
            pairs,
            senders,
        } => seed(out, subscribers, pairs, senders),
        Cmd::Fanout {
            common,
            subscribers,
            messages,
            inflight,
            rate,
        } => fanout(common, subscribers, messages, inflight, rate).await,
        Cmd::InsforgeFanout {
            common,
            api_key,
            channel,
            subscribers,
            publishers,
            messages,
            inflight,
        } => {
            insforge::fanout(
                common,
                api_key,
                channel,
                subscribers,
                publishers,
                messages,
                inflight,
            )
            .await
        }
        Cmd::Rooms {
            common,
            pairs,
            messages,
            inflight,
            rate,
        } => rooms(common, pairs, messages, inflight, rate).await,
        Cmd::Idle {
            common,
            connections,
            pid,
            settle_secs,
        } => idle(common, connections, pid, settle_secs).await,
        Cmd::Persist {
            common,
            senders,
            inflight,
            messages,
        } => persist(common, senders, inflight, messages).await,
        Cmd::PhoenixFanout {
            common,
            subscribers,
            messages,
            inflight,
        } => phoenix::fanout(common, subscribers, messages, inflight).await,
        Cmd::PhoenixRooms {
            common,
            pairs,
            messages,
            inflight,
        } => phoenix::rooms(common, pairs, messages, inflight).await,
        Cmd::SseFanout {
            common,
            subscribers,
            messages,
            inflight,
        } => sse::fanout(common, subscribers, messages, inflight).await,
        Cmd::SseIdle {
            common,
            connections,
            pid,
            settle_secs,
        } => sse::idle(common, connections, pid, settle_secs).await,
        Cmd::Floor { port, split } => floor::serve(port, split).await,
        Cmd::PusherFanout {
            common,
            subscribers,
            messages,
            inflight,
            rate,
        } => pusher_bench::fanout(common, subscribers, messages, inflight, rate).await,
        Cmd::PusherChannels {
            common,
            pairs,
            messages,
            inflight,
            rate,
            via,
            http_conns,
            write_each,
        } => {
            let shape = pusher_bench::Shape {
                inflight,
                rate,
                write_each,
            };
            pusher_bench::channels(common, pairs, messages, shape, via, http_conns).await
        }
        Cmd::PusherIdle {
            common,
            connections,
            pid,
            settle_secs,
            subscribe,
        } => pusher_bench::idle(common, connections, pid, settle_secs, subscribe).await,
        Cmd::Driver {
            mongo_uri,
            db,
            concurrency,
            inserts,
            label,
        } => {
            if concurrency == 0 || inserts == 0 {
                bail!("--concurrency and --inserts must be positive");
            }
            driver(mongo_uri, db, concurrency, inserts, label).await
        }
    }
}
