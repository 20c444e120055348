//! Timestamps as the contract writes them: ISO-8601 UTC with milliseconds
//! (`2026-11-22T10:00:00.000Z`), whatever precision the store keeps.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ts_rs::TS)]
#[ts(type = "string")]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_millis(Utc::now().timestamp_millis())
    }

    /// Millisecond precision everywhere, so a value read back from MongoDB equals the one written.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(
            Utc.timestamp_millis_opt(ms)
                .single()
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    }

    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    pub fn to_iso(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| Self::from_millis(d.with_timezone(&Utc).timestamp_millis()))
            .map_err(|e| format!("invalid timestamp {s:?}: {e}"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_millis_and_z() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(t.to_iso(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::parse(&t.to_iso()), Ok(t));
        assert_eq!(
            Timestamp::parse("2026-01-01T00:00:00Z").map(|t| t.to_iso()),
            Ok("2026-01-01T00:00:00.000Z".to_owned())
        );
    }
}
