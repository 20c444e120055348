//! Pusher apps from the configuration: `PUSHER_APPS` (a JSON array) and, for a drop-in move from
//! Soketi, its default-app variables (`SOKETI_DEFAULT_APP_*`). Each app belongs to a Switchboard
//! project; its channels are the project's, so two apps of one project share them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use switchboard_handlers::core::ids::ProjectId;

use crate::config::{Config, strong_secret};

/// Which protocol dialect an app's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Pusher,
    Apinator,
}

/// A webhook endpoint in Soketi's shape (`{"url", "event_types"}`); an Apinator app's
/// endpoints also carry their signing secret (`whsec_…`), which is not the app's.
#[derive(Debug, Clone, Deserialize)]
pub struct Webhook {
    pub url: String,
    #[serde(default, alias = "eventTypes")]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub secret: Option<String>,
}

/// One `PUSHER_APPS` entry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppEntry {
    id: String,
    key: String,
    secret: String,
    project_id: String,
    #[serde(default)]
    dialect: Option<Dialect>,
    #[serde(default)]
    enable_client_messages: Option<bool>,
    #[serde(default)]
    max_connections: Option<i64>,
    #[serde(default)]
    client_events_per_second: Option<u32>,
    #[serde(default)]
    webhooks: Vec<Webhook>,
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
    open: AtomicUsize,
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
        if let Some(soketi) = soketi_default(c)? {
            entries.push(soketi);
        }
        let mut apps = Apps::default();
        for e in entries {
            let app = Arc::new(check(e, c.binds_loopback())?);
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

fn check(e: AppEntry, loopback: bool) -> Result<App, String> {
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
        open: AtomicUsize::new(0),
    })
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
