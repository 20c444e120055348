//! Which connection is in which room, for every front end of this node: the one answer to
//! `join`, `leave`, `members_of` and `topics_of`. Sharded maps behind short locks (never held
//! across an await); always a connection's shard before a room's, so two operations cannot
//! deadlock. A room's members are a small vector until the room grows (most rooms are a user's
//! own, with one or two connections), then a map, so a join or leave in a large room stays O(1).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

/// At most this many front ends (protocols) per node.
pub const MAX_FRONT_ENDS: usize = 8;
const SHARDS: usize = 16;
/// Members kept in a vector up to this many; a map beyond.
const FEW: usize = 32;

/// A registered front end (protocol) of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrontEndId(pub(crate) u8);

impl FrontEndId {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn bit(self) -> u32 {
        1 << self.0
    }
}

type Conn = Arc<str>;
type Room = Arc<str>;

struct ConnEntry {
    front_end: FrontEndId,
    rooms: Vec<Room>,
}

enum Members {
    Few(Vec<(Conn, FrontEndId)>),
    /// Boxed: most rooms stay few, and the map and counters inline would triple every room's
    /// slot in the index.
    Many(Box<ManyMembers>),
}

struct ManyMembers {
    by_conn: HashMap<Conn, FrontEndId>,
    per_front_end: [u32; MAX_FRONT_ENDS],
}

impl Members {
    fn insert(&mut self, conn: Conn, fe: FrontEndId) {
        match self {
            Members::Few(v) if v.len() < FEW => v.push((conn, fe)),
            Members::Few(v) => {
                let mut per_front_end = [0; MAX_FRONT_ENDS];
                let mut by_conn = HashMap::with_capacity(v.len() * 2);
                for (c, f) in v.drain(..).chain(std::iter::once((conn, fe))) {
                    per_front_end[f.index()] += 1;
                    by_conn.insert(c, f);
                }
                *self = Members::Many(Box::new(ManyMembers {
                    by_conn,
                    per_front_end,
                }));
            }
            Members::Many(m) => {
                if m.by_conn.insert(conn, fe).is_none() {
                    m.per_front_end[fe.index()] += 1;
                }
            }
        }
    }

    fn remove(&mut self, conn: &str) {
        match self {
            Members::Few(v) => {
                if let Some(i) = v.iter().position(|(c, _)| &**c == conn) {
                    v.swap_remove(i);
                }
            }
            Members::Many(m) => {
                if let Some(fe) = m.by_conn.remove(conn) {
                    m.per_front_end[fe.index()] -= 1;
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Members::Few(v) => v.is_empty(),
            Members::Many(m) => m.by_conn.is_empty(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Members::Few(v) => v.len(),
            Members::Many(m) => m.by_conn.len(),
        }
    }

    /// One bit per front end with a member here.
    fn front_ends(&self) -> u32 {
        match self {
            Members::Few(v) => v.iter().fold(0, |m, (_, fe)| m | fe.bit()),
            Members::Many(m) => m
                .per_front_end
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .fold(0, |m, (i, _)| m | 1 << i),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Conn, FrontEndId)) {
        match self {
            Members::Few(v) => v.iter().for_each(|(c, fe)| f(c, *fe)),
            Members::Many(m) => m.by_conn.iter().for_each(|(c, fe)| f(c, *fe)),
        }
    }
}

/// Why a join was not recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinRefused {
    /// The connection is at its room limit and this room would be a new one.
    Full,
    /// The connection is closed (or was never opened): nothing to record.
    Closed,
}

pub(crate) struct Membership {
    hasher: RandomState,
    conns: Box<[Mutex<HashMap<Conn, ConnEntry>>]>,
    rooms: Box<[Mutex<HashMap<Room, Members>>]>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            hasher: RandomState::new(),
            conns: (0..SHARDS).map(|_| Mutex::default()).collect(),
            rooms: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Membership {
    fn shard(&self, key: &str) -> usize {
        self.hasher.hash_one(key) as usize % SHARDS
    }

    fn conn_shard(&self, conn: &str) -> MutexGuard<'_, HashMap<Conn, ConnEntry>> {
        lock(&self.conns[self.shard(conn)])
    }

    fn room_shard(&self, room: &str) -> MutexGuard<'_, HashMap<Room, Members>> {
        lock(&self.rooms[self.shard(room)])
    }

    pub fn open(&self, conn: &str, front_end: FrontEndId) {
        self.conn_shard(conn).insert(
            conn.into(),
            ConnEntry {
                front_end,
                rooms: Vec::new(),
            },
        );
    }

    /// Forgets the connection and takes it out of every room; returns those rooms.
    pub fn close(&self, conn: &str) -> Vec<String> {
        let mut conns = self.conn_shard(conn);
        let Some(entry) = conns.remove(conn) else {
            return Vec::new();
        };
        for room in &entry.rooms {
            self.remove_member(room, conn);
        }
        entry.rooms.iter().map(|r| r.to_string()).collect()
    }

    fn remove_member(&self, room: &str, conn: &str) {
        let mut rooms = self.room_shard(room);
        if let Some(members) = rooms.get_mut(room) {
            members.remove(conn);
            if members.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// Records `conn` in `room`; true when it was not in it before.
    pub fn join(&self, conn: &str, room: &str, max_rooms: usize) -> Result<bool, JoinRefused> {
        let mut conns = self.conn_shard(conn);
        let Some((key, entry)) = conns.get_key_value(conn) else {
            return Err(JoinRefused::Closed);
        };
        if entry.rooms.iter().any(|r| &**r == room) {
            return Ok(false);
        }
        if entry.rooms.len() >= max_rooms {
            return Err(JoinRefused::Full);
        }
        let (key, fe) = (key.clone(), entry.front_end);
        let room_key = {
            let mut rooms = self.room_shard(room);
            let room_key = match rooms.get_key_value(room) {
                Some((k, _)) => k.clone(),
                None => Room::from(room),
            };
            rooms
                .entry(room_key.clone())
                .or_insert_with(|| Members::Few(Vec::with_capacity(1)))
                .insert(key, fe);
            room_key
        };
        if let Some(entry) = conns.get_mut(conn) {
            entry.rooms.push(room_key);
        }
        Ok(true)
    }

    /// Whether `conn` could join `room` now (it is open, and in it or under its room limit).
    pub fn can_join(&self, conn: &str, room: &str, max_rooms: usize) -> Result<(), JoinRefused> {
        let conns = self.conn_shard(conn);
        let Some(entry) = conns.get(conn) else {
            return Err(JoinRefused::Closed);
        };
        if entry.rooms.len() >= max_rooms && !entry.rooms.iter().any(|r| &**r == room) {
            return Err(JoinRefused::Full);
        }
        Ok(())
    }

    /// Takes `conn` out of `room`; true when it was in it.
    pub fn leave(&self, conn: &str, room: &str) -> bool {
        let mut conns = self.conn_shard(conn);
        let Some(entry) = conns.get_mut(conn) else {
            return false;
        };
        let Some(i) = entry.rooms.iter().position(|r| &**r == room) else {
            return false;
        };
        entry.rooms.swap_remove(i);
        self.remove_member(room, conn);
        true
    }

    pub fn is_member(&self, conn: &str, room: &str) -> bool {
        self.conn_shard(conn)
            .get(conn)
            .is_some_and(|e| e.rooms.iter().any(|r| &**r == room))
    }

    pub fn rooms_of(&self, conn: &str) -> Vec<String> {
        self.conn_shard(conn)
            .get(conn)
            .map(|e| e.rooms.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default()
    }

    pub fn front_end_of(&self, conn: &str) -> Option<FrontEndId> {
        self.conn_shard(conn).get(conn).map(|e| e.front_end)
    }

    pub fn members_of(&self, room: &str) -> Vec<(String, FrontEndId)> {
        let mut out = Vec::new();
        if let Some(m) = self.room_shard(room).get(room) {
            out.reserve(m.len());
            m.for_each(|c, fe| out.push((c.to_string(), fe)));
        }
        out
    }

    /// How many connections `room` has on this node (every front end's).
    pub fn member_count(&self, room: &str) -> usize {
        self.room_shard(room).get(room).map_or(0, Members::len)
    }

    /// One bit per front end with a member in any of `rooms`.
    pub fn front_ends_in(&self, rooms: &[String]) -> u32 {
        rooms.iter().fold(0, |mask, room| {
            mask | self
                .room_shard(room)
                .get(room.as_str())
                .map_or(0, Members::front_ends)
        })
    }

    /// `front_end`'s connections in any of `rooms` (each once), minus those in any of
    /// `except_rooms` and `except`.
    pub fn members_in(
        &self,
        front_end: FrontEndId,
        rooms: &[String],
        except_rooms: &[String],
        except: Option<&str>,
    ) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for room in rooms {
            if let Some(m) = self.room_shard(room).get(room.as_str()) {
                m.for_each(|c, fe| {
                    if fe == front_end {
                        out.push(c.clone());
                    }
                });
            }
        }
        if rooms.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        if let Some(except) = except {
            out.retain(|c| &**c != except);
        }
        if !except_rooms.is_empty() && !out.is_empty() {
            let mut skip: Vec<Arc<str>> = Vec::new();
            for room in except_rooms {
                if let Some(m) = self.room_shard(room).get(room.as_str()) {
                    m.for_each(|c, _| skip.push(c.clone()));
                }
            }
            out.retain(|c| !skip.contains(c));
        }
        out
    }

    /// Open connections per front end.
    pub fn connections(&self) -> [usize; MAX_FRONT_ENDS] {
        let mut n = [0; MAX_FRONT_ENDS];
        for shard in self.conns.iter() {
            for e in lock(shard).values() {
                n[e.front_end.index()] += 1;
            }
        }
        n
    }

    /// Rooms with at least one member on this node, and how many.
    pub fn rooms(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for shard in self.rooms.iter() {
            out.extend(lock(shard).iter().map(|(r, m)| (r.to_string(), m.len())));
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FrontEndId = FrontEndId(0);
    const B: FrontEndId = FrontEndId(1);

    #[test]
    fn a_closed_connection_joins_nothing_and_leaves_no_trace() {
        let m = Membership::default();
        assert_eq!(m.join("c1", "r", 10), Err(JoinRefused::Closed));
        m.open("c1", A);
        assert_eq!(m.join("c1", "r", 10), Ok(true));
        assert_eq!(m.join("c1", "r", 10), Ok(false));
        assert_eq!(m.close("c1"), ["r"]);
        assert!(m.members_of("r").is_empty());
        assert!(m.rooms().is_empty());
        assert_eq!(m.join("c1", "r", 10), Err(JoinRefused::Closed));
    }

    #[test]
    fn the_room_limit_counts_new_rooms_only() {
        let m = Membership::default();
        m.open("c", A);
        assert_eq!(m.join("c", "r1", 2), Ok(true));
        assert_eq!(m.join("c", "r2", 2), Ok(true));
        assert_eq!(m.join("c", "r3", 2), Err(JoinRefused::Full));
        assert_eq!(m.can_join("c", "r3", 2), Err(JoinRefused::Full));
        assert_eq!(m.can_join("c", "r1", 2), Ok(()));
        assert_eq!(m.join("c", "r1", 2), Ok(false));
        assert!(m.leave("c", "r1"));
        assert!(!m.leave("c", "r1"));
        assert_eq!(m.join("c", "r3", 2), Ok(true));
        let mut rooms = m.rooms_of("c");
        rooms.sort();
        assert_eq!(rooms, ["r2", "r3"]);
    }

    #[test]
    fn large_rooms_switch_to_a_map_and_keep_their_counts() {
        let m = Membership::default();
        for i in 0..100 {
            let c = format!("c{i}");
            m.open(&c, if i % 2 == 0 { A } else { B });
            m.join(&c, "big", 10).expect("joins");
        }
        assert_eq!(m.members_of("big").len(), 100);
        assert_eq!(m.front_ends_in(&["big".into()]), 0b11);
        for i in (1..100).step_by(2) {
            m.close(&format!("c{i}"));
        }
        assert_eq!(m.front_ends_in(&["big".into()]), 0b01);
        assert_eq!(m.members_in(B, &["big".into()], &[], None).len(), 0);
        assert_eq!(m.members_in(A, &["big".into()], &[], None).len(), 50);
        assert_eq!(m.connections()[A.index()], 50);
        assert_eq!(m.connections()[B.index()], 0);
    }

    #[test]
    fn members_in_counts_each_connection_once_and_honours_both_exceptions() {
        let m = Membership::default();
        for c in ["x", "y", "z"] {
            m.open(c, A);
            m.join(c, "r1", 10).expect("joins");
            m.join(c, "r2", 10).expect("joins");
        }
        m.join("z", "skip", 10).expect("joins");
        let rooms = ["r1".to_string(), "r2".to_string()];
        let mut got: Vec<String> = m
            .members_in(A, &rooms, &["skip".into()], Some("x"))
            .iter()
            .map(|c| c.to_string())
            .collect();
        got.sort();
        assert_eq!(got, ["y"]);
        assert_eq!(m.members_in(A, &rooms, &[], None).len(), 3);
    }
}
