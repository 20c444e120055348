//! Presence in process, for a single node without Redis. Same semantics as the Redis store
//! (one conformance suite): connection entries expire after the TTL unless refreshed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::ids::{ProjectId, UserId};
use crate::ports::{ConnId, Presence, PresenceStore, StoreResult};
use crate::time::Timestamp;

pub struct MemoryPresence {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<UserId, HashMap<ConnId, Instant>>,
    announced: HashMap<UserId, Presence>,
}

impl MemoryPresence {
    pub fn new(ttl: Duration) -> Self {
        MemoryPresence {
            ttl,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn purge(conns: &mut HashMap<ConnId, Instant>, now: Instant) {
    conns.retain(|_, exp| *exp > now);
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn add_connection(&self, user: &UserId, conn: &ConnId) -> StoreResult<bool> {
        let now = Instant::now();
        let mut g = self.lock();
        let set = g.conns.entry(user.clone()).or_default();
        purge(set, now);
        set.insert(conn.clone(), now + self.ttl);
        Ok(set.len() == 1)
    }

    async fn admit_connection(&self, user: &UserId, conn: &ConnId, max: u64) -> StoreResult<bool> {
        let now = Instant::now();
        let mut g = self.lock();
        let set = g.conns.entry(user.clone()).or_default();
        let known = !set.is_empty();
        purge(set, now);
        if set.len() as u64 >= max && !set.contains_key(conn) {
            // A user whose connections all expired stays until the sweep reports them
            // offline; only an entry this call created goes again.
            if !known {
                g.conns.remove(user);
            }
            return Ok(false);
        }
        set.insert(conn.clone(), now + self.ttl);
        Ok(true)
    }

    async fn remove_connection(&self, user: &UserId, conn: &ConnId) -> StoreResult<bool> {
        let now = Instant::now();
        let mut g = self.lock();
        let Some(set) = g.conns.get_mut(user) else {
            return Ok(false);
        };
        set.remove(conn);
        purge(set, now);
        if set.is_empty() {
            g.conns.remove(user);
            return Ok(true);
        }
        Ok(false)
    }

    async fn heartbeat(&self, conns: &[(UserId, ConnId)]) -> StoreResult<()> {
        let exp = Instant::now() + self.ttl;
        let mut g = self.lock();
        for (u, c) in conns {
            g.conns.entry(u.clone()).or_default().insert(c.clone(), exp);
        }
        Ok(())
    }

    async fn sweep(&self) -> StoreResult<Vec<UserId>> {
        let now = Instant::now();
        let mut g = self.lock();
        let mut gone = Vec::new();
        g.conns.retain(|u, set| {
            purge(set, now);
            if set.is_empty() {
                gone.push(u.clone());
                false
            } else {
                true
            }
        });
        Ok(gone)
    }

    async fn connections(&self, user: &UserId) -> StoreResult<u64> {
        let now = Instant::now();
        Ok(self
            .lock()
            .conns
            .get(user)
            .map(|s| s.values().filter(|e| **e > now).count() as u64)
            .unwrap_or(0))
    }

    async fn announce(&self, p: &Presence) -> StoreResult<()> {
        let mut g = self.lock();
        let entry = g
            .announced
            .entry(p.user.clone())
            .or_insert_with(|| p.clone());
        let mut projects = std::mem::take(&mut entry.projects);
        for pr in &p.projects {
            if !projects.contains(pr) {
                projects.push(pr.clone());
            }
        }
        *entry = Presence {
            projects,
            ..p.clone()
        };
        Ok(())
    }

    async fn touch(&self, user: &UserId, at: Timestamp) -> StoreResult<bool> {
        Ok(match self.lock().announced.get_mut(user) {
            Some(p) => {
                p.last_seen = at;
                true
            }
            None => false,
        })
    }

    async fn retract(&self, user: &UserId) -> StoreResult<Option<Presence>> {
        Ok(self.lock().announced.remove(user))
    }

    async fn announced_in(&self, project: &ProjectId) -> StoreResult<Vec<Presence>> {
        let mut v: Vec<Presence> = self
            .lock()
            .announced
            .values()
            .filter(|p| p.projects.contains(project))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admission_stops_at_the_cap_and_frees_with_disconnects() {
        let p = MemoryPresence::new(Duration::from_secs(60));
        let user = UserId::try_from("alice".to_owned()).expect("id");
        for i in 0..3 {
            assert!(
                p.admit_connection(&user, &format!("c{i}"), 3)
                    .await
                    .expect("ok")
            );
        }
        assert!(
            !p.admit_connection(&user, &"c3".to_owned(), 3)
                .await
                .expect("ok")
        );
        // A socket already counted is not refused again.
        assert!(
            p.admit_connection(&user, &"c0".to_owned(), 3)
                .await
                .expect("ok")
        );
        assert_eq!(p.connections(&user).await.expect("ok"), 3);
        p.remove_connection(&user, &"c1".to_owned())
            .await
            .expect("ok");
        assert!(
            p.admit_connection(&user, &"c3".to_owned(), 3)
                .await
                .expect("ok")
        );
    }

    #[tokio::test]
    async fn expired_connections_do_not_count() {
        let p = MemoryPresence::new(Duration::from_millis(1));
        let user = UserId::try_from("bob".to_owned()).expect("id");
        assert!(
            p.admit_connection(&user, &"a".to_owned(), 1)
                .await
                .expect("ok")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            p.admit_connection(&user, &"b".to_owned(), 1)
                .await
                .expect("ok")
        );
    }
}
