//! Identifiers and bounded strings, validated while deserializing ("parse, don't validate"), so
//! a request type that decoded is a request type whose fields are within the contract's limits.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Ids are at most 128 characters (contract: field limits).
pub const MAX_ID_LEN: usize = 128;

fn check_id(kind: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{kind} must not be empty"));
    }
    if s.chars().count() > MAX_ID_LEN {
        return Err(format!("{kind} is longer than {MAX_ID_LEN} characters"));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(format!("{kind} contains control characters"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            ts_rs::TS,
            schemars::JsonSchema,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                check_id($kind, &s)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = String;
            fn try_from(s: &str) -> Result<Self, String> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A project's id.
    ProjectId,
    "projectId"
);
id_type!(
    /// A user's id (a JWT's `sub`).
    UserId,
    "userId"
);
id_type!(ChatId, "chatId");
id_type!(MessageId, "messageId");
id_type!(CollectionId, "collectionId");
id_type!(DocumentId, "documentId");
id_type!(IntegrationId, "integrationId");
id_type!(AddressId, "addressId");
id_type!(CallId, "callId");

/// A fresh id in MongoDB ObjectId layout: 4-byte seconds, 5 bytes random per process, 3-byte
/// counter. The counter matters: messages sort by `(createdAt, id)`, and two sends in the same
/// millisecond from one node must keep the order they were handled in.
pub fn new_object_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    use rand::Rng;
    static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    let process = PROCESS.get_or_init(|| rand::rng().random());
    // Start low so the 24-bit counter practically never wraps within one process's second.
    let counter = COUNTER.get_or_init(|| AtomicU32::new(rand::rng().random_range(0..1 << 20)));
    let n = counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
    let secs = chrono::Utc::now().timestamp() as u32;
    let mut s = format!("{secs:08x}");
    for b in process {
        s.push_str(&format!("{b:02x}"));
    }
    s.push_str(&format!("{n:06x}"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_empty_long_and_control() {
        assert!(ProjectId::try_from("").is_err());
        assert!(ProjectId::try_from("a".repeat(129)).is_err());
        assert!(ProjectId::try_from("a\nb").is_err());
        assert!(ProjectId::try_from("a".repeat(128)).is_ok());
        let e = serde_json::from_str::<ChatId>("42").expect_err("numbers are not ids");
        assert!(e.to_string().contains("string"));
    }

    #[test]
    fn object_ids_are_24_hex() {
        let id = new_object_id();
        assert_eq!(id.len(), 24);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn object_ids_from_one_process_increase() {
        let ids: Vec<String> = (0..1000).map(|_| new_object_id()).collect();
        // The counter may wrap once in 2^24; with a start below 2^20 it cannot within 1000.
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}
