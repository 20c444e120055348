//! The REST surface on axum: health, metrics, and the `/api` admin and data API. Shares the
//! port with Socket.IO (the socketioxide layer takes `/socket.io/`).

mod admin;
mod bodies;
mod chats;
mod collections;
mod console;
pub mod contracts;
mod documents;
mod emit;
mod error;
mod extract;
mod health;
mod integrations;
pub mod openapi;
mod projects;
pub(crate) mod rate_limit;
pub mod routes;
mod tail;
mod wallet;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::HeaderValue;
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
    let mut api = Router::new();
    let mut root = Router::new();
    for r in routes::all(webhook_limiter) {
        match r.path.strip_prefix("/api") {
            Some(rest) => api = api.route(rest, r.handler),
            None => root = root.route(r.path, r.handler),
        }
    }
    let api = api.fallback(async || ApiError(AppError::not_found("route", "")));
    root.nest("/api", api)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(state)
        .merge(contracts::docs_router())
        .merge(console::router())
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
