//! Typed decoding of client payloads. Every failure becomes `INVALID_PAYLOAD` naming the field,
//! before any state is touched (the contract: validation runs before authorization).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::core::error::AppError;
use crate::core::ids::ProjectId;

pub fn decode<T: DeserializeOwned>(v: Value) -> Result<T, AppError> {
    // serde reads a struct from an array too (fields by position), so `["general", "demo"]`
    // would pass as `{ chatId, projectId }` and `[]` as an empty object; no payload in the
    // contract is an array (found by the fuzz suite).
    if v.is_array() {
        return Err(AppError::invalid(
            "the payload must be an object (or the documented string form), not an array",
        ));
    }
    serde_json::from_value(v).map_err(|e| AppError::invalid(e.to_string()))
}

/// `projectId` given as a bare string or as `{ projectId }`: the seed table shows the bare
/// form, and frontends that wrap every payload in an object send the other.
#[derive(Debug, Clone, ts_rs::TS)]
#[ts(as = "ProjectRefForm")]
pub struct ProjectRef(pub ProjectId);

/// [`ProjectRef`]'s two forms, for the published contracts (its decoding is hand-written for
/// clearer errors).
#[derive(ts_rs::TS, schemars::JsonSchema)]
#[serde(untagged)]
#[ts(rename = "ProjectRef")]
#[schemars(rename = "ProjectRef")]
#[allow(dead_code)]
enum ProjectRefForm {
    Bare(ProjectId),
    #[serde(rename_all = "camelCase")]
    Wrapped {
        project_id: ProjectId,
    },
}

impl schemars::JsonSchema for ProjectRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        ProjectRefForm::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ProjectRefForm::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for ProjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wrapped {
            project_id: ProjectId,
        }
        match Value::deserialize(d)? {
            Value::String(s) => ProjectId::try_from(s)
                .map(ProjectRef)
                .map_err(serde::de::Error::custom),
            v @ Value::Object(_) => serde_json::from_value::<Wrapped>(v)
                .map(|w| ProjectRef(w.project_id))
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected a projectId string or {{ projectId }}, got {}",
                kind(&other)
            ))),
        }
    }
}

/// A typed answer (a `core::payloads` type) as the JSON the ack carries.
pub fn to_json<T: serde::Serialize>(answer: &T) -> Result<Value, AppError> {
    serde_json::to_value(answer).map_err(AppError::internal)
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrays_are_never_payloads() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Two {
            a: String,
            b: Option<String>,
        }
        assert!(decode::<Two>(json!(["x", "y"])).is_err());
        assert!(decode::<Two>(json!([])).is_err());
        assert!(decode::<Two>(json!({ "a": "x" })).is_ok());
    }

    #[test]
    fn project_ref_takes_both_forms() {
        let a: ProjectRef = decode(json!("demo")).expect("string form");
        let b: ProjectRef = decode(json!({"projectId": "demo"})).expect("object form");
        assert_eq!(a.0, b.0);
        for bad in [
            json!(1),
            json!(null),
            json!([]),
            json!({}),
            json!(""),
            json!({"projectId": 3}),
        ] {
            let e = decode::<ProjectRef>(bad).expect_err("rejected");
            assert_eq!(e.code(), crate::core::error::ErrorCode::InvalidPayload);
        }
    }
}
