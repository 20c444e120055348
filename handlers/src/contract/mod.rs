//! The published contracts of the Socket.IO surface (docs/contracts.md): the TypeScript event
//! maps, the JSON Schemas and the AsyncAPI document, all derived from the two event tables (the
//! client events of `event_table!` in `lib.rs`, the server events of `core::events`) and from
//! the payload types they name. Nothing here is listed by hand.

pub mod asyncapi;
mod protocols;
pub mod schemas;
pub mod typescript;

use socketioxide::adapter::LocalAdapter;

use crate::core::error::AppError;
use crate::core::events::{self, ServerEventVisitor};
use crate::socketio::Ctx;

/// A type the contracts can describe: in TypeScript (ts-rs) and in JSON Schema (schemars).
pub trait Described: ts_rs::TS + schemars::JsonSchema + 'static {}
impl<T: ts_rs::TS + schemars::JsonSchema + 'static> Described for T {}

/// Reports every client → server event with its request and ack data types.
pub trait ClientEventVisitor {
    fn event<Req: Described, Ack: Described>(&mut self, name: &'static str);
}

/// Reports an event of the table with its handler's request type: only a function with a
/// handler's signature is accepted, so the request type is the one the server decodes.
pub fn visit_handler<Ack: Described, V: ClientEventVisitor, Req: Described, R, H>(
    v: &mut V,
    name: &'static str,
    _handler: H,
) where
    H: AsyncFn(&Ctx<LocalAdapter>, Req) -> Result<R, AppError>,
{
    v.event::<Req, Ack>(name);
}

/// Both tables, for a generator that treats client and server events alike.
pub trait EventVisitor: ClientEventVisitor + ServerEventVisitor {}
impl<T: ClientEventVisitor + ServerEventVisitor> EventVisitor for T {}

pub fn visit_all(v: &mut impl EventVisitor) {
    crate::visit_client_events(v);
    events::visit(v);
}

/// `custom:<event>` (from `custom:broadcast`): the names are the clients' own, so the tables
/// cannot list them; the contracts describe them as one pattern with this payload.
pub type CustomBroadcastPayload = crate::core::payloads::CustomBroadcast;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::EVENTS;
    use crate::core::events::SERVER_EVENTS;

    #[test]
    fn every_event_of_both_tables_is_in_every_contract() {
        let ts = typescript::render().expect("no TypeScript name is shared by two types");
        let set = schemas::socketio().expect("no schema name is shared by two schemas");
        let doc = asyncapi::document().expect("document");
        for event in EVENTS {
            assert!(ts.contains(&format!("  {event:?}: (payload: ")), "{event}");
            assert!(set.client.iter().any(|(n, _)| n == event), "{event}");
            let key = event.replace(':', ".");
            assert!(
                doc["operations"][format!("receive.{key}")].is_object(),
                "{event}"
            );
        }
        for event in SERVER_EVENTS {
            assert!(ts.contains(&format!("  {event:?}: (payload: ")), "{event}");
            assert!(set.server.iter().any(|(n, _)| n == event), "{event}");
            let key = event.replace(':', ".");
            assert!(
                doc["operations"][format!("send.{key}")].is_object(),
                "{event}"
            );
        }
        for (_, s) in &set.client {
            assert!(set.schemas.contains_key(&s.request) && set.schemas.contains_key(&s.ack));
        }
    }

    #[test]
    fn shared_components_hold_no_boolean_true_schemas() {
        let mut c = schemas::Components::default();
        let top = c.schema::<serde_json::Value>(schemas::Direction::Read);
        assert_eq!(top, json!({}));
        c.schema::<crate::core::payloads::CallSignal>(schemas::Direction::Written);
        let defs = c.into_definitions().expect("definitions");
        assert_eq!(defs["CallSignal"]["properties"]["signal"], json!({}));
        assert!(
            !serde_json::to_string(&defs)
                .expect("json")
                .contains(":true")
        );
    }
}
