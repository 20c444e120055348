//! The HTTP pub/sub scenarios (docs/protocols/pubsub.md), mirroring the Socket.IO `fanout` and
//! `idle` ones against Switchboard's own Socket.IO front end: `sse-fanout` (one publisher over
//! HTTP keeping `--inflight` publishes unanswered, each on its own keep-alive connection; N
//! Server-Sent Events subscribers of one channel) and `sse-idle` (RSS per idle SSE
//! subscriber). Subscribers authenticate with `Authorization: Bearer <user token>` (members of
//! project `bench`, the plate). Each subscriber is one plain HTTP/1.1 connection read by a
//! small de-chunker and an SSE parser that keeps only `data:` lines; the message carries its
//! send time (`{"t":<µs>}`), so latency is publish → frame read. Same JSON line as the
//! Socket.IO scenarios.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::now_us;
use crate::pusher::{host_port, read_response};
use crate::{Common, PROJECT, Shared, collect, emit, merge, percentiles, round3, rss_kb};

const CHANNEL: &str = "fan";
/// Answer to a subscribe or a publish.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest response head, chunk-size line and event this tool accepts.
const MAX_HEAD: usize = 16 * 1024;
const MAX_SIZE_LINE: usize = 64;
const MAX_EVENT: usize = 1024 * 1024;
/// Users u1..=u1000 are members of the plate (`loadgen seed`); idle connections reuse them.
const SEEDED_USERS: usize = 1000;

/// Opens `GET path` as an SSE subscriber; returns the stream after a `200` chunked head, with
/// the body bytes read along with the head.
async fn open(base: &str, path: &str, token: &str) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let addr = host_port(base)?;
    let mut s = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            bail!("response head too long");
        }
        buf.reserve(2048);
        if s.read_buf(&mut buf).await? == 0 {
            bail!("closed before the response head");
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?;
    if head.split_whitespace().nth(1) != Some("200") {
        let body = String::from_utf8_lossy(&buf[head_end..]);
        bail!(
            "subscribe answered {} {body}",
            head.lines().next().unwrap_or("")
        );
    }
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("expected a chunked event stream: {head}");
    }
    buf.drain(..head_end);
    Ok((s, buf))
}

/// A chunked body, undone incrementally: `raw` as read, `body` the chunks' contents.
#[derive(Default)]
struct Dechunk {
    raw: Vec<u8>,
    /// Bytes of the current chunk still to come.
    left: usize,
    /// Bytes of the CRLF after a chunk still to skip.
    crlf: usize,
    body: Vec<u8>,
}

impl Dechunk {
    /// Moves the chunk contents `raw` holds into `body`; true at the last (empty) chunk.
    fn feed(&mut self) -> anyhow::Result<bool> {
        let mut pos = 0;
        let ended = loop {
            let rest = &self.raw[pos..];
            if self.crlf > 0 {
                let n = self.crlf.min(rest.len());
                pos += n;
                self.crlf -= n;
                if self.crlf > 0 {
                    break false;
                }
                continue;
            }
            if self.left > 0 {
                let n = self.left.min(rest.len());
                if n == 0 {
                    break false;
                }
                self.body.extend_from_slice(&rest[..n]);
                pos += n;
                self.left -= n;
                if self.left == 0 {
                    self.crlf = 2;
                }
                continue;
            }
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                if rest.len() > MAX_SIZE_LINE {
                    bail!("chunk size line too long");
                }
                break false;
            };
            let line = std::str::from_utf8(&rest[..end]).unwrap_or("");
            let line = line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(line, 16).map_err(|_| anyhow!("bad chunk size {line:?}"))?;
            if size > MAX_EVENT {
                bail!("chunk too large");
            }
            pos += end + 2;
            if size == 0 {
                break true;
            }
            self.left = size;
        };
        self.raw.drain(..pos);
        if self.body.len() > MAX_EVENT {
            bail!("event too large");
        }
        Ok(ended)
    }

    /// Calls `on_data` with every `data:` line of each complete event in `body`.
    fn events(&mut self, mut on_data: impl FnMut(&str)) {
        let mut pos = 0;
        while let Some(end) = self.body[pos..].windows(2).position(|w| w == b"\n\n") {
            let event = &self.body[pos..pos + end];
            for line in event.split(|&b| b == b'\n') {
                if let Some(data) = line.strip_prefix(b"data:")
                    && let Ok(text) = std::str::from_utf8(data)
                {
                    on_data(text.strip_prefix(' ').unwrap_or(text));
                }
            }
            pos += end + 2;
        }
        self.body.drain(..pos);
    }
}

/// The send time a frame's message carries (`"message":{"t":<µs>}`).
fn stamp_in(data: &str) -> Option<u64> {
    let at = data.find("\"t\":")? + "\"t\":".len();
    let digits = data[at..].bytes().take_while(u8::is_ascii_digit).count();
    data[at..at + digits].parse().ok()
}

/// Reads one subscriber's stream until it ends, fails or `deadline`, recording every message.
async fn read_events(
    mut s: TcpStream,
    first: Vec<u8>,
    into: Shared,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut d = Dechunk {
        raw: first,
        ..Dechunk::default()
    };
    loop {
        if d.feed()? {
            return Ok(());
        }
        d.events(|data| {
            if let Some(sent) = stamp_in(data) {
                let now = now_us();
                let mut r = into.lock().unwrap_or_else(|p| p.into_inner());
                r.latencies
                    .push(u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX));
                r.last_us = now;
            }
        });
        d.raw.reserve(8192);
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read_buf(&mut d.raw)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}

/// Opens `count` subscriptions (`path_of(i)`, user `u{1 + i % 1000}`), spread over the URLs,
/// a bounded number at once.
async fn open_all(
    common: &Common,
    count: usize,
    path_of: impl Fn(usize) -> String,
) -> anyhow::Result<Vec<(TcpStream, Vec<u8>)>> {
    let urls = common.urls();
    let results: Vec<anyhow::Result<(TcpStream, Vec<u8>)>> = stream::iter(0..count)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            let token = common.token(&format!("u{}", 1 + i % SEEDED_USERS));
            let path = path_of(i);
            async move {
                tokio::time::timeout(TIMEOUT, open(&url, &path, &token?))
                    .await
                    .map_err(|_| anyhow!("no answer to {path} within {TIMEOUT:?}"))?
                    .with_context(|| format!("subscribing {path} at {url}"))
            }
        })
        .buffered(common.connect_concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// One publish on a keep-alive connection (opened when missing); its status.
async fn publish_one(
    conn: &mut Option<TcpStream>,
    addr: &str,
    token: &str,
    buf: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    if conn.is_none() {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else {
        bail!("no connection");
    };
    let body = format!(r#"{{"message":{{"t":{}}}}}"#, now_us());
    let req = format!(
        "POST /{PROJECT}/pubsub/{CHANNEL}/publish HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let (status, close) = read_response(s, buf).await?;
    if close {
        *conn = None;
    }
    Ok(status)
}

/// `messages` publishes from `inflight` keep-alive connections, each one request at a time;
/// the answer latencies (µs) of the accepted ones and the count of failures.
async fn publish_windowed(
    base: &str,
    token: &str,
    messages: usize,
    inflight: usize,
    deadline: Instant,
) -> anyhow::Result<(Vec<u32>, usize)> {
    let addr = host_port(base)?;
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..inflight.max(1))
        .map(|_| {
            let (next, addr, token) = (next.clone(), addr.clone(), token.to_owned());
            tokio::spawn(async move {
                let (mut conn, mut buf) = (None, Vec::with_capacity(1024));
                let (mut lat, mut failed) = (Vec::new(), 0usize);
                while next.fetch_add(1, Ordering::Relaxed) < messages {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        failed += 1;
                        continue;
                    }
                    let t = now_us();
                    let sent = tokio::time::timeout(
                        left.min(TIMEOUT),
                        publish_one(&mut conn, &addr, &token, &mut buf),
                    )
                    .await;
                    match sent {
                        Ok(Ok(200)) => {
                            lat.push(u32::try_from(now_us().saturating_sub(t)).unwrap_or(u32::MAX))
                        }
                        _ => {
                            conn = None;
                            failed += 1;
                        }
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let (mut lat, mut failed) = (Vec::with_capacity(messages), 0);
    for w in workers {
        let (l, f) = w.await?;
        lat.extend(l);
        failed += f;
    }
    Ok((lat, failed))
}

pub async fn fanout(
    common: Common,
    subscribers: usize,
    messages: usize,
    inflight: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(common.max_secs);
    let path = format!("/{PROJECT}/pubsub/{CHANNEL}/subscribe");
    let streams = open_all(&common, subscribers, |_| path.clone()).await?;
    let mut shared: Vec<Shared> = Vec::with_capacity(subscribers);
    let mut readers = Vec::with_capacity(subscribers);
    for (s, first) in streams {
        let into = Shared::default();
        shared.push(into.clone());
        readers.push(tokio::spawn(read_events(s, first, into, deadline)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let urls = common.urls();
    let token = common.token("u0")?;
    let first = now_us();
    let (mut lat, failed) =
        publish_windowed(&urls[0], &token, messages, inflight, deadline).await?;
    let mut out = json!({ "mode": "inflight", "inflight": inflight, "sendFailures": failed });
    out["ackP99Ms"] = percentiles(&mut lat)["p99Ms"].clone();
    let stats = collect(&shared, messages * subscribers, first, deadline).await;
    merge(&mut out, stats);
    let ended = readers.iter().filter(|r| r.is_finished()).count();
    out["streamsEnded"] = json!(ended);
    out["subscribers"] = json!(subscribers);
    out["messages"] = json!(messages);
    out["nodes"] = json!(urls.len());
    emit(out, "sse-fanout", &common.label);
    for r in &readers {
        r.abort();
    }
    Ok(())
}

/// `connections` idle SSE subscribers, each of a channel of its own; the server's RSS per
/// connection.
pub async fn idle(common: Common, connections: usize, pid: u32, settle: u64) -> anyhow::Result<()> {
    let (before, _) = rss_kb(pid)?;
    let started = Instant::now();
    let streams = open_all(&common, connections, |i| {
        format!("/{PROJECT}/pubsub/idle-{i}/subscribe")
    })
    .await?;
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let (after, hwm) = rss_kb(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / connections.max(1) as f64;
    emit(
        json!({
            "connections": streams.len(),
            "connectS": round3(connect_s),
            "rssBeforeKb": before,
            "rssAfterKb": after,
            "hwmKb": hwm,
            "bytesPerConn": per.round(),
        }),
        "sse-idle",
        &common.label,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_and_events_are_undone_across_reads() {
        let parts = [
            "id: 1\nevent: message\ndata: {\"",
            "message\":{\"t\":42}}\n\n",
            ": keepalive\n\n",
        ];
        let mut wire = Vec::new();
        for p in parts {
            wire.extend_from_slice(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes());
        }
        wire.extend_from_slice(b"0\r\n");
        let mut d = Dechunk::default();
        let mut seen = Vec::new();
        let mut ended = false;
        // Byte by byte: every split point is exercised.
        for b in &wire {
            d.raw.push(*b);
            ended = d.feed().expect("well-formed");
            d.events(|data| seen.push(data.to_owned()));
            if ended {
                break;
            }
        }
        assert!(ended);
        assert_eq!(seen, vec![r#"{"message":{"t":42}}"#]);
        assert_eq!(stamp_in(&seen[0]), Some(42));
    }

    #[test]
    fn a_bad_chunk_size_is_refused() {
        let mut d = Dechunk {
            raw: b"zz\r\n".to_vec(),
            ..Dechunk::default()
        };
        assert!(d.feed().is_err());
    }
}
