//! The server's whole configuration: one typed struct read from environment variables (flags
//! mirror them). Every field is documented in docs/config.md; `ENV_VARS` lists the names so
//! tests can keep docker-compose.yml and the docs in step with this file.

use clap::Args;

/// The development secret used when `JWT_SECRET` is unset. Refused whenever MongoDB or Redis is
/// configured, because those mean a shared deployment where a known secret lets anyone mint tokens.
pub const DEV_JWT_SECRET: &str = "switchboard-dev-secret-do-not-use-in-production";

/// Every environment variable the server reads.
pub const ENV_VARS: &[&str] = &[
    "HOST",
    "PORT",
    "MONGODB_URI",
    "MONGODB_DB",
    "REDIS_URL",
    "REDIS_PREFIX",
    "ROOM_BUS",
    "JWT_SECRET",
    "API_KEYS",
    "SEED_DEMO",
    "SEEDS_DIR",
    "RATE_LIMIT_PER_SEC",
    "RATE_LIMIT_BURST",
    "MAX_EVENT_BYTES",
    "MAX_FRAME_BYTES",
    "INTEGRATION_ALLOW_PRIVATE",
    "INTEGRATION_TIMEOUT_MS",
    "CALL_RING_TIMEOUT_SECS",
    "CHANGE_STREAMS",
    "PRESENCE_HEARTBEAT_SECS",
    "PRESENCE_TTL_SECS",
    "MAX_ROOMS_PER_SOCKET",
    "MAX_SOCKETS_PER_USER",
    "CORS_ORIGINS",
    "LOG_FORMAT",
    "RUST_LOG",
    "FILTER_MAX_NODES",
    "FILTER_MAX_REGEXES",
    "FILTER_MAX_LIST_LEN",
    "FILTER_MAX_BYTES",
    "QUERY_MAX_TIME_MS",
    "MAX_COLLECTIONS_PER_PROJECT",
];

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to bind; 0 picks a free port (the chosen one is printed in the "listening on" line).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// MongoDB connection string. Unset: the embedded in-process store (data lives as long as the process).
    #[arg(long, env = "MONGODB_URI")]
    pub mongodb_uri: Option<String>,

    /// MongoDB database name.
    #[arg(long, env = "MONGODB_DB", default_value = "switchboard")]
    pub mongodb_db: String,

    /// Redis URL for the cross-node adapter and cluster state. Unset: single node, local adapter.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix for every Redis channel and key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "switchboard")]
    pub redis_prefix: String,

    /// With Redis: send room broadcasts to the other nodes in batches on the room bus (`true`),
    /// or one by one through the socketioxide Redis adapter (`false`, slower; for comparison).
    #[arg(long, env = "ROOM_BUS", default_value_t = true, action = clap::ArgAction::Set)]
    pub room_bus: bool,

    /// HS256 secret for user JWTs. Unset: a fixed dev secret, refused when MONGODB_URI or REDIS_URL is set.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Comma-separated admin API keys.
    #[arg(long, env = "API_KEYS", hide_env_values = true, default_value = "")]
    pub api_keys: String,

    /// Load the demo seeds into an empty database at start.
    #[arg(long, env = "SEED_DEMO", default_value_t = true, action = clap::ArgAction::Set)]
    pub seed_demo: bool,

    /// Folder holding the seed files.
    #[arg(long, env = "SEEDS_DIR", default_value = "seeds")]
    pub seeds_dir: String,

    /// Sustained events per second allowed per socket.
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 100)]
    pub rate_limit_per_sec: u32,

    /// Burst of events allowed per socket above the sustained rate.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// Largest event payload accepted; larger ones get PAYLOAD_TOO_LARGE and the socket stays open.
    #[arg(long, env = "MAX_EVENT_BYTES", default_value_t = 256 * 1024)]
    pub max_event_bytes: usize,

    /// Largest transport frame; larger ones close the transport, as Socket.IO does.
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Engine.IO heartbeat: how often the server pings each connection (Socket.IO's
    /// `pingInterval`, sent to clients in the open packet).
    #[arg(long, env = "PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,

    /// How long a connection may leave a ping unanswered before the server closes it
    /// (Socket.IO's `pingTimeout`).
    #[arg(long, env = "PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,

    /// Seconds an unanswered call rings before it ends with `call:missed`.
    #[arg(long, env = "CALL_RING_TIMEOUT_SECS", default_value_t = 45)]
    pub call_ring_timeout_secs: u64,

    /// How often each node refreshes its users' presence entries.
    #[arg(long, env = "PRESENCE_HEARTBEAT_SECS", default_value_t = 10)]
    pub presence_heartbeat_secs: u64,

    /// How long a presence entry lives without a heartbeat (a dead node's users go offline
    /// after this plus at most half a heartbeat). Must exceed the heartbeat.
    #[arg(long, env = "PRESENCE_TTL_SECS", default_value_t = 15)]
    pub presence_ttl_secs: u64,

    /// Rooms one socket may be in (its user room included); beyond, joins are INVALID_PAYLOAD.
    #[arg(long, env = "MAX_ROOMS_PER_SOCKET", default_value_t = 500)]
    pub max_rooms_per_socket: usize,

    /// Sockets one user may hold across the cluster; beyond, connections are refused.
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 50)]
    pub max_sockets_per_user: usize,

    /// Use a MongoDB change stream for document changes (`true`), or only publish this
    /// server's own writes (`false`). Without a replica set the server falls back by itself.
    #[arg(long, env = "CHANGE_STREAMS", default_value_t = true, action = clap::ArgAction::Set)]
    pub change_streams: bool,

    /// Allow integrations to call loopback and private addresses.
    #[arg(long, env = "INTEGRATION_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub integration_allow_private: bool,

    /// How long an integration's HTTP call may take, in milliseconds (connect to last byte).
    #[arg(long, env = "INTEGRATION_TIMEOUT_MS", default_value_t = 10_000)]
    pub integration_timeout_ms: u64,

    /// Comma-separated allowed CORS origins; "*" (the default) allows any origin.
    #[arg(long, env = "CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,

    /// Log format: "text" or "json".
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Nodes (operators, fields and values, a `$in`/`$nin`/`$all` list counting once) one
    /// client filter may have; beyond, the filter is INVALID_PAYLOAD.
    #[arg(long, env = "FILTER_MAX_NODES", default_value_t = 256)]
    pub filter_max_nodes: usize,

    /// `$regex` operators one client filter may compile.
    #[arg(long, env = "FILTER_MAX_REGEXES", default_value_t = 16)]
    pub filter_max_regexes: usize,

    /// Values one `$in`, `$nin` or `$all` list of a client filter may hold.
    #[arg(long, env = "FILTER_MAX_LIST_LEN", default_value_t = 1000)]
    pub filter_max_list_len: usize,

    /// Bytes (as compact JSON) one client filter may have.
    #[arg(long, env = "FILTER_MAX_BYTES", default_value_t = 16 * 1024)]
    pub filter_max_bytes: usize,

    /// How long one document find (REST listing, live query's initial result) may run, in
    /// milliseconds (MongoDB `maxTimeMS`); beyond, the request is INVALID_PAYLOAD.
    #[arg(long, env = "QUERY_MAX_TIME_MS", default_value_t = 5000)]
    pub query_max_time_ms: u64,

    /// Collections one project may hold (a collection is created by its first document);
    /// beyond, creating a document in a new collection is INVALID_PAYLOAD.
    #[arg(long, env = "MAX_COLLECTIONS_PER_PROJECT", default_value_t = 100)]
    pub max_collections_per_project: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "JWT_SECRET is unset while MONGODB_URI or REDIS_URL is configured; refusing the dev secret in a shared deployment"
    )]
    DevSecretInProduction,
    #[error("JWT_SECRET must be at least 16 characters")]
    WeakSecret,
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("LOG_FORMAT must be \"text\" or \"json\"")]
    LogFormat,
    #[error("PRESENCE_TTL_SECS must be greater than PRESENCE_HEARTBEAT_SECS")]
    PresenceTtl,
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.jwt_secret {
            None if self.mongodb_uri.is_some() || self.redis_url.is_some() => {
                return Err(ConfigError::DevSecretInProduction);
            }
            Some(s) if s.len() < 16 => return Err(ConfigError::WeakSecret),
            _ => {}
        }
        for (name, v) in [
            ("RATE_LIMIT_PER_SEC", self.rate_limit_per_sec as usize),
            ("RATE_LIMIT_BURST", self.rate_limit_burst as usize),
            ("MAX_EVENT_BYTES", self.max_event_bytes),
            ("MAX_FRAME_BYTES", self.max_frame_bytes),
            (
                "CALL_RING_TIMEOUT_SECS",
                self.call_ring_timeout_secs as usize,
            ),
            (
                "PRESENCE_HEARTBEAT_SECS",
                self.presence_heartbeat_secs as usize,
            ),
            ("MAX_ROOMS_PER_SOCKET", self.max_rooms_per_socket),
            ("MAX_SOCKETS_PER_USER", self.max_sockets_per_user),
            ("FILTER_MAX_NODES", self.filter_max_nodes),
            ("FILTER_MAX_REGEXES", self.filter_max_regexes),
            ("FILTER_MAX_LIST_LEN", self.filter_max_list_len),
            ("FILTER_MAX_BYTES", self.filter_max_bytes),
            (
                "QUERY_MAX_TIME_MS",
                usize::try_from(self.query_max_time_ms).unwrap_or(usize::MAX),
            ),
            (
                "MAX_COLLECTIONS_PER_PROJECT",
                self.max_collections_per_project,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.log_format != "text" && self.log_format != "json" {
            return Err(ConfigError::LogFormat);
        }
        if self.presence_ttl_secs <= self.presence_heartbeat_secs {
            return Err(ConfigError::PresenceTtl);
        }
        Ok(())
    }

    /// The secret in force: the configured one, or the dev secret (validate() has already
    /// refused the dev secret where it is not allowed).
    pub fn jwt_secret(&self) -> &str {
        self.jwt_secret.as_deref().unwrap_or(DEV_JWT_SECRET)
    }

    pub fn uses_dev_secret(&self) -> bool {
        self.jwt_secret.is_none()
    }

    pub fn api_keys(&self) -> Vec<String> {
        split_list(&self.api_keys)
    }

    pub fn cors_origins(&self) -> Vec<String> {
        split_list(&self.cors_origins)
    }

    pub fn filter_budget(&self) -> switchboard_handlers::core::query::FilterBudget {
        switchboard_handlers::core::query::FilterBudget {
            max_nodes: self.filter_max_nodes,
            max_regexes: self.filter_max_regexes,
            max_list_len: self.filter_max_list_len,
            max_bytes: self.filter_max_bytes,
        }
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Config {
        let mut v = vec!["sb"];
        v.extend_from_slice(args);
        Cli::parse_from(v).config
    }

    #[test]
    fn dev_secret_refused_with_backing_services() {
        let c = parse(&["--mongodb-uri", "mongodb://x"]);
        assert_eq!(c.validate(), Err(ConfigError::DevSecretInProduction));
        let c = parse(&["--redis-url", "redis://x"]);
        assert_eq!(c.validate(), Err(ConfigError::DevSecretInProduction));
        let c = parse(&[
            "--redis-url",
            "redis://x",
            "--jwt-secret",
            "0123456789abcdef!",
        ]);
        assert_eq!(c.validate(), Ok(()));
        assert!(parse(&[]).validate().is_ok());
    }

    #[test]
    fn lists_are_split_and_trimmed() {
        let c = parse(&["--api-keys", " a, b,,c "]);
        assert_eq!(c.api_keys(), vec!["a", "b", "c"]);
        assert!(parse(&[]).api_keys().is_empty());
    }
}
