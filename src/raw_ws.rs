//! The raw JSON WebSocket front end (`RAW_WS=true`, `GET /raw-ws`): the smallest second
//! protocol over the hub, for diagnostics and for the test suite's proof that a non-Socket.IO
//! front end joins the same topics and receives the same broadcasts, on one node and across
//! nodes. It has no session code of its own: the core opens, admits and closes its connections.
//!
//! Wire: connect with `?token=<jwt>` or `?apiKey=<key>`. The server sends
//! `{"type":"ready","conn":…}` or `{"type":"refused","error":…}` (then closes). Requests are
//! `{"op":"chat:join","data":{"chatId","projectId"}}`, `{"op":"project:subscribe","data":
//! {"projectId"}}` and `{"op":"leave","data":{"chatId"|"projectId"}}`, each answered by
//! `{"type":"reply","op":…,"ok":true}` or `{…,"ok":false,"error":{"code","message"}}`.
//! Broadcasts arrive as `{"type":"event","event":…,"data":…}`, framed once per broadcast.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::chat::{self, JoinChat};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::hub::{Delivery, FrontEnd, FrontEndId, Hub};
use switchboard_handlers::core::ids::{ChatId, ProjectId};
use switchboard_handlers::core::ports::Credentials;
use switchboard_handlers::core::project;
use switchboard_handlers::core::session::{self, Session};
use switchboard_handlers::core::topic::Topic;

/// Frames queued for one connection; a connection that falls this far behind is closed.
const QUEUE: usize = 256;
/// Largest request frame.
const MAX_FRAME: usize = 16 * 1024;

/// The front end's connections on this node: where their frames go.
pub struct RawWs {
    conns: Mutex<HashMap<String, mpsc::Sender<Utf8Bytes>>>,
    /// Connection ids are `raw.<node>.<n>`: unique across the cluster, since a broadcast's
    /// `except` travels to every node.
    node: u32,
    next: AtomicU64,
}

impl Default for RawWs {
    fn default() -> Self {
        RawWs {
            conns: Mutex::default(),
            node: rand::random(),
            next: AtomicU64::new(0),
        }
    }
}

impl RawWs {
    fn queue(&self, conn: &str, frame: Utf8Bytes) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = conns.get(conn) else {
            return;
        };
        if tx.try_send(frame).is_err() {
            // Full (a slow reader) or closed: dropping the sender ends its writer, which closes
            // the socket; nobody else waits for it.
            tracing::warn!(conn, "raw-ws connection too slow; closing it");
            conns.remove(conn);
        }
    }
}

fn event_frame(event: &str, payload: &RawValue) -> Option<Utf8Bytes> {
    let event = serde_json::to_string(event).ok()?;
    Some(Utf8Bytes::from(format!(
        r#"{{"type":"event","event":{event},"data":{}}}"#,
        payload.get()
    )))
}

#[async_trait]
impl FrontEnd for RawWs {
    fn protocol(&self) -> &'static str {
        "raw-ws"
    }

    async fn deliver(&self, hub: &Hub, d: &Delivery<'_>) -> Result<(), AppError> {
        let members = hub.members_in(d);
        if members.is_empty() {
            return Ok(());
        }
        let Some(frame) = event_frame(d.event, d.payload) else {
            return Ok(());
        };
        for conn in &members {
            self.queue(conn, frame.clone());
        }
        Ok(())
    }

    fn send(&self, conn: &str, event: &str, payload: &Value) {
        if let Some(frame) = serde_json::value::to_raw_value(payload)
            .ok()
            .and_then(|p| event_frame(event, &p))
        {
            self.queue(conn, frame);
        }
    }
}

#[derive(Clone)]
struct RawState {
    core: Arc<Core>,
    front_end: Arc<RawWs>,
    id: FrontEndId,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectQuery {
    token: Option<String>,
    api_key: Option<String>,
}

/// Registers the front end in the hub and returns its route.
pub fn router(core: Arc<Core>) -> Result<Router, AppError> {
    let front_end = Arc::new(RawWs::default());
    let id = core.hub.register(front_end.clone())?;
    Ok(Router::new()
        .route("/raw-ws", get(upgrade))
        .with_state(RawState {
            core,
            front_end,
            id,
        }))
}

async fn upgrade(
    State(st): State<RawState>,
    Query(q): Query<ConnectQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    // tungstenite's defaults (a 128 KiB read buffer, 128 KiB of write batching) cost every idle
    // connection ~140 KB; frames larger than the read buffer are read in several steps.
    ws.read_buffer_size(crate::ws_limits::READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| run(st, q, socket))
}

async fn run(st: RawState, q: ConnectQuery, socket: WebSocket) {
    let conn = format!(
        "raw.{}.{}",
        st.front_end.node,
        st.front_end.next.fetch_add(1, Ordering::Relaxed)
    );
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(QUEUE);
    // Registered before the session opens, so nothing published to the user's room while
    // opening is missed.
    st.front_end
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(conn.clone(), tx.clone());
    let (mut sink, mut stream) = socket.split();
    let creds = Credentials {
        token: q.token,
        api_key: q.api_key,
    };
    let session = match session::open(&st.core, st.id, conn.clone(), &creds).await {
        Ok(s) => s,
        Err(refused) => {
            forget(&st, &conn);
            let frame = json!({"type": "refused", "error": refused.to_string()}).to_string();
            let _ = sink.send(Message::Text(frame.into())).await;
            let _ = sink.close().await;
            return;
        }
    };
    let ready = json!({"type": "ready", "conn": conn}).to_string();
    let _ = tx.try_send(ready.into());
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::Text(frame)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    drop(tx);
    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let reply = handle(&st.core, &session, text.as_str()).await;
        st.front_end.queue(&conn, reply.to_string().into());
    }
    forget(&st, &conn);
    writer.abort();
    session::close(&st.core, &session).await;
}

fn forget(st: &RawState, conn: &str) {
    st.front_end
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(conn);
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", content = "data")]
enum Request {
    #[serde(rename = "chat:join")]
    ChatJoin(JoinChat),
    #[serde(rename = "project:subscribe")]
    ProjectSubscribe(project::ProjectOnly),
    #[serde(rename = "leave")]
    Leave(Leave),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Leave {
    chat_id: Option<ChatId>,
    project_id: Option<ProjectId>,
}

async fn handle(core: &Core, session: &Session, text: &str) -> Value {
    let op = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("op").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let res = match serde_json::from_str::<Request>(text) {
        Ok(req) => act(core, session, req).await,
        Err(e) => Err(AppError::invalid(e.to_string())),
    };
    match res {
        Ok(()) => json!({"type": "reply", "op": op, "ok": true}),
        Err(e) => json!({
            "type": "reply",
            "op": op,
            "ok": false,
            "error": {"code": e.code().as_str(), "message": e.public_message()},
        }),
    }
}

async fn act(core: &Core, session: &Session, req: Request) -> Result<(), AppError> {
    match req {
        Request::ChatJoin(req) => {
            core.hub
                .can_join(&session.conn, &Topic::Chat(req.chat_id.clone()))?;
            let joined = chat::join(core, &session.actor, req).await?;
            core.hub.join(
                &session.conn,
                &Topic::Chat(joined.participant.chat.id.clone()),
            )
        }
        Request::ProjectSubscribe(req) => {
            let member = project::subscribe(core, &session.actor, &req.project_id).await?;
            core.hub
                .join(&session.conn, &Topic::Project(member.project_id().clone()))
        }
        Request::Leave(l) => {
            if let Some(c) = l.chat_id {
                core.hub.leave(&session.conn, &Topic::Chat(c));
            }
            if let Some(p) = l.project_id {
                core.hub.leave(&session.conn, &Topic::Project(p));
            }
            Ok(())
        }
    }
}
