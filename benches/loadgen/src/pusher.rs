//! A lean Pusher Channels protocol 7 client for load (over `ws.rs`, like the Socket.IO one in
//! `client.rs`): the connection handshake (`pusher:connection_established`), subscriptions
//! (private ones signed here with the app secret, as an app's auth endpoint would), client
//! events, `pusher:ping` answered; and the signed HTTP API's `POST /apps/{id}/events` over
//! keep-alive HTTP/1.1 connections of its own, as a Pusher server library sends it. Data frames
//! go to a callback as raw JSON text (no parse on the delivery path). Every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use hmac::{Hmac, Mac};
use md5::Digest as _;
use serde::Deserialize;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::client::{OnEvent, now_us};
use crate::ws::{self, Msg};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The query pusher-js 8.6.0 connects with.
const WS_QUERY: &str = "protocol=7&client=js&version=8.6.0&flash=false";

/// What the app's credentials are: `/app/{key}` for clients, `/apps/{id}` for the HTTP API.
#[derive(Clone)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn hmac_hex(secret: &str, msg: &str) -> String {
    // HMAC takes a key of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(msg.as_bytes());
    hex(&mac.finalize().into_bytes())
}

impl App {
    /// A private channel's `auth`: `key:hex(HMAC-SHA256(secret, "socket_id:channel"))`.
    pub fn channel_auth(&self, socket_id: &str, channel: &str) -> String {
        format!(
            "{}:{}",
            self.key,
            hmac_hex(&self.secret, &format!("{socket_id}:{channel}"))
        )
    }

    /// The signed query of `POST /apps/{id}/events` carrying `body` at `timestamp` (Unix s):
    /// `auth_key`, `auth_timestamp`, `auth_version`, `body_md5` sorted by name, signed over
    /// `"POST\n<path>\n<those params>"`, then `auth_signature`.
    pub fn events_query(&self, body: &[u8], timestamp: u64) -> String {
        let params = format!(
            "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={}",
            self.key,
            hex(&md5::Md5::digest(body))
        );
        let to_sign = format!("POST\n{}\n{params}", self.events_path());
        format!(
            "{params}&auth_signature={}",
            hmac_hex(&self.secret, &to_sign)
        )
    }

    pub fn events_path(&self) -> String {
        format!("/apps/{}/events", self.id)
    }
}

/// The data of a benchmark event: a JSON object text carrying its send time (`now_us`).
pub fn stamped_data() -> String {
    format!("{{\"sbt\":{}}}", now_us())
}

/// The send time in a delivered frame's `data` (`{"sbt":N}`, escaped inside the string or not).
pub fn stamp_in(frame: &str) -> Option<u64> {
    let at = frame.find("sbt")? + 3;
    let rest = frame[at..].trim_start_matches(['\\', '"', ':']);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// What the reader reports about subscriptions: `Ok(channel)` when one succeeded, `Err(why)`
/// for a refusal.
type Control = Result<String, String>;

/// The connection's writing half, shared by its sender and its reader (which answers pings):
/// a frame is written by the task that makes it, with no hop through a writer task, since the
/// load tool shares the machine with the server it measures and a task wake-up per message is a
/// large part of its cost.
type SharedWriter = Arc<tokio::sync::Mutex<ws::Writer>>;

pub struct Conn {
    writer: SharedWriter,
    control: mpsc::UnboundedReceiver<Control>,
    pub socket_id: String,
}

#[derive(Deserialize)]
struct Frame {
    event: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// `data` of a server frame: Pusher sends a JSON string holding JSON; accept an object too.
fn data_object(data: Option<serde_json::Value>) -> serde_json::Value {
    match data {
        Some(serde_json::Value::String(s)) => serde_json::from_str(&s).unwrap_or_default(),
        Some(v) => v,
        None => serde_json::Value::Null,
    }
}

impl Conn {
    /// Connects to `base` (`http://host:port`) as a client of `key`. `errors` counts the
    /// `pusher:error` frames the server sends later (rate limits, refusals).
    pub async fn connect(
        base: &str,
        key: &str,
        on_event: OnEvent,
        errors: Arc<AtomicUsize>,
    ) -> anyhow::Result<Conn> {
        let addr = host_port(base)?;
        let path = format!("/app/{key}?{WS_QUERY}");
        let (mut reader, writer) = tokio::time::timeout(TIMEOUT, ws::connect(&addr, &path))
            .await
            .context("websocket connect timed out")??;
        let first = loop {
            match tokio::time::timeout(TIMEOUT, reader.next()).await {
                Err(_) => bail!("no pusher:connection_established within {TIMEOUT:?}"),
                Ok(Ok((Msg::Text(t), _))) => break t.to_owned(),
                Ok(Ok((Msg::Ping(p), _))) => writer.pong(&p).await?,
                Ok(Ok((Msg::Binary, _))) => continue,
                Ok(Ok((Msg::Close, _))) => bail!("closed during the handshake"),
                Ok(Err(e)) => return Err(e.into()),
            }
        };
        let frame: Frame =
            serde_json::from_str(&first).with_context(|| format!("first frame {first}"))?;
        if frame.event != "pusher:connection_established" {
            bail!("unexpected first frame {first}");
        }
        let socket_id = data_object(frame.data)
            .get("socket_id")
            .and_then(|s| s.as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no socket_id in {first}"))?;

        let writer: SharedWriter = Arc::new(tokio::sync::Mutex::new(writer));
        let (control_tx, control) = mpsc::unbounded_channel();
        let replies = writer.clone();
        let mut on_event = on_event;
        tokio::spawn(async move {
            let origin = crate::client::epoch_unix_us();
            loop {
                let (msg, arrival) = match reader.next().await {
                    Ok((Msg::Text(t), at)) => (t, at),
                    Ok((Msg::Ping(p), _)) => {
                        let _ = replies.lock().await.pong(&p).await;
                        continue;
                    }
                    Ok((Msg::Binary, _)) => continue,
                    Ok((Msg::Close, _)) | Err(_) => break,
                };
                // Protocol frames are `pusher:…` / `pusher_internal:…`; inside an escaped data
                // string this pattern cannot occur (its quotes would be `\"`).
                if !msg.contains("\"event\":\"pusher") {
                    on_event(msg, arrival.map(|unix| unix.saturating_sub(origin)));
                    continue;
                }
                let Ok(frame) = serde_json::from_str::<Frame>(msg) else {
                    continue;
                };
                match frame.event.as_str() {
                    "pusher:ping" => {
                        let pong = r#"{"event":"pusher:pong","data":"{}"}"#;
                        let _ = replies.lock().await.text(pong).await;
                    }
                    "pusher_internal:subscription_succeeded" => {
                        let _ = control_tx.send(Ok(frame.channel.unwrap_or_default()));
                    }
                    "pusher:subscription_error" => {
                        let _ = control_tx.send(Err(format!("subscription refused: {msg}")));
                    }
                    "pusher:error" => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let _ = control_tx.send(Err(format!("server error: {msg}")));
                    }
                    _ => {}
                }
            }
        });
        Ok(Conn {
            writer,
            control,
            socket_id,
        })
    }

    /// Subscribes to `channel` (signing it when it is private) and waits for the success.
    pub async fn subscribe(&mut self, app: &App, channel: &str) -> anyhow::Result<()> {
        let data = if channel.starts_with("private-") {
            serde_json::json!({ "channel": channel, "auth": app.channel_auth(&self.socket_id, channel) })
        } else {
            serde_json::json!({ "channel": channel })
        };
        let frame = serde_json::json!({ "event": "pusher:subscribe", "data": data });
        self.writer
            .lock()
            .await
            .text(&frame.to_string())
            .await
            .map_err(|e| anyhow!("connection closed: {e}"))?;
        loop {
            let reply = tokio::time::timeout(TIMEOUT, self.control.recv())
                .await
                .with_context(|| format!("subscribing to {channel}: no answer in {TIMEOUT:?}"))?
                .ok_or_else(|| anyhow!("subscribing to {channel}: connection closed"))?;
            match reply {
                Ok(c) if c == channel => return Ok(()),
                Ok(_) => {}
                Err(why) => bail!("subscribing to {channel}: {why}"),
            }
        }
    }

    /// Sends a client event (`client-…`) on a channel this connection is subscribed to.
    /// A failed write shows as a lost message.
    pub async fn client_event(&self, channel: &str, event: &str, data: &str) {
        self.client_events(channel, event, std::iter::once(data.to_owned()))
            .await;
    }

    /// Several client events in one write (a failed write shows as lost messages).
    pub async fn client_events(
        &self,
        channel: &str,
        event: &str,
        data: impl Iterator<Item = String>,
    ) {
        // `data` as a JSON string, the way the Pusher wire carries data.
        let frames: Vec<String> = data
            .map(|d| {
                serde_json::json!({ "event": event, "channel": channel, "data": d }).to_string()
            })
            .collect();
        let _ = self.writer.lock().await.texts(&frames).await;
    }

    pub fn close(&self) {
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let _ = writer.lock().await.close().await;
        });
    }
}

pub(crate) fn host_port(base: &str) -> anyhow::Result<String> {
    Ok(base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs are supported, not {base}"))?
        .trim_end_matches('/')
        .to_owned())
}

/// One keep-alive HTTP/1.1 connection to the HTTP API, one request at a time (as a server
/// library's agent uses each of its sockets). Reconnects after the server closes it.
pub struct Http {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

/// Longest response head or body this tool accepts (the API answers `{}`).
const MAX_RESPONSE: usize = 1024 * 1024;

impl Http {
    pub fn new(base: &str) -> anyhow::Result<Http> {
        Ok(Http {
            addr: host_port(base)?,
            stream: None,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Triggers `event` with `data` on `channels` (`socket_id` excluded); returns the status.
    pub async fn trigger(
        &mut self,
        app: &App,
        channels: &[&str],
        event: &str,
        data: &str,
        socket_id: Option<&str>,
    ) -> anyhow::Result<u16> {
        let mut body = serde_json::json!({ "name": event, "data": data, "channels": channels });
        if let Some(s) = socket_id {
            body["socket_id"] = serde_json::json!(s);
        }
        let body = body.to_string();
        let unix = std::time::UNIX_EPOCH
            .elapsed()
            .unwrap_or_default()
            .as_secs();
        let path = format!(
            "{}?{}",
            app.events_path(),
            app.events_query(body.as_bytes(), unix)
        );
        self.request(&path, "", body.as_bytes()).await
    }

    /// POSTs `body` (JSON) to `path` with `headers` (`Name: value\r\n` lines); the status.
    pub async fn request(&mut self, path: &str, headers: &str, body: &[u8]) -> anyhow::Result<u16> {
        let result = tokio::time::timeout(TIMEOUT, self.post(path, headers, body)).await;
        match result {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                bail!("no HTTP answer within {TIMEOUT:?}")
            }
        }
    }

    async fn post(&mut self, path: &str, headers: &str, body: &[u8]) -> anyhow::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("no connection");
        };
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             {headers}Content-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        stream.write_all(&req).await?;
        let (status, close) = read_response(stream, &mut self.buf).await?;
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

/// Reads one response (head, then a `Content-Length` or chunked body); returns its status —
/// 400 when a 200's body carries an `"error"` (Soketi on this uWebSockets.js build answers
/// its refusals with status 200 and `{"error":…,"code":401}`) — and whether the server closes
/// the connection after it.
pub(crate) async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> anyhow::Result<(u16, bool)> {
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(s, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line in {head:?}"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    buf.drain(..head_end);
    let mut body_error = false;
    let has_error = |b: &[u8]| b.windows(7).any(|w| w == b"\"error\"");
    if chunked {
        // Chunks until the zero-length one and its blank line.
        loop {
            let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
                read_more(s, buf).await?;
                continue;
            };
            let size_text = std::str::from_utf8(&buf[..line_end]).unwrap_or("");
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| anyhow!("bad chunk size {size_text:?}"))?;
            if size > MAX_RESPONSE {
                bail!("chunk too large");
            }
            let need = line_end + 2 + size + 2;
            while buf.len() < need {
                read_more(s, buf).await?;
            }
            body_error |= has_error(&buf[line_end + 2..need - 2]);
            buf.drain(..need);
            if size == 0 {
                break;
            }
        }
    } else if let Some(n) = length {
        if n > MAX_RESPONSE {
            bail!("response too large");
        }
        while buf.len() < n {
            read_more(s, buf).await?;
        }
        body_error = has_error(&buf[..n]);
    } else {
        // Neither: the body ends when the server closes.
        close = true;
    }
    if status == 200 && body_error {
        return Ok((400, close));
    }
    Ok((status, close))
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    if buf.len() > MAX_RESPONSE {
        bail!("response too large");
    }
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await?;
    if n == 0 {
        bail!("connection closed mid-response");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App {
            id: "42".into(),
            key: "app-key".into(),
            secret: "app-secret".into(),
        }
    }

    /// ../shared/COMPAT-PROTOCOLS.md A.11's vector.
    #[test]
    fn http_api_signature_matches_the_vector() {
        let body = br#"{"name":"new-message","data":"{\"text\":\"hi\"}","channels":["chat"]}"#;
        assert_eq!(
            app().events_query(body, 1_700_000_000),
            "auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0\
             &body_md5=b6931b6c59835e026a8472b59a166336\
             &auth_signature=31a2e6410fc33559568dc831766758ff2e26d9eeaa484b5710c7569b218dee06"
        );
    }

    /// A.6's private-channel vector.
    #[test]
    fn channel_auth_matches_the_vector() {
        assert_eq!(
            app().channel_auth("1234.5678", "private-chat"),
            "app-key:56f901ee21a52ef3dd91b1c155900190e056142b3b5016e873c27db1a4607719"
        );
    }

    #[test]
    fn stamps_are_found_escaped_or_not() {
        let f = r#"{"event":"bench","channel":"fan","data":"{\"sbt\":12345}"}"#;
        assert_eq!(stamp_in(f), Some(12345));
        assert_eq!(stamp_in(r#"{"data":{"sbt":7}}"#), Some(7));
        assert_eq!(stamp_in(r#"{"event":"x"}"#), None);
    }

    /// A scripted server: a `Content-Length` answer, then a chunked one with `Connection: close`.
    #[tokio::test]
    async fn responses_are_read_whole() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await?;
            let mut seen = Vec::new();
            for answer in [
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_owned(),
                "HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n{\"error\":\"x\",\"code\":1}"
                    .to_owned(),
                "HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\nConnection: close\
                 \r\n\r\n3\r\nbad\r\n0\r\n\r\n"
                    .to_owned(),
            ] {
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut b = [0u8; 512];
                    let n = s.read(&mut b).await?;
                    req.extend_from_slice(&b[..n]);
                }
                seen.push(String::from_utf8_lossy(&req).into_owned());
                s.write_all(answer.as_bytes()).await?;
            }
            anyhow::Ok(seen)
        });
        let mut http = Http::new(&base)?;
        let a = app();
        assert_eq!(http.trigger(&a, &["fan"], "e", "{}", None).await?, 200);
        assert_eq!(http.trigger(&a, &["fan"], "e", "{}", None).await?, 400);
        assert_eq!(
            http.trigger(&a, &["fan"], "e", "{}", Some("1.2")).await?,
            401
        );
        assert!(http.stream.is_none());
        let seen = server.await??;
        assert!(seen[0].starts_with("POST /apps/42/events?auth_key=app-key&auth_timestamp="));
        Ok(())
    }
}
