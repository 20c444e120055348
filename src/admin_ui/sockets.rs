//! Sockets as the Admin UI shows them: `{ id, clientId, transport, nsp, data, handshake,
//! rooms }`. A socket of this node is described in full; one of another node (from the
//! adapter's `fetch_sockets`) has its id, namespace and rooms only. Handshake headers are
//! limited to what the server keeps of a Socket.IO request (src/handshake.rs), so no
//! credential is ever shown.

use std::str::FromStr;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;

use switchboard_handlers::core::time::Timestamp;

use super::{AdminUi, NAMESPACE};

/// Sockets listed in `all_sockets`: the list is sent in one event.
pub const MAX_LISTED: usize = 10_000;
/// Other nodes' sockets whose rooms are asked for when listing (one adapter request each).
const MAX_REMOTE_ROOMS: usize = 1_000;
/// Adapter requests for rooms in flight at once.
const ROOM_REQUESTS: usize = 16;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    address: String,
    headers: Map<String, Value>,
    query: Map<String, Value>,
    issued: i64,
    secure: bool,
    time: String,
    url: String,
    xdomain: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminSocket {
    id: String,
    client_id: String,
    transport: &'static str,
    nsp: String,
    data: Map<String, Value>,
    handshake: Handshake,
    rooms: Vec<String>,
}

fn bare(id: String, nsp: String, rooms: Vec<String>) -> AdminSocket {
    let now = Timestamp::now();
    AdminSocket {
        client_id: id.chars().take(12).collect(),
        id,
        transport: "websocket",
        nsp,
        data: Map::new(),
        handshake: Handshake {
            address: String::new(),
            headers: Map::new(),
            query: Map::new(),
            issued: now.millis(),
            secure: false,
            time: now.to_iso(),
            url: String::new(),
            xdomain: false,
        },
        rooms,
    }
}

/// A socket of this node, described as fully as the server knows it.
pub async fn local<A: Adapter>(ui: &AdminUi<A>, nsp: &str, conn: &str) -> AdminSocket {
    let rooms = if nsp == NAMESPACE {
        Vec::new()
    } else {
        ui.hub.topics_of(conn)
    };
    let mut out = bare(conn.to_owned(), nsp.to_owned(), rooms);
    let Ok(sid) = Sid::from_str(conn) else {
        return out;
    };
    // A socket enters socketioxide's namespace after its connect middleware, which is where
    // the hub opened it: give it a moment.
    let mut socket = None;
    for _ in 0..5 {
        socket = ui.io.of(nsp).and_then(|n| n.get_socket(sid));
        if socket.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let Some(s) = socket else {
        return out;
    };
    let parts = s.req_parts();
    out.transport = match s.transport_type() {
        socketioxide::TransportType::Websocket => "websocket",
        socketioxide::TransportType::Polling => "polling",
    };
    for (name, value) in &parts.headers {
        if name == axum::http::header::SEC_WEBSOCKET_KEY {
            continue;
        }
        if let Ok(v) = value.to_str() {
            out.handshake
                .headers
                .insert(name.as_str().to_owned(), Value::String(v.to_owned()));
        }
    }
    out.handshake.address = ["x-forwarded-for", "x-real-ip"]
        .iter()
        .find_map(|h| parts.headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or_default()
        .to_owned();
    out.handshake.url = parts.uri.to_string();
    if let Some(q) = parts.uri.query() {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.handshake
                .query
                .insert(k.to_owned(), Value::String(v.to_owned()));
        }
    }
    out.handshake.secure = parts.uri.scheme_str() == Some("https");
    out
}

/// Every Socket.IO socket of the cluster (at most [`MAX_LISTED`]).
pub async fn all<A: Adapter>(ui: &Arc<AdminUi<A>>) -> Vec<AdminSocket> {
    let mut out = Vec::new();
    let mut remote_asked = 0;
    for nsp in ["/", "/insforge", NAMESPACE] {
        let Some(ops) = ui.io.of(nsp) else {
            continue;
        };
        let found = match ops.fetch_sockets().await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, nsp, "Admin UI: sockets not listed");
                continue;
            }
        };
        let mut remote = Vec::new();
        for r in found {
            if out.len() >= MAX_LISTED {
                break;
            }
            let id = r.data().id.to_string();
            if ui
                .io
                .of(nsp)
                .and_then(|n| n.get_socket(r.data().id))
                .is_some()
            {
                out.push(local(ui, nsp, &id).await);
            } else if remote_asked < MAX_REMOTE_ROOMS {
                remote_asked += 1;
                remote.push(r);
            } else {
                out.push(bare(id, nsp.to_owned(), Vec::new()));
            }
        }
        let described: Vec<AdminSocket> = futures_util::stream::iter(remote)
            .map(|r| async move {
                let rooms = r
                    .rooms()
                    .await
                    .map(|rs| rs.into_iter().map(|x| x.to_string()).collect())
                    .unwrap_or_default();
                bare(r.data().id.to_string(), nsp.to_owned(), rooms)
            })
            .buffer_unordered(ROOM_REQUESTS)
            .collect()
            .await;
        out.extend(described);
    }
    out.truncate(MAX_LISTED);
    out
}
