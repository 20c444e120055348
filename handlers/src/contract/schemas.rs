//! JSON Schemas (draft 2020-12, schemars) of every event payload: requests as the server
//! decodes them, acks and server events as it encodes them.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{ClientEventVisitor, CustomBroadcastPayload, Described, visit_all};
use crate::core::error::ErrorBody;
use crate::core::events::ServerEventVisitor;

/// What a schema describes: a payload the server reads, or one it writes. Optional fields are
/// optional for the first; for the second, a field without `?` is always present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Read,
    Written,
}

impl Direction {
    fn settings(self, definitions_path: &'static str) -> SchemaSettings {
        let s = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = definitions_path.into();
        });
        match self {
            Direction::Read => s.for_deserialize(),
            Direction::Written => s.for_serialize(),
        }
    }
}

/// One client event's schema names.
#[derive(Debug, Clone, Serialize)]
pub struct ClientEventSchemas {
    pub request: String,
    pub ack: String,
}

/// Every described type's standalone schema by name, and which ones each event uses.
#[derive(Debug, Default)]
pub struct SchemaSet {
    pub schemas: BTreeMap<String, Value>,
    pub client: Vec<(&'static str, ClientEventSchemas)>,
    pub server: Vec<(&'static str, String)>,
    pub conflicts: Vec<String>,
}

impl SchemaSet {
    /// Adds `T`'s standalone schema (its own `$defs` included); answers its name.
    pub fn add<T: JsonSchema + ?Sized>(&mut self, direction: Direction) -> String {
        let name = T::schema_name().into_owned();
        let schema = direction
            .settings("/$defs")
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        match self.schemas.get(&name) {
            Some(known) if *known != schema => self.conflicts.push(name.clone()),
            Some(_) => {}
            None => {
                self.schemas.insert(name.clone(), schema);
            }
        }
        name
    }

    /// The index served at `/api/schemas`: each event's schema names.
    pub fn index(&self, url_prefix: &str) -> Value {
        let url = |n: &str| Value::String(format!("{url_prefix}/{n}.json"));
        let client: Map<String, Value> = self
            .client
            .iter()
            .map(|(name, s)| {
                let v = serde_json::json!({ "request": url(&s.request), "ack": url(&s.ack) });
                ((*name).to_owned(), v)
            })
            .collect();
        let server: Map<String, Value> = self
            .server
            .iter()
            .map(|(name, s)| ((*name).to_owned(), url(s)))
            .collect();
        let all: Map<String, Value> = self.schemas.keys().map(|n| (n.clone(), url(n))).collect();
        serde_json::json!({
            "clientEvents": client,
            "serverEvents": server,
            "schemas": all,
        })
    }
}

impl ClientEventVisitor for SchemaSet {
    fn event<Req: Described, Ack: Described>(&mut self, name: &'static str) {
        let request = self.add::<Req>(Direction::Read);
        let ack = self.add::<Ack>(Direction::Written);
        self.client
            .push((name, ClientEventSchemas { request, ack }));
    }
}

impl ServerEventVisitor for SchemaSet {
    fn event<P: ts_rs::TS + JsonSchema + 'static>(&mut self, name: &'static str) {
        let payload = self.add::<P>(Direction::Written);
        self.server.push((name, payload));
    }
}

/// The Socket.IO surface's schemas. Errs naming a schema name two different types would share.
pub fn socketio() -> Result<SchemaSet, String> {
    let mut set = SchemaSet::default();
    visit_all(&mut set);
    set.add::<ErrorBody>(Direction::Written);
    set.add::<CustomBroadcastPayload>(Direction::Written);
    if set.conflicts.is_empty() {
        Ok(set)
    } else {
        Err(format!(
            "schema names used by two different schemas: {}",
            set.conflicts.join(", ")
        ))
    }
}

/// Shared definitions for documents that refer to schemas by `$ref` (OpenAPI, AsyncAPI): one
/// generator per direction, definitions under `#/components/schemas`.
pub struct Components {
    read: SchemaGenerator,
    written: SchemaGenerator,
}

impl Default for Components {
    fn default() -> Self {
        Components {
            read: Direction::Read
                .settings("/components/schemas")
                .into_generator(),
            written: Direction::Written
                .settings("/components/schemas")
                .into_generator(),
        }
    }
}

/// `true` (anything) as `{}`: the same schema, but OpenAPI and AsyncAPI tools expect schema
/// objects where JSON Schema also allows booleans. `false` has no object form and stays.
fn no_true_schemas(schema: &mut Value) {
    match schema {
        Value::Bool(true) => *schema = Value::Object(Map::new()),
        Value::Object(obj) => {
            for (keyword, sub) in obj.iter_mut() {
                match keyword.as_str() {
                    "properties" | "$defs" | "patternProperties" => {
                        if let Value::Object(subs) = sub {
                            subs.values_mut().for_each(no_true_schemas);
                        }
                    }
                    "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                        if let Value::Array(subs) = sub {
                            subs.iter_mut().for_each(no_true_schemas);
                        }
                    }
                    "items" | "additionalProperties" | "not" | "contains" => no_true_schemas(sub),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

impl Components {
    /// A reference to `T` (or `T`'s schema inline, for the simple ones).
    pub fn schema<T: JsonSchema + ?Sized>(&mut self, direction: Direction) -> Value {
        let mut schema = match direction {
            Direction::Read => self.read.subschema_for::<T>(),
            Direction::Written => self.written.subschema_for::<T>(),
        }
        .to_value();
        no_true_schemas(&mut schema);
        schema
    }

    /// Every definition referred to; errs naming one that differs between the directions.
    pub fn into_definitions(mut self) -> Result<Map<String, Value>, String> {
        let mut all = self.read.take_definitions(true);
        let mut conflicts = Vec::new();
        for (name, schema) in self.written.take_definitions(true) {
            match all.get(&name) {
                Some(known) if *known != schema => conflicts.push(name),
                Some(_) => {}
                None => {
                    all.insert(name, schema);
                }
            }
        }
        all.values_mut().for_each(no_true_schemas);
        if conflicts.is_empty() {
            Ok(all)
        } else {
            Err(format!(
                "types whose schema differs as read and as written: {}",
                conflicts.join(", ")
            ))
        }
    }
}
