//! A lean Socket.IO v5 / Engine.IO 4 client over WebSocket (`ws.rs`), built for load: one reader
//! and one writer task per connection, events handed to a callback as raw JSON text (no parse
//! unless the callback wants one), acks reported with their arrival time. Every wait is bounded.

use std::sync::LazyLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use tokio::sync::mpsc;

use crate::ws::{self, Msg};

/// The clock every latency is measured on (one process sends and receives), and the Unix time
/// (µs) at its start, to bring the kernel's arrival stamps onto it.
static EPOCH: LazyLock<(Instant, u64)> = LazyLock::new(|| {
    let unix = UNIX_EPOCH.elapsed().unwrap_or_default().as_micros();
    (Instant::now(), u64::try_from(unix).unwrap_or(0))
});

/// Starts the latency clock (call before any connection exists).
pub fn start_clock() {
    let _ = *EPOCH;
}

/// The Unix time (µs) at which `now_us` read 0: subtracted from the kernel's arrival stamps.
pub fn epoch_unix_us() -> u64 {
    EPOCH.1
}

pub fn now_us() -> u64 {
    u64::try_from(EPOCH.0.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What a connection's callback sees: `data` is the packet's JSON array text; `arrival_us`,
/// when the kernel stamped the read, is when the data reached the socket (on `now_us`'s clock).
pub type OnEvent = Box<dyn FnMut(&str, Option<u64>) + Send + 'static>;

/// An ack: its id, when it arrived (`now_us`), and whether it said `ok: true`.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub id: u64,
    pub at_us: u64,
    pub ok: bool,
}

enum Out {
    Text(String),
    Pong(Vec<u8>),
    Close,
}

pub struct Conn {
    out: mpsc::UnboundedSender<Out>,
    pub acks: mpsc::UnboundedReceiver<Ack>,
    next_id: u64,
    /// `/ns,` for a namespace other than `/`, else empty.
    nsp: String,
}

/// Where a connection goes: its namespace and extra handshake query (`&k=v…`).
pub struct Target {
    pub namespace: String,
    pub query: String,
}

impl Target {
    pub fn main() -> Target {
        Target {
            namespace: "/".to_owned(),
            query: String::new(),
        }
    }

    fn nsp_prefix(&self) -> String {
        match self.namespace.as_str() {
            "" | "/" => String::new(),
            ns => format!("{ns},"),
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

impl Conn {
    /// Connects to `base` (`http://host:port`) with `{ token }` as the auth object.
    pub async fn connect(base: &str, token: &str, on_event: OnEvent) -> anyhow::Result<Conn> {
        let auth = serde_json::json!({ "token": token });
        Conn::connect_to(base, &Target::main(), &auth, on_event).await
    }

    /// Connects to `target`'s namespace on `base` with `auth` as the handshake's auth object.
    pub async fn connect_to(
        base: &str,
        target: &Target,
        auth: &serde_json::Value,
        on_event: OnEvent,
    ) -> anyhow::Result<Conn> {
        let addr = base
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// URLs are supported, not {base}"))?
            .trim_end_matches('/');
        let path = format!("/socket.io/?EIO=4&transport=websocket{}", target.query);
        // Packets of a namespace other than `/` carry it before their data: `42/ns,[…]`.
        let nsp = target.nsp_prefix();
        let open = ws::connect(addr, &path);
        let (mut reader, writer) = tokio::time::timeout(TIMEOUT, open)
            .await
            .context("websocket connect timed out")??;
        let next_text = async |reader: &mut ws::Reader| -> anyhow::Result<String> {
            loop {
                match tokio::time::timeout(TIMEOUT, reader.next()).await {
                    Err(_) => bail!("handshake timed out"),
                    Ok(Ok((Msg::Text(t), _))) => return Ok(t.to_owned()),
                    Ok(Ok((Msg::Ping(p), _))) => writer.pong(&p).await?,
                    Ok(Ok((Msg::Binary, _))) => continue,
                    Ok(Ok((Msg::Close, _))) => bail!("closed during handshake"),
                    Ok(Err(e)) => return Err(e.into()),
                }
            }
        };
        let open = next_text(&mut reader).await?;
        if !open.starts_with('0') {
            bail!("unexpected open packet {open}");
        }
        writer.text(&format!("40{nsp}{auth}")).await?;
        let (connected, refused) = (format!("40{nsp}"), format!("44{nsp}"));
        loop {
            let reply = next_text(&mut reader).await?;
            if reply == "2" {
                writer.text("3").await?;
            } else if reply.starts_with(&connected) {
                break;
            } else if let Some(err) = reply.strip_prefix(&refused) {
                bail!("connection refused: {err}");
            } else {
                return Err(anyhow!("unexpected packet before CONNECT: {reply}"));
            }
        }

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
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let pong = out.clone();
        let mut on_event = on_event;
        let (event_prefix, ack_prefix) = (format!("42{nsp}"), format!("43{nsp}"));
        tokio::spawn(async move {
            let origin = EPOCH.1;
            loop {
                let (msg, arrival) = match reader.next().await {
                    Ok((Msg::Text(t), at)) => (t, at),
                    Ok((Msg::Ping(p), _)) => {
                        let _ = pong.send(Out::Pong(p));
                        continue;
                    }
                    Ok((Msg::Binary, _)) => continue,
                    Ok((Msg::Close, _)) | Err(_) => break,
                };
                if msg == "2" {
                    let _ = pong.send(Out::Text("3".into()));
                } else if let Some(data) = msg.strip_prefix(event_prefix.as_str()) {
                    on_event(data, arrival.map(|unix| unix.saturating_sub(origin)));
                } else if let Some(rest) = msg.strip_prefix(ack_prefix.as_str()) {
                    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                    if let Ok(id) = rest[..digits].parse() {
                        let ok = rest[digits..].contains("\"ok\":true");
                        let _ = ack_tx.send(Ack {
                            id,
                            at_us: now_us(),
                            ok,
                        });
                    }
                }
            }
        });
        Ok(Conn {
            out,
            acks,
            next_id: 0,
            nsp,
        })
    }

    /// Emits `[event, payload]` asking for an ack; returns the ack id.
    pub fn emit_ack(&mut self, event: &str, payload: &str) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let _ = self.out.send(Out::Text(format!(
            "42{}{id}[\"{event}\",{payload}]",
            self.nsp
        )));
        id
    }

    /// Emits `[event, payload]` without an ack.
    pub fn emit(&self, event: &str, payload: &str) {
        let _ = self
            .out
            .send(Out::Text(format!("42{}[\"{event}\",{payload}]", self.nsp)));
    }

    /// Emits and waits for the ack (bounded); errors when it is not `ok`.
    pub async fn call(&mut self, event: &str, payload: &str) -> anyhow::Result<()> {
        let id = self.emit_ack(event, payload);
        loop {
            let ack = tokio::time::timeout(TIMEOUT, self.acks.recv())
                .await
                .with_context(|| format!("{event}: no ack within {TIMEOUT:?}"))?
                .ok_or_else(|| anyhow!("{event}: connection closed"))?;
            if ack.id == id {
                if !ack.ok {
                    bail!("{event} was refused");
                }
                return Ok(());
            }
        }
    }

    pub fn close(&self) {
        let _ = self.out.send(Out::Close);
    }
}

/// The send timestamp a message:new carries in its content (`"content":"t=<micros>"`).
pub fn stamp_in(data: &str) -> Option<u64> {
    let at = data.find("\"content\":\"t=")? + "\"content\":\"t=".len();
    let digits = data[at..].bytes().take_while(u8::is_ascii_digit).count();
    data[at..at + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_are_found() {
        let d = r#"["message:new",{"id":"x","content":"t=12345","type":"text"}]"#;
        assert_eq!(super::stamp_in(d), Some(12345));
        assert_eq!(super::stamp_in(r#"["x",{}]"#), None);
    }
}
