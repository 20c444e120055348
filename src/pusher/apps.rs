//! Pusher apps: from the configuration (`PUSHER_APPS`, a JSON array, or `PUSHER_APPS_FILE`, a
//! file holding one, and, for a drop-in move from Soketi, its default-app variables
//! `SOKETI_DEFAULT_APP_*`) and from the database (created over the admin API). Each app belongs
//! to a Switchboard project; its channels are the project's, so two apps of one project share
//! them. [`AppRegistry`] holds the current set: configured apps are fixed, stored ones are
//! re-read periodically, so every node sees an app created on another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::StoredApp;

use crate::config::{Config, strong_secret};

/// Which protocol dialect an app's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Pusher,
    Apinator,
}

/// A webhook endpoint in Soketi's shape (`{"url", "event_types"}`); an Apinator app's
/// endpoints also carry their signing secret (`whsec_…`), which is not the app's.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Webhook {
    pub url: String,
    #[serde(default, alias = "eventTypes")]
    pub event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One `PUSHER_APPS` entry; also the settings of an app stored in the database.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppEntry {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub project_id: String,
    #[serde(default)]
    pub dialect: Option<Dialect>,
    #[serde(default)]
    pub enable_client_messages: Option<bool>,
    #[serde(default)]
    pub max_connections: Option<i64>,
    #[serde(default)]
    pub client_events_per_second: Option<u32>,
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// Pusher's default client-event rate per connection.
pub const DEFAULT_CLIENT_EVENTS_PER_SEC: u32 = 10;
/// Longest app id or key.
const MAX_ID: usize = 128;

#[derive(Debug)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub project: ProjectId,
    pub dialect: Dialect,
    pub client_messages: bool,
    /// Connections one node holds for the app; `None`: no cap.
    pub max_connections: Option<usize>,
    pub client_events_per_sec: u32,
    pub webhooks: Vec<Webhook>,
    /// Where the app was defined.
    pub source: Source,
    /// Connections open on this node; shared with the app's next version when stored apps
    /// are re-read, so the quota survives a reload.
    open: Arc<AtomicUsize>,
}

/// Where an app comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Database,
}

/// A connection counted against its app's quota until dropped.
pub struct Slot(Arc<App>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl App {
    /// Counts a new connection, or refuses it when the app is at its quota.
    pub fn take_slot(self: &Arc<Self>) -> Option<Slot> {
        let max = self.max_connections.unwrap_or(usize::MAX);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

#[derive(Debug, Default)]
pub struct Apps {
    by_key: HashMap<String, Arc<App>>,
    by_id: HashMap<String, Arc<App>>,
}

impl Apps {
    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.by_id.values()
    }

    /// Reads and checks every app the configuration defines.
    pub fn from_config(c: &Config) -> Result<Apps, String> {
        let mut entries: Vec<AppEntry> = match c.pusher_apps.as_deref().map(str::trim) {
            Some(json) if !json.is_empty() => serde_json::from_str(json)
                .map_err(|e| format!("PUSHER_APPS is not a JSON array of apps: {e}"))?,
            _ => Vec::new(),
        };
        if let Some(path) = &c.pusher_apps_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("PUSHER_APPS_FILE {} is not readable: {e}", path.display()))?;
            let more: Vec<AppEntry> = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "PUSHER_APPS_FILE {} is not a JSON array of apps: {e}",
                    path.display()
                )
            })?;
            entries.extend(more);
        }
        if let Some(soketi) = soketi_default(c)? {
            entries.push(soketi);
        }
        let mut apps = Apps::default();
        for e in entries {
            let app = Arc::new(check(e, c.binds_loopback(), Source::Config)?);
            if apps.by_id.contains_key(&app.id) {
                return Err(format!("Pusher app id {} is defined twice", app.id));
            }
            if apps.by_key.contains_key(&app.key) {
                return Err(format!("Pusher app key {} is defined twice", app.key));
            }
            apps.by_key.insert(app.key.clone(), app.clone());
            apps.by_id.insert(app.id.clone(), app);
        }
        Ok(apps)
    }
}

/// Soketi's default app, when any of its id, key or secret is set; what is unset takes
/// Soketi's own default (`app-id`, `app-key`, `app-secret`).
fn soketi_default(c: &Config) -> Result<Option<AppEntry>, String> {
    if c.soketi_default_app_id.is_none()
        && c.soketi_default_app_key.is_none()
        && c.soketi_default_app_secret.is_none()
    {
        return Ok(None);
    }
    let webhooks = match c.soketi_default_app_webhooks.as_deref().map(str::trim) {
        Some(json) if !json.is_empty() => serde_json::from_str(json).map_err(|e| {
            format!("SOKETI_DEFAULT_APP_WEBHOOKS is not a JSON array of webhooks: {e}")
        })?,
        _ => Vec::new(),
    };
    Ok(Some(AppEntry {
        id: c
            .soketi_default_app_id
            .clone()
            .unwrap_or_else(|| "app-id".into()),
        key: c
            .soketi_default_app_key
            .clone()
            .unwrap_or_else(|| "app-key".into()),
        secret: c
            .soketi_default_app_secret
            .clone()
            .unwrap_or_else(|| "app-secret".into()),
        project_id: c.soketi_default_app_project.clone(),
        dialect: None,
        enable_client_messages: c.soketi_default_app_enable_client_messages,
        max_connections: c.soketi_default_app_max_connections,
        client_events_per_second: None,
        webhooks,
    }))
}

/// Ids and keys appear in paths (`/app/{key}`, `/apps/{id}`) and before the `:` of a channel
/// signature, so they keep to characters that need no escaping there.
fn plain(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_ID {
        return Err(format!(
            "Pusher app {what} must have 1 to {MAX_ID} characters"
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "Pusher app {what} {s:?} may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Checks an entry and makes it an app.
pub fn check(e: AppEntry, loopback: bool, source: Source) -> Result<App, String> {
    plain("id", &e.id)?;
    plain("key", &e.key)?;
    if !loopback && !strong_secret(&e.secret) {
        return Err(format!(
            "the secret of Pusher app {} is too weak: it needs at least 32 bytes and 10 distinct \
             characters (e.g. `openssl rand -hex 32`); weak secrets are accepted only on a \
             loopback HOST",
            e.id
        ));
    }
    if e.secret.is_empty() {
        return Err(format!("the secret of Pusher app {} is empty", e.id));
    }
    let project = ProjectId::try_from(e.project_id.as_str())
        .map_err(|why| format!("Pusher app {}: projectId: {why}", e.id))?;
    let dialect = e.dialect.unwrap_or(Dialect::Pusher);
    let client_events_per_sec = e
        .client_events_per_second
        .unwrap_or(DEFAULT_CLIENT_EVENTS_PER_SEC);
    if client_events_per_sec == 0 {
        return Err(format!(
            "Pusher app {}: clientEventsPerSecond must be greater than zero (set \
             enableClientMessages to false to refuse client events)",
            e.id
        ));
    }
    for w in &e.webhooks {
        if url::Url::parse(&w.url).is_err() {
            return Err(format!(
                "Pusher app {}: webhook url {:?} is not a URL",
                e.id, w.url
            ));
        }
        if dialect == Dialect::Apinator && w.secret.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "Pusher app {}: the apinator dialect signs each webhook with the endpoint's \
                 own secret: give webhook {:?} a \"secret\" (whsec_…)",
                e.id, w.url
            ));
        }
    }
    Ok(App {
        id: e.id,
        key: e.key,
        secret: e.secret,
        project,
        dialect,
        client_messages: e.enable_client_messages.unwrap_or(true),
        // Soketi spells "no cap" -1.
        max_connections: e.max_connections.and_then(|n| usize::try_from(n).ok()),
        client_events_per_sec,
        webhooks: e.webhooks,
        source,
        open: Arc::new(AtomicUsize::new(0)),
    })
}

/// The apps a node serves now: the configured ones, and the stored ones as last read.
pub struct AppRegistry {
    configured: Apps,
    loopback: bool,
    current: RwLock<Arc<Apps>>,
}

impl AppRegistry {
    pub fn new(configured: Apps, loopback: bool) -> Self {
        let current = RwLock::new(Arc::new(Apps {
            by_key: configured.by_key.clone(),
            by_id: configured.by_id.clone(),
        }));
        AppRegistry {
            configured,
            loopback,
            current,
        }
    }

    /// The apps as of now (a snapshot: cheap to take, never changes).
    pub fn current(&self) -> Arc<Apps> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes the stored apps the current ones, beside the configured ones. A stored app whose
    /// id or key a configured app has, or that no longer passes the checks, is skipped and
    /// logged; an app that stays keeps its connection count.
    pub fn set_stored(&self, stored: &[StoredApp]) {
        let before = self.current();
        let mut next = Apps {
            by_key: self.configured.by_key.clone(),
            by_id: self.configured.by_id.clone(),
        };
        for s in stored {
            let app = match stored_entry(s).and_then(|e| check(e, self.loopback, Source::Database))
            {
                Ok(app) => app,
                Err(why) => {
                    tracing::warn!(app = %s.id, why, "stored Pusher app skipped");
                    continue;
                }
            };
            if next.by_id.contains_key(&app.id) || next.by_key.contains_key(&app.key) {
                tracing::warn!(app = %app.id, "stored Pusher app skipped: its id or key is configured");
                continue;
            }
            let mut app = app;
            if let Some(old) = before.by_id.get(&app.id).filter(|o| o.key == app.key) {
                app.open = old.open.clone();
            }
            let app = Arc::new(app);
            next.by_key.insert(app.key.clone(), app.clone());
            next.by_id.insert(app.id.clone(), app);
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    /// Whether a configured app has this id or key.
    pub fn is_configured(&self, id: &str, key: &str) -> bool {
        self.configured.by_id.contains_key(id) || self.configured.by_key.contains_key(key)
    }

    pub fn loopback(&self) -> bool {
        self.loopback
    }
}

/// The settings of a stored app, as a `PUSHER_APPS` entry.
pub fn stored_entry(s: &StoredApp) -> Result<AppEntry, String> {
    serde_json::from_value(s.config.clone()).map_err(|e| format!("unreadable settings: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

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

    const SECRET: &str = "f3a91c07d2b84e65a0c9d1e27b3f4a58";

    fn apps_json(extra: &str) -> String {
        format!(r#"[{{"id":"42","key":"app-key","secret":"{SECRET}","projectId":"demo"{extra}}}]"#)
    }

    #[test]
    fn apps_from_pusher_apps_with_defaults() {
        let c = parse(&["--pusher-apps", &apps_json("")]);
        let apps = Apps::from_config(&c).expect("valid");
        let app = apps.by_key("app-key").expect("by key");
        assert_eq!(app.id, "42");
        assert_eq!(app.project.as_str(), "demo");
        assert_eq!(app.dialect, Dialect::Pusher);
        assert!(app.client_messages);
        assert_eq!(app.client_events_per_sec, 10);
        assert_eq!(app.max_connections, None);
        assert!(apps.by_id("42").is_some());
        assert!(apps.by_id("app-key").is_none());
    }

    #[test]
    fn bad_apps_are_refused_with_a_reason() {
        for (extra, needle) in [
            (
                r#","dialect":"apinator","webhooks":[{"url":"http://127.0.0.1:1/h"}]"#,
                "whsec_",
            ),
            (r#","dialect":"xmpp""#, "PUSHER_APPS"),
            (r#","clientEventsPerSecond":0"#, "clientEventsPerSecond"),
            (r#","colour":"red""#, "PUSHER_APPS"),
            (r#","webhooks":[{"url":"not a url"}]"#, "webhook"),
        ] {
            let c = parse(&["--host", "0.0.0.0", "--pusher-apps", &apps_json(extra)]);
            let err = Apps::from_config(&c).expect_err(extra);
            assert!(err.contains(needle), "{extra}: {err}");
        }
        let twice = format!(
            r#"[{{"id":"1","key":"k","secret":"{SECRET}","projectId":"p"}},{{"id":"2","key":"k","secret":"{SECRET}","projectId":"p"}}]"#
        );
        assert!(Apps::from_config(&parse(&["--pusher-apps", &twice])).is_err());
        let bad_key = apps_json("").replace("app-key", "a:b");
        assert!(Apps::from_config(&parse(&["--pusher-apps", &bad_key])).is_err());
        assert!(Apps::from_config(&parse(&["--pusher-apps", "{}"])).is_err());
    }

    #[test]
    fn apinator_apps() {
        let c = parse(&[
            "--pusher-apps",
            &apps_json(
                r#","dialect":"apinator","webhooks":[{"url":"http://127.0.0.1:1/h","secret":"whsec_1"}]"#,
            ),
        ]);
        let apps = Apps::from_config(&c).expect("valid");
        let app = apps.by_key("app-key").expect("app");
        assert_eq!(app.dialect, Dialect::Apinator);
        assert_eq!(app.webhooks[0].secret.as_deref(), Some("whsec_1"));
    }

    #[test]
    fn apps_from_a_file_beside_pusher_apps() {
        let path = std::env::temp_dir().join(format!("sb-apps-{}.json", std::process::id()));
        let other = apps_json("")
            .replace("\"42\"", "\"43\"")
            .replace("app-key", "k2");
        std::fs::write(&path, other).expect("writes");
        let c = parse(&[
            "--pusher-apps",
            &apps_json(""),
            "--pusher-apps-file",
            path.to_str().expect("utf-8 path"),
        ]);
        let apps = Apps::from_config(&c).expect("valid");
        assert!(apps.by_id("42").is_some() && apps.by_id("43").is_some());
        std::fs::write(&path, "{").expect("writes");
        let err = Apps::from_config(&c).expect_err("bad file");
        assert!(err.contains("PUSHER_APPS_FILE"), "{err}");
        let _ = std::fs::remove_file(&path);
        let missing = parse(&["--pusher-apps-file", "/nonexistent/apps.json"]);
        assert!(Apps::from_config(&missing).is_err());
    }

    #[test]
    fn stored_apps_join_the_configured_ones_and_keep_their_counts() {
        let c = parse(&["--pusher-apps", &apps_json("")]);
        let registry = AppRegistry::new(Apps::from_config(&c).expect("valid"), true);
        let stored = |id: &str, key: &str| StoredApp {
            id: id.into(),
            key: key.into(),
            project_id: ProjectId::try_from("demo").expect("id"),
            config: serde_json::json!({"id": id, "key": key, "secret": SECRET, "projectId": "demo"}),
            created_at: switchboard_handlers::core::time::Timestamp::from_millis(0),
        };
        registry.set_stored(&[
            stored("7", "k7"),
            stored("42", "other"),
            stored("8", "app-key"),
        ]);
        let now = registry.current();
        assert_eq!(now.by_key("k7").map(|a| a.source), Some(Source::Database));
        assert_eq!(now.by_id("42").map(|a| a.source), Some(Source::Config));
        assert!(now.by_id("8").is_none(), "a configured key wins");
        let slot = now.by_key("k7").expect("app").take_slot();
        registry.set_stored(&[stored("7", "k7")]);
        let again = registry.current();
        assert_eq!(
            again.by_key("k7").map(|a| a.open.load(Ordering::Acquire)),
            Some(1)
        );
        drop(slot);
        assert_eq!(
            again.by_key("k7").map(|a| a.open.load(Ordering::Acquire)),
            Some(0)
        );
        registry.set_stored(&[]);
        assert!(registry.current().by_key("k7").is_none());
    }

    #[test]
    fn weak_secrets_only_on_loopback() {
        let weak = apps_json("").replace(SECRET, "app-secret");
        assert!(Apps::from_config(&parse(&["--pusher-apps", &weak])).is_ok());
        let public = parse(&["--host", "0.0.0.0", "--pusher-apps", &weak]);
        let err = Apps::from_config(&public).expect_err("weak on a public bind");
        assert!(err.contains("too weak"), "{err}");
    }

    #[test]
    fn soketi_default_app() {
        assert!(Apps::from_config(&parse(&[])).expect("none").is_empty());
        let c = parse(&[
            "--soketi-default-app-key",
            "k1",
            "--soketi-default-app-enable-client-messages",
            "false",
            "--soketi-default-app-max-connections=-1",
        ]);
        let apps = Apps::from_config(&c).expect("valid on loopback");
        let app = apps.by_key("k1").expect("soketi app");
        assert_eq!(app.id, "app-id");
        assert_eq!(app.secret, "app-secret");
        assert_eq!(app.project.as_str(), "demo");
        assert!(!app.client_messages);
        assert_eq!(app.max_connections, None);
    }

    #[test]
    fn connection_quota() {
        let c = parse(&["--pusher-apps", &apps_json(r#","maxConnections":1"#)]);
        let apps = Apps::from_config(&c).expect("valid");
        let app = apps.by_key("app-key").expect("app");
        let slot = app.take_slot().expect("first");
        assert!(app.take_slot().is_none());
        drop(slot);
        assert!(app.take_slot().is_some());
    }
}
