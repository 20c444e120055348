//! The published contracts of the Socket.IO surface (docs/contracts.md): the TypeScript event
//! maps, the JSON Schemas and the AsyncAPI document, all derived from the two event tables (the
//! client events of `event_table!` in `lib.rs`, the server events of `core::events`) and from
//! the payload types they name. Nothing here is listed by hand.

pub mod asyncapi;
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
