//! The server's whole configuration: one typed struct read from environment variables (flags
//! mirror them). Every field is documented in docs/config.md; `ENV_VARS` lists the names so
//! tests can keep docker-compose.yml and the docs in step with this file.

use clap::Args;
use switchboard_handlers::core::ids::ProjectId;

/// The development secret used when `JWT_SECRET` is unset. It is public (it is in this file), so
/// it is accepted only for a local development server: a loopback bind with the embedded store and
/// no Redis. Anything else is a shared deployment where a known secret lets anyone mint tokens.
pub const DEV_JWT_SECRET: &str = "switchboard-dev-secret-do-not-use-in-production";

/// Shortest accepted `JWT_SECRET` or `API_KEYS` entry, in bytes: 32 bytes is the HS256 key size
/// (256 bits), and what `openssl rand -hex 16` or `-base64 24` prints.
pub const MIN_SECRET_BYTES: usize = 32;

/// Fewest distinct characters in a secret or API key, so that `aaaa…` or `abab…` padded to
/// length is refused. Any random hex, base64 or password-manager string clears it easily.
pub const MIN_SECRET_DISTINCT_CHARS: usize = 10;

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
    "PING_INTERVAL_MS",
    "PING_TIMEOUT_MS",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_MAX_TTL_SECS",
    "METRICS_TOKEN",
    "WEBHOOK_TOLERANCE_SECS",
    "WEBHOOK_RETENTION_DAYS",
    "WEBHOOK_MAX_BYTES",
    "WEBHOOK_RATE_PER_SEC",
    "WEBHOOK_RATE_BURST",
    "INTEGRATION_MAX_CONCURRENT",
    "INTEGRATION_RATE_PER_SEC",
    "RELAY_BYTES_PER_SEC",
    "RELAY_BYTES_BURST",
    "HEADER_READ_TIMEOUT_MS",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_IP",
    "FILTER_MAX_NODES",
    "FILTER_MAX_REGEXES",
    "FILTER_MAX_LIST_LEN",
    "FILTER_MAX_BYTES",
    "QUERY_MAX_TIME_MS",
    "MAX_COLLECTIONS_PER_PROJECT",
    "RAW_WS",
    "PUSHER_APPS",
    "PUSHER_APPS_FILE",
    "SOKETI_DEFAULT_APP_ID",
    "SOKETI_DEFAULT_APP_KEY",
    "SOKETI_DEFAULT_APP_SECRET",
    "SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES",
    "SOKETI_DEFAULT_APP_MAX_CONNECTIONS",
    "SOKETI_DEFAULT_APP_WEBHOOKS",
    "SOKETI_DEFAULT_APP_PROJECT",
    "PUSHER_PING_SECS",
    "INSFORGE_ANON_KEYS",
    "SUPABASE_ANON_KEYS",
    "SUPABASE_SERVICE_KEYS",
    "ADMIN_UI_USERNAME",
    "ADMIN_UI_PASSWORD",
    "ADMIN_UI_READONLY",
    "ADMIN_UI_MODE",
    "STORE",
    "DATA_DIR",
];

/// Where the data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// In this process only; gone when it stops (tests, throwaway runs).
    Memory,
    /// A crash-safe store in `DATA_DIR` (one node).
    Embedded,
    /// MongoDB at `MONGODB_URI` (any number of nodes).
    Mongo,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Embedded => "embedded",
            StoreKind::Mongo => "mongo",
        }
    }
}

/// What the Socket.IO Admin UI gets, as the admin-ui package's `mode` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminUiMode {
    /// The socket list, socket and room events, and every event each socket receives and
    /// sends (`event_received`, `event_sent`) while an Admin UI is connected.
    Development,
    /// Server stats only: no socket list, no per-socket events.
    Production,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to bind; 0 picks a free port (the chosen one is printed in the "listening on" line).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// MongoDB connection string. Unset: the embedded store in DATA_DIR.
    #[arg(long, env = "MONGODB_URI")]
    pub mongodb_uri: Option<String>,

    /// MongoDB database name.
    #[arg(long, env = "MONGODB_DB", default_value = "switchboard")]
    pub mongodb_db: String,

    /// `embedded` (DATA_DIR), `mongo` (MONGODB_URI) or `memory` (gone when the process stops).
    /// Unset: `mongo` when MONGODB_URI is set, else `embedded`.
    #[arg(long, env = "STORE", value_enum)]
    pub store: Option<StoreKind>,

    /// Folder of the embedded store (created when missing; one process at a time).
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: String,

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

    /// HS256 secret for user JWTs: at least 32 bytes and 10 distinct characters. Unset: a fixed,
    /// public dev secret, accepted only on a loopback HOST with the embedded store and no Redis.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Comma-separated admin API keys, each at least 32 bytes and 10 distinct characters.
    #[arg(long, env = "API_KEYS", hide_env_values = true, default_value = "")]
    pub api_keys: String,

    /// Load the demo seeds into an empty database at start. Unset: only for a local development
    /// server (loopback HOST, embedded store, no Redis); a deployment seeds only when told to.
    #[arg(long, env = "SEED_DEMO", action = clap::ArgAction::Set)]
    pub seed_demo: Option<bool>,

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

    /// When set, user JWTs must carry this `iss`.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When set, user JWTs must carry this `aud`. Unset: tokens that carry an `aud` are refused.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Longest accepted JWT lifetime in seconds: `exp - iat`, or `exp - now` without `iat`.
    #[arg(long, env = "JWT_MAX_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub jwt_max_ttl_secs: u64,

    /// When set, `/metrics` answers only `Authorization: Bearer <token>` (same strength rule as
    /// JWT_SECRET). Unset: open, as Prometheus exporters are; scrape it from inside the network.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// How far a webhook's signed `X-Signature-Timestamp` may be from the server's clock.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub webhook_tolerance_secs: u64,

    /// Days webhook events are kept; a delivery repeated within them is acknowledged, not stored.
    #[arg(long, env = "WEBHOOK_RETENTION_DAYS", default_value_t = 7)]
    pub webhook_retention_days: u64,

    /// Largest webhook body accepted; larger ones get 413 before any signature work.
    #[arg(long, env = "WEBHOOK_MAX_BYTES", default_value_t = 256 * 1024)]
    pub webhook_max_bytes: usize,

    /// Sustained webhook requests per second per integration URL, signed or not (per node).
    #[arg(long, env = "WEBHOOK_RATE_PER_SEC", default_value_t = 50)]
    pub webhook_rate_per_sec: u32,

    /// Burst of webhook requests per integration URL above the sustained rate.
    #[arg(long, env = "WEBHOOK_RATE_BURST", default_value_t = 100)]
    pub webhook_rate_burst: u32,

    /// Calls of one integration in flight at once on a node (execute and test, all sockets).
    #[arg(long, env = "INTEGRATION_MAX_CONCURRENT", default_value_t = 16)]
    pub integration_max_concurrent: usize,

    /// Calls of one integration started per second on a node.
    #[arg(long, env = "INTEGRATION_RATE_PER_SEC", default_value_t = 50)]
    pub integration_rate_per_sec: u32,
    /// Bytes per second one socket may send in events relayed to others (the event table's
    /// `[relayed]` rows: custom:*, auth:session:update, message:send/edit,
    /// call:initiate/signal); beyond, RATE_LIMITED.
    #[arg(long, env = "RELAY_BYTES_PER_SEC", default_value_t = 1024 * 1024)]
    pub relay_bytes_per_sec: usize,

    /// Burst of the relay byte budget.
    #[arg(long, env = "RELAY_BYTES_BURST", default_value_t = 4 * 1024 * 1024)]
    pub relay_bytes_burst: usize,

    /// How long a connection may take to send a request's headers (and, on a new connection,
    /// its first byte); slower ones are closed. Also the idle time of a keep-alive connection
    /// between requests. Requests in progress (long-polling) and WebSockets are not cut.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub header_read_timeout_ms: u64,

    /// Open TCP connections the server keeps at once; more are closed on accept. 0: no cap.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Open TCP connections per client address; more are closed on accept. 0: no cap. Behind
    /// a reverse proxy every client has the proxy's address: raise it or set 0 there.
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,
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

    /// Serve the raw JSON WebSocket front end at `/raw-ws`: a minimal second protocol over the
    /// same hub as Socket.IO (chat and project rooms, receive-only), for diagnostics and tests.
    #[arg(long, env = "RAW_WS", default_value_t = false, action = clap::ArgAction::Set)]
    pub raw_ws: bool,

    /// Pusher Channels apps (docs/protocols/pusher.md): a JSON array of `{id, key, secret,
    /// projectId, dialect?, enableClientMessages?, maxConnections?, clientEventsPerSecond?,
    /// webhooks?}`. Any app turns on the Pusher front end (`/app/{key}`, `/apps/{id}/…`).
    #[arg(long, env = "PUSHER_APPS", hide_env_values = true)]
    pub pusher_apps: Option<String>,

    /// A file holding more Pusher apps, in `PUSHER_APPS`' JSON array shape (secrets stay out of
    /// the environment).
    #[arg(long, env = "PUSHER_APPS_FILE")]
    pub pusher_apps_file: Option<std::path::PathBuf>,

    /// Soketi's default app id, for a drop-in move from Soketi; setting any of the id, key or
    /// secret defines the app (unset ones take Soketi's defaults).
    #[arg(long, env = "SOKETI_DEFAULT_APP_ID")]
    pub soketi_default_app_id: Option<String>,

    /// Soketi's default app key.
    #[arg(long, env = "SOKETI_DEFAULT_APP_KEY")]
    pub soketi_default_app_key: Option<String>,

    /// Soketi's default app secret (the secret rule applies except on a loopback HOST).
    #[arg(long, env = "SOKETI_DEFAULT_APP_SECRET", hide_env_values = true)]
    pub soketi_default_app_secret: Option<String>,

    /// Whether the Soketi default app's clients may send `client-*` events (default true).
    #[arg(long, env = "SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", action = clap::ArgAction::Set)]
    pub soketi_default_app_enable_client_messages: Option<bool>,

    /// Connections the Soketi default app may hold per node; -1 or unset: no cap.
    #[arg(
        long,
        env = "SOKETI_DEFAULT_APP_MAX_CONNECTIONS",
        allow_negative_numbers = true
    )]
    pub soketi_default_app_max_connections: Option<i64>,

    /// The Soketi default app's webhooks, as Soketi reads them (a JSON array).
    #[arg(long, env = "SOKETI_DEFAULT_APP_WEBHOOKS")]
    pub soketi_default_app_webhooks: Option<String>,

    /// The Switchboard project the Soketi default app belongs to.
    #[arg(long, env = "SOKETI_DEFAULT_APP_PROJECT", default_value = "demo")]
    pub soketi_default_app_project: String,

    /// Pusher liveness period: a connection the server has not heard from for this long is
    /// pinged, and closed with 4201 when the next period passes without a word.
    #[arg(long, env = "PUSHER_PING_SECS", default_value_t = 60)]
    pub pusher_ping_secs: u64,

    /// InsForge anon keys (docs/protocols/insforge.md): comma-separated `<project>=<key>`
    /// pairs; each key starts with `anon_` and admits anonymous clients of its project on the
    /// `/insforge` namespace.
    #[arg(
        long,
        env = "INSFORGE_ANON_KEYS",
        hide_env_values = true,
        default_value = ""
    )]
    pub insforge_anon_keys: String,

    /// Supabase Realtime anon keys (docs/protocols/supabase.md): comma-separated
    /// `<project>=<key>` pairs; a key admits anonymous realtime-js clients of its project to
    /// public channels.
    #[arg(
        long,
        env = "SUPABASE_ANON_KEYS",
        hide_env_values = true,
        default_value = ""
    )]
    pub supabase_anon_keys: String,

    /// Supabase Realtime service keys: comma-separated `<project>=<key>` pairs; a key acts as
    /// an admin of its project (every channel, every row, REST broadcast).
    #[arg(
        long,
        env = "SUPABASE_SERVICE_KEYS",
        hide_env_values = true,
        default_value = ""
    )]
    pub supabase_service_keys: String,

    /// The Socket.IO Admin UI's user name (docs/console.md): setting it and
    /// `ADMIN_UI_PASSWORD` serves the `@socket.io/admin-ui` protocol on the `/admin` namespace.
    #[arg(long, env = "ADMIN_UI_USERNAME")]
    pub admin_ui_username: Option<String>,

    /// The Socket.IO Admin UI's password as a bcrypt hash (`$2a$`/`$2b$`/`$2y$`), as the
    /// admin-ui package takes it.
    #[arg(long, env = "ADMIN_UI_PASSWORD", hide_env_values = true)]
    pub admin_ui_password: Option<String>,

    /// Admin UI in read-only mode: no emit, join, leave or disconnect.
    #[arg(long, env = "ADMIN_UI_READONLY", default_value_t = false, action = clap::ArgAction::Set)]
    pub admin_ui_readonly: bool,

    /// Admin UI mode: `development` (sockets, rooms and every event while an Admin UI is
    /// connected) or `production` (server stats only), as the admin-ui package's `mode`.
    #[arg(long, env = "ADMIN_UI_MODE", value_enum, default_value = "development")]
    pub admin_ui_mode: AdminUiMode,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "JWT_SECRET is unset, and the public dev secret is only for a loopback HOST with the \
         embedded store and no Redis; set JWT_SECRET (e.g. `openssl rand -hex 32`)"
    )]
    DevSecretInProduction,
    #[error(
        "JWT_SECRET is the public dev secret; set a secret of your own (e.g. `openssl rand -hex 32`)"
    )]
    DevSecretExplicit,
    #[error(
        "JWT_SECRET is too weak: it needs at least {MIN_SECRET_BYTES} bytes and \
         {MIN_SECRET_DISTINCT_CHARS} distinct characters (e.g. `openssl rand -hex 32`)"
    )]
    WeakSecret,
    #[error(
        "API_KEYS entry {0} is too weak: each key needs at least {MIN_SECRET_BYTES} bytes and \
         {MIN_SECRET_DISTINCT_CHARS} distinct characters (e.g. `openssl rand -hex 32`)"
    )]
    WeakApiKey(usize),
    #[error(
        "METRICS_TOKEN is too weak: it needs at least {MIN_SECRET_BYTES} bytes and \
         {MIN_SECRET_DISTINCT_CHARS} distinct characters"
    )]
    WeakMetricsToken,
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("STORE=mongo needs MONGODB_URI")]
    StoreWithoutMongo,
    #[error("MONGODB_URI is set but STORE={0} asks for another store; unset one of them")]
    StoreAndMongo(&'static str),
    #[error("DATA_DIR must name a folder")]
    EmptyDataDir,
    #[error("LOG_FORMAT must be \"text\" or \"json\"")]
    LogFormat,
    #[error("PRESENCE_TTL_SECS must be greater than PRESENCE_HEARTBEAT_SECS")]
    PresenceTtl,
    #[error("{0}")]
    PusherApps(String),
    #[error("INSFORGE_ANON_KEYS: {0}")]
    InsforgeAnonKeys(String),
    #[error("{0}")]
    SupabaseKeys(String),
    #[error("{0}")]
    AdminUi(&'static str),
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_store()?;
        self.validate_jwt_secret()?;
        for (i, key) in self.api_keys().iter().enumerate() {
            if !strong_secret(key) {
                return Err(ConfigError::WeakApiKey(i + 1));
            }
        }
        if self
            .metrics_token
            .as_deref()
            .is_some_and(|t| !strong_secret(t))
        {
            return Err(ConfigError::WeakMetricsToken);
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
            ("JWT_MAX_TTL_SECS", self.jwt_max_ttl_secs as usize),
            (
                "WEBHOOK_TOLERANCE_SECS",
                self.webhook_tolerance_secs as usize,
            ),
            (
                "WEBHOOK_RETENTION_DAYS",
                self.webhook_retention_days as usize,
            ),
            ("WEBHOOK_MAX_BYTES", self.webhook_max_bytes),
            ("WEBHOOK_RATE_PER_SEC", self.webhook_rate_per_sec as usize),
            ("WEBHOOK_RATE_BURST", self.webhook_rate_burst as usize),
            (
                "INTEGRATION_MAX_CONCURRENT",
                self.integration_max_concurrent,
            ),
            (
                "INTEGRATION_RATE_PER_SEC",
                self.integration_rate_per_sec as usize,
            ),
            ("RELAY_BYTES_PER_SEC", self.relay_bytes_per_sec),
            ("RELAY_BYTES_BURST", self.relay_bytes_burst),
            (
                "HEADER_READ_TIMEOUT_MS",
                self.header_read_timeout_ms as usize,
            ),
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
            (
                "PUSHER_PING_SECS",
                usize::try_from(self.pusher_ping_secs).unwrap_or(usize::MAX),
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
        self.pusher_apps()?;
        self.insforge_anon_keys()?;
        self.supabase_keys()?;
        self.admin_ui()?;
        Ok(())
    }

    /// The Admin UI's credentials `(user name, bcrypt hash)` when it is on.
    pub fn admin_ui(&self) -> Result<Option<(String, String)>, ConfigError> {
        let user = self.admin_ui_username.as_deref().filter(|u| !u.is_empty());
        let hash = self.admin_ui_password.as_deref().filter(|p| !p.is_empty());
        match (user, hash) {
            (None, None) => Ok(None),
            (Some(_), None) | (None, Some(_)) => Err(ConfigError::AdminUi(
                "ADMIN_UI_USERNAME and ADMIN_UI_PASSWORD go together",
            )),
            (Some(u), Some(h)) => {
                // A plain password here would be compared as a hash and never match; say so.
                if h.parse::<bcrypt::HashParts>().is_err() {
                    return Err(ConfigError::AdminUi(
                        "ADMIN_UI_PASSWORD must be a bcrypt hash (e.g. `htpasswd -nbBC 10 \"\" \
                         <password> | cut -d: -f2`)",
                    ));
                }
                Ok(Some((u.to_owned(), h.to_owned())))
            }
        }
    }

    /// The InsForge anon keys of `INSFORGE_ANON_KEYS`: `(project, key)` pairs.
    pub fn insforge_anon_keys(&self) -> Result<Vec<(ProjectId, String)>, ConfigError> {
        let mut out = Vec::new();
        for entry in split_list(&self.insforge_anon_keys) {
            let bad = |why: &str| ConfigError::InsforgeAnonKeys(format!("entry {entry:?}: {why}"));
            let (project, key) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected <project>=<anon_key>"))?;
            let project = ProjectId::try_from(project.trim().to_owned())
                .map_err(|e| bad(&format!("invalid project id: {e}")))?;
            let key = key.trim();
            if !key.starts_with("anon_") || key.len() < MIN_SECRET_BYTES {
                return Err(bad(&format!(
                    "a key starts with anon_ and has at least {MIN_SECRET_BYTES} bytes"
                )));
            }
            out.push((project, key.to_owned()));
        }
        Ok(out)
    }

    /// The Supabase keys of `SUPABASE_ANON_KEYS` and `SUPABASE_SERVICE_KEYS`: `(project, key)`
    /// pairs each. A key is a secret: strong, and never both an anon and a service key.
    #[allow(clippy::type_complexity)]
    pub fn supabase_keys(
        &self,
    ) -> Result<(Vec<(ProjectId, String)>, Vec<(ProjectId, String)>), ConfigError> {
        let parse = |var: &str, list: &str| {
            let mut out = Vec::new();
            for entry in split_list(list) {
                let bad = |why: &str| ConfigError::SupabaseKeys(format!("{var}: entry {why}"));
                let (project, key) = entry
                    .split_once('=')
                    .ok_or_else(|| bad("expected <project>=<key>"))?;
                let project = ProjectId::try_from(project.trim().to_owned())
                    .map_err(|e| bad(&format!("with an invalid project id: {e}")))?;
                let key = key.trim();
                if !strong_secret(key) {
                    return Err(bad(&format!(
                        "for {project}: a key needs at least {MIN_SECRET_BYTES} bytes and \
                         {MIN_SECRET_DISTINCT_CHARS} distinct characters"
                    )));
                }
                out.push((project, key.to_owned()));
            }
            Ok(out)
        };
        let anon = parse("SUPABASE_ANON_KEYS", &self.supabase_anon_keys)?;
        let service = parse("SUPABASE_SERVICE_KEYS", &self.supabase_service_keys)?;
        if anon
            .iter()
            .any(|(_, a)| service.iter().any(|(_, s)| s == a))
        {
            return Err(ConfigError::SupabaseKeys(
                "a key is both in SUPABASE_ANON_KEYS and SUPABASE_SERVICE_KEYS".to_owned(),
            ));
        }
        Ok((anon, service))
    }

    /// The JWT secret rules alone (also checked by `switchboard token`).
    pub fn validate_jwt_secret(&self) -> Result<(), ConfigError> {
        match &self.jwt_secret {
            None if !self.is_local_dev() => Err(ConfigError::DevSecretInProduction),
            None => Ok(()),
            Some(s) if s == DEV_JWT_SECRET => Err(ConfigError::DevSecretExplicit),
            Some(s) if !strong_secret(s) => Err(ConfigError::WeakSecret),
            Some(_) => Ok(()),
        }
    }

    /// Whether HOST only accepts connections from this machine. A host name other than
    /// `localhost` counts as public: it may resolve to any interface.
    pub fn binds_loopback(&self) -> bool {
        let host = self.host.trim();
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        bare.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The store in force: STORE, else MongoDB when MONGODB_URI is set, else embedded.
    pub fn store_kind(&self) -> StoreKind {
        self.store.unwrap_or(if self.mongodb_uri.is_some() {
            StoreKind::Mongo
        } else {
            StoreKind::Embedded
        })
    }

    /// STORE and MONGODB_URI must agree, and DATA_DIR must name a folder.
    pub fn validate_store(&self) -> Result<(), ConfigError> {
        match (self.store_kind(), self.mongodb_uri.is_some()) {
            (StoreKind::Mongo, false) => Err(ConfigError::StoreWithoutMongo),
            (kind @ (StoreKind::Memory | StoreKind::Embedded), true) => {
                Err(ConfigError::StoreAndMongo(kind.name()))
            }
            (StoreKind::Embedded, false) if self.data_dir.trim().is_empty() => {
                Err(ConfigError::EmptyDataDir)
            }
            _ => Ok(()),
        }
    }

    /// A developer's own server: loopback bind, embedded store, single node. Only this setup
    /// gets the dev secret and the demo seed by default.
    pub fn is_local_dev(&self) -> bool {
        self.binds_loopback() && self.store_kind() != StoreKind::Mongo && self.redis_url.is_none()
    }

    /// Whether to load the demo seed into an empty database: SEED_DEMO when set, else only for
    /// a local development server.
    pub fn seed_demo(&self) -> bool {
        self.seed_demo.unwrap_or_else(|| self.is_local_dev())
    }

    /// The secret in force: the configured one, or the dev secret (validate() has already
    /// refused the dev secret where it is not allowed).
    pub fn jwt_secret(&self) -> &str {
        self.jwt_secret.as_deref().unwrap_or(DEV_JWT_SECRET)
    }

    pub fn uses_dev_secret(&self) -> bool {
        self.jwt_secret.is_none()
    }

    pub fn token_policy(&self) -> crate::auth::TokenPolicy {
        crate::auth::TokenPolicy {
            issuer: self.jwt_issuer.clone().filter(|s| !s.is_empty()),
            audience: self.jwt_audience.clone().filter(|s| !s.is_empty()),
            max_ttl_secs: self.jwt_max_ttl_secs,
        }
    }

    /// The Pusher apps of `PUSHER_APPS` and the Soketi default app.
    pub fn pusher_apps(&self) -> Result<crate::pusher::apps::Apps, ConfigError> {
        crate::pusher::apps::Apps::from_config(self).map_err(ConfigError::PusherApps)
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

/// The documented rule for JWT_SECRET and API keys: long enough, and not a padded repetition.
pub fn strong_secret(s: &str) -> bool {
    let distinct: std::collections::BTreeSet<char> = s.chars().collect();
    s.len() >= MIN_SECRET_BYTES && distinct.len() >= MIN_SECRET_DISTINCT_CHARS
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
        let c = parse(&["--redis-url", "redis://x", "--jwt-secret", STRONG]);
        assert_eq!(c.validate(), Ok(()));
        assert!(parse(&[]).validate().is_ok());
    }

    const STRONG: &str = "f3a91c07d2b84e65a0c9d1e27b3f4a58";

    #[test]
    fn a_zero_pusher_ping_period_is_refused() {
        assert_eq!(parse(&[]).pusher_ping_secs, 60);
        let c = parse(&["--pusher-ping-secs", "0"]);
        assert_eq!(c.validate(), Err(ConfigError::Zero("PUSHER_PING_SECS")));
        assert!(parse(&["--pusher-ping-secs", "1"]).validate().is_ok());
    }

    #[test]
    fn the_store_follows_store_then_mongodb_uri() {
        assert_eq!(parse(&[]).store_kind(), StoreKind::Embedded);
        assert_eq!(parse(&[]).data_dir, "./data");
        let mongo = ["--mongodb-uri", "mongodb://x", "--jwt-secret", STRONG];
        assert_eq!(parse(&mongo).store_kind(), StoreKind::Mongo);
        assert_eq!(
            parse(&["--store", "memory"]).store_kind(),
            StoreKind::Memory
        );
        assert_eq!(
            parse(&["--store", "mongo"]).validate(),
            Err(ConfigError::StoreWithoutMongo)
        );
        let mut both = mongo.to_vec();
        both.extend(["--store", "embedded"]);
        assert_eq!(
            parse(&both).validate(),
            Err(ConfigError::StoreAndMongo("embedded"))
        );
        assert_eq!(
            parse(&["--data-dir", " "]).validate(),
            Err(ConfigError::EmptyDataDir)
        );
        // The dev secret and the demo seed stay a local embedded or in-memory server's.
        assert!(parse(&["--store", "memory"]).is_local_dev());
        assert!(parse(&[]).is_local_dev());
    }

    #[test]
    fn dev_secret_only_for_a_local_development_server() {
        assert_eq!(parse(&[]).validate(), Ok(()));
        for host in ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"] {
            assert_eq!(parse(&["--host", host]).validate(), Ok(()), "{host}");
        }
        for host in ["0.0.0.0", "::", "10.0.0.5", "switchboard.example.com"] {
            assert_eq!(
                parse(&["--host", host]).validate(),
                Err(ConfigError::DevSecretInProduction),
                "{host}"
            );
            assert_eq!(
                parse(&["--host", host, "--jwt-secret", STRONG]).validate(),
                Ok(())
            );
        }
        assert_eq!(
            parse(&["--jwt-secret", DEV_JWT_SECRET]).validate(),
            Err(ConfigError::DevSecretExplicit)
        );
    }

    #[test]
    fn the_admin_ui_wants_a_user_name_and_a_bcrypt_hash() {
        let hash = bcrypt::hash("a long password", 4).expect("hashed");
        let on = parse(&[
            "--jwt-secret",
            STRONG,
            "--admin-ui-username",
            "admin",
            "--admin-ui-password",
            &hash,
        ]);
        assert_eq!(on.validate(), Ok(()));
        assert_eq!(on.admin_ui(), Ok(Some(("admin".to_owned(), hash.clone()))));
        assert_eq!(parse(&["--jwt-secret", STRONG]).admin_ui(), Ok(None));
        for args in [
            &["--admin-ui-username", "admin"][..],
            &["--admin-ui-password", &hash][..],
            &[
                "--admin-ui-username",
                "admin",
                "--admin-ui-password",
                "plain",
            ][..],
        ] {
            let mut all = vec!["--jwt-secret", STRONG];
            all.extend_from_slice(args);
            assert!(
                matches!(parse(&all).validate(), Err(ConfigError::AdminUi(_))),
                "{args:?}"
            );
        }
    }

    #[test]
    fn the_admin_ui_mode_is_development_unless_set_to_production() {
        assert_eq!(
            parse(&["--jwt-secret", STRONG]).admin_ui_mode,
            AdminUiMode::Development
        );
        let prod = parse(&["--jwt-secret", STRONG, "--admin-ui-mode", "production"]);
        assert_eq!(prod.admin_ui_mode, AdminUiMode::Production);
        let mut v = vec!["sb", "--admin-ui-mode", "verbose"];
        v.push("--jwt-secret");
        v.push(STRONG);
        assert!(
            Cli::try_parse_from(v).is_err(),
            "an unknown mode is refused"
        );
    }

    #[test]
    fn weak_secrets_and_api_keys_are_refused() {
        for weak in [
            "a".repeat(16),
            "a".repeat(64),
            "ab".repeat(20),
            "0123456789abcdef!".to_owned(),
            STRONG[..31].to_owned(),
        ] {
            assert_eq!(
                parse(&["--jwt-secret", &weak]).validate(),
                Err(ConfigError::WeakSecret),
                "{weak}"
            );
            let keys = format!("{STRONG},{weak}");
            assert_eq!(
                parse(&["--jwt-secret", STRONG, "--api-keys", &keys]).validate(),
                Err(ConfigError::WeakApiKey(2)),
                "{weak}"
            );
        }
        assert_eq!(
            parse(&["--jwt-secret", STRONG, "--api-keys", STRONG]).validate(),
            Ok(())
        );
    }

    #[test]
    fn demo_seed_by_default_only_for_a_local_development_server() {
        assert!(parse(&[]).seed_demo());
        assert!(!parse(&["--host", "0.0.0.0", "--jwt-secret", STRONG]).seed_demo());
        assert!(!parse(&["--mongodb-uri", "mongodb://x", "--jwt-secret", STRONG]).seed_demo());
        assert!(!parse(&["--redis-url", "redis://x", "--jwt-secret", STRONG]).seed_demo());
        assert!(parse(&["--host", "0.0.0.0", "--seed-demo", "true"]).seed_demo());
        assert!(!parse(&["--seed-demo", "false"]).seed_demo());
    }

    #[test]
    fn supabase_keys_are_strong_per_project_and_never_both_kinds() {
        let key = "anon-0123456789abcdefghijklmnopqrstuv";
        let c = parse(&[
            "--supabase-anon-keys",
            &format!("demo={key}"),
            "--supabase-service-keys",
            &format!(" acme = {STRONG} "),
        ]);
        let (anon, service) = c.supabase_keys().expect("valid keys");
        assert_eq!(anon[0].0.as_str(), "demo");
        assert_eq!(anon[0].1, key);
        assert_eq!(
            (service[0].0.as_str(), service[0].1.as_str()),
            ("acme", STRONG)
        );
        for bad in [
            vec!["--supabase-anon-keys", "demo=short"],
            vec!["--supabase-anon-keys", "no-equals-sign"],
            vec![
                "--supabase-service-keys",
                "=f3a91c07d2b84e65a0c9d1e27b3f4a58",
            ],
        ] {
            assert!(
                matches!(parse(&bad).validate(), Err(ConfigError::SupabaseKeys(_))),
                "{bad:?}"
            );
        }
        let both = parse(&[
            "--supabase-anon-keys",
            &format!("demo={STRONG}"),
            "--supabase-service-keys",
            &format!("demo={STRONG}"),
        ]);
        assert!(matches!(
            both.supabase_keys(),
            Err(ConfigError::SupabaseKeys(_))
        ));
    }

    #[test]
    fn lists_are_split_and_trimmed() {
        let c = parse(&["--api-keys", " a, b,,c "]);
        assert_eq!(c.api_keys(), vec!["a", "b", "c"]);
        assert!(parse(&[]).api_keys().is_empty());
    }
}
