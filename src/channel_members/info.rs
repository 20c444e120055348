//! What the shared presence set stores for each connection, and how each protocol shows a
//! member another protocol added. One table, in one place (docs/protocol.md, "Protocol
//! channels"):
//!
//! | joined through | Pusher `user_info`            | Supabase meta                          | InsForge member                       |
//! |----------------|-------------------------------|----------------------------------------|---------------------------------------|
//! | Pusher         | its `user_info`               | `user_info`'s fields (an object), else `{"user_info": …}`; `phx_ref` = connection | `{type: "user", presenceId: user_id, joinedAt}` |
//! | Supabase       | the tracked payload           | the tracked meta (`phx_ref`, `phx_ref_prev`) | `{type: "user", presenceId: key, joinedAt}` |
//! | InsForge       | the member object             | the member object's fields; `phx_ref` = connection | the member object              |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use switchboard_handlers::core::time::Timestamp;

/// The protocol a connection joined the set through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Pusher,
    Supabase,
    Insforge,
}

/// One connection's info in the set (its JSON is the port's info text): the protocol it came
/// through, that protocol's own description of the member, and when it joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub protocol: Protocol,
    pub info: Value,
    /// ISO 8601.
    pub at: String,
}

/// Supabase's own fields in a meta, which are not part of what the client tracked.
const PHX_FIELDS: [&str; 2] = ["phx_ref", "phx_ref_prev"];

impl MemberInfo {
    pub fn new(protocol: Protocol, info: Value) -> Self {
        MemberInfo {
            protocol,
            info,
            at: Timestamp::now().to_iso(),
        }
    }

    /// A connection whose stored info could not be read (swept from a store an older node
    /// wrote): a member with no info.
    pub fn unknown() -> Self {
        MemberInfo {
            protocol: Protocol::Pusher,
            info: Value::Null,
            at: String::new(),
        }
    }

    /// The stored text, as the port keeps it.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    /// Back from the stored text; `None` for text this module did not write (a store shared
    /// with an older node, say), which callers skip.
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The member's `user_info` for pusher-js.
    pub fn pusher_info(&self) -> Value {
        match self.protocol {
            Protocol::Pusher | Protocol::Insforge => self.info.clone(),
            Protocol::Supabase => Value::Object(without_phx(&self.info)),
        }
    }

    /// The connection's meta for realtime-js; `conn` is the `phx_ref` of a member another
    /// protocol added (its connection, unique in the channel).
    pub fn supabase_meta(&self, conn: &str) -> Value {
        let mut meta = match (self.protocol, &self.info) {
            (Protocol::Supabase, Value::Object(m)) => return Value::Object(m.clone()),
            (_, Value::Object(m)) => without_phx(&Value::Object(m.clone())),
            (_, Value::Null) => Map::new(),
            (_, other) => Map::from_iter([("user_info".to_owned(), other.clone())]),
        };
        meta.insert("phx_ref".to_owned(), Value::String(conn.to_owned()));
        Value::Object(meta)
    }

    /// The member object for `@insforge/sdk`.
    pub fn insforge_member(&self, key: &str) -> Value {
        match (self.protocol, &self.info) {
            (Protocol::Insforge, Value::Object(_)) => self.info.clone(),
            _ => json!({"type": "user", "presenceId": key, "joinedAt": self.at}),
        }
    }

    /// What `presence:leave` names: the member's type and presence id.
    pub fn insforge_leaving(&self, key: &str) -> Value {
        let member = self.insforge_member(key);
        json!({"type": member.get("type").cloned().unwrap_or(Value::Null), "presenceId": key})
    }
}

fn without_phx(info: &Value) -> Map<String, Value> {
    let mut m = info.as_object().cloned().unwrap_or_default();
    for f in PHX_FIELDS {
        m.remove(f);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(protocol: Protocol, info: Value) -> MemberInfo {
        MemberInfo {
            protocol,
            info,
            at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_pusher_member_in_every_protocol() {
        let m = info(Protocol::Pusher, json!({"name": "Ann"}));
        assert_eq!(m.pusher_info(), json!({"name": "Ann"}));
        assert_eq!(
            m.supabase_meta("1.2"),
            json!({"name": "Ann", "phx_ref": "1.2"})
        );
        assert_eq!(
            m.insforge_member("u1"),
            json!({"type": "user", "presenceId": "u1", "joinedAt": "2026-01-01T00:00:00.000Z"})
        );
        assert_eq!(
            m.insforge_leaving("u1"),
            json!({"type": "user", "presenceId": "u1"})
        );
        let scalar = info(Protocol::Pusher, json!("Ann"));
        assert_eq!(
            scalar.supabase_meta("1.2"),
            json!({"user_info": "Ann", "phx_ref": "1.2"})
        );
        let none = info(Protocol::Pusher, Value::Null);
        assert_eq!(none.pusher_info(), Value::Null);
        assert_eq!(none.supabase_meta("1.2"), json!({"phx_ref": "1.2"}));
        // A user_info naming Supabase's own fields does not pass them off as refs.
        let forged = info(Protocol::Pusher, json!({"phx_ref": "x", "a": 1}));
        assert_eq!(
            forged.supabase_meta("1.2"),
            json!({"a": 1, "phx_ref": "1.2"})
        );
    }

    #[test]
    fn a_supabase_meta_in_every_protocol() {
        let m = info(
            Protocol::Supabase,
            json!({"user": "ann", "phx_ref": "F1.1", "phx_ref_prev": "F1.0"}),
        );
        assert_eq!(m.pusher_info(), json!({"user": "ann"}));
        assert_eq!(
            m.supabase_meta("ignored"),
            json!({"user": "ann", "phx_ref": "F1.1", "phx_ref_prev": "F1.0"})
        );
        assert_eq!(m.insforge_member("k")["presenceId"], "k");
        assert_eq!(m.insforge_member("k")["type"], "user");
    }

    #[test]
    fn an_insforge_member_in_every_protocol() {
        let object = json!({"type": "anonymous", "presenceId": "sid1", "joinedAt": "t"});
        let m = info(Protocol::Insforge, object.clone());
        assert_eq!(m.pusher_info(), object);
        assert_eq!(m.insforge_member("sid1"), object);
        assert_eq!(
            m.insforge_leaving("sid1"),
            json!({"type": "anonymous", "presenceId": "sid1"})
        );
        assert_eq!(
            m.supabase_meta("9.isid1"),
            json!({"type": "anonymous", "presenceId": "sid1", "joinedAt": "t", "phx_ref": "9.isid1"})
        );
    }

    #[test]
    fn stored_text_round_trips_and_foreign_text_is_skipped() {
        let m = MemberInfo::new(Protocol::Pusher, json!({"a": [1]}));
        assert_eq!(MemberInfo::from_text(&m.to_text()), Some(m));
        assert_eq!(MemberInfo::from_text(r#"{"name":"old"}"#), None);
    }
}
