//! Presence in Redis, shared by every node: per-connection entries in `conns:<user>` hashes
//! whose values are expiry times, a `users` sorted set by latest expiry for the sweep, and
//! the announced state per user. The add/remove/sweep steps are Lua scripts, so "first
//! connection" and "last connection" are decided atomically: one node, one broadcast. The
//! announced state changes by compare-and-set, so one user's sockets announcing on several
//! nodes at once all keep their projects.

use std::time::Duration;

use ::redis::{RedisError, Script, cmd};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{ProjectId, UserId};
use switchboard_handlers::core::ports::{ConnId, Presence, PresenceStore, StoreResult};
use switchboard_handlers::core::time::Timestamp;

use crate::redis::Client;

/// The Lua steps, run by hash (`Script` loads one again where Redis has forgotten it).
struct Scripts {
    add: Script,
    remove: Script,
    heartbeat: Script,
    sweep: Script,
    admit: Script,
    set_state: Script,
    retract: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            add: Script::new(include_str!("lua/presence_add.lua")),
            remove: Script::new(include_str!("lua/presence_remove.lua")),
            heartbeat: Script::new(include_str!("lua/presence_heartbeat.lua")),
            sweep: Script::new(include_str!("lua/presence_sweep.lua")),
            admit: Script::new(include_str!("lua/presence_admit.lua")),
            set_state: Script::new(include_str!("lua/presence_set_state.lua")),
            retract: Script::new(include_str!("lua/presence_retract.lua")),
        }
    }
}

/// Compare-and-set attempts before giving up on a state other nodes keep changing. Every
/// round lets at least one writer through, so this outlasts far more simultaneous writers of
/// one user's presence than the default socket cap (50) allows.
const STATE_ATTEMPTS: usize = 256;

pub struct RedisPresence {
    client: Client,
    scripts: Scripts,
    prefix: String,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    status: String,
    metadata: Value,
    last_seen: Timestamp,
    projects: Vec<ProjectId>,
}

fn err(e: RedisError) -> AppError {
    AppError::unavailable("redis", e)
}

fn now_ms() -> i64 {
    Timestamp::now().millis()
}

impl RedisPresence {
    pub fn new(client: Client, prefix: &str, ttl: Duration) -> Self {
        RedisPresence {
            client,
            scripts: Scripts::new(),
            prefix: format!("{prefix}:presence:"),
            ttl,
        }
    }

    fn conns_prefix(&self) -> String {
        format!("{}conns:", self.prefix)
    }

    fn conns(&self, user: &UserId) -> String {
        format!("{}{user}", self.conns_prefix())
    }

    fn users(&self) -> String {
        format!("{}users", self.prefix)
    }

    fn state(&self, user: &UserId) -> String {
        format!("{}state:{user}", self.prefix)
    }

    fn projects_prefix(&self) -> String {
        format!("{}project:", self.prefix)
    }

    fn project(&self, p: &ProjectId) -> String {
        format!("{}{p}", self.projects_prefix())
    }

    fn expiry(&self) -> i64 {
        now_ms() + i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }

    async fn load_raw(&self, user: &UserId) -> StoreResult<Option<String>> {
        self.client
            .query(cmd("GET").arg(self.state(user)))
            .await
            .map_err(err)
    }

    async fn load(&self, user: &UserId) -> StoreResult<Option<Stored>> {
        Ok(self
            .load_raw(user)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Reads the state, lets `change` compute the next one (None: leave it alone) and writes it
    /// only if nobody wrote in between, retrying otherwise. Returns whether it wrote.
    async fn update(
        &self,
        user: &UserId,
        change: impl Fn(Option<Stored>) -> Option<Stored>,
    ) -> StoreResult<bool> {
        for _ in 0..STATE_ATTEMPTS {
            let raw = self.load_raw(user).await?;
            let current = raw.as_deref().and_then(|s| serde_json::from_str(s).ok());
            let Some(next) = change(current) else {
                return Ok(false);
            };
            let json = serde_json::to_string(&next).map_err(AppError::internal)?;
            let mut args = vec![
                raw.unwrap_or_default(),
                json,
                self.projects_prefix(),
                user.to_string(),
            ];
            args.extend(next.projects.iter().map(|p| p.to_string()));
            let written: i64 = self
                .client
                .invoke(self.scripts.set_state.key(self.state(user)).arg(args))
                .await
                .map_err(err)?;
            if written == 1 {
                return Ok(true);
            }
        }
        Err(AppError::unavailable(
            "redis",
            format!("the presence of {user} kept changing during {STATE_ATTEMPTS} attempts"),
        ))
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn add_connection(&self, user: &UserId, conn: &ConnId) -> StoreResult<bool> {
        let first: i64 = self
            .client
            .invoke(
                self.scripts
                    .add
                    .key(self.conns(user))
                    .key(self.users())
                    .arg(conn)
                    .arg(self.expiry())
                    .arg(now_ms())
                    .arg(user.to_string()),
            )
            .await
            .map_err(err)?;
        Ok(first == 1)
    }

    /// One script counts the live entries and adds this one, so nodes admitting the same user
    /// at once cannot pass the cap together.
    async fn admit_connection(&self, user: &UserId, conn: &ConnId, max: u64) -> StoreResult<bool> {
        let admitted: i64 = self
            .client
            .invoke(
                self.scripts
                    .admit
                    .key(self.conns(user))
                    .key(self.users())
                    .arg(conn)
                    .arg(self.expiry())
                    .arg(now_ms())
                    .arg(user.to_string())
                    .arg(max),
            )
            .await
            .map_err(err)?;
        Ok(admitted == 1)
    }

    async fn remove_connection(&self, user: &UserId, conn: &ConnId) -> StoreResult<bool> {
        let last: i64 = self
            .client
            .invoke(
                self.scripts
                    .remove
                    .key(self.conns(user))
                    .key(self.users())
                    .arg(conn)
                    .arg(now_ms())
                    .arg(user.to_string()),
            )
            .await
            .map_err(err)?;
        Ok(last == 1)
    }

    async fn heartbeat(&self, conns: &[(UserId, ConnId)]) -> StoreResult<()> {
        for chunk in conns.chunks(500) {
            let mut args = vec![self.expiry().to_string(), self.conns_prefix()];
            for (u, c) in chunk {
                args.push(u.to_string());
                args.push(c.clone());
            }
            self.client
                .invoke::<i64>(self.scripts.heartbeat.key(self.users()).arg(args))
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn sweep(&self) -> StoreResult<Vec<UserId>> {
        let gone: Vec<String> = self
            .client
            .invoke(
                self.scripts
                    .sweep
                    .key(self.users())
                    .arg(now_ms())
                    .arg(self.conns_prefix()),
            )
            .await
            .map_err(err)?;
        Ok(gone
            .into_iter()
            .filter_map(|u| UserId::try_from(u).ok())
            .collect())
    }

    async fn connections(&self, user: &UserId) -> StoreResult<u64> {
        let all: std::collections::HashMap<String, i64> = self
            .client
            .query(cmd("HGETALL").arg(self.conns(user)))
            .await
            .map_err(err)?;
        let now = now_ms();
        Ok(all.values().filter(|e| **e > now).count() as u64)
    }

    async fn announce(&self, p: &Presence) -> StoreResult<()> {
        self.update(&p.user, |current| {
            let mut projects = current.map(|s| s.projects).unwrap_or_default();
            for pr in &p.projects {
                if !projects.contains(pr) {
                    projects.push(pr.clone());
                }
            }
            Some(Stored {
                status: p.status.clone(),
                metadata: p.metadata.clone(),
                last_seen: p.last_seen,
                projects,
            })
        })
        .await
        .map(|_| ())
    }

    async fn touch(&self, user: &UserId, at: Timestamp) -> StoreResult<bool> {
        // Only an existing state is touched: a retraction racing this never gets undone.
        self.update(user, |current| {
            current.map(|s| Stored { last_seen: at, ..s })
        })
        .await
    }

    async fn retract(&self, user: &UserId) -> StoreResult<Option<Presence>> {
        let raw: Option<String> = self
            .client
            .invoke(
                self.scripts
                    .retract
                    .key(self.state(user))
                    .arg(self.projects_prefix())
                    .arg(user.to_string()),
            )
            .await
            .map_err(err)?;
        let Some(s) = raw.and_then(|s| serde_json::from_str::<Stored>(&s).ok()) else {
            return Ok(None);
        };
        Ok(Some(Presence {
            user: user.clone(),
            status: s.status,
            metadata: s.metadata,
            last_seen: s.last_seen,
            projects: s.projects,
        }))
    }

    async fn announced_in(&self, project: &ProjectId) -> StoreResult<Vec<Presence>> {
        let mut users: Vec<String> = self
            .client
            .query(cmd("SMEMBERS").arg(self.project(project)))
            .await
            .map_err(err)?;
        users.sort();
        let mut out = Vec::new();
        for u in users {
            let Ok(user) = UserId::try_from(u) else {
                continue;
            };
            if let Some(s) = self.load(&user).await? {
                out.push(Presence {
                    user,
                    status: s.status,
                    metadata: s.metadata,
                    last_seen: s.last_seen,
                    projects: s.projects,
                });
            }
        }
        Ok(out)
    }
}
