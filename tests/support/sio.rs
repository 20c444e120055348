//! A minimal Socket.IO v5 / Engine.IO v4 client over WebSocket: enough for tests (connect with an
//! auth object, emit with or without ack, receive events). Text packets only. Every wait is
//! bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Acks = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Client {
    out: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedReceiver<(String, Value)>,
    buffered: VecDeque<(String, Value)>,
    acks: Acks,
    next_ack: u64,
}

#[derive(Debug)]
pub enum ConnectError {
    /// CONNECT_ERROR from the server: its `message`.
    Refused(String),
    Transport(String),
}

impl Client {
    /// `base` is `http://host:port`.
    pub async fn connect(base: &str, auth: Value) -> Result<Client, ConnectError> {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http://", "ws://", 1)
        );
        let fut = tokio_tungstenite::connect_async(url);
        let (ws, _) = tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .map_err(|_| ConnectError::Transport("timeout".into()))?
            .map_err(|e| ConnectError::Transport(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();

        let mut next_text = async || -> Result<String, ConnectError> {
            loop {
                let msg = tokio::time::timeout(Duration::from_secs(5), stream.next())
                    .await
                    .map_err(|_| ConnectError::Transport("timeout".into()))?;
                match msg {
                    Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ConnectError::Transport(e.to_string())),
                    None => return Err(ConnectError::Transport("closed".into())),
                }
            }
        };
        let open = next_text().await?;
        if !open.starts_with('0') {
            return Err(ConnectError::Transport(format!(
                "unexpected open packet {open}"
            )));
        }
        sink.send(Message::Text(format!("40{auth}").into()))
            .await
            .map_err(|e| ConnectError::Transport(e.to_string()))?;
        // Engine.IO pings may arrive before the Socket.IO CONNECT reply.
        let mut reply = next_text().await?;
        while reply == "2" {
            sink.send(Message::Text("3".into()))
                .await
                .map_err(|e| ConnectError::Transport(e.to_string()))?;
            reply = next_text().await?;
        }
        if let Some(err) = reply.strip_prefix("44") {
            let v: Value = serde_json::from_str(err).unwrap_or(Value::Null);
            let msg = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            return Err(ConnectError::Refused(msg));
        }
        if !reply.starts_with("40") {
            return Err(ConnectError::Transport(format!(
                "unexpected connect reply {reply}"
            )));
        }

        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let acks: Acks = Arc::default();
        let reader_acks = acks.clone();
        // Weak, so dropping the Client ends the writer task, which closes the WebSocket.
        let pong = out_tx.downgrade();
        tokio::spawn(async move {
            while let Some(s) = out_rx.recv().await {
                if sink.send(Message::Text(s.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(t) = msg else { continue };
                let t = t.to_string();
                if t == "2" {
                    if let Some(pong) = pong.upgrade() {
                        let _ = pong.send("3".into());
                    }
                } else if let Some(rest) = t.strip_prefix("42") {
                    if let Ok(Value::Array(mut parts)) = serde_json::from_str::<Value>(rest)
                        && !parts.is_empty()
                    {
                        let name = parts.remove(0).as_str().unwrap_or("").to_owned();
                        let data = parts.into_iter().next().unwrap_or(Value::Null);
                        let _ = ev_tx.send((name, data));
                    }
                } else if let Some(rest) = t.strip_prefix("43") {
                    let split = rest.find('[').unwrap_or(rest.len());
                    let (id, body) = rest.split_at(split);
                    if let Ok(id) = id.parse::<u64>() {
                        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                        let first = v.get(0).cloned().unwrap_or(Value::Null);
                        if let Some(tx) = reader_acks.lock().await.remove(&id) {
                            let _ = tx.send(first);
                        }
                    }
                } else if t.starts_with("41") || t.starts_with('1') {
                    let _ = ev_tx.send(("disconnect".into(), Value::Null));
                }
            }
            let _ = ev_tx.send(("disconnect".into(), Value::Null));
        });
        Ok(Client {
            out: out_tx,
            events: ev_rx,
            buffered: VecDeque::new(),
            acks,
            next_ack: 0,
        })
    }

    pub async fn connect_user(base: &str, token: &str) -> Client {
        Client::connect(base, json!({ "token": token }))
            .await
            .expect("socket connects")
    }

    pub fn emit(&self, event: &str, data: Value) {
        let _ = self.out.send(format!("42{}", json!([event, data])));
    }

    /// Like `emit_with_ack`, but `None` when no ack comes in time (e.g. the node died).
    pub async fn try_emit_with_ack(
        &mut self,
        event: &str,
        data: Value,
        within: Duration,
    ) -> Option<Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        let (tx, rx) = oneshot::channel();
        self.acks.lock().await.insert(id, tx);
        let _ = self.out.send(format!("42{id}{}", json!([event, data])));
        tokio::time::timeout(within, rx).await.ok()?.ok()
    }

    /// Every buffered or immediately available `event` payload, without waiting.
    pub fn drain(&mut self, event: &str) -> Vec<Value> {
        while let Ok(e) = self.events.try_recv() {
            self.buffered.push_back(e);
        }
        let (hit, rest): (Vec<_>, Vec<_>) = self.buffered.drain(..).partition(|(n, _)| n == event);
        self.buffered = rest.into();
        hit.into_iter().map(|(_, v)| v).collect()
    }

    pub async fn emit_with_ack(&mut self, event: &str, data: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let (tx, rx) = oneshot::channel();
        self.acks.lock().await.insert(id, tx);
        let _ = self.out.send(format!("42{id}{}", json!([event, data])));
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap_or_else(|_| panic!("no ack for {event} within 5 s"))
            .expect("ack channel")
    }

    /// The next `event`, skipping (and keeping) others.
    pub async fn expect(&mut self, event: &str, within: Duration) -> Value {
        if let Some(pos) = self.buffered.iter().position(|(n, _)| n == event) {
            return self
                .buffered
                .remove(pos)
                .map(|(_, v)| v)
                .unwrap_or(Value::Null);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some((n, v))) if n == event => return v,
                Ok(Some(other)) => self.buffered.push_back(other),
                Ok(None) | Err(_) => {
                    panic!("no {event:?} within {within:?}; got {:?}", self.buffered)
                }
            }
        }
    }

    /// Like `expect`, but `None` instead of a panic when it does not come.
    pub async fn try_expect(&mut self, event: &str, within: Duration) -> Option<Value> {
        if let Some(pos) = self.buffered.iter().position(|(n, _)| n == event) {
            return self.buffered.remove(pos).map(|(_, v)| v);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some((n, v))) if n == event => return Some(v),
                Ok(Some(other)) => self.buffered.push_back(other),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Asserts no `event` arrives within `within`.
    pub async fn expect_none(&mut self, event: &str, within: Duration) {
        if let Some((_, v)) = self.buffered.iter().find(|(n, _)| n == event) {
            panic!("unexpected {event:?}: {v}");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some((n, v))) if n == event => panic!("unexpected {event:?}: {v}"),
                Ok(Some(other)) => self.buffered.push_back(other),
                Ok(None) | Err(_) => return,
            }
        }
    }
}
