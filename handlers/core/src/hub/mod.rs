//! The hub: one place for this node's connections of every protocol, the rooms (topics) they
//! are in, and the one fan-out path. Use cases publish through it (it is the [`Fanout`] port);
//! it delivers to every front end with members in the targeted rooms — each front end encodes a
//! broadcast once for its protocol and writes it to its connections — and hands the broadcast
//! once to the cross-node bus, whose receivers deliver it to every front end on their node.
//!
//! A front end (Socket.IO, and the other protocols) registers once at start-up and opens each
//! connection through [`crate::session`]; it never keeps its own notion of who is in which room,
//! except as a mirror for delivery ([`FrontEnd::joined`]), which the hub drives.

pub mod membership;
pub mod remote;

use std::sync::{Arc, OnceLock, RwLock};

use async_trait::async_trait;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::AppError;
use crate::ports::{ConnId, Fanout, LocalSink};
use crate::topic::Topic;
pub use membership::FrontEndId;
use membership::{JoinRefused, MAX_FRONT_ENDS, Membership};
use remote::{RemoteRooms, RoomBroadcast};

/// How far a broadcast goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Made on this node, for every node: the front end delivers here, and the bus (or, for a
    /// front end that [`FrontEnd::reaches_other_nodes`], its own transport) takes it further.
    Cluster,
    /// Made on this node, for this node only (every node learns the event by itself).
    Node,
    /// Made on another node and received from the bus: deliver here only.
    Remote,
}

/// One broadcast as a front end receives it: the payload is JSON already encoded once for
/// every front end; each front end frames it once for its protocol.
pub struct Delivery<'a> {
    pub rooms: &'a [String],
    pub except_rooms: &'a [String],
    /// A connection to skip (the sender). Connection ids are unique across front ends, so a
    /// front end skips it only when it is one of its own.
    pub except: Option<&'a str>,
    pub event: &'a str,
    pub payload: &'a RawValue,
    pub scope: Scope,
    /// This front end's id, for [`Hub::members_in`].
    pub front_end: FrontEndId,
}

/// A protocol front end of this node.
#[async_trait]
pub trait FrontEnd: Send + Sync {
    /// Its name in metrics and admin views ("socket.io", …).
    fn protocol(&self) -> &'static str;

    /// Delivers one broadcast to this front end's connections in `rooms`. Called only when it
    /// has members there (or reaches other nodes itself). Errors are the transport's (the
    /// adapter's Redis); a slow connection is skipped and logged, not an error.
    async fn deliver(&self, hub: &Hub, delivery: &Delivery<'_>) -> Result<(), AppError>;

    /// One event to one of its connections (per-connection deliveries: live queries).
    fn send(&self, conn: &str, event: &str, payload: &Value);

    /// The hub recorded a join or a leave: a front end whose transport keeps its own delivery
    /// index (socketioxide's rooms) mirrors it here.
    fn joined(&self, _conn: &str, _room: &str) {}
    fn left(&self, _conn: &str, _room: &str) {}

    /// True when, without the bus, this front end's own transport carries its broadcasts to
    /// the other nodes (the socketioxide Redis adapter with `ROOM_BUS=false`).
    fn reaches_other_nodes(&self) -> bool {
        false
    }

    /// True when this front end wants the broadcast to `rooms` although it has no members in
    /// them: its connections subscribe by pattern (HTTP pub/sub's `pattern=true`), which exact
    /// rooms cannot express, and it matches the rooms itself in `deliver`. Asked once per
    /// broadcast, so it must be cheap.
    fn watches(&self, _rooms: &[String]) -> bool {
        false
    }
}

/// Told about every connection opened or closed and every join and leave on this node, after
/// the hub recorded it (the Socket.IO Admin UI's socket and room events). Called on the
/// caller's task, outside the hub's locks: it must return at once.
pub trait Observer: Send + Sync {
    fn opened(&self, conn: &str, protocol: &'static str);
    fn closed(&self, conn: &str, protocol: &'static str);
    fn joined(&self, conn: &str, protocol: &'static str, room: &str);
    fn left(&self, conn: &str, protocol: &'static str, room: &str);

    /// True while someone looks at the traffic (an Admin UI is connected): front ends ask
    /// [`Hub::watcher`] before each event and report it below only then, so unwatched traffic
    /// costs one atomic load.
    fn watching(&self) -> bool {
        false
    }
    /// Packets a client of `protocol` sent to this node and their bytes, accepted or not.
    fn packets_in(&self, _protocol: &'static str, _packets: u64, _bytes: u64) {}
    /// One event a client sent on `conn` and the server accepted: its frame (`["event", …]`).
    fn received(&self, _conn: &str, _protocol: &'static str, _frame: &str) {}
    /// One event the hub hands `conn`'s front end to send (a broadcast, once per local
    /// recipient, or a message to that connection alone).
    fn sent(&self, _conn: &str, _protocol: &'static str, _event: &str, _payload: &RawValue) {}
}

pub struct Hub {
    members: Membership,
    front_ends: RwLock<Arc<[Arc<dyn FrontEnd>]>>,
    remote: OnceLock<Arc<dyn RemoteRooms>>,
    observer: OnceLock<Arc<dyn Observer>>,
    max_rooms_per_conn: usize,
}

impl Hub {
    pub fn new(max_rooms_per_conn: usize) -> Self {
        Hub {
            members: Membership::default(),
            front_ends: RwLock::new(Arc::from(Vec::new())),
            remote: OnceLock::new(),
            observer: OnceLock::new(),
            max_rooms_per_conn,
        }
    }

    /// Registers a front end (at start-up). At most [`MAX_FRONT_ENDS`].
    pub fn register(&self, front_end: Arc<dyn FrontEnd>) -> Result<FrontEndId, AppError> {
        let mut fes = self.front_ends.write().unwrap_or_else(|p| p.into_inner());
        if fes.len() >= MAX_FRONT_ENDS {
            return Err(AppError::internal(format!(
                "at most {MAX_FRONT_ENDS} front ends per node"
            )));
        }
        let id = FrontEndId(fes.len() as u8);
        let mut v: Vec<Arc<dyn FrontEnd>> = fes.iter().cloned().collect();
        v.push(front_end);
        *fes = Arc::from(v);
        Ok(id)
    }

    /// Broadcasts made here also go to the other nodes through `bus` (set once).
    pub fn set_remote(&self, bus: Arc<dyn RemoteRooms>) {
        let _ = self.remote.set(bus);
    }

    /// Reports membership changes to `observer` from now on (set once).
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    /// The observer, while it watches the traffic (see [`Observer::watching`]).
    pub fn watcher(&self) -> Option<&dyn Observer> {
        self.observer
            .get()
            .map(|o| o.as_ref())
            .filter(|o| o.watching())
    }

    fn front_ends(&self) -> Arc<[Arc<dyn FrontEnd>]> {
        self.front_ends
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn front_end(&self, id: FrontEndId) -> Option<Arc<dyn FrontEnd>> {
        self.front_ends().get(id.index()).cloned()
    }

    // ---- membership ----

    /// A new connection of `front_end` (see `session::open`).
    pub fn open(&self, conn: &str, front_end: FrontEndId) {
        self.members.open(conn, front_end);
        if let Some(o) = self.observer.get()
            && let Some(fe) = self.front_end(front_end)
        {
            o.opened(conn, fe.protocol());
        }
    }

    /// The connection is gone: out of every room. Its front end dropped its own index already.
    pub fn close(&self, conn: &str) {
        let Some(o) = self.observer.get() else {
            self.members.close(conn);
            return;
        };
        let fe = self.front_end_of(conn);
        let rooms = self.members.close(conn);
        if let Some(fe) = fe {
            let protocol = fe.protocol();
            for room in &rooms {
                o.left(conn, protocol, room);
            }
            o.closed(conn, protocol);
        }
    }

    /// Refuses (before any state changes) when `conn` is at its room limit and `topic` would
    /// be a new room. A closed connection passes: its join will record nothing.
    pub fn can_join(&self, conn: &str, topic: &Topic) -> Result<(), AppError> {
        match self
            .members
            .can_join(conn, &topic.room(), self.max_rooms_per_conn)
        {
            Err(JoinRefused::Full) => Err(self.full()),
            Ok(()) | Err(JoinRefused::Closed) => Ok(()),
        }
    }

    fn full(&self) -> AppError {
        AppError::invalid(format!(
            "a socket may be in at most {} rooms; leave one first",
            self.max_rooms_per_conn
        ))
    }

    /// `conn` joins `topic` (idempotent). A closed connection joins nothing.
    pub fn join(&self, conn: &str, topic: &Topic) -> Result<(), AppError> {
        self.join_room(conn, &topic.room())
    }

    fn join_room(&self, conn: &str, room: &str) -> Result<(), AppError> {
        match self.members.join(conn, room, self.max_rooms_per_conn) {
            Ok(true) => {
                if let Some(fe) = self.front_end_of(conn) {
                    fe.joined(conn, room);
                    if let Some(o) = self.observer.get() {
                        o.joined(conn, fe.protocol(), room);
                    }
                }
                Ok(())
            }
            Ok(false) | Err(JoinRefused::Closed) => Ok(()),
            Err(JoinRefused::Full) => Err(self.full()),
        }
    }

    /// `conn` leaves `topic`; true when it was in it.
    pub fn leave(&self, conn: &str, topic: &Topic) -> bool {
        let room = topic.room();
        let was_in = self.members.leave(conn, &room);
        if was_in && let Some(fe) = self.front_end_of(conn) {
            fe.left(conn, &room);
            if let Some(o) = self.observer.get() {
                o.left(conn, fe.protocol(), &room);
            }
        }
        was_in
    }

    pub fn is_member(&self, conn: &str, topic: &Topic) -> bool {
        self.members.is_member(conn, &topic.room())
    }

    /// The rooms `conn` is in.
    pub fn topics_of(&self, conn: &str) -> Vec<String> {
        self.members.rooms_of(conn)
    }

    /// This node's connections in `topic`, with their protocol.
    pub fn members_of(&self, topic: &Topic) -> Vec<(ConnId, &'static str)> {
        let fes = self.front_ends();
        self.members
            .members_of(&topic.room())
            .into_iter()
            .map(|(c, fe)| (c, fes.get(fe.index()).map_or("?", |f| f.protocol())))
            .collect()
    }

    /// How many of this node's connections are in `topic` (without listing them).
    pub fn member_count(&self, topic: &Topic) -> usize {
        self.members.member_count(&topic.room())
    }

    /// Open connections on this node per protocol.
    pub fn connections_by_protocol(&self) -> Vec<(&'static str, usize)> {
        let n = self.members.connections();
        self.front_ends()
            .iter()
            .enumerate()
            .map(|(i, fe)| (fe.protocol(), n[i]))
            .collect()
    }

    /// Rooms with members on this node, with their member counts, by name.
    pub fn rooms(&self) -> Vec<(String, usize)> {
        self.members.rooms()
    }

    /// For front ends that deliver connection by connection: `front_end`'s connections in any
    /// of the delivery's rooms, each once, minus the exceptions.
    pub fn members_in(&self, d: &Delivery<'_>) -> Vec<Arc<str>> {
        self.members
            .members_in(d.front_end, d.rooms, d.except_rooms, d.except)
    }

    fn front_end_of(&self, conn: &str) -> Option<Arc<dyn FrontEnd>> {
        self.members
            .front_end_of(conn)
            .and_then(|id| self.front_end(id))
    }

    // ---- fan-out ----

    /// Delivers on this node to every front end concerned, then (for `Scope::Cluster`) hands
    /// the broadcast to the bus. The first transport error is returned after every front end
    /// had its turn.
    async fn broadcast(
        &self,
        rooms: Vec<String>,
        except_rooms: Vec<String>,
        except: Option<&str>,
        event: &str,
        payload: &RawValue,
        scope: Scope,
    ) -> Result<(), AppError> {
        let res = self
            .deliver_here(&rooms, &except_rooms, except, event, payload, scope)
            .await;
        if scope == Scope::Cluster
            && let Some(bus) = self.remote.get()
        {
            bus.forward(RoomBroadcast {
                rooms,
                except_rooms,
                except: except.map(str::to_owned),
                event: event.to_owned(),
                payload: payload.to_owned(),
            })
            .await;
        }
        res
    }

    async fn deliver_here(
        &self,
        rooms: &[String],
        except_rooms: &[String],
        except: Option<&str>,
        event: &str,
        payload: &RawValue,
        scope: Scope,
    ) -> Result<(), AppError> {
        let fes = self.front_ends();
        let present = self.members.front_ends_in(rooms);
        let mut res = Ok(());
        for (i, fe) in fes.iter().enumerate() {
            let id = FrontEndId(i as u8);
            let further = scope == Scope::Cluster && fe.reaches_other_nodes();
            if present & (1 << i) == 0 && !further && !fe.watches(rooms) {
                continue;
            }
            let d = Delivery {
                rooms,
                except_rooms,
                except,
                event,
                payload,
                scope,
                front_end: id,
            };
            if let Some(o) = self.watcher() {
                for conn in self.members_in(&d) {
                    o.sent(&conn, fe.protocol(), event, payload);
                }
            }
            if let Err(e) = fe.deliver(self, &d).await
                && res.is_ok()
            {
                res = Err(e);
            }
        }
        res
    }

    /// A broadcast another node made, received from the bus: to every front end here.
    pub async fn deliver_remote(&self, b: &RoomBroadcast) {
        if let Err(e) = self
            .deliver_here(
                &b.rooms,
                &b.except_rooms,
                b.except.as_deref(),
                &b.event,
                &b.payload,
                Scope::Remote,
            )
            .await
        {
            tracing::warn!(event = %b.event, error = %e, "remote broadcast not delivered");
        }
    }
}

fn rooms_of(topics: &[Topic]) -> Vec<String> {
    topics.iter().map(Topic::room).collect()
}

fn encode(payload: &Value) -> Result<Box<RawValue>, AppError> {
    serde_json::value::to_raw_value(payload).map_err(AppError::internal)
}

#[async_trait]
impl Fanout for Hub {
    async fn publish(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except: Option<&ConnId>,
    ) -> Result<(), AppError> {
        let payload = encode(payload)?;
        self.publish_encoded(topics, event, &payload, except).await
    }

    async fn publish_encoded(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &RawValue,
        except: Option<&ConnId>,
    ) -> Result<(), AppError> {
        self.broadcast(
            rooms_of(topics),
            Vec::new(),
            except.map(String::as_str),
            event,
            payload,
            Scope::Cluster,
        )
        .await
    }

    async fn publish_except_topics(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except_topics: &[Topic],
    ) -> Result<(), AppError> {
        let payload = encode(payload)?;
        self.broadcast(
            rooms_of(topics),
            rooms_of(except_topics),
            None,
            event,
            &payload,
            Scope::Cluster,
        )
        .await
    }

    async fn publish_local(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
    ) -> Result<(), AppError> {
        let payload = encode(payload)?;
        self.broadcast(
            rooms_of(topics),
            Vec::new(),
            None,
            event,
            &payload,
            Scope::Node,
        )
        .await
    }
}

impl LocalSink for Hub {
    fn send(&self, conn: &ConnId, event: &str, payload: &Value) {
        if let Some(fe) = self.front_end_of(conn) {
            if let Some(o) = self.watcher()
                && let Ok(raw) = serde_json::value::to_raw_value(payload)
            {
                o.sent(conn, fe.protocol(), event, &raw);
            }
            fe.send(conn, event, payload);
        }
    }
}

#[cfg(test)]
mod tests;
