//! The OpenAPI 3.1 document of the REST API, built from the route table (`routes.rs`) with the
//! schemas of the types each route takes and answers.

use serde_json::{Map, Value, json};

use switchboard_handlers::contract::schemas::{Components, Direction};

use super::bodies::ErrorResponse;
use super::routes::{self, Access, Content};

/// `{name}` segments of a path.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The query parameters of a struct's schema: one per property, none required.
fn query_params(schema: &Value, components: &Map<String, Value>) -> Vec<Value> {
    let resolved = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| components.get(name))
        .unwrap_or(schema);
    let Some(props) = resolved.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, s)| {
            let mut s = s.clone();
            if let Some(obj) = s.as_object_mut() {
                obj.remove("description");
            }
            json!({ "name": name, "in": "query", "required": false, "schema": s })
        })
        .collect()
}

fn security(access: Access) -> Value {
    match access {
        Access::Public | Access::WebhookSignature => json!([]),
        Access::Caller => json!([{ "bearer": [] }, { "apiKey": [] }]),
        Access::MetricsToken => json!([{}, { "bearer": [] }]),
    }
}

/// The whole document.
pub fn document() -> Result<Value, String> {
    let table = routes::documented();
    let mut components = Components::default();
    let error = components.schema::<ErrorResponse>(Direction::Written);
    // Queries are read once all schemas are known (their `$ref`s resolve against them).
    let mut pending: Vec<(usize, Value)> = Vec::new();
    let mut operations: Vec<(String, String, Map<String, Value>)> = Vec::new();
    for (i, r) in table.iter().enumerate() {
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                r.method.as_str().to_lowercase(),
                r.path.replace(['{', '}'], "").replace(['/', '-', '.'], "_")
            )),
        );
        let params: Vec<Value> = path_params(r.path)
            .map(|p| json!({ "name": p, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        op.insert("parameters".into(), Value::Array(params));
        if let Some(q) = r.query {
            pending.push((i, q(&mut components, Direction::Read)));
        }
        if let Some(b) = r.body {
            op.insert(
                "requestBody".into(),
                json!({
                    "required": true,
                    "content": { "application/json": { "schema": b(&mut components, Direction::Read) } }
                }),
            );
        }
        let mut responses = Map::new();
        for (status, what, content) in &r.answers {
            let body = match content {
                Content::Json(s) => json!({
                    "description": what,
                    "content": { "application/json": { "schema": s(&mut components, Direction::Written) } }
                }),
                Content::Text(media) => json!({
                    "description": what,
                    "content": { *media: { "schema": { "type": "string" } } }
                }),
                Content::Empty => json!({ "description": what }),
            };
            responses.insert(status.to_string(), body);
        }
        for (range, what) in [
            (
                "4XX",
                "Refused: `{ error: { code, message } }` (400 INVALID_PAYLOAD, 401, 403, 404, 409, 413, 429)",
            ),
            (
                "5XX",
                "Failed: `{ error: { code, message } }` (500 INTERNAL, 503 UNAVAILABLE)",
            ),
        ] {
            responses.insert(
                range.into(),
                json!({
                    "description": what,
                    "content": { "application/json": { "schema": error.clone() } }
                }),
            );
        }
        op.insert("responses".into(), Value::Object(responses));
        op.insert("security".into(), security(r.access));
        operations.push((r.path.to_owned(), r.method.as_str().to_lowercase(), op));
    }
    let mut schemas = components.into_definitions()?;
    // A query struct is only a list of parameters: its definition is not referred to.
    let query_defs: Vec<String> = pending
        .iter()
        .filter_map(|(_, q)| q.get("$ref").and_then(Value::as_str))
        .filter_map(|r| r.rsplit('/').next())
        .map(str::to_owned)
        .collect();
    for (i, q) in pending {
        if let Some((_, _, op)) = operations.get_mut(i)
            && let Some(Value::Array(params)) = op.get_mut("parameters")
        {
            params.extend(query_params(&q, &schemas));
        }
    }
    for name in query_defs {
        schemas.remove(&name);
    }
    let mut paths = Map::new();
    for (path, method, op) in operations {
        let item = paths.entry(path).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(method, Value::Object(op));
        }
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The admin and data API beside the Socket.IO server. The Socket.IO events are described by /api/asyncapi.json and /api/schemas; docs/protocol.md is the reference.",
            "license": { "name": "MIT", "identifier": "MIT" },
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A JWT (HS256 with JWT_SECRET) or an API key",
                },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" },
            },
        },
    }))
}
