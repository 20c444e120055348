//! The admin API for Pusher apps kept in the database: `GET/POST /api/pusher/apps`,
//! `GET/DELETE /api/pusher/apps/{id}`. Admins only (an API key or an admin JWT). A created app
//! is served by this node at once and by the others within their next re-read; configured apps
//! are listed but changed only in the configuration.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::StoredApp;
use switchboard_handlers::core::time::Timestamp;

use super::Pusher;
use super::apps::{self, App, AppEntry, Dialect, Source, Webhook};
use crate::http::{ApiError, caller_of};

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn routes() -> Router<Pusher> {
    Router::new()
        .route("/api/pusher/apps", get(list).post(create))
        .route("/api/pusher/apps/{id}", get(show).delete(remove))
}

async fn admin(st: &Pusher, headers: &HeaderMap) -> Result<(), AppError> {
    let actor = caller_of(&st.core, headers).await?;
    if actor.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("only admins manage Pusher apps"))
    }
}

/// An app as the API shows it: everything but secrets.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct View<'a> {
    id: &'a str,
    key: &'a str,
    project_id: &'a str,
    dialect: Dialect,
    enable_client_messages: bool,
    max_connections: Option<usize>,
    client_events_per_second: u32,
    webhooks: Vec<WebhookView<'a>>,
    source: Source,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookView<'a> {
    url: &'a str,
    event_types: &'a [String],
}

fn view(app: &App) -> View<'_> {
    View {
        id: &app.id,
        key: &app.key,
        project_id: app.project.as_str(),
        dialect: app.dialect,
        enable_client_messages: app.client_messages,
        max_connections: app.max_connections,
        client_events_per_second: app.client_events_per_sec,
        webhooks: app
            .webhooks
            .iter()
            .map(|w| WebhookView {
                url: &w.url,
                event_types: &w.event_types,
            })
            .collect(),
        source: app.source,
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Value, AppError> {
    serde_json::to_value(v).map_err(AppError::internal)
}

async fn list(State(st): State<Pusher>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let apps = st.apps.current();
    let mut all: Vec<&App> = apps.iter().map(|a| &**a).collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let views: Vec<View<'_>> = all.into_iter().map(view).collect();
    Ok(Json(json!({ "apps": views })))
}

async fn show(
    State(st): State<Pusher>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin(&st, &headers).await?;
    let apps = st.apps.current();
    let app = apps
        .by_id(&id)
        .ok_or_else(|| AppError::not_found("app", &id))?;
    Ok(Json(to_json(&view(app))?))
}

/// A new app: a `PUSHER_APPS` entry whose id, key and secret are generated when left out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewApp {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    secret: Option<String>,
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

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

async fn create(
    State(st): State<Pusher>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin(&st, &headers).await?;
    let new: NewApp = serde_json::from_slice(&body)
        .map_err(|e| AppError::invalid(format!("invalid app: {e}")))?;
    let entry = AppEntry {
        id: new.id.unwrap_or_else(|| {
            rand::rng()
                .random_range(100_000..1_000_000_000u32)
                .to_string()
        }),
        key: new.key.unwrap_or_else(|| random_hex(10)),
        secret: new.secret.unwrap_or_else(|| random_hex(32)),
        project_id: new.project_id,
        dialect: new.dialect,
        enable_client_messages: new.enable_client_messages,
        max_connections: new.max_connections,
        client_events_per_second: new.client_events_per_second,
        webhooks: new.webhooks,
    };
    let app = apps::check(entry.clone(), st.apps.loopback(), Source::Database)
        .map_err(AppError::invalid)?;
    let project = ProjectId::try_from(entry.project_id.as_str()).map_err(AppError::invalid)?;
    if st.core.store.get_project(&project).await?.is_none() {
        return Err(AppError::not_found("project", project.as_str()).into());
    }
    if st.apps.is_configured(&app.id, &app.key) {
        return Err(AppError::Conflict(format!(
            "a configured app has the id {} or the key {}",
            app.id, app.key
        ))
        .into());
    }
    let stored = StoredApp {
        id: app.id.clone(),
        key: app.key.clone(),
        project_id: project,
        config: to_json(&entry)?,
        created_at: Timestamp::now(),
    };
    st.core.store.create_app(&stored).await?;
    super::reload_apps(&st).await;
    let mut out = to_json(&view(&app))?;
    // The only time the secret is shown.
    out["secret"] = Value::String(entry.secret);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn remove(
    State(st): State<Pusher>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&st, &headers).await?;
    if st.apps.is_configured(&id, "") {
        return Err(AppError::Conflict(format!(
            "app {id} is configured (PUSHER_APPS): change the configuration to remove it"
        ))
        .into());
    }
    if !st.core.store.delete_app(&id).await? {
        return Err(AppError::not_found("app", &id).into());
    }
    super::reload_apps(&st).await;
    Ok(StatusCode::NO_CONTENT)
}
