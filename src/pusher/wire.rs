//! Pusher protocol 7 frames. Every frame is one JSON text message `{event, channel?, data?,
//! user_id?}`. Server to client, `data` is always a JSON-encoded string (a value that arrived as
//! a string is forwarded unchanged); client to server, pusher-js sends objects for its own
//! events and the Apinator client strings, so control data is accepted both ways.
//!
//! On the hub a channel event is the Pusher event name with the payload [`Envelope`]: the data
//! as a JSON string, and the sender's user id for client events on presence channels.
//!
//! The Apinator dialect (seed 002) is the same protocol with the `pusher:` and
//! `pusher_internal:` prefixes spelled `realtime:`: frames are built with Pusher's names and
//! renamed on the way out ([`event_out`]), and a client's `realtime:` events are read as
//! Pusher's ([`event_in`]).

use std::borrow::Cow;

use axum::extract::ws::Utf8Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::apps::Dialect;

/// The name a client of `dialect` sees for an event the server names as Pusher does.
pub fn event_out(dialect: Dialect, event: &str) -> Cow<'_, str> {
    let internal = event
        .strip_prefix("pusher_internal:")
        .or_else(|| event.strip_prefix("pusher:"));
    match (dialect, internal) {
        (Dialect::Apinator, Some(rest)) => Cow::Owned(format!("realtime:{rest}")),
        _ => Cow::Borrowed(event),
    }
}

/// The Pusher name of an event a client of `dialect` sent.
pub fn event_in(dialect: Dialect, event: &str) -> Cow<'_, str> {
    match (dialect, event.strip_prefix("realtime:")) {
        (Dialect::Apinator, Some(rest)) => Cow::Owned(format!("pusher:{rest}")),
        _ => Cow::Borrowed(event),
    }
}

/// A frame from a client.
#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    pub event: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
pub struct Subscribe {
    pub channel: String,
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub channel_data: Option<String>,
}

/// `pusher:signin`: the app backend's signature over `user_data`, a JSON object as a string.
#[derive(Debug, Deserialize)]
pub struct Signin {
    pub auth: String,
    pub user_data: String,
}

/// What a signed-in user's `user_data` must hold.
#[derive(Debug, Deserialize)]
pub struct UserData {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Unsubscribe {
    pub channel: String,
}

/// A presence member's `channel_data`, as the app's backend signed it.
#[derive(Debug, Deserialize)]
pub struct ChannelData {
    pub user_id: UserIdValue,
    #[serde(default)]
    pub user_info: Option<Box<RawValue>>,
}

/// Pusher documents `user_id` as a string; backends send numbers too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UserIdValue {
    Text(String),
    Number(serde_json::Number),
}

impl UserIdValue {
    pub fn into_string(self) -> String {
        match self {
            UserIdValue::Text(s) => s,
            UserIdValue::Number(n) => n.to_string(),
        }
    }
}

/// Control data (`pusher:subscribe` and the like): an object, or a string holding one.
pub fn control<T: DeserializeOwned>(data: Option<&RawValue>) -> Result<T, String> {
    let raw = data.ok_or("data is missing")?;
    let text = raw.get();
    if text.starts_with('"') {
        let inner: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
        serde_json::from_str(&inner).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// A channel event's payload on the hub, as published.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// A JSON string (the event's data as Pusher delivers it).
    pub data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
}

impl Envelope<'_> {
    pub fn encode(&self) -> Option<Box<RawValue>> {
        serde_json::value::to_raw_value(self).ok()
    }
}

/// A channel event's payload on the hub, as delivered (borrowed from the broadcast).
#[derive(Debug, Deserialize)]
pub struct Delivered<'a> {
    #[serde(borrow)]
    pub data: &'a RawValue,
    #[serde(borrow, default)]
    pub user_id: Option<Cow<'a, str>>,
}

/// `data` as Pusher sends it: a string stays as it is, any other JSON becomes the string of
/// its text.
pub fn as_string(data: &RawValue) -> Cow<'_, RawValue> {
    if data.get().starts_with('"') {
        Cow::Borrowed(data)
    } else {
        match serde_json::value::to_raw_value(data.get()) {
            Ok(s) => Cow::Owned(s),
            Err(_) => Cow::Borrowed(data),
        }
    }
}

/// The string length of a JSON string value (its text length for any other value).
pub fn data_len(data: &RawValue) -> usize {
    serde_json::from_str::<Cow<'_, str>>(data.get()).map_or(data.get().len(), |s| s.len())
}

#[derive(Serialize)]
struct Out<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

/// A frame whose `data` is already a JSON string, for a client of `dialect`.
pub fn frame(
    dialect: Dialect,
    event: &str,
    channel: Option<&str>,
    data: &RawValue,
    user_id: Option<&str>,
) -> Option<Utf8Bytes> {
    serde_json::to_string(&Out {
        event: &event_out(dialect, event),
        channel,
        data,
        user_id,
    })
    .ok()
    .map(Utf8Bytes::from)
}

/// A frame whose `data` is `value`, JSON-encoded into a string.
fn frame_of<T: Serialize>(
    dialect: Dialect,
    event: &str,
    channel: Option<&str>,
    value: &T,
) -> Utf8Bytes {
    let data = serde_json::to_string(value)
        .ok()
        .and_then(|text| serde_json::value::to_raw_value(&text).ok());
    match data.and_then(|d| frame(dialect, event, channel, &d, None)) {
        Some(f) => f,
        // Only our own typed values reach here, and they always encode.
        None => Utf8Bytes::from_static(r#"{"event":"pusher:error","data":"{}"}"#),
    }
}

pub fn connection_established(
    dialect: Dialect,
    socket_id: &str,
    activity_timeout: u64,
) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Established<'a> {
        socket_id: &'a str,
        activity_timeout: u64,
    }
    frame_of(
        dialect,
        "pusher:connection_established",
        None,
        &Established {
            socket_id,
            activity_timeout,
        },
    )
}

/// `pusher:signin_success` with the `user_data` string pusher-js parses.
pub fn signin_success(dialect: Dialect, user_data: &str) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Success<'a> {
        user_data: &'a str,
    }
    frame_of(
        dialect,
        "pusher:signin_success",
        None,
        &Success { user_data },
    )
}

pub fn pong(dialect: Dialect) -> Utf8Bytes {
    match dialect {
        Dialect::Pusher => Utf8Bytes::from_static(r#"{"event":"pusher:pong","data":"{}"}"#),
        Dialect::Apinator => Utf8Bytes::from_static(r#"{"event":"realtime:pong","data":"{}"}"#),
    }
}

/// `pusher:error` with a protocol code (`None`: a refusal without one).
pub fn error(dialect: Dialect, code: Option<u16>, message: &str) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Error<'a> {
        code: Option<u16>,
        message: &'a str,
    }
    frame_of(dialect, "pusher:error", None, &Error { code, message })
}

pub fn subscription_succeeded(dialect: Dialect, channel: &str, data: &impl Serialize) -> Utf8Bytes {
    frame_of(
        dialect,
        "pusher_internal:subscription_succeeded",
        Some(channel),
        data,
    )
}

/// Channel-scoped, so `channel.bind('pusher:subscription_error')` fires in pusher-js.
pub fn subscription_error(
    dialect: Dialect,
    channel: &str,
    kind: &str,
    error: &str,
    status: u16,
) -> Utf8Bytes {
    #[derive(Serialize)]
    struct SubscriptionError<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        error: &'a str,
        status: u16,
    }
    frame_of(
        dialect,
        "pusher:subscription_error",
        Some(channel),
        &SubscriptionError {
            kind,
            error,
            status,
        },
    )
}

/// A `member_added` data string as the Apinator client accepts it: it drops a member whose
/// `user_info` is not an object, so a member without info gets `{}`.
pub fn apinator_member_added(data: &RawValue) -> Option<Box<RawValue>> {
    #[derive(Deserialize, Serialize)]
    struct Added {
        user_id: String,
        #[serde(default)]
        user_info: serde_json::Value,
    }
    let text: Cow<'_, str> = serde_json::from_str(data.get()).ok()?;
    let mut added: Added = serde_json::from_str(&text).ok()?;
    if !added.user_info.is_object() {
        added.user_info = serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::to_string(&added)
        .ok()
        .and_then(|t| serde_json::value::to_raw_value(&t).ok())
}

/// The data of a `member_added` event: `{"user_id", "user_info"}`.
pub fn member_added(user_id: &str, info: &RawValue) -> Option<Box<RawValue>> {
    #[derive(Serialize)]
    struct Added<'a> {
        user_id: &'a str,
        user_info: &'a RawValue,
    }
    serde_json::to_string(&Added {
        user_id,
        user_info: info,
    })
    .ok()
    .and_then(|t| serde_json::value::to_raw_value(&t).ok())
}

pub fn member_removed(user_id: &str) -> Option<Box<RawValue>> {
    #[derive(Serialize)]
    struct Removed<'a> {
        user_id: &'a str,
    }
    serde_json::to_string(&Removed { user_id })
        .ok()
        .and_then(|t| serde_json::value::to_raw_value(&t).ok())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(f: &Utf8Bytes) -> Value {
        serde_json::from_str(f.as_str()).expect("json")
    }

    #[test]
    fn data_is_always_a_json_string() {
        let f = connection_established(Dialect::Pusher, "1.2", 120);
        let v = parse(&f);
        assert_eq!(v["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(v["data"].as_str().expect("string")).expect("json");
        assert_eq!(data, json!({"socket_id": "1.2", "activity_timeout": 120}));
        assert_eq!(
            parse(&error(Dialect::Pusher, Some(4301), "slow down")),
            json!({"event": "pusher:error", "data": "{\"code\":4301,\"message\":\"slow down\"}"})
        );
        assert_eq!(
            parse(&subscription_error(
                Dialect::Pusher,
                "private-x",
                "AuthError",
                "Invalid signature",
                401
            )),
            json!({"event": "pusher:subscription_error", "channel": "private-x",
                   "data": "{\"type\":\"AuthError\",\"error\":\"Invalid signature\",\"status\":401}"})
        );
        assert_eq!(
            parse(&pong(Dialect::Pusher)),
            json!({"event": "pusher:pong", "data": "{}"})
        );
    }

    #[test]
    fn channel_events_keep_string_data_verbatim_and_stringify_the_rest() {
        let s = RawValue::from_string(r#""{\"text\":\"hi\"}""#.to_owned()).expect("raw");
        assert_eq!(as_string(&s).get(), s.get());
        let o = RawValue::from_string(r#"{"a": [1, 2]}"#.to_owned()).expect("raw");
        assert_eq!(as_string(&o).get(), r#""{\"a\": [1, 2]}""#);
        let f = frame(
            Dialect::Pusher,
            "ev",
            Some("chat"),
            &as_string(&o),
            Some("u1"),
        )
        .expect("frame");
        assert_eq!(
            parse(&f),
            json!({"event": "ev", "channel": "chat", "data": "{\"a\": [1, 2]}", "user_id": "u1"})
        );
        assert_eq!(data_len(&s), 13);
    }

    #[test]
    fn envelopes_round_trip() {
        let data = RawValue::from_string(r#""x\"y""#.to_owned()).expect("raw");
        let env = Envelope {
            data: &data,
            user_id: Some("a\"b"),
        };
        let raw = env.encode().expect("encodes");
        let back: Delivered<'_> = serde_json::from_str(raw.get()).expect("decodes");
        assert_eq!(back.data.get(), data.get());
        assert_eq!(back.user_id.as_deref(), Some("a\"b"));
    }

    #[test]
    fn control_data_as_object_or_string() {
        let obj = RawValue::from_string(r#"{"channel":"a","auth":""}"#.to_owned()).expect("raw");
        let s: Subscribe = control(Some(&obj)).expect("object");
        assert_eq!(s.channel, "a");
        let text = RawValue::from_string(r#""{\"channel\":\"b\"}""#.to_owned()).expect("raw");
        let s: Subscribe = control(Some(&text)).expect("string");
        assert_eq!(s.channel, "b");
        assert!(control::<Subscribe>(None).is_err());
        let bad = RawValue::from_string("[1]".to_owned()).expect("raw");
        assert!(control::<Subscribe>(Some(&bad)).is_err());
    }

    #[test]
    fn apinator_names_and_members() {
        assert_eq!(
            parse(&connection_established(Dialect::Apinator, "1.2", 3600)),
            json!({"event": "realtime:connection_established",
                   "data": "{\"socket_id\":\"1.2\",\"activity_timeout\":3600}"})
        );
        assert_eq!(
            parse(&pong(Dialect::Apinator)),
            json!({"event": "realtime:pong", "data": "{}"})
        );
        assert_eq!(
            parse(&subscription_succeeded(Dialect::Apinator, "c", &json!({})))["event"],
            "realtime:subscription_succeeded"
        );
        assert_eq!(
            event_out(Dialect::Apinator, "pusher_internal:member_added"),
            "realtime:member_added"
        );
        assert_eq!(event_out(Dialect::Apinator, "client-x"), "client-x");
        assert_eq!(event_out(Dialect::Pusher, "pusher:error"), "pusher:error");
        assert_eq!(
            event_in(Dialect::Apinator, "realtime:subscribe"),
            "pusher:subscribe"
        );
        assert_eq!(
            event_in(Dialect::Pusher, "realtime:subscribe"),
            "realtime:subscribe"
        );
        let null = member_added("u1", &RawValue::from_string("null".into()).expect("raw"))
            .expect("encodes");
        assert_eq!(
            apinator_member_added(&null).expect("fixed").get(),
            r#""{\"user_id\":\"u1\",\"user_info\":{}}""#
        );
        let list = member_added("u1", &RawValue::from_string("[1]".into()).expect("raw"))
            .expect("encodes");
        assert!(
            apinator_member_added(&list)
                .expect("fixed")
                .get()
                .contains("{}")
        );
    }

    #[test]
    fn member_events() {
        let info = RawValue::from_string(r#"{"name":"Ann"}"#.to_owned()).expect("raw");
        let added = member_added("u1", &info).expect("encodes");
        assert_eq!(
            added.get(),
            r#""{\"user_id\":\"u1\",\"user_info\":{\"name\":\"Ann\"}}""#
        );
        assert_eq!(
            member_removed("u1").expect("encodes").get(),
            r#""{\"user_id\":\"u1\"}""#
        );
    }
}
