//! Temporary client path tokens: in Redis when the deployment has it (any node accepts a
//! token any node issued; the connect deadline is judged by Redis's clock), otherwise in this
//! process. A token outlives its connect window by a tombstone period, so a late or repeated
//! connect is told `expired_client_socket` or `exhausted_client_socket` rather than
//! `invalid_client_socket`. Uses are counted when a WebSocket upgrade completes, atomically.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::redis::Script;

use super::error::PubSubError;

/// How long a token is remembered after its connect window.
pub const TOMBSTONE: Duration = Duration::from_secs(600);
/// Tokens one node keeps in memory (without Redis); issuing past it is refused until some
/// expire.
pub const MAX_MEMORY_TOKENS: usize = 100_000;

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub channel: String,
    pub pattern: bool,
    /// Each connection's life in ms; 0 = unlimited.
    pub max_dur_ms: u64,
}

/// A token to issue.
#[derive(Debug, Clone)]
pub struct Issue {
    pub plate: String,
    pub grant: Grant,
    pub expiry_ms: u64,
    /// 0 = unlimited.
    pub max_uses: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Is it usable now (before the upgrade)?
    Check,
    /// Count one completed upgrade.
    Consume,
}

pub enum TokenStore {
    Memory(Mutex<HashMap<String, Entry>>),
    Redis {
        client: crate::redis::Client,
        prefix: String,
        issue: Script,
        usage: Script,
    },
}

pub struct Entry {
    plate: String,
    grant: Grant,
    deadline: Instant,
    max_uses: u64,
    uses: u64,
}

impl Entry {
    /// The rules, in order: another plate's token is unknown; past the deadline it is expired
    /// (an expiry of 0 is expired at once); with no uses left it is exhausted.
    fn verdict(&self, plate: &str, now: Instant) -> Result<(), PubSubError> {
        if self.plate != plate {
            return Err(PubSubError::InvalidClientSocket);
        }
        if now >= self.deadline {
            return Err(PubSubError::ExpiredClientSocket);
        }
        if self.max_uses > 0 && self.uses >= self.max_uses {
            return Err(PubSubError::ExhaustedClientSocket);
        }
        Ok(())
    }
}

/// 32 random bytes, in hex.
pub fn new_token() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Tokens are 64 lowercase hex characters; anything else is unknown without a look-up.
pub fn well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TokenStore {
    pub fn memory() -> Self {
        TokenStore::Memory(Mutex::default())
    }

    pub fn redis(client: crate::redis::Client, prefix: &str) -> Self {
        TokenStore::Redis {
            client,
            prefix: format!("{prefix}#pubsub-token:"),
            issue: Script::new(include_str!("../lua/pubsub_token_issue.lua")),
            usage: Script::new(include_str!("../lua/pubsub_token_use.lua")),
        }
    }

    pub async fn issue(&self, req: &Issue) -> Result<String, PubSubError> {
        let token = new_token();
        match self {
            TokenStore::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                if map.len() >= MAX_MEMORY_TOKENS {
                    map.retain(|_, e| e.deadline + TOMBSTONE > now);
                }
                if map.len() >= MAX_MEMORY_TOKENS {
                    return Err(PubSubError::TooMany(format!(
                        "at most {MAX_MEMORY_TOKENS} client paths at once on a node without Redis"
                    )));
                }
                map.insert(
                    token.clone(),
                    Entry {
                        plate: req.plate.clone(),
                        grant: req.grant.clone(),
                        deadline: now + Duration::from_millis(req.expiry_ms),
                        max_uses: req.max_uses,
                        uses: 0,
                    },
                );
            }
            TokenStore::Redis {
                client,
                prefix,
                issue,
                ..
            } => {
                let mut inv = issue.key(format!("{prefix}{token}"));
                inv.arg(&req.plate)
                    .arg(&req.grant.channel)
                    .arg(u8::from(req.grant.pattern))
                    .arg(req.grant.max_dur_ms)
                    .arg(req.expiry_ms)
                    .arg(req.max_uses)
                    .arg(TOMBSTONE.as_millis() as u64);
                client.invoke::<i64>(&inv).await.map_err(|e| {
                    tracing::warn!(error = %e, "client path not stored in Redis");
                    PubSubError::ManagerUnavailable
                })?;
            }
        }
        Ok(token)
    }

    pub async fn usage(&self, plate: &str, token: &str, how: Use) -> Result<Grant, PubSubError> {
        if !well_formed(token) {
            return Err(PubSubError::InvalidClientSocket);
        }
        match self {
            TokenStore::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let e = match map.get_mut(token) {
                    Some(e) if e.deadline + TOMBSTONE > now => e,
                    _ => return Err(PubSubError::InvalidClientSocket),
                };
                e.verdict(plate, now)?;
                if how == Use::Consume {
                    e.uses += 1;
                }
                Ok(e.grant.clone())
            }
            TokenStore::Redis {
                client,
                prefix,
                usage,
                ..
            } => {
                let mut inv = usage.key(format!("{prefix}{token}"));
                inv.arg(plate)
                    .arg(if how == Use::Consume { "1" } else { "0" });
                let r: Vec<String> = client.invoke(&inv).await.map_err(|e| {
                    tracing::warn!(error = %e, "client path not checked in Redis");
                    PubSubError::ManagerUnavailable
                })?;
                match r.as_slice() {
                    [ok, channel, pattern, max_dur] if ok == "ok" => Ok(Grant {
                        channel: channel.clone(),
                        pattern: pattern == "1",
                        max_dur_ms: max_dur.parse().unwrap_or(0),
                    }),
                    [v] if v == "expired" => Err(PubSubError::ExpiredClientSocket),
                    [v] if v == "exhausted" => Err(PubSubError::ExhaustedClientSocket),
                    _ => Err(PubSubError::InvalidClientSocket),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(expiry_ms: u64, max_uses: u64) -> Issue {
        Issue {
            plate: "demo".into(),
            grant: Grant {
                channel: "alerts".into(),
                pattern: false,
                max_dur_ms: 0,
            },
            expiry_ms,
            max_uses,
        }
    }

    #[tokio::test]
    async fn uses_are_counted_only_when_consumed() {
        let s = TokenStore::memory();
        let t = s.issue(&issue(60_000, 1)).await.expect("issued");
        assert!(well_formed(&t));
        for _ in 0..3 {
            s.usage("demo", &t, Use::Check).await.expect("still usable");
        }
        let g = s.usage("demo", &t, Use::Consume).await.expect("used");
        assert_eq!(g.channel, "alerts");
        assert_eq!(
            s.usage("demo", &t, Use::Check).await,
            Err(PubSubError::ExhaustedClientSocket)
        );
    }

    #[tokio::test]
    async fn zero_uses_is_unlimited_and_other_plates_are_unknown() {
        let s = TokenStore::memory();
        let t = s.issue(&issue(60_000, 0)).await.expect("issued");
        for _ in 0..20 {
            s.usage("demo", &t, Use::Consume).await.expect("unlimited");
        }
        assert_eq!(
            s.usage("other", &t, Use::Check).await,
            Err(PubSubError::InvalidClientSocket)
        );
        assert_eq!(
            s.usage("demo", &new_token(), Use::Check).await,
            Err(PubSubError::InvalidClientSocket)
        );
        assert_eq!(
            s.usage("demo", "not-a-token", Use::Check).await,
            Err(PubSubError::InvalidClientSocket)
        );
    }

    #[tokio::test]
    async fn zero_expiry_is_expired_at_once_and_expiry_beats_exhaustion() {
        let s = TokenStore::memory();
        let t = s.issue(&issue(0, 1)).await.expect("issued");
        assert_eq!(
            s.usage("demo", &t, Use::Consume).await,
            Err(PubSubError::ExpiredClientSocket)
        );
        let t = s.issue(&issue(30, 1)).await.expect("issued");
        s.usage("demo", &t, Use::Consume).await.expect("used");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            s.usage("demo", &t, Use::Check).await,
            Err(PubSubError::ExpiredClientSocket)
        );
    }
}
