//! What InsForge clients see: delivered messages (`{...payload, meta}`), presence events,
//! subscribe acknowledgements and `realtime:error`, with the SDK's error codes. Also how a
//! payload published on the same hub channel by another protocol becomes an InsForge message.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use switchboard_handlers::core::realtime_channels::SenderType;
use switchboard_handlers::core::time::Timestamp;

/// The error codes the SDK knows (shared-schemas' realtime codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthorized,
    NotSubscribed,
    InvalidEvent,
    /// A client went over one of its bounds (rate, channels per socket).
    RateLimited,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "REALTIME_UNAUTHORIZED",
            Code::NotSubscribed => "REALTIME_NOT_SUBSCRIBED",
            Code::InvalidEvent => "REALTIME_INVALID_EVENT",
            Code::RateLimited => "RATE_LIMITED",
            Code::Internal => "INTERNAL_ERROR",
        }
    }
}

/// A refusal of a client event: its code and the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta<'a> {
    pub channel: &'a str,
    pub message_id: &'a str,
    pub sender_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<&'a str>,
    pub timestamp: String,
}

/// Event names no message is delivered under: the protocol's own (the SDK would take them for
/// presence or errors) and Socket.IO's reserved ones.
const RESERVED_PREFIXES: [&str; 2] = ["realtime:", "presence:"];
const RESERVED_EVENTS: [&str; 7] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    "notification",
];

pub fn is_reserved_event(event: &str) -> bool {
    RESERVED_EVENTS.contains(&event) || RESERVED_PREFIXES.iter().any(|p| event.starts_with(p))
}

/// The room-style channel name upstream puts in a delivered message's `meta.channel`.
pub fn room_channel(name: &str) -> String {
    format!("realtime:{name}")
}

/// A delivered message: the payload's fields at top level, `meta` added (a payload key named
/// `meta` is overwritten, as upstream does).
pub fn delivered(payload: &Map<String, Value>, meta: &Meta<'_>) -> Value {
    let mut out = payload.clone();
    out.insert(
        "meta".to_owned(),
        serde_json::to_value(meta).unwrap_or(Value::Null),
    );
    Value::Object(out)
}

/// Whether a hub payload is an InsForge message already (published through this front end):
/// an object whose `meta` carries a `messageId` and a `senderType`.
pub fn is_insforge_message(payload: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        meta: Option<MetaProbe<'a>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MetaProbe<'a> {
        #[serde(borrow)]
        message_id: Option<&'a str>,
        #[serde(borrow)]
        sender_type: Option<&'a str>,
    }
    serde_json::from_str::<Probe<'_>>(payload.get())
        .ok()
        .and_then(|p| p.meta)
        .is_some_and(|m| m.message_id.is_some() && m.sender_type.is_some())
}

/// Another protocol's event on the channel (a Pusher trigger or client event, a Supabase
/// broadcast, a REST emit) as an InsForge message: a Pusher envelope's `data` is unwrapped
/// (parsed when it is JSON text), an object's fields go to the top level, anything else sits
/// under `data`; `meta` says `system` with a fresh message id. Not stored.
pub fn foreign(channel: &str, payload: &RawValue) -> Value {
    // Only an object can be an envelope (serde would also read a struct from an array).
    let value: Value = if payload.get().trim_start().starts_with('{') {
        serde_json::from_str(crate::supabase::wire::user_payload(payload).get())
    } else {
        serde_json::from_str(payload.get())
    }
    .unwrap_or(Value::Null);
    let fields = match value {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("data".to_owned(), other);
            m
        }
    };
    let id = uuid::Uuid::new_v4().to_string();
    let room = room_channel(channel);
    delivered(
        &fields,
        &Meta {
            channel: &room,
            message_id: &id,
            sender_type: SenderType::System.as_str(),
            sender_id: None,
            timestamp: Timestamp::now().to_iso(),
        },
    )
}

pub fn ack_ok(channel: &str, members: Vec<Value>) -> Value {
    json!({"ok": true, "channel": channel, "presence": {"members": members}})
}

pub fn ack_refused(channel: &str, r: &Refusal) -> Value {
    json!({"ok": false, "channel": channel, "error": {"code": r.code.as_str(), "message": r.message}})
}

pub fn error_event(channel: Option<&str>, r: &Refusal) -> Value {
    let mut v = json!({"code": r.code.as_str(), "message": r.message});
    if let (Some(c), Value::Object(m)) = (channel, &mut v) {
        m.insert("channel".to_owned(), Value::String(c.to_owned()));
    }
    v
}

/// `presence:join` / `presence:leave`: `meta.channel` is the bare channel (the SDK keys its
/// members map by it).
pub fn presence_event(channel: &str, member: Value) -> Value {
    json!({
        "member": member,
        "meta": {
            "channel": channel,
            "senderType": SenderType::System.as_str(),
            "messageId": uuid::Uuid::new_v4().to_string(),
            "timestamp": Timestamp::now().to_iso(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).expect("raw")
    }

    #[test]
    fn payload_fields_go_top_level_and_meta_is_overwritten() {
        let Value::Object(p) = json!({"status": "shipped", "meta": "mine"}) else {
            unreachable!()
        };
        let v = delivered(
            &p,
            &Meta {
                channel: "realtime:order:1",
                message_id: "m1",
                sender_type: "user",
                sender_id: Some("u1"),
                timestamp: "2026-01-01T00:00:00.000Z".into(),
            },
        );
        assert_eq!(v["status"], "shipped");
        assert_eq!(v["meta"]["channel"], "realtime:order:1");
        assert_eq!(v["meta"]["senderId"], "u1");
        assert!(is_insforge_message(&raw(v)));
    }

    #[test]
    fn foreign_payloads_become_system_messages() {
        // A Pusher envelope: its JSON text data is parsed.
        let v = foreign("room", &raw(json!({"data": "{\"x\":1}", "user_id": "u"})));
        assert_eq!(v["x"], 1);
        assert_eq!(v["meta"]["channel"], "realtime:room");
        assert_eq!(v["meta"]["senderType"], "system");
        assert!(v["meta"].get("senderId").is_none());
        assert_eq!(v["meta"]["messageId"].as_str().map(str::len), Some(36));
        // A plain object (a Supabase broadcast, a REST emit).
        let v = foreign("room", &raw(json!({"text": "hi"})));
        assert_eq!(v["text"], "hi");
        // Anything else sits under `data`.
        let v = foreign("room", &raw(json!([1, 2])));
        assert_eq!(v["data"], json!([1, 2]));
        assert!(!is_insforge_message(&raw(json!({"meta": {"x": 1}}))));
    }

    #[test]
    fn error_shapes() {
        let r = Refusal::new(Code::NotSubscribed, "Must subscribe");
        assert_eq!(
            error_event(Some("c"), &r),
            json!({"code": "REALTIME_NOT_SUBSCRIBED", "message": "Must subscribe", "channel": "c"})
        );
        assert_eq!(ack_refused("c", &r)["ok"], false);
        assert_eq!(ack_ok("c", vec![])["presence"]["members"], json!([]));
    }
}
