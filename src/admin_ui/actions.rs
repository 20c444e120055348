//! The Admin UI's actions (not in read-only mode), as the package's server handles them on
//! Socket.IO v4: `emit` (nsp, filter, event, ...args), `join` / `leave` (nsp, room, filter) and
//! `_disconnect` (nsp, close, filter). `filter` is a room or a socket id (in Node every socket is
//! in a room named by its id; socketioxide has no such room, so an id is looked up instead);
//! without it the whole namespace. Everything goes through the adapter, so it reaches every node.
//!
//! Rooms joined or left here are Socket.IO rooms of the namespace: emits into them (from here
//! or any Socket.IO room broadcast) reach the sockets, but the server's own features keep
//! following the rooms their events joined (docs/console.md).

use std::str::FromStr;
use std::sync::Arc;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::{RemoteSocket, Sid};

use switchboard_handlers::core::time::Timestamp;

use super::AdminUi;

/// Arguments one action takes at most (an emit's event arguments included).
const MAX_ARGS: usize = 32;
/// Longest namespace, room or event name an action may name.
const MAX_NAME: usize = 256;

/// All of an event's arguments (socketioxide hands a tuple type every argument).
struct Args(Vec<Value>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<Value>()? {
                    if v.len() == MAX_ARGS {
                        return Err(serde::de::Error::custom("too many arguments"));
                    }
                    v.push(x);
                }
                Ok(Args(v))
            }
        }
        d.deserialize_tuple(MAX_ARGS, V)
    }
}

/// Arguments emitted as separate Socket.IO arguments.
struct Spread<'a>(&'a [Value]);

impl Serialize for Spread<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for v in self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

fn name(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_NAME)
}

pub fn install<A: Adapter>(ui: &Arc<AdminUi<A>>, s: &SocketRef<A>) {
    let u = ui.clone();
    s.on("emit", async move |TryData(a): TryData<Args>| {
        if let Ok(Args(a)) = a {
            u.emit(&a).await;
        }
    });
    let u = ui.clone();
    s.on("join", async move |TryData(a): TryData<Args>| {
        if let Ok(Args(a)) = a {
            u.rooms(&a, true).await;
        }
    });
    let u = ui.clone();
    s.on("leave", async move |TryData(a): TryData<Args>| {
        if let Ok(Args(a)) = a {
            u.rooms(&a, false).await;
        }
    });
    let u = ui.clone();
    s.on("_disconnect", async move |TryData(a): TryData<Args>| {
        if let Ok(Args(a)) = a {
            u.disconnect(&a).await;
        }
    });
}

/// What a filter names.
enum Target<A: Adapter> {
    /// The namespace, or the sockets of a room in it.
    Many(BroadcastOperators<A>),
    Socket(RemoteSocket<A>),
    Nothing,
}

impl<A: Adapter> AdminUi<A> {
    async fn target(&self, nsp: &str, filter: Option<&str>) -> Target<A> {
        let Some(ops) = self.io.of(nsp) else {
            return Target::Nothing;
        };
        let Some(filter) = filter else {
            return Target::Many(ops);
        };
        if let Ok(sid) = Sid::from_str(filter) {
            match ops.clone().fetch_sockets().await {
                Ok(all) => {
                    if let Some(s) = all.into_iter().find(|s| s.data().id == sid) {
                        return Target::Socket(s);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "Admin UI: sockets not fetched"),
            }
        }
        Target::Many(ops.within(filter.to_owned()))
    }

    async fn emit(&self, a: &[Value]) {
        let (Some(nsp), Some(event)) = (name(a.first()), name(a.get(2))) else {
            return;
        };
        let args = Spread(a.get(3..).unwrap_or_default());
        let res = match self.target(nsp, name(a.get(1))).await {
            Target::Many(ops) => ops.emit(event, &args).await.err().map(|e| e.to_string()),
            Target::Socket(s) => s.emit(event, &args).await.err().map(|e| e.to_string()),
            Target::Nothing => None,
        };
        if let Some(e) = res {
            tracing::debug!(error = %e, "Admin UI emit not delivered everywhere");
        }
    }

    async fn rooms(&self, a: &[Value], join: bool) {
        let (Some(nsp), Some(room)) = (name(a.first()), name(a.get(1))) else {
            return;
        };
        let room = room.to_owned();
        // The sockets concerned, for the room events the Admin UI shows.
        let sockets: Vec<String> = match self.target(nsp, name(a.get(2))).await {
            Target::Many(ops) => {
                let ids = ops
                    .clone()
                    .fetch_sockets()
                    .await
                    .map(|v| v.iter().map(|s| s.data().id.to_string()).collect())
                    .unwrap_or_default();
                let res = if join {
                    ops.join(room.clone()).await
                } else {
                    ops.leave(room.clone()).await
                };
                if let Err(e) = res {
                    tracing::debug!(error = %e, "Admin UI join/leave failed");
                }
                ids
            }
            Target::Socket(s) => {
                let res = if join {
                    s.join(room.clone()).await
                } else {
                    s.leave(room.clone()).await
                };
                if let Err(e) = res {
                    tracing::debug!(error = %e, "Admin UI join/leave failed");
                }
                vec![s.data().id.to_string()]
            }
            Target::Nothing => Vec::new(),
        };
        let Some(admin) = self.io.of(super::NAMESPACE) else {
            return;
        };
        let event = if join { "room_joined" } else { "room_left" };
        let now = Timestamp::now();
        for id in sockets {
            let _ = admin.clone().emit(event, &(nsp, &room, id, now)).await;
        }
    }

    async fn disconnect(&self, a: &[Value]) {
        let Some(nsp) = name(a.first()) else {
            return;
        };
        let res = match self.target(nsp, name(a.get(2))).await {
            Target::Many(ops) => ops.disconnect().await.err().map(|e| e.to_string()),
            Target::Socket(s) => s.disconnect().await.err().map(|e| e.to_string()),
            Target::Nothing => None,
        };
        if let Some(e) = res {
            tracing::debug!(error = %e, "Admin UI disconnect not done everywhere");
        }
    }
}
