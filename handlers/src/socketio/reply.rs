//! What a handler answers with: a JSON value, or JSON already encoded. `message:send` encodes
//! the message once and sends those bytes as `message:new`, `message:sent` and in the ack
//! (three encodings of the same message before; docs/performance.md).

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Debug)]
pub enum Reply {
    Json(Value),
    Encoded(Box<RawValue>),
}

impl From<Value> for Reply {
    fn from(v: Value) -> Self {
        Reply::Json(v)
    }
}

impl From<Box<RawValue>> for Reply {
    fn from(r: Box<RawValue>) -> Self {
        Reply::Encoded(r)
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Json(v) => v.serialize(s),
            Reply::Encoded(r) => r.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_serialize_to_the_same_json() {
        let v = json!({"message": {"id": "m1", "content": "hé \"x\""}, "n": [1, 2]});
        let raw = serde_json::value::to_raw_value(&v).expect("encodable");
        let a = serde_json::to_string(&Reply::from(v)).expect("encodable");
        let b = serde_json::to_string(&Reply::from(raw)).expect("encodable");
        assert_eq!(a, b);
    }

    #[test]
    fn encoded_form_is_copied_into_an_enclosing_value() {
        let inner = serde_json::value::to_raw_value(&json!({"a": "b"})).expect("encodable");
        let wrapped = serde_json::to_string(&(true, Reply::Encoded(inner))).expect("encodable");
        assert_eq!(wrapped, r#"[true,{"a":"b"}]"#);
    }
}
