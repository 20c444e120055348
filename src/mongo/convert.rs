//! Entity ↔ BSON. Entities serialize to the contract's JSON (`id`, ISO timestamps); in MongoDB
//! the id is `_id` and the timestamp fields are BSON dates, so they sort and can carry TTLs.

use bson::{Bson, DateTime, Document as BsonDoc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::time::Timestamp;

/// Fields holding timestamps, in any entity.
const TIME_FIELDS: [&str; 8] = [
    "createdAt",
    "editedAt",
    "deletedAt",
    "updatedAt",
    "answeredAt",
    "endedAt",
    "receivedAt",
    "lastExecutedAt",
];

pub fn to_doc<T: Serialize>(entity: &T) -> Result<BsonDoc, AppError> {
    let json = serde_json::to_value(entity).map_err(AppError::internal)?;
    let mut d = json_to_doc(json)?;
    if let Some(id) = d.remove("id") {
        d.insert("_id", id);
    }
    for f in TIME_FIELDS {
        if let Some(Bson::String(s)) = d.get(f) {
            let t = Timestamp::parse(s).map_err(AppError::internal)?;
            d.insert(f, DateTime::from_millis(t.millis()));
        }
    }
    Ok(d)
}

pub fn from_doc<T: DeserializeOwned>(mut d: BsonDoc) -> Result<T, AppError> {
    if let Some(id) = d.remove("_id") {
        d.insert("id", id);
    }
    for f in TIME_FIELDS {
        if let Some(Bson::DateTime(t)) = d.get(f) {
            let iso = Timestamp::from_millis(t.timestamp_millis()).to_iso();
            d.insert(f, iso);
        }
    }
    let json = Bson::Document(d).into_relaxed_extjson();
    serde_json::from_value(json)
        .map_err(|e| AppError::internal(format!("stored entity unreadable: {e}")))
}

pub fn json_to_doc(json: serde_json::Value) -> Result<BsonDoc, AppError> {
    match bson::to_bson(&json).map_err(AppError::internal)? {
        Bson::Document(d) => Ok(d),
        _ => Err(AppError::internal("entity is not an object")),
    }
}

/// BSON values read from user collections, as JSON: ObjectIds as hex, dates as ISO strings.
pub fn bson_to_json(b: Bson) -> serde_json::Value {
    match b {
        Bson::ObjectId(o) => serde_json::Value::String(o.to_hex()),
        Bson::DateTime(t) => {
            serde_json::Value::String(Timestamp::from_millis(t.timestamp_millis()).to_iso())
        }
        Bson::Document(d) => {
            serde_json::Value::Object(d.into_iter().map(|(k, v)| (k, bson_to_json(v))).collect())
        }
        Bson::Array(a) => serde_json::Value::Array(a.into_iter().map(bson_to_json).collect()),
        other => other.into_relaxed_extjson(),
    }
}
