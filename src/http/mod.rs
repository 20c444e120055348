//! The REST surface on axum: health, metrics, and the `/api` admin and data API. Shares the
//! port with Socket.IO (the socketioxide layer takes `/socket.io/`).

mod admin;
mod chats;
mod console;
mod documents;
mod emit;
mod error;
mod extract;
mod health;
mod integrations;
mod projects;
pub(crate) mod rate_limit;
mod tail;
mod wallet;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::error::AppError;

pub use error::{ApiError, status};
pub use extract::caller_of;

/// REST bodies are small JSON documents (webhooks have their own, smaller WEBHOOK_MAX_BYTES).
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub redis: Option<crate::redis::Client>,
    /// Set once start-up (seeding, namespace registration) has finished.
    pub started: Arc<AtomicBool>,
    /// METRICS_TOKEN: when set, `/metrics` wants `Authorization: Bearer <it>`.
    pub metrics_token: Option<Arc<str>>,
    /// Live-tail watchers of this node (`GET /api/projects/{p}/tail`).
    pub tail: Arc<crate::tail::Tail>,
    /// This node's report and the cluster's (`GET /api/admin/nodes`).
    pub nodes: Arc<crate::node_stats::NodeStats>,
}

pub fn router(state: AppState) -> Router {
    let webhook_limiter = Arc::new(rate_limit::KeyedLimiter::new(
        state.core.limits.webhook_rate_per_sec,
        state.core.limits.webhook_rate_burst,
    ));
    let api = Router::new()
        .route("/projects", get(projects::list))
        .route("/projects/{project}", get(projects::get))
        .route("/projects/{project}/emit", post(emit::emit))
        .route("/projects/{project}/tail", get(tail::tail))
        .route("/projects/{project}/rooms", get(admin::rooms))
        .route("/projects/{project}/presence", get(admin::presence))
        .route("/admin/nodes", get(admin::nodes))
        .route(
            "/projects/{project}/chats",
            get(chats::list).post(chats::create),
        )
        .route(
            "/projects/{project}/collections/{collection}/documents",
            get(documents::list).post(documents::create),
        )
        .route(
            "/projects/{project}/collections/{collection}/documents/{document}",
            get(documents::get)
                .patch(documents::patch)
                .put(documents::replace)
                .delete(documents::delete),
        )
        .route(
            "/projects/{project}/integrations",
            get(integrations::list).post(integrations::create),
        )
        .route(
            "/projects/{project}/integrations/{integration}",
            get(integrations::get)
                .put(integrations::replace)
                .patch(integrations::patch)
                .delete(integrations::delete),
        )
        .route(
            "/projects/{project}/integrations/{integration}/webhook-events",
            get(integrations::webhook_events),
        )
        .route(
            "/projects/{project}/integrations/{integration}/status",
            get(integrations::status),
        )
        .route(
            "/projects/{project}/wallet/addresses",
            get(wallet::addresses),
        )
        .route(
            "/projects/{project}/wallet/transactions",
            post(wallet::record),
        )
        .route("/chats/{chat}", get(chats::get))
        .route("/chats/{chat}/messages", get(chats::messages))
        .fallback(async || ApiError(AppError::not_found("route", "")));
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/console", get(console::root))
        .route("/console/", get(console::index))
        .route("/console/{file}", get(console::asset))
        .route(
            "/webhooks/{project}/{integration}",
            post(webhooks::receive).layer(axum::Extension(webhook_limiter)),
        )
        .nest("/api", api)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(state)
}

/// Outermost layers, applied after the Socket.IO layer so polling requests get CORS headers too.
pub fn outer_layers(router: Router, origins: &[String]) -> Router {
    let cors = CorsLayer::new().allow_methods(Any).allow_headers(Any);
    let cors = if origins.is_empty() || origins.iter().any(|o| o == "*") {
        cors.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        cors.allow_origin(AllowOrigin::list(list))
    };
    router
        .layer(cors)
        .layer(axum::middleware::from_fn(pubsub_preflight))
        .layer(TraceLayer::new_for_http())
}

/// The HTTP pub/sub paths answer a CORS preflight with `204`, as the upstream API does (the
/// CORS layer above answers it, with `CORS_ORIGINS`, and `200` everywhere else).
async fn pubsub_preflight(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let preflight = req.method() == axum::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD)
        && crate::pubsub::routes::is_route(req.uri().path());
    let mut res = next.run(req).await;
    if preflight && res.status() == axum::http::StatusCode::OK {
        *res.status_mut() = axum::http::StatusCode::NO_CONTENT;
    }
    res
}
