//! The Pusher protocol 7 scenarios, mirroring the Socket.IO ones for any Pusher server
//! (Switchboard's Pusher front end, Soketi): `pusher-fanout` (HTTP triggers to one public
//! channel), `pusher-channels` (pairs on private channels, client events or HTTP triggers
//! reaching the other member only), `pusher-idle` (RSS per idle connection). Same JSON line as
//! the Socket.IO scenarios; `--url a,b` spreads clients over nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use crate::client::now_us;
use crate::pusher::{self, App, Conn, Http};
use crate::{Shared, collect, emit, merge, percentiles, round3, rss_kb};

/// The event name of every benchmark message (client events must start with `client-`).
const EVENT: &str = "bench";
const CLIENT_EVENT: &str = "client-bench";
/// How long a windowed sender waits for a delivery before taking the rest as lost.
const STALL: Duration = Duration::from_secs(10);

#[derive(Args, Clone)]
pub struct PusherCommon {
    /// Server base URL(s), comma-separated: clients are spread over them.
    #[arg(long)]
    url: String,
    /// The app's id (`/apps/{id}` of the HTTP API).
    #[arg(long, default_value = "bench")]
    app_id: String,
    /// The app's key (`/app/{key}` of the WebSocket).
    #[arg(long, default_value = "bench-key")]
    key: String,
    /// The app's secret: signs private-channel auth and HTTP API requests.
    #[arg(long, env = "PUSHER_APP_SECRET")]
    secret: String,
    /// Printed in the JSON line (e.g. `sb`, `soketi`).
    #[arg(long, default_value = "")]
    label: String,
    /// Upper bound on a scenario's run time.
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
}

impl PusherCommon {
    fn urls(&self) -> Vec<String> {
        self.url.split(',').map(|s| s.trim().to_owned()).collect()
    }

    fn app(&self) -> App {
        App {
            id: self.app_id.clone(),
            key: self.key.clone(),
            secret: self.secret.clone(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Via {
    /// `client-*` events sent by the members themselves (no server acknowledgement: each sender
    /// keeps its window by what its partner has received).
    Client,
    /// HTTP API triggers excluding the sender's `socket_id`, from a pool of connections.
    Http,
}

/// One connected client: its connection, what it received, and a wake-up per delivery.
struct Peer {
    conn: Conn,
    recv: Shared,
    delivered: Arc<Notify>,
}

fn recorder(into: Shared, delivered: Arc<Notify>) -> crate::client::OnEvent {
    Box::new(move |frame: &str, arrival: Option<u64>| {
        let Some(sent) = pusher::stamp_in(frame) else {
            return;
        };
        let now = now_us();
        let since = |t: u64| u32::try_from(t.saturating_sub(sent)).unwrap_or(u32::MAX);
        {
            let mut r = into.lock().unwrap_or_else(|p| p.into_inner());
            r.latencies.push(since(now));
            if let Some(at) = arrival {
                r.arrivals.push(since(at));
            }
            r.last_us = now;
        }
        delivered.notify_one();
    })
}

/// Connects client `i` to `urls[node]` and subscribes it to its channel, a bounded number at
/// once; `errors` counts the `pusher:error` frames they receive later.
async fn connect_all(
    common: &PusherCommon,
    clients: Vec<(usize, Option<String>)>,
    errors: &Arc<AtomicUsize>,
) -> anyhow::Result<Vec<Peer>> {
    let urls = common.urls();
    let app = common.app();
    let results: Vec<anyhow::Result<Peer>> = stream::iter(clients)
        .map(|(node, channel)| {
            let url = urls[node % urls.len()].clone();
            let (app, errors) = (app.clone(), errors.clone());
            async move {
                let recv: Shared = Arc::default();
                let delivered = Arc::new(Notify::new());
                let on_event = recorder(recv.clone(), delivered.clone());
                let mut conn = Conn::connect(&url, &app.key, on_event, errors)
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                if let Some(ch) = channel {
                    conn.subscribe(&app, &ch).await?;
                }
                Ok(Peer {
                    conn,
                    recv,
                    delivered,
                })
            }
        })
        .buffered(common.connect_concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// One HTTP trigger to send: the node it goes to, its channel, the `socket_id` it excludes.
struct Job {
    node: usize,
    channel: String,
    except: Option<String>,
}

/// Sends `jobs` through `conns` keep-alive connections per node (each one request at a time),
/// all at once (`rate` 0) or paced at `rate` per second; returns the HTTP answer latencies (µs)
/// of the accepted ones and the count of failures (refused, unanswered, or not sent in time).
async fn trigger_pool(
    common: &PusherCommon,
    jobs: Vec<Job>,
    conns: usize,
    rate: f64,
    deadline: Instant,
) -> (Vec<u32>, usize) {
    let total = jobs.len();
    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let dispatcher = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for (i, job) in jobs.into_iter().enumerate() {
            if rate > 0.0 {
                if Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
            }
            if tx.send(job).is_err() {
                break;
            }
        }
    });
    let urls = common.urls();
    let app = common.app();
    let workers: Vec<_> = (0..conns.max(1))
        .map(|_| {
            let (rx, urls, app) = (rx.clone(), urls.clone(), app.clone());
            tokio::spawn(async move {
                let mut http: HashMap<usize, Http> = HashMap::new();
                let (mut lat, mut failed) = (Vec::new(), 0usize);
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let next = tokio::time::timeout(left, async { rx.lock().await.recv().await });
                    let Ok(Some(job)) = next.await else { break };
                    let node = job.node % urls.len();
                    let conn = match http.entry(node) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            match Http::new(&urls[node]) {
                                Ok(h) => e.insert(h),
                                Err(_) => {
                                    failed += 1;
                                    continue;
                                }
                            }
                        }
                    };
                    let t = now_us();
                    let data = pusher::stamped_data();
                    let sent = conn
                        .trigger(&app, &[&job.channel], EVENT, &data, job.except.as_deref())
                        .await;
                    match sent {
                        Ok(200) => {
                            lat.push(u32::try_from(now_us().saturating_sub(t)).unwrap_or(u32::MAX))
                        }
                        _ => failed += 1,
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0;
    for w in workers {
        if let Ok((l, f)) = w.await {
            lat.extend(l);
            failed += f;
        }
    }
    dispatcher.abort();
    // Jobs never taken (deadline) count as failures too.
    let done = lat.len() + failed;
    (lat, failed + total.saturating_sub(done))
}

pub async fn fanout(
    common: PusherCommon,
    subscribers: usize,
    messages: usize,
    inflight: usize,
    rate: f64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let channel = "bench-fan";
    let errors = Arc::new(AtomicUsize::new(0));
    // Subscriber i on node i % nodes; the HTTP API on node 0, like the Socket.IO publisher.
    let subs = (1..=subscribers)
        .map(|i| (i, Some(channel.to_owned())))
        .collect();
    let receivers = connect_all(&common, subs, &errors).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let jobs = (0..messages)
        .map(|_| Job {
            node: 0,
            channel: channel.to_owned(),
            except: None,
        })
        .collect();
    let first = now_us();
    // At a fixed rate the pool only needs to be as large as the answers are slow.
    let pool = if rate > 0.0 {
        inflight.max(16)
    } else {
        inflight
    };
    let (mut lat, failed) = trigger_pool(&common, jobs, pool, rate, deadline).await;
    let mut out = if rate > 0.0 {
        json!({ "mode": "rate", "rate": rate, "sendFailures": failed })
    } else {
        json!({ "mode": "inflight", "inflight": inflight, "sendFailures": failed })
    };
    out["ackP99Ms"] = percentiles(&mut lat)["p99Ms"].clone();
    let shared: Vec<Shared> = receivers.iter().map(|p| p.recv.clone()).collect();
    let stats = collect(&shared, messages * subscribers, first, deadline).await;
    merge(&mut out, stats);
    out["subscribers"] = json!(subscribers);
    out["messages"] = json!(messages);
    out["nodes"] = json!(common.urls().len());
    out["serverErrors"] = json!(errors.load(Ordering::Relaxed));
    emit(out, "pusher-fanout", &common.label);
    for p in &receivers {
        p.conn.close();
    }
    Ok(())
}

/// How the pairs' members send.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Undelivered client events per member (max-rate mode).
    pub inflight: usize,
    /// Total client events per second over all members; 0 = max-rate mode.
    pub rate: f64,
    /// One write per client event, rather than what the window allows in one write.
    pub write_each: bool,
}

/// Sends `n` client events keeping at most `window` undelivered at `peer`; returns how many
/// were not sent (the window stayed shut for `STALL`: the earlier ones were lost).
async fn send_client_windowed(
    conn: &Conn,
    channel: &str,
    n: usize,
    window: usize,
    write_each: bool,
    peer: (Shared, Arc<Notify>),
    deadline: Instant,
) -> usize {
    let delivered = || {
        peer.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latencies
            .len()
    };
    let mut sent = 0;
    while sent < n && Instant::now() < deadline {
        // What the window allows goes out in one write, as a client with a write buffer
        // sends what it has ready.
        let room = window
            .max(1)
            .saturating_sub(sent.saturating_sub(delivered()));
        let k = room
            .min(n - sent)
            .min(if write_each { 1 } else { usize::MAX });
        if k > 0 {
            conn.client_events(
                channel,
                CLIENT_EVENT,
                (0..k).map(|_| pusher::stamped_data()),
            )
            .await;
            sent += k;
            continue;
        }
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(STALL);
        if tokio::time::timeout(wait, peer.1.notified()).await.is_err() {
            break;
        }
    }
    n - sent
}

async fn send_client_paced(conn: &Conn, channel: &str, n: usize, rate: f64, deadline: Instant) {
    let start = tokio::time::Instant::now();
    for i in 0..n {
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        conn.client_event(channel, CLIENT_EVENT, &pusher::stamped_data())
            .await;
    }
}

pub async fn channels(
    common: PusherCommon,
    pairs: usize,
    messages: usize,
    shape: Shape,
    via: Via,
    http_conns: usize,
) -> anyhow::Result<()> {
    let Shape {
        inflight,
        rate,
        write_each,
    } = shape;
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let errors = Arc::new(AtomicUsize::new(0));
    let channel_of = |i: usize| format!("private-pair-{}", i / 2);
    // Members 2p and 2p+1 alternate between nodes: with two nodes every message crosses.
    let clients = (0..pairs * 2).map(|i| (i, Some(channel_of(i)))).collect();
    let peers = connect_all(&common, clients, &errors).await?;
    let shared: Vec<Shared> = peers.iter().map(|p| p.recv.clone()).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let senders = peers.len();
    let first = now_us();
    let mut out = match via {
        Via::Client => {
            let per_sender_rate = rate / senders.max(1) as f64;
            let partner: Vec<(Shared, Arc<Notify>)> = (0..senders)
                .map(|i| {
                    let p = &peers[i ^ 1];
                    (p.recv.clone(), p.delivered.clone())
                })
                .collect();
            let tasks: Vec<_> = peers
                .into_iter()
                .zip(partner)
                .enumerate()
                .map(|(i, (peer, partner))| {
                    let channel = channel_of(i);
                    tokio::spawn(async move {
                        let unsent = if per_sender_rate > 0.0 {
                            // Stagger the senders over one period so the offered load is smooth.
                            let offset = (i as f64 / senders as f64) / per_sender_rate;
                            tokio::time::sleep(Duration::from_secs_f64(offset)).await;
                            send_client_paced(
                                &peer.conn,
                                &channel,
                                messages,
                                per_sender_rate,
                                deadline,
                            )
                            .await;
                            0
                        } else {
                            send_client_windowed(
                                &peer.conn, &channel, messages, inflight, write_each, partner,
                                deadline,
                            )
                            .await
                        };
                        (peer.conn, unsent)
                    })
                })
                .collect();
            let mut unsent = 0;
            let mut conns = Vec::new();
            for t in tasks {
                let (conn, u) = t.await?;
                unsent += u;
                conns.push(conn);
            }
            let stats = collect(&shared, senders * messages, first, deadline).await;
            for c in &conns {
                c.close();
            }
            let mut v = if rate > 0.0 {
                json!({ "mode": "rate", "rate": rate, "via": "client" })
            } else {
                json!({ "mode": "inflight", "inflight": inflight, "via": "client", "sendFailures": unsent,
                        "writes": if write_each { "each" } else { "window" } })
            };
            merge(&mut v, stats);
            v
        }
        Via::Http => {
            // Round after round over every sender, each trigger sent to the sender's own node
            // and excluding it: only its partner receives.
            let jobs = (0..messages)
                .flat_map(|_| 0..senders)
                .map(|i| Job {
                    node: i,
                    channel: channel_of(i),
                    except: Some(peers[i].conn.socket_id.clone()),
                })
                .collect();
            let (mut lat, failed) = trigger_pool(&common, jobs, http_conns, rate, deadline).await;
            let stats = collect(&shared, senders * messages, first, deadline).await;
            for p in &peers {
                p.conn.close();
            }
            let mut v = json!({ "mode": if rate > 0.0 { "rate" } else { "inflight" },
                                "via": "http", "httpConns": http_conns, "sendFailures": failed });
            if rate > 0.0 {
                v["rate"] = json!(rate);
            }
            v["ackP99Ms"] = percentiles(&mut lat)["p99Ms"].clone();
            merge(&mut v, stats);
            v
        }
    };
    out["pairs"] = json!(pairs);
    out["messagesPerSender"] = json!(messages);
    out["nodes"] = json!(common.urls().len());
    out["serverErrors"] = json!(errors.load(Ordering::Relaxed));
    emit(out, "pusher-channels", &common.label);
    Ok(())
}

pub async fn idle(
    common: PusherCommon,
    connections: usize,
    pid: u32,
    settle: u64,
    subscribe: bool,
) -> anyhow::Result<()> {
    let (before, _) = rss_kb(pid)?;
    let errors = Arc::new(AtomicUsize::new(0));
    let clients = (0..connections)
        .map(|i| (i, subscribe.then(|| format!("idle-{i}"))))
        .collect();
    let started = Instant::now();
    let peers = connect_all(&common, clients, &errors).await?;
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let (after, hwm) = rss_kb(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / connections.max(1) as f64;
    emit(
        json!({
            "connections": peers.len(),
            "subscribed": subscribe,
            "connectS": round3(connect_s),
            "rssBeforeKb": before,
            "rssAfterKb": after,
            "hwmKb": hwm,
            "bytesPerConn": per.round(),
        }),
        "pusher-idle",
        &common.label,
    );
    for p in &peers {
        p.conn.close();
    }
    Ok(())
}
