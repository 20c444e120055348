//! The AsyncAPI 3 document: the Socket.IO main namespace — one channel, a `receive` operation
//! per client event (its ack is the operation's reply) and a `send` operation per server event —
//! and the other protocols' channels (`protocols.rs`).
//! Operations are the server's view: it receives client events and sends server events.

use serde_json::{Map, Value, json};

use super::schemas::{Components, Direction};
use super::{ClientEventVisitor, CustomBroadcastPayload, Described, visit_all};
use crate::core::error::ErrorBody;
use crate::core::events::ServerEventVisitor;

/// AsyncAPI keys allow `[A-Za-z0-9._-]`; event names use `:` as their separator.
fn key(event: &str) -> String {
    event.replace(':', ".")
}

struct Builder {
    components: Components,
    messages: Map<String, Value>,
    operations: Map<String, Value>,
}

impl Builder {
    fn message(&mut self, id: String, name: &str, title: String, payload: Value) -> Value {
        self.messages.insert(
            id.clone(),
            json!({ "name": name, "title": title, "payload": payload }),
        );
        json!({ "$ref": format!("#/channels/main/messages/{id}") })
    }
}

impl ClientEventVisitor for Builder {
    fn event<Req: Described, Ack: Described>(&mut self, name: &'static str) {
        let request = self.components.schema::<Req>(Direction::Read);
        let data = self.components.schema::<Ack>(Direction::Written);
        let error = self.components.schema::<ErrorBody>(Direction::Written);
        let ack = json!({
            "oneOf": [
                {
                    "type": "object",
                    "properties": { "ok": { "const": true }, "data": data },
                    "required": ["ok", "data"],
                },
                {
                    "type": "object",
                    "properties": { "ok": { "const": false }, "error": error },
                    "required": ["ok", "error"],
                },
            ]
        });
        let k = key(name);
        let req_ref = self.message(
            k.clone(),
            name,
            format!("{name} (client → server)"),
            request,
        );
        let ack_ref = self.message(format!("{k}.ack"), name, format!("{name} ack"), ack);
        self.operations.insert(
            format!("receive.{k}"),
            json!({
                "action": "receive",
                "channel": { "$ref": "#/channels/main" },
                "summary": format!("The client emits {name}; the ack callback gets the reply."),
                "messages": [req_ref],
                "reply": { "channel": { "$ref": "#/channels/main" }, "messages": [ack_ref] },
            }),
        );
    }
}

impl ServerEventVisitor for Builder {
    fn event<P: ts_rs::TS + schemars::JsonSchema + 'static>(&mut self, name: &'static str) {
        let payload = self.components.schema::<P>(Direction::Written);
        let k = key(name);
        let id = format!("server.{k}");
        let msg = self.message(id, name, format!("{name} (server → client)"), payload);
        self.operations.insert(
            format!("send.{k}"),
            json!({
                "action": "send",
                "channel": { "$ref": "#/channels/main" },
                "summary": format!("The server emits {name}."),
                "messages": [msg],
            }),
        );
    }
}

/// The whole document.
pub fn document() -> Result<Value, String> {
    let mut b = Builder {
        components: Components::default(),
        messages: Map::new(),
        operations: Map::new(),
    };
    visit_all(&mut b);
    let payload = b
        .components
        .schema::<CustomBroadcastPayload>(Direction::Written);
    let msg = b.message(
        "server.custom.broadcast".to_owned(),
        "custom:<event>",
        "custom:<event> (server → client, from custom:broadcast)".to_owned(),
        payload,
    );
    b.operations.insert(
        "send.custom.broadcast".to_owned(),
        json!({
            "action": "send",
            "channel": { "$ref": "#/channels/main" },
            "summary": "The server emits custom:<event> for a custom:broadcast; the event name is the sender's.",
            "messages": [msg],
        }),
    );
    let protocols = super::protocols::protocols();
    b.operations.extend(protocols.operations);
    let schemas = b.components.into_definitions()?;
    let refs: Map<String, Value> = b
        .messages
        .keys()
        .map(|id| {
            (
                id.clone(),
                json!({ "$ref": format!("#/components/messages/{id}") }),
            )
        })
        .collect();
    let mut servers = Map::new();
    servers.insert(
        "local".to_owned(),
        json!({
            "host": "localhost:3000",
            "protocol": "ws",
            "pathname": "/socket.io/",
            "description": "Engine.IO 4 (WebSocket or long-polling). Handshake `auth`: `{ token: <JWT> }` or `{ apiKey: <key> }`.",
            "security": [{ "$ref": "#/components/securitySchemes/handshakeAuth" }],
        }),
    );
    servers.extend(protocols.servers);
    let mut channels = Map::new();
    channels.insert(
        "main".to_owned(),
        json!({
            "address": "/",
            "title": "Main namespace",
            "servers": [{ "$ref": "#/servers/local" }],
            "messages": refs,
        }),
    );
    channels.extend(protocols.channels);
    let mut messages = b.messages;
    messages.extend(protocols.messages);
    Ok(json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard realtime API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Socket.IO v4 events of the main namespace `/`. Every client event takes an optional ack callback, answered `{ ok: true, data }` or `{ ok: false, error: { code, message } }`; a failure is also emitted to the sender as `error` (`integration:error` for integration events). docs/protocol.md describes each event. The other channels are the Pusher, Supabase Realtime, InsForge and HTTP pub/sub protocols Switchboard serves over the same channels (docs/protocols/).",
        },
        "defaultContentType": "application/json",
        "servers": servers,
        "channels": channels,
        "operations": b.operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {
                "handshakeAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Sent in the Socket.IO handshake's `auth` object: `{ token }` (a JWT), or `{ apiKey }` for servers. A refused handshake gets `connect_error` with message `UNAUTHORIZED`.",
                }
            },
        },
    }))
}
