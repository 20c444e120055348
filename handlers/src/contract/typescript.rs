//! The TypeScript contract: every payload type (ts-rs), the `ClientToServerEvents` and
//! `ServerToClientEvents` maps socket.io-client is typed with, and the `Ack<T>` answer.

use std::collections::BTreeMap;
use std::fmt::Write;

use ts_rs::{Config, TS, TypeVisitor};

use super::{ClientEventVisitor, CustomBroadcastPayload, Described, visit_all};
use crate::core::error::{ErrorBody, ErrorCode};
use crate::core::events::ServerEventVisitor;

/// Where the TypeScript package keeps the generated file, from the repository root.
pub const PATH: &str = "clients/typescript/src/generated/contract.ts";

#[derive(Default)]
struct Collector {
    cfg: Config,
    /// Declarations by type name; two Rust types with one TypeScript name would collide.
    decls: BTreeMap<String, String>,
    collisions: Vec<String>,
    client: Vec<(&'static str, String, String)>,
    server: Vec<(&'static str, String)>,
}

impl Collector {
    fn new() -> Self {
        Collector {
            // JSON numbers are JavaScript numbers, whatever their width in Rust.
            cfg: Config::new().with_large_int("number"),
            ..Default::default()
        }
    }

    /// Declares `T` and everything it uses; answers the name to refer to it by.
    fn root<T: TS + 'static>(&mut self) -> String {
        self.visit::<T>();
        T::visit_generics(self);
        T::name(&self.cfg)
    }
}

impl TypeVisitor for Collector {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        // Types without a file of their own (primitives, `Vec`, `Option`) are written inline.
        if T::output_path().is_none() {
            return;
        }
        let name = T::ident(&self.cfg);
        let mut decl = T::docs().unwrap_or_default();
        if !decl.is_empty() && !decl.ends_with('\n') {
            decl.push('\n');
        }
        decl.push_str("export ");
        decl.push_str(&T::decl(&self.cfg));
        match self.decls.get(&name) {
            Some(known) if *known != decl => self.collisions.push(name),
            Some(_) => {}
            None => {
                self.decls.insert(name, decl);
                T::visit_dependencies(self);
            }
        }
    }
}

impl ClientEventVisitor for Collector {
    fn event<Req: Described, Ack: Described>(&mut self, name: &'static str) {
        let req = self.root::<Req>();
        let ack = self.root::<Ack>();
        self.client.push((name, req, ack));
    }
}

impl ServerEventVisitor for Collector {
    fn event<P: TS + schemars::JsonSchema + 'static>(&mut self, name: &'static str) {
        let payload = self.root::<P>();
        self.server.push((name, payload));
    }
}

/// The whole file. Errs naming the TypeScript names two different Rust types would share.
pub fn render() -> Result<String, String> {
    let mut c = Collector::new();
    visit_all(&mut c);
    let error_code = c.root::<ErrorCode>();
    c.root::<ErrorBody>();
    let broadcast = c.root::<CustomBroadcastPayload>();
    if !c.collisions.is_empty() {
        return Err(format!(
            "TypeScript names used by two Rust types: {}",
            c.collisions.join(", ")
        ));
    }
    let mut out = String::from(
        "// Generated from the server's Rust types by `switchboard contracts`: do not edit.\n\
         // docs/contracts.md says what it holds and how to regenerate it.\n\n",
    );
    for decl in c.decls.values() {
        out.push_str(decl);
        out.push_str("\n\n");
    }
    let _ = writeln!(
        out,
        "/** What every client event's ack callback receives. */\n\
         export type Ack<T> =\n  | {{ ok: true; data: T }}\n  | {{ ok: false; error: {{ code: {error_code}; message: string }} }};\n"
    );
    out.push_str("/** Each client → server event's request payload and ack data. */\nexport interface ClientEvents {\n");
    for (name, req, ack) in &c.client {
        let _ = writeln!(out, "  {name:?}: {{ request: {req}; ack: {ack} }};");
    }
    out.push_str("}\n\n");
    out.push_str(
        "/** socket.io-client's emit map: `io(url) as Socket<ServerToClientEvents, ClientToServerEvents>`. */\n\
         export interface ClientToServerEvents {\n",
    );
    for (name, req, ack) in &c.client {
        let _ = writeln!(
            out,
            "  {name:?}: (payload: {req}, ack?: (res: Ack<{ack}>) => void) => void;"
        );
    }
    out.push_str("}\n\n");
    out.push_str("/** socket.io-client's listen map: what the server emits. */\nexport interface ServerToClientEvents {\n");
    for (name, payload) in &c.server {
        let _ = writeln!(out, "  {name:?}: (payload: {payload}) => void;");
    }
    out.push_str("}\n\n");
    let _ = writeln!(
        out,
        "/** `custom:<event>` from `custom:broadcast`: app-chosen names, so not in the map above. */\n\
         export type CustomBroadcastEventName = `custom:${{string}}`;\n\
         export type CustomBroadcastEvent = {broadcast};\n"
    );
    let list = |names: Vec<&str>| {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "export const CLIENT_EVENTS = [{}] as const;\n",
        list(c.client.iter().map(|e| e.0).collect())
    );
    let _ = writeln!(
        out,
        "export const SERVER_EVENTS = [{}] as const;\n",
        list(c.server.iter().map(|e| e.0).collect())
    );
    let _ = writeln!(
        out,
        "export const ERROR_CODES = [{}] as const;",
        list(ErrorCode::ALL.iter().map(|c| c.as_str()).collect())
    );
    Ok(out)
}
