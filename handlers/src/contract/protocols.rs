//! The other protocols' channels in the AsyncAPI document: Pusher Channels (protocol 7),
//! Supabase Realtime (Phoenix channels), InsForge channels (Socket.IO namespace `/insforge`)
//! and HTTP pub/sub (Server-Sent Events). Their frames are the upstream protocols' own
//! (`../shared/COMPAT-PROTOCOLS.md`; docs/protocols/*.md say what Switchboard serves), so they
//! are described here by their wire shape rather than generated from Switchboard's types.

use serde_json::{Map, Value, json};

/// What the protocols add to the document.
pub struct Protocols {
    pub servers: Map<String, Value>,
    pub channels: Map<String, Value>,
    pub operations: Map<String, Value>,
    pub messages: Map<String, Value>,
}

/// One message: `(id, name, summary, payload schema)`.
type Msg = (&'static str, &'static str, &'static str, Value);

/// A Pusher frame: `{event, channel?, data}` with `data` a JSON text (or object).
fn pusher_frame(event: Value) -> Value {
    json!({
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": event,
            "channel": { "type": "string", "maxLength": 200 },
            "data": { "description": "JSON text (Pusher double-encodes), or an object", "type": ["string", "object", "null"] },
            "user_id": { "type": "string" },
        },
    })
}

/// A Phoenix frame of serializer 1.0.0: `{topic, event, payload, ref, join_ref}` (2.0.0 sends
/// the same five as an array `[join_ref, ref, topic, event, payload]`).
fn phoenix_frame(event: Value, payload: Value) -> Value {
    json!({
        "type": "object",
        "required": ["topic", "event", "payload"],
        "properties": {
            "topic": { "type": "string", "description": "`realtime:<channel>` or `phoenix`" },
            "event": event,
            "payload": payload,
            "ref": { "type": ["string", "null"] },
            "join_ref": { "type": ["string", "null"] },
        },
    })
}

fn object() -> Value {
    json!({ "type": "object" })
}

/// Adds `messages` to channel `channel` and one operation per message: `receive` for what the
/// server receives (`in`), `send` for what it sends.
fn add(p: &mut Protocols, channel: &str, inbound: &[Msg], outbound: &[Msg]) {
    let mut refs = Map::new();
    for (dir, list) in [("receive", inbound), ("send", outbound)] {
        for (id, name, summary, payload) in list {
            let id = format!("{channel}.{id}");
            p.messages.insert(
                id.clone(),
                json!({ "name": name, "title": name, "summary": summary, "payload": payload }),
            );
            refs.insert(
                id.clone(),
                json!({ "$ref": format!("#/components/messages/{id}") }),
            );
            p.operations.insert(
                format!("{dir}.{id}"),
                json!({
                    "action": dir,
                    "channel": { "$ref": format!("#/channels/{channel}") },
                    "summary": summary,
                    "messages": [{ "$ref": format!("#/channels/{channel}/messages/{id}") }],
                }),
            );
        }
    }
    if let Some(Value::Object(c)) = p.channels.get_mut(channel) {
        c.insert("messages".into(), Value::Object(refs));
    }
}

pub fn protocols() -> Protocols {
    let mut p = Protocols {
        servers: Map::new(),
        channels: Map::new(),
        operations: Map::new(),
        messages: Map::new(),
    };
    p.servers.insert("pusher".into(), json!({
        "host": "localhost:3000", "protocol": "ws", "pathname": "/app/{key}",
        "description": "Pusher Channels protocol 7 (pusher-js 8, Laravel Echo, the Apinator dialect): `?protocol=7&client=…&version=…`. docs/protocols/pusher.md.",
        "variables": { "key": { "description": "the app key" } },
    }));
    p.servers.insert("supabase".into(), json!({
        "host": "localhost:3000", "protocol": "ws", "pathname": "/realtime/v1/websocket",
        "description": "Supabase Realtime (Phoenix channels, `vsn=1.0.0|2.0.0`, `apikey`, `project`). docs/protocols/supabase.md.",
    }));
    p.servers.insert("insforge".into(), json!({
        "host": "localhost:3000", "protocol": "ws", "pathname": "/socket.io/",
        "description": "InsForge realtime channels: the Socket.IO namespace `/insforge` (handshake `auth`: `{apiKey}`, `{token: anon_…}` or `{token: <JWT>}`). docs/protocols/insforge.md.",
    }));
    p.servers.insert("pubsub".into(), json!({
        "host": "localhost:3000", "protocol": "http", "pathname": "/{project}/pubsub",
        "description": "HTTP publish with Server-Sent Events or WebSocket subscribers. docs/protocols/pubsub.md.",
        "variables": { "project": { "description": "the Switchboard project (the plate)" } },
    }));
    for (id, address, title, server) in [
        ("pusher", "{channel}", "Pusher channel", "pusher"),
        (
            "supabase",
            "realtime:{channel}",
            "Supabase Realtime channel",
            "supabase",
        ),
        ("insforge", "/insforge", "InsForge namespace", "insforge"),
        (
            "pubsub",
            "/{channel}/subscribe",
            "HTTP pub/sub channel (SSE)",
            "pubsub",
        ),
    ] {
        let mut c = json!({
            "address": address,
            "title": title,
            "description": "A protocol channel of a project: the same hub topic `Channel(project, name)` for every protocol (docs/protocol.md, \"Protocol channels\").",
            "servers": [{ "$ref": format!("#/servers/{server}") }],
        });
        if address.contains("{channel}") {
            c["parameters"] = json!({ "channel": { "description": "the channel name" } });
        }
        p.channels.insert(id.into(), c);
    }
    add(
        &mut p,
        "pusher",
        &[
            (
                "subscribe",
                "pusher:subscribe",
                "Subscribe; `data: {channel, auth?, channel_data?}` (private-, presence-, private-encrypted- need `auth`)",
                pusher_frame(json!({ "const": "pusher:subscribe" })),
            ),
            (
                "unsubscribe",
                "pusher:unsubscribe",
                "Unsubscribe; `data: {channel}`",
                pusher_frame(json!({ "const": "pusher:unsubscribe" })),
            ),
            (
                "signin",
                "pusher:signin",
                "User sign-in; `data: {auth, user_data}`",
                pusher_frame(json!({ "const": "pusher:signin" })),
            ),
            (
                "ping",
                "pusher:ping",
                "Keepalive",
                pusher_frame(json!({ "const": "pusher:ping" })),
            ),
            (
                "client-event",
                "client-*",
                "A client event on a private or presence channel, to its other subscribers",
                pusher_frame(json!({ "type": "string", "pattern": "^client-" })),
            ),
        ],
        &[
            (
                "connection-established",
                "pusher:connection_established",
                "`data: {socket_id, activity_timeout}`",
                pusher_frame(json!({ "const": "pusher:connection_established" })),
            ),
            (
                "subscription-succeeded",
                "pusher_internal:subscription_succeeded",
                "Subscribed (presence: `{presence: {ids, hash, count}}`)",
                pusher_frame(json!({ "const": "pusher_internal:subscription_succeeded" })),
            ),
            (
                "member-added",
                "pusher_internal:member_added",
                "A member joined a presence channel (any protocol's)",
                pusher_frame(json!({ "const": "pusher_internal:member_added" })),
            ),
            (
                "member-removed",
                "pusher_internal:member_removed",
                "A member left a presence channel",
                pusher_frame(json!({ "const": "pusher_internal:member_removed" })),
            ),
            (
                "error",
                "pusher:error",
                "`data: {code, message}` (4xxx codes)",
                pusher_frame(json!({ "const": "pusher:error" })),
            ),
            (
                "pong",
                "pusher:pong",
                "Keepalive answer",
                pusher_frame(json!({ "const": "pusher:pong" })),
            ),
            (
                "event",
                "<event>",
                "An event on a subscribed channel (from the HTTP API, a client event, or another protocol)",
                pusher_frame(json!({ "type": "string" })),
            ),
        ],
    );
    add(
        &mut p,
        "supabase",
        &[
            (
                "join",
                "phx_join",
                "Join with `{config: {broadcast, presence, postgres_changes, private}, access_token?}`",
                phoenix_frame(json!({ "const": "phx_join" }), object()),
            ),
            (
                "leave",
                "phx_leave",
                "Leave",
                phoenix_frame(json!({ "const": "phx_leave" }), object()),
            ),
            (
                "broadcast-in",
                "broadcast",
                "`{type: broadcast, event, payload}` to the channel (vsn 2.0.0 may send it as a binary frame)",
                phoenix_frame(json!({ "const": "broadcast" }), object()),
            ),
            (
                "presence-in",
                "presence",
                "`{type: presence, event: track|untrack, payload}`",
                phoenix_frame(json!({ "const": "presence" }), object()),
            ),
            (
                "access-token",
                "access_token",
                "A refreshed token `{access_token}`",
                phoenix_frame(json!({ "const": "access_token" }), object()),
            ),
            (
                "heartbeat",
                "heartbeat",
                "Keepalive on topic `phoenix`",
                phoenix_frame(json!({ "const": "heartbeat" }), object()),
            ),
        ],
        &[
            (
                "reply",
                "phx_reply",
                "`{status: ok|error, response}`",
                phoenix_frame(json!({ "const": "phx_reply" }), object()),
            ),
            (
                "broadcast-out",
                "broadcast",
                "A broadcast on the channel (any protocol's publish)",
                phoenix_frame(json!({ "const": "broadcast" }), object()),
            ),
            (
                "presence-state",
                "presence_state",
                "`{key: {metas: [...]}}` after a join with presence",
                phoenix_frame(json!({ "const": "presence_state" }), object()),
            ),
            (
                "presence-diff",
                "presence_diff",
                "`{joins, leaves}`",
                phoenix_frame(json!({ "const": "presence_diff" }), object()),
            ),
            (
                "postgres-changes",
                "postgres_changes",
                "`{ids, data: {schema, table, commit_timestamp, eventType, new, old, errors}}`",
                phoenix_frame(json!({ "const": "postgres_changes" }), object()),
            ),
            (
                "system",
                "system",
                "`{extension, status, message, channel}`",
                phoenix_frame(json!({ "const": "system" }), object()),
            ),
            (
                "close",
                "phx_close",
                "The server closed the channel",
                phoenix_frame(json!({ "const": "phx_close" }), object()),
            ),
        ],
    );
    let channel_arg = json!({ "type": "object", "required": ["channel"], "properties": { "channel": { "type": "string" } } });
    add(
        &mut p,
        "insforge",
        &[
            (
                "subscribe",
                "realtime:subscribe",
                "`{channel}`; ack `{ok, channel, presence: {members}}` or `{ok: false, error: {code, message}}`",
                channel_arg.clone(),
            ),
            (
                "unsubscribe",
                "realtime:unsubscribe",
                "`{channel}`",
                channel_arg.clone(),
            ),
            (
                "publish",
                "realtime:publish",
                "`{channel, event, payload}`",
                json!({ "type": "object", "required": ["channel", "event"], "properties": { "channel": { "type": "string" }, "event": { "type": "string" }, "payload": object() } }),
            ),
        ],
        &[
            (
                "event",
                "<event>",
                "A published message: its payload's fields plus `meta {channel, messageId, senderType, senderId?, timestamp}`",
                json!({ "type": "object", "required": ["meta"], "properties": { "meta": object() } }),
            ),
            (
                "presence-join",
                "presence:join",
                "`{channel, member}`",
                object(),
            ),
            (
                "presence-leave",
                "presence:leave",
                "`{channel, member}`",
                object(),
            ),
            (
                "error",
                "realtime:error",
                "`{channel?, code, message}`",
                object(),
            ),
        ],
    );
    add(
        &mut p,
        "pubsub",
        &[],
        &[(
            "message",
            "message",
            "An SSE `event: message` with `data: {channel, message}` (WebSocket subscribers get the same object as a text frame)",
            json!({ "type": "object", "required": ["channel", "message"], "properties": { "channel": { "type": "string" }, "message": {} } }),
        )],
    );
    p
}
