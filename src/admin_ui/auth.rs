//! The Admin UI's basic auth, as the package does it: the handshake's `auth` carries
//! `{ username, password }` (checked against the configured bcrypt hash) or, once signed in,
//! `{ sessionId }` (the id the server sent in a `session` event). Sessions last a day; with
//! Redis every node knows them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Deserialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use tokio::sync::Semaphore;

use super::AdminUi;

/// How long a session id stays valid.
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Sessions one node keeps without Redis; the oldest go first.
const MAX_SESSIONS: usize = 1_024;
/// bcrypt checks running at once: each costs tens of milliseconds of CPU by design, so
/// failed guesses cannot take more than this from the node.
const MAX_CHECKS: usize = 2;

/// The configured user name and bcrypt hash.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A session id created by this connection's sign-in, sent to it once connected.
#[derive(Clone)]
pub struct NewSession(pub String);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Auth {
    username: Option<String>,
    password: Option<String>,
    session_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("invalid credentials")]
    Invalid,
    #[error("too many sign-in attempts at once; retry")]
    Busy,
}

pub struct Sessions {
    redis: Option<(crate::redis::Client, String)>,
    local: Mutex<HashMap<String, Instant>>,
    checks: Semaphore,
}

impl Sessions {
    pub fn new(redis: Option<(crate::redis::Client, &str)>) -> Self {
        Sessions {
            redis: redis.map(|(c, p)| (c, format!("{p}:admin-ui:session:"))),
            local: Mutex::default(),
            checks: Semaphore::new(MAX_CHECKS),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn exists(&self, id: &str) -> bool {
        // Ids are 16 hex characters; anything else was never issued.
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        if let Some((client, prefix)) = &self.redis {
            return client
                .query::<bool>(::redis::cmd("EXISTS").arg(format!("{prefix}{id}")))
                .await
                .unwrap_or(false);
        }
        self.local()
            .get(id)
            .is_some_and(|at| at.elapsed() < SESSION_TTL)
    }

    async fn create(&self) -> String {
        let id = format!("{:016x}", rand::rng().random::<u64>());
        if let Some((client, prefix)) = &self.redis {
            let res: Result<(), _> = client
                .query(
                    ::redis::cmd("SET")
                        .arg(format!("{prefix}{id}"))
                        .arg(1)
                        .arg("EX")
                        .arg(SESSION_TTL.as_secs()),
                )
                .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "Admin UI session not stored in Redis");
            }
            return id;
        }
        let mut local = self.local();
        local.retain(|_, at| at.elapsed() < SESSION_TTL);
        if local.len() >= MAX_SESSIONS
            && let Some(oldest) = local
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            local.remove(&oldest);
        }
        local.insert(id.clone(), Instant::now());
        id
    }
}

/// The `/admin` connect middleware.
pub async fn check<A: Adapter>(
    ui: &Arc<AdminUi<A>>,
    s: &SocketRef<A>,
    raw: Option<Value>,
) -> Result<(), Refused> {
    let auth: Auth = raw
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let sessions = &ui.sessions;
    if let Some(id) = &auth.session_id
        && sessions.exists(id).await
    {
        return Ok(());
    }
    let (Some(user), Some(password)) = (auth.username, auth.password) else {
        return Err(Refused::Invalid);
    };
    let creds = &ui.settings.credentials;
    let same_user: bool =
        subtle::ConstantTimeEq::ct_eq(user.as_bytes(), creds.username.as_bytes()).into();
    let permit = sessions.checks.try_acquire().map_err(|_| Refused::Busy)?;
    let hash = creds.password_hash.clone();
    let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(false);
    drop(permit);
    if !(same_user && matches) {
        return Err(Refused::Invalid);
    }
    let id = sessions.create().await;
    s.extensions.insert(NewSession(id));
    Ok(())
}
