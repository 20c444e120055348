//! `loadgen insforge-fanout`: the `fanout` scenario over the InsForge namespace `/insforge`
//! (docs/protocols/insforge.md; Switchboard, or the Node reference's `/insforge`). N subscribers
//! (JWT users `u1`…`uN` of project `bench`, `?project=bench`) `realtime:subscribe` to one
//! channel; P publishers (user `u0`, subscribed too, as publishing requires) send
//! `realtime:publish` with their send time in the payload. Publishes have no ack: a publisher
//! keeps `inflight` of its own messages undelivered to itself (every subscriber, the publisher
//! included, receives each message). Delivered/s and latencies count the N subscribers only,
//! as `fanout` counts its N receivers. With `--api-key` the channel's definition is created
//! first over `POST /api/realtime/channels` on every URL (an existing one is fine).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::client::{self, Conn, Target, now_us};
use crate::pusher::Http;
use crate::{Common, PROJECT, Shared, collect, emit, merge};

/// The event every benchmark message is published under.
const EVENT: &str = "bench";
/// How long a windowed publisher waits for one of its own messages before giving up.
const STALL: Duration = Duration::from_secs(10);

#[derive(Serialize)]
struct ChannelReq<'a> {
    channel: &'a str,
}

#[derive(Serialize)]
struct Publish<'a> {
    channel: &'a str,
    event: &'a str,
    payload: Stamp,
}

/// The published payload; delivered back as `{sentUs, pub, meta}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stamp {
    sent_us: u64,
    #[serde(rename = "pub")]
    publisher: usize,
}

#[derive(Serialize)]
struct Definition<'a> {
    pattern: &'a str,
    description: &'a str,
}

/// The unsigned integer after `"key":` in `data`, if any.
fn number_after(data: &str, key: &str) -> Option<u64> {
    let at = data.find(key)? + key.len();
    let digits = data[at..].bytes().take_while(u8::is_ascii_digit).count();
    data[at..at + digits].parse().ok()
}

/// `(sentUs, pub)` of a delivered benchmark message (`["bench",{…}]`), found by a scan: the
/// load tool shares the server's cores, so it parses no more than `fanout` does.
fn stamp_in(data: &str) -> Option<(u64, usize)> {
    if !data.starts_with("[\"bench\",") {
        return None;
    }
    let sent = number_after(data, "\"sentUs\":")?;
    let publisher = number_after(data, "\"pub\":")?;
    Some((sent, usize::try_from(publisher).ok()?))
}

/// What one connection records: latencies of every message (subscribers), or the count of its
/// own messages back (publishers, `own` = its index), with a wake-up per delivery.
fn recorder(
    into: Shared,
    own: Option<usize>,
    back: Arc<(AtomicUsize, Notify)>,
    errors: Arc<AtomicUsize>,
) -> client::OnEvent {
    Box::new(move |data: &str, arrival: Option<u64>| {
        let Some((sent, publisher)) = stamp_in(data) else {
            if data.starts_with("[\"realtime:error\"") {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        if let Some(me) = own {
            if publisher == me {
                back.0.fetch_add(1, Ordering::Relaxed);
                back.1.notify_one();
            }
            return;
        }
        let now = now_us();
        let since = |t: u64| u32::try_from(t.saturating_sub(sent)).unwrap_or(u32::MAX);
        let mut r = into.lock().unwrap_or_else(|p| p.into_inner());
        r.latencies.push(since(now));
        if let Some(at) = arrival {
            r.arrivals.push(since(at));
        }
        r.last_us = now;
    })
}

/// Creates the channel's definition on `url` (201, or 409 when it exists).
async fn define(url: &str, api_key: &str, channel: &str) -> anyhow::Result<()> {
    let mut http = Http::new(url)?;
    let body = serde_json::to_vec(&Definition {
        pattern: channel,
        description: "loadgen insforge-fanout",
    })?;
    let path = format!("/api/realtime/channels?project={PROJECT}");
    let status = http
        .request(&path, &format!("X-API-Key: {api_key}\r\n"), &body)
        .await
        .with_context(|| format!("creating the channel definition on {url}"))?;
    if status != 201 && status != 409 {
        bail!("creating the channel definition on {url}: HTTP {status}");
    }
    Ok(())
}

struct Peer {
    conn: Conn,
    recv: Shared,
    back: Arc<(AtomicUsize, Notify)>,
}

/// Connects user `u<i>` for each `(i, own)` to `urls[i % len]` and subscribes it; `own` is
/// the publisher index of a publisher.
async fn connect_all(
    common: &Common,
    channel: &str,
    clients: Vec<(usize, Option<usize>)>,
    errors: &Arc<AtomicUsize>,
) -> anyhow::Result<Vec<Peer>> {
    let urls = common.urls();
    let subscribe = serde_json::to_string(&ChannelReq { channel })?;
    let results: Vec<anyhow::Result<Peer>> = stream::iter(clients)
        .map(|(i, own)| {
            let url = urls[i % urls.len()].clone();
            let user = if own.is_some() {
                "u0".to_owned()
            } else {
                format!("u{i}")
            };
            let token = common.token(&user);
            let (errors, subscribe) = (errors.clone(), subscribe.clone());
            async move {
                let recv: Shared = Arc::default();
                let back = Arc::new((AtomicUsize::new(0), Notify::new()));
                let on_event = recorder(recv.clone(), own, back.clone(), errors);
                let target = Target {
                    namespace: "/insforge".to_owned(),
                    query: format!("&project={PROJECT}"),
                };
                let auth = json!({ "token": token? });
                let mut conn = Conn::connect_to(&url, &target, &auth, on_event)
                    .await
                    .with_context(|| format!("connecting {user} to {url}/insforge"))?;
                conn.call("realtime:subscribe", &subscribe)
                    .await
                    .with_context(|| format!("{user} subscribing"))?;
                Ok(Peer { conn, recv, back })
            }
        })
        .buffered(common.connect_concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Publishes `n` messages keeping at most `window` of them not yet delivered back; returns how
/// many were not published (the window stayed shut for `STALL`).
async fn publish_windowed(
    peer: &Peer,
    me: usize,
    channel: &str,
    n: usize,
    window: usize,
    deadline: Instant,
) -> anyhow::Result<usize> {
    let mut sent = 0;
    while sent < n && Instant::now() < deadline {
        if sent.saturating_sub(peer.back.0.load(Ordering::Relaxed)) < window.max(1) {
            let msg = Publish {
                channel,
                event: EVENT,
                payload: Stamp {
                    sent_us: now_us(),
                    publisher: me,
                },
            };
            peer.conn
                .emit("realtime:publish", &serde_json::to_string(&msg)?);
            sent += 1;
            continue;
        }
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(STALL);
        if tokio::time::timeout(wait, peer.back.1.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    Ok(n - sent)
}

pub async fn fanout(
    common: Common,
    api_key: Option<String>,
    channel: String,
    subscribers: usize,
    publishers: usize,
    messages: usize,
    inflight: usize,
) -> anyhow::Result<()> {
    if publishers == 0 || messages == 0 {
        bail!("--publishers and --messages must be positive");
    }
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        for url in common.urls() {
            define(&url, &key, &channel).await?;
        }
    }
    let errors = Arc::new(AtomicUsize::new(0));
    let subs: Vec<_> = (1..=subscribers).map(|i| (i, None)).collect();
    let receivers = connect_all(&common, &channel, subs, &errors).await?;
    let pubs: Vec<_> = (0..publishers).map(|k| (k, Some(k))).collect();
    let pubs = connect_all(&common, &channel, pubs, &errors).await?;
    // Presence events of the subscribes settle before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = now_us();
    let per = messages / publishers;
    let tasks: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(k, peer)| {
            let n = per + usize::from(k < messages % publishers);
            let channel = channel.clone();
            tokio::spawn(async move {
                let r = publish_windowed(&peer, k, &channel, n, inflight, deadline).await;
                (peer, r)
            })
        })
        .collect();
    let mut unsent = 0;
    let mut pubs = Vec::new();
    for t in tasks {
        let (peer, r) = t.await?;
        unsent += r?;
        pubs.push(peer);
    }
    let shared: Vec<Shared> = receivers.iter().map(|p| p.recv.clone()).collect();
    let stats = collect(&shared, messages * subscribers, first, deadline).await;
    let mut out = json!({
        "mode": "inflight", "inflight": inflight, "sendFailures": unsent,
        "serverErrors": errors.load(Ordering::Relaxed),
    });
    merge(&mut out, stats);
    out["subscribers"] = json!(subscribers);
    out["publishers"] = json!(publishers);
    out["messages"] = json!(messages);
    out["nodes"] = json!(common.urls().len());
    emit(out, "insforge-fanout", &common.label);
    for p in receivers.iter().chain(&pubs) {
        p.conn.close();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_in_deliveries_only() {
        let d = r#"["bench",{"sentUs":12345,"pub":2,"meta":{"channel":"realtime:fan","timestamp":"2026-01-01T00:00:00.000Z"}}]"#;
        assert_eq!(stamp_in(d), Some((12345, 2)));
        let meta_first = r#"["bench",{"meta":{"senderType":"user"},"pub":0,"sentUs":7}]"#;
        assert_eq!(stamp_in(meta_first), Some((7, 0)));
        assert_eq!(stamp_in(r#"["presence:join",{"sentUs":1,"pub":0}]"#), None);
        assert_eq!(stamp_in(r#"["bench",{"pub":0}]"#), None);
    }

    #[test]
    fn publishes_are_the_wire_shape() -> anyhow::Result<()> {
        let msg = Publish {
            channel: "fan",
            event: EVENT,
            payload: Stamp {
                sent_us: 5,
                publisher: 1,
            },
        };
        assert_eq!(
            serde_json::to_string(&msg)?,
            r#"{"channel":"fan","event":"bench","payload":{"sentUs":5,"pub":1}}"#
        );
        Ok(())
    }
}
