//! A lean Socket.IO v5 / Engine.IO 4 client over WebSocket, built for load: one reader and one
//! writer task per connection, events handed to a callback as raw JSON text (no parse unless the
//! callback wants one), acks reported with their arrival time. Every wait is bounded.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The clock every latency is measured on (one process sends and receives).
pub static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

pub fn now_us() -> u64 {
    u64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What a connection's callback sees: `data` is the packet's JSON array text.
pub type OnEvent = Box<dyn FnMut(&str) + Send + 'static>;

/// An ack: its id, when it arrived (`now_us`), and whether it said `ok: true`.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub id: u64,
    pub at_us: u64,
    pub ok: bool,
}

pub struct Conn {
    out: mpsc::UnboundedSender<Message>,
    pub acks: mpsc::UnboundedReceiver<Ack>,
    next_id: u64,
}

const TIMEOUT: Duration = Duration::from_secs(10);
const READ_BUFFER: usize = 8 * 1024;

impl Conn {
    /// Connects to `base` (`http://host:port`) with `{ token }` as the auth object.
    pub async fn connect(base: &str, token: &str, on_event: OnEvent) -> anyhow::Result<Conn> {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http://", "ws://", 1)
        );
        // Nagle off, as a browser's WebSocket has it: small frames must not wait for ACKs.
        // tungstenite zero-fills its whole read buffer before every read (128 KiB by default):
        // with that default the load tool spent half its CPU in memset, CPU the server under
        // test shares on one machine. Our frames are small; 8 KiB still takes a burst per read.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect)
            .await
            .context("websocket connect timed out")??;
        let (mut sink, mut stream) = ws.split();
        let mut next_text = async || -> anyhow::Result<String> {
            loop {
                match tokio::time::timeout(TIMEOUT, stream.next()).await {
                    Err(_) => bail!("handshake timed out"),
                    Ok(Some(Ok(Message::Text(t)))) => return Ok(t.to_string()),
                    Ok(Some(Ok(_))) => continue,
                    Ok(Some(Err(e))) => return Err(e.into()),
                    Ok(None) => bail!("closed during handshake"),
                }
            }
        };
        let open = next_text().await?;
        if !open.starts_with('0') {
            bail!("unexpected open packet {open}");
        }
        let auth = serde_json::json!({ "token": token });
        sink.send(Message::Text(format!("40{auth}").into())).await?;
        loop {
            let reply = next_text().await?;
            if reply == "2" {
                sink.send(Message::Text("3".into())).await?;
            } else if reply.starts_with("40") {
                break;
            } else if let Some(err) = reply.strip_prefix("44") {
                bail!("connection refused: {err}");
            } else {
                return Err(anyhow!("unexpected packet before CONNECT: {reply}"));
            }
        }

        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let close = matches!(m, Message::Close(_));
                if sink.send(m).await.is_err() || close {
                    break;
                }
            }
        });
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let pong = out.clone();
        let mut on_event = on_event;
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(t) = msg else { continue };
                let t = t.as_str();
                if t == "2" {
                    let _ = pong.send(Message::Text("3".into()));
                } else if let Some(data) = t.strip_prefix("42") {
                    on_event(data);
                } else if let Some(rest) = t.strip_prefix("43") {
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
        })
    }

    /// Emits `[event, payload]` asking for an ack; returns the ack id.
    pub fn emit_ack(&mut self, event: &str, payload: &str) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let _ = self.out.send(Message::Text(
            format!("42{id}[\"{event}\",{payload}]").into(),
        ));
        id
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
        let _ = self.out.send(Message::Close(None));
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
