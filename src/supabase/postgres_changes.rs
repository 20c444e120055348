//! postgres_changes over Switchboard's own change feed: a binding's `schema` is the
//! connection's project (`public` and `*` name it too), its `table` a collection of that project.
//! The connection subscribes to each bound collection through the core's live-data registry —
//! the path Socket.IO's `subscribe:collection` takes, with the collection's read rule applied per
//! connection — and turns each `document:*` event it receives into the `postgres_changes` frame
//! of ../shared/COMPAT-PROTOCOLS.md B.11.

use serde_json::{Map, Value, json};
use switchboard_handlers::core::events;
use switchboard_handlers::core::ids::{CollectionId, ProjectId};

use super::row_filter::RowFilter;

/// Bindings one join may carry.
pub const MAX_BINDINGS_PER_JOIN: usize = 16;
/// Bindings one connection may hold over all its channels.
pub const MAX_BINDINGS_PER_CONN: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Insert,
    Update,
    Delete,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Insert => "INSERT",
            Kind::Update => "UPDATE",
            Kind::Delete => "DELETE",
        }
    }
}

/// One binding of a joined channel.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Server-assigned, never 0 (realtime-js ignores a falsy id).
    pub id: u32,
    /// `realtime:<name>` of the channel that holds it.
    pub topic: String,
    pub schema: String,
    pub table: CollectionId,
    /// `None` is `*`.
    pub kind: Option<Kind>,
    pub filter: RowFilter,
}

/// A join's bindings: the reply's list (each as received plus `id`) and the bindings to keep.
#[derive(Debug, Default)]
pub struct Parsed {
    pub reply: Vec<Value>,
    pub bindings: Vec<Binding>,
}

/// Reads a join's `postgres_changes` list. `next_id` hands out ids; identical entries share one.
pub fn parse(
    list: &[Value],
    project: &ProjectId,
    topic: &str,
    next_id: &mut dyn FnMut() -> u32,
) -> Result<Parsed, String> {
    if list.len() > MAX_BINDINGS_PER_JOIN {
        return Err(format!(
            "at most {MAX_BINDINGS_PER_JOIN} postgres_changes bindings per channel"
        ));
    }
    let mut out = Parsed::default();
    let mut seen: Vec<(&Value, u32)> = Vec::new();
    for entry in list {
        let Value::Object(map) = entry else {
            return Err("each postgres_changes binding must be an object".to_owned());
        };
        if let Some((_, id)) = seen.iter().find(|(v, _)| *v == entry) {
            out.reply.push(with_id(map, *id));
            continue;
        }
        let text = |k: &str| -> Result<Option<&str>, String> {
            match map.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(format!("postgres_changes {k} must be a string")),
            }
        };
        let kind = match text("event")? {
            Some("*") => None,
            Some(e) if e.eq_ignore_ascii_case("insert") => Some(Kind::Insert),
            Some(e) if e.eq_ignore_ascii_case("update") => Some(Kind::Update),
            Some(e) if e.eq_ignore_ascii_case("delete") => Some(Kind::Delete),
            _ => {
                return Err("postgres_changes event must be *, INSERT, UPDATE or DELETE".to_owned());
            }
        };
        let schema = text("schema")?.unwrap_or_default();
        if !matches!(schema, "public" | "*") && schema != project.as_str() {
            return Err(format!(
                "schema {schema:?} is not this connection's project (use \"public\" or {:?})",
                project.as_str()
            ));
        }
        let table = match text("table")? {
            None | Some("*") => {
                return Err(
                    "a postgres_changes binding needs a table (a collection of the project)"
                        .to_owned(),
                );
            }
            Some(t) => CollectionId::try_from(t)?,
        };
        let filter = RowFilter::parse(text("filter")?.unwrap_or_default())?;
        let id = next_id();
        seen.push((entry, id));
        out.reply.push(with_id(map, id));
        out.bindings.push(Binding {
            id,
            topic: topic.to_owned(),
            schema: schema.to_owned(),
            table,
            kind,
            filter,
        });
    }
    Ok(out)
}

fn with_id(map: &Map<String, Value>, id: u32) -> Value {
    let mut m = map.clone();
    m.insert("id".to_owned(), json!(id));
    Value::Object(m)
}

/// A `document:*` event, as the live-data registry sends it to one connection.
pub struct Change<'a> {
    kind: Kind,
    collection: &'a str,
    document_id: &'a Value,
    document: Option<&'a Map<String, Value>>,
    previous: Option<&'a Map<String, Value>>,
    changed_at: &'a Value,
}

impl<'a> Change<'a> {
    pub fn read(event: &str, payload: &'a Value) -> Option<Change<'a>> {
        let kind = match event {
            events::DOCUMENT_CREATED => Kind::Insert,
            events::DOCUMENT_UPDATED => Kind::Update,
            events::DOCUMENT_DELETED => Kind::Delete,
            _ => return None,
        };
        let change = Change {
            kind,
            collection: payload.get("collectionId")?.as_str()?,
            document_id: payload.get("documentId")?,
            document: payload.get("document").and_then(Value::as_object),
            previous: payload.get("previous").and_then(Value::as_object),
            changed_at: payload.get("changedAt").unwrap_or(&Value::Null),
        };
        // An update whose document was deleted before the feed read it: its delete follows.
        if kind != Kind::Delete && change.document.is_none() {
            return None;
        }
        Some(change)
    }

    /// The row before the change: the previous version when the feed has it (the node's own
    /// writes; MongoDB pre-images), otherwise just its id.
    fn old_record(&self) -> Map<String, Value> {
        match self.previous {
            Some(p) => p.clone(),
            None => {
                let mut m = Map::new();
                m.insert("id".to_owned(), self.document_id.clone());
                m
            }
        }
    }
}

/// The frames one connection gets for one change: one per channel (and schema name) with a
/// matching binding, naming those bindings' ids. `(topic, payload)` in the order of `bindings`.
pub fn frames(bindings: &[Binding], change: &Change<'_>) -> Vec<(String, Value)> {
    let old = (change.kind != Kind::Insert).then(|| change.old_record());
    // Filters read the row as it is after the change, or as it was before a delete.
    let row = match (change.document, &old) {
        (Some(d), _) => d,
        (None, Some(o)) => o,
        (None, None) => return Vec::new(),
    };
    let mut hits: Vec<(&Binding, Vec<u32>)> = Vec::new();
    for b in bindings {
        if b.table.as_str() != change.collection
            || b.kind.is_some_and(|k| k != change.kind)
            || !b.filter.matches(row)
        {
            continue;
        }
        // Bindings naming the project differently get their own frame, each with its schema.
        match hits
            .iter_mut()
            .find(|(first, _)| first.topic == b.topic && first.schema == b.schema)
        {
            Some((_, ids)) => {
                if !ids.contains(&b.id) {
                    ids.push(b.id);
                }
            }
            None => hits.push((b, vec![b.id])),
        }
    }
    hits.into_iter()
        .map(|(b, ids)| {
            let mut data = Map::new();
            data.insert("schema".to_owned(), json!(b.schema));
            data.insert("table".to_owned(), json!(change.collection));
            data.insert("commit_timestamp".to_owned(), change.changed_at.clone());
            data.insert("type".to_owned(), json!(change.kind.name()));
            data.insert("columns".to_owned(), columns(row));
            if let Some(d) = change.document {
                data.insert("record".to_owned(), Value::Object(d.clone()));
            }
            if let Some(o) = &old {
                data.insert("old_record".to_owned(), Value::Object(o.clone()));
            }
            data.insert("errors".to_owned(), Value::Null);
            (b.topic.clone(), json!({ "ids": ids, "data": data }))
        })
        .collect()
}

/// Column types under which realtime-js's conversion leaves each JSON value as it is (a `jsonb`
/// column would re-parse a string that looks like JSON, so strings are `text`).
fn columns(row: &Map<String, Value>) -> Value {
    Value::Array(
        row.iter()
            .map(|(name, v)| {
                let ty = match v {
                    Value::Bool(_) => "bool",
                    Value::Number(n) if n.is_i64() || n.is_u64() => "int8",
                    Value::Number(_) => "float8",
                    Value::Object(_) | Value::Array(_) => "jsonb",
                    Value::String(_) | Value::Null => "text",
                };
                json!({ "name": name, "type": ty })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectId {
        ProjectId::try_from("demo").expect("id")
    }

    fn parse_list(list: Value) -> Result<Parsed, String> {
        let mut n = 0;
        let Value::Array(list) = list else {
            return Err("not a list".to_owned());
        };
        parse(&list, &project(), "realtime:r", &mut || {
            n += 1;
            n
        })
    }

    #[test]
    fn the_reply_echoes_each_binding_with_an_id_and_duplicates_share_one() {
        let p = parse_list(json!([
            {"event": "INSERT", "schema": "public", "table": "todos"},
            {"event": "*", "schema": "demo", "table": "notes", "filter": "n=gt.1"},
            {"event": "INSERT", "schema": "public", "table": "todos"},
        ]))
        .expect("valid");
        assert_eq!(
            p.reply,
            [
                json!({"event": "INSERT", "schema": "public", "table": "todos", "id": 1}),
                json!({"event": "*", "schema": "demo", "table": "notes", "filter": "n=gt.1", "id": 2}),
                json!({"event": "INSERT", "schema": "public", "table": "todos", "id": 1}),
            ]
        );
        assert_eq!(p.bindings.len(), 2);
    }

    #[test]
    fn bindings_outside_the_project_or_without_a_table_are_refused() {
        for bad in [
            json!([{"event": "INSERT", "schema": "other", "table": "t"}]),
            json!([{"event": "INSERT", "schema": "public"}]),
            json!([{"event": "TRUNCATE", "schema": "public", "table": "t"}]),
            json!([{"event": "INSERT", "schema": "public", "table": ""}]),
            json!([{"event": "INSERT", "schema": "public", "table": "t", "filter": "x=like.y"}]),
            json!(["INSERT"]),
        ] {
            assert!(parse_list(bad.clone()).is_err(), "{bad}");
        }
        let many: Vec<Value> = (0..=MAX_BINDINGS_PER_JOIN)
            .map(|i| json!({"event": "*", "schema": "public", "table": format!("t{i}")}))
            .collect();
        assert!(parse_list(Value::Array(many)).is_err());
    }

    #[test]
    fn a_change_reaches_the_matching_bindings_of_each_channel_once() {
        let mut bindings = parse_list(json!([
            {"event": "*", "schema": "public", "table": "todos"},
            {"event": "UPDATE", "schema": "public", "table": "todos", "filter": "n=gt.5"},
            {"event": "INSERT", "schema": "public", "table": "todos"},
            {"event": "*", "schema": "public", "table": "other"},
        ]))
        .expect("valid")
        .bindings;
        bindings.push(Binding {
            id: 9,
            topic: "realtime:second".to_owned(),
            ..bindings[0].clone()
        });
        let payload = json!({
            "projectId": "demo", "collectionId": "todos", "documentId": "d1",
            "document": {"id": "d1", "n": 7, "done": false, "t": "x", "f": 1.5, "o": {"a": 1}},
            "previous": {"id": "d1", "n": 3},
            "changedAt": "2026-01-01T00:00:00.000Z",
        });
        let change = Change::read(events::DOCUMENT_UPDATED, &payload).expect("a change");
        let out = frames(&bindings, &change);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, "realtime:r");
        assert_eq!(out[0].1["ids"], json!([1, 2]));
        assert_eq!(out[1].1["ids"], json!([9]));
        let data = &out[0].1["data"];
        assert_eq!(data["type"], "UPDATE");
        assert_eq!(data["table"], "todos");
        assert_eq!(data["schema"], "public");
        assert_eq!(data["commit_timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(data["record"]["n"], 7);
        assert_eq!(data["old_record"], json!({"id": "d1", "n": 3}));
        assert_eq!(data["errors"], Value::Null);
        let types: Vec<&str> = data["columns"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["type"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(types, ["text", "int8", "bool", "text", "float8", "jsonb"]);
    }

    #[test]
    fn a_delete_without_its_previous_version_carries_the_id_and_filters_read_it() {
        let bindings = parse_list(json!([
            {"event": "DELETE", "schema": "public", "table": "todos", "filter": "id=eq.d1"},
            {"event": "DELETE", "schema": "public", "table": "todos", "filter": "n=eq.1"},
        ]))
        .expect("valid")
        .bindings;
        let payload = json!({
            "collectionId": "todos", "documentId": "d1", "document": null,
            "changedAt": "2026-01-01T00:00:00.000Z",
        });
        let change = Change::read(events::DOCUMENT_DELETED, &payload).expect("a change");
        let out = frames(&bindings, &change);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1["ids"], json!([1]));
        assert_eq!(out[0].1["data"]["old_record"], json!({"id": "d1"}));
        assert!(out[0].1["data"].get("record").is_none());
        // Other events are not changes; an update without its document is skipped.
        assert!(Change::read("message:new", &payload).is_none());
        assert!(Change::read(events::DOCUMENT_UPDATED, &payload).is_none());
    }
}
