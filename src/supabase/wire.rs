//! Phoenix channel frames as realtime-js 2.x speaks them: serializer 1.0.0 (JSON objects) and
//! 2.0.0 (JSON arrays, plus realtime-js's binary "user broadcast push", kind 3, client to
//! server). ../shared/COMPAT-PROTOCOLS.md B.2–B.3 is the reference.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The serializer a connection asked for with `vsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    V1,
    V2,
}

impl Vsn {
    /// `vsn` from the query: absent means 1.0.0 (Phoenix's default); anything else is refused.
    pub fn parse(v: Option<&str>) -> Option<Vsn> {
        match v {
            None | Some("1.0.0") => Some(Vsn::V1),
            Some("2.0.0") => Some(Vsn::V2),
            Some(_) => None,
        }
    }
}

/// One client frame, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub join_ref: Option<String>,
    pub reference: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// Why a frame was not understood.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

fn opt_string(v: &Value) -> Result<Option<String>, Malformed> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        // Refs are counters; some clients send numbers.
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(Malformed("refs must be strings or null")),
    }
}

pub fn decode_text(vsn: Vsn, text: &str) -> Result<Msg, Malformed> {
    let v: Value = serde_json::from_str(text).map_err(|_| Malformed("not JSON"))?;
    let (join_ref, reference, topic, event, payload) = match (vsn, v) {
        (Vsn::V2, Value::Array(mut a)) if a.len() == 5 => {
            let payload = a.pop().unwrap_or(Value::Null);
            let event = a.pop().unwrap_or(Value::Null);
            let topic = a.pop().unwrap_or(Value::Null);
            let reference = a.pop().unwrap_or(Value::Null);
            let join_ref = a.pop().unwrap_or(Value::Null);
            (join_ref, reference, topic, event, payload)
        }
        (Vsn::V1, Value::Object(mut o)) => (
            o.remove("join_ref").unwrap_or(Value::Null),
            o.remove("ref").unwrap_or(Value::Null),
            o.remove("topic").unwrap_or(Value::Null),
            o.remove("event").unwrap_or(Value::Null),
            o.remove("payload").unwrap_or(Value::Null),
        ),
        _ => return Err(Malformed("not a frame of this serializer")),
    };
    let (Value::String(topic), Value::String(event)) = (topic, event) else {
        return Err(Malformed("topic and event must be strings"));
    };
    Ok(Msg {
        join_ref: opt_string(&join_ref)?,
        reference: opt_string(&reference)?,
        topic,
        event,
        payload,
    })
}

/// realtime-js's binary user broadcast push (kind 3), turned into the `broadcast` frame a
/// serializer-1 client would have sent. Only JSON payloads (encoding 1) are accepted.
pub fn decode_binary(bytes: &[u8]) -> Result<Msg, Malformed> {
    let [3, jr, r, t, e, m, enc, rest @ ..] = bytes else {
        return Err(Malformed("not a user broadcast push"));
    };
    let lens = [*jr, *r, *t, *e, *m].map(usize::from);
    if lens.iter().sum::<usize>() > rest.len() {
        return Err(Malformed("truncated binary frame"));
    }
    let mut at = 0;
    let mut take = |n: usize| {
        let s = &rest[at..at + n];
        at += n;
        s
    };
    let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned);
    let join_ref = text(take(lens[0])).map_err(|_| Malformed("join ref not UTF-8"))?;
    let reference = text(take(lens[1])).map_err(|_| Malformed("ref not UTF-8"))?;
    let topic = text(take(lens[2])).map_err(|_| Malformed("topic not UTF-8"))?;
    let event = text(take(lens[3])).map_err(|_| Malformed("event not UTF-8"))?;
    let _metadata = take(lens[4]);
    let body = &rest[at..];
    if *enc != 1 {
        return Err(Malformed("binary payloads are not supported"));
    }
    let payload: Value = serde_json::from_slice(body).map_err(|_| Malformed("payload not JSON"))?;
    Ok(Msg {
        join_ref: Some(join_ref).filter(|s| !s.is_empty()),
        reference: Some(reference).filter(|s| !s.is_empty()),
        topic,
        event: "broadcast".into(),
        payload: json!({"type": "broadcast", "event": event, "payload": payload}),
    })
}

#[derive(Serialize)]
struct V1Frame<'a, P: Serialize + ?Sized> {
    topic: &'a str,
    event: &'a str,
    payload: &'a P,
    #[serde(rename = "ref")]
    reference: Option<&'a str>,
}

/// One server frame in `vsn`'s serializer.
pub fn encode<P: Serialize + ?Sized>(
    vsn: Vsn,
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    event: &str,
    payload: &P,
) -> String {
    let out = match vsn {
        Vsn::V1 => serde_json::to_string(&V1Frame {
            topic,
            event,
            payload,
            reference,
        }),
        Vsn::V2 => serde_json::to_string(&(join_ref, reference, topic, event, payload)),
    };
    // Serialising strings and JSON values cannot fail.
    out.unwrap_or_default()
}

/// The payload of a fanned-out broadcast: `{type, event, payload}` around the user's payload,
/// which is copied, never re-parsed.
pub fn broadcast_payload(event: &str, payload: &RawValue) -> Option<Box<RawValue>> {
    let event = serde_json::to_string(event).ok()?;
    RawValue::from_string(format!(
        r#"{{"type":"broadcast","event":{event},"payload":{}}}"#,
        payload.get()
    ))
    .ok()
}

/// The user's payload of a channel event. A Pusher event travels in its envelope
/// `{"data": "<JSON text>", "user_id"?}` (src/pusher/wire.rs); its data is what a realtime-js
/// subscriber gets, parsed when it is JSON text. Anything else is the payload itself.
pub fn user_payload(p: &RawValue) -> Cow<'_, RawValue> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
        #[serde(default, rename = "user_id")]
        _user_id: Option<IgnoredAny>,
    }
    let Ok(env) = serde_json::from_str::<Envelope<'_>>(p.get()) else {
        return Cow::Borrowed(p);
    };
    match serde_json::from_str::<String>(env.data.get()) {
        Ok(text) => match RawValue::from_string(text.clone()) {
            Ok(json) => Cow::Owned(json),
            Err(_) => serde_json::value::to_raw_value(&text)
                .map(Cow::Owned)
                .unwrap_or(Cow::Borrowed(env.data)),
        },
        Err(_) => Cow::Borrowed(env.data),
    }
}

pub fn reply(status: &str, response: Value) -> Value {
    json!({"status": status, "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_serializers_round_trip_a_join() {
        let v2 = r#"["6","6","realtime:room1","phx_join",{"config":{}}]"#;
        let m = decode_text(Vsn::V2, v2).expect("decodes");
        assert_eq!(m.join_ref.as_deref(), Some("6"));
        assert_eq!(m.topic, "realtime:room1");
        assert_eq!(m.event, "phx_join");
        let v1 = r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"12"}"#;
        let m = decode_text(Vsn::V1, v1).expect("decodes");
        assert_eq!(m.reference.as_deref(), Some("12"));
        assert_eq!(m.join_ref, None);
        assert!(decode_text(Vsn::V1, v2).is_err());
        assert!(decode_text(Vsn::V2, v1).is_err());
        assert!(decode_text(Vsn::V2, "[1,2,3]").is_err());
        assert!(decode_text(Vsn::V2, r#"[null,null,7,"x",{}]"#).is_err());
    }

    #[test]
    fn the_probed_binary_push_decodes_as_a_broadcast() {
        let mut frame = vec![3, 1, 1, 14, 5, 0, 1];
        frame.extend_from_slice(b"67realtime:room1shout{\"msg\":\"hi\"}");
        let m = decode_binary(&frame).expect("decodes");
        assert_eq!(m.join_ref.as_deref(), Some("6"));
        assert_eq!(m.reference.as_deref(), Some("7"));
        assert_eq!(m.topic, "realtime:room1");
        assert_eq!(
            m.payload,
            json!({"type": "broadcast", "event": "shout", "payload": {"msg": "hi"}})
        );
        assert!(decode_binary(&frame[..10]).is_err(), "truncated");
        assert!(
            decode_binary(&[4, 0, 0, 0, 0, 0, 1]).is_err(),
            "kind 4 is ours"
        );
        let mut raw = frame.clone();
        raw[6] = 0;
        assert!(decode_binary(&raw).is_err(), "raw binary payloads refused");
    }

    #[test]
    fn pusher_envelopes_unwrap_to_their_data() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).expect("json");
        let env = raw(r#"{"data":"{\"msg\":\"hi\"}","user_id":"u1"}"#);
        assert_eq!(user_payload(&env).get(), r#"{"msg":"hi"}"#);
        let text = raw(r#"{"data":"plain words"}"#);
        assert_eq!(user_payload(&text).get(), r#""plain words""#);
        let plain = raw(r#"{"msg":"hi"}"#);
        assert_eq!(user_payload(&plain).get(), r#"{"msg":"hi"}"#);
        let more = raw(r#"{"data":"x","other":1}"#);
        assert_eq!(user_payload(&more).get(), more.get(), "not an envelope");
    }

    #[test]
    fn frames_encode_per_serializer() {
        let p = json!({"status": "ok", "response": {}});
        assert_eq!(
            encode(Vsn::V2, None, Some("12"), "phoenix", "phx_reply", &p),
            r#"[null,"12","phoenix","phx_reply",{"status":"ok","response":{}}]"#
        );
        assert_eq!(
            encode(Vsn::V1, Some("6"), Some("12"), "phoenix", "phx_reply", &p),
            r#"{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"12"}"#
        );
        let raw = serde_json::value::to_raw_value(&json!({"a": 1})).expect("raw");
        let b = broadcast_payload("shout", &raw).expect("payload");
        assert_eq!(
            b.get(),
            r#"{"type":"broadcast","event":"shout","payload":{"a":1}}"#
        );
        assert_eq!(Vsn::parse(Some("3.0.0")), None);
        assert_eq!(Vsn::parse(None), Some(Vsn::V1));
    }
}
