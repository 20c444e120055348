//! The paths. They sit under `/{plateId}`, below every fixed route: the composition root
//! mounts this router as the fallback, so `/socket.io`, `/api`, `/app`, … always win, and a
//! plate id equal to one of their first segments is refused (`target::RESERVED_PLATES`).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use switchboard_handlers::core::Core;
use switchboard_handlers::core::error::AppError;

use super::error::PubSubError;
use super::front_end::PubSubFrontEnd;
use super::tokens::TokenStore;
use super::{PubSub, client_paths, publish, sse, ws};
use crate::http::rate_limit::KeyedLimiter;

/// Request bodies beyond the message limit's envelope are refused unread.
const BODY_OVERHEAD: usize = 1024;

/// Whether `path` (as requested, percent-encoded) is one of the routes below under a plate id
/// that is not reserved. The CORS preflight of these paths is answered `204`, as upstream
/// (`crate::http::outer_layers`).
pub fn is_route(path: &str) -> bool {
    let Some(path) = path.strip_prefix('/') else {
        return false;
    };
    // At most five segments are looked at: no route has more than four.
    let segs: Vec<&str> = path.splitn(5, '/').collect();
    let plate = match segs.as_slice() {
        [
            plate,
            "pubsub",
            ch,
            "publish" | "subscribe" | "ws" | "client",
        ]
        | [plate, "publish" | "subscribe" | "s", ch]
        | [plate, "ws", "subscribe", ch]
            if !ch.is_empty() =>
        {
            *plate
        }
        _ => return false,
    };
    !plate.is_empty()
        && !super::target::RESERVED_PLATES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(plate))
}

/// Registers the front end in the hub and returns its routes and the front end (to drain it
/// at shutdown). With Redis, client path tokens are shared by every node.
pub fn router(
    core: Arc<Core>,
    redis: Option<(crate::redis::Client, &str)>,
) -> Result<(Router, Arc<PubSubFrontEnd>), AppError> {
    let front_end = Arc::new(PubSubFrontEnd::default());
    let id = core.hub.register(front_end.clone())?;
    let tokens = match redis {
        Some((client, prefix)) => TokenStore::redis(client, prefix),
        None => TokenStore::memory(),
    };
    let body_limit = core.limits.max_event_bytes + BODY_OVERHEAD;
    let user_rate = KeyedLimiter::new(core.limits.rate_per_sec, core.limits.rate_burst);
    let st = Arc::new(PubSub {
        user_rate,
        core,
        front_end: front_end.clone(),
        id,
        tokens,
    });
    let router = Router::new()
        .route("/{plate}/pubsub/{channel}/publish", post(publish::publish))
        .route("/{plate}/pubsub/{channel}/subscribe", get(sse::subscribe))
        .route("/{plate}/pubsub/{channel}/ws", get(ws::subscribe))
        .route("/{plate}/pubsub/{channel}/client", get(client_paths::issue))
        .route("/{plate}/publish/{channel}", post(publish::publish))
        .route("/{plate}/subscribe/{channel}", get(sse::subscribe))
        .route("/{plate}/ws/subscribe/{channel}", get(ws::subscribe))
        .route("/{plate}/s/{token}", get(client_paths::connect))
        .fallback(async || axum::response::IntoResponse::into_response(PubSubError::UnknownPath))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(st);
    Ok((router, front_end))
}

#[cfg(test)]
mod tests {
    use super::is_route;

    #[test]
    fn the_routes_are_recognised() {
        for p in [
            "/demo/pubsub/alerts/publish",
            "/demo/pubsub/user%3A1/subscribe",
            "/demo/pubsub/a/ws",
            "/demo/pubsub/a/client",
            "/demo/publish/a",
            "/demo/subscribe/a",
            "/demo/ws/subscribe/a",
            "/demo/s/0123abcd",
        ] {
            assert!(is_route(p), "{p}");
        }
        for p in [
            "/",
            "/demo",
            "/demo/pubsub/a",
            "/demo/pubsub/a/other",
            "/demo/pubsub/a/publish/more",
            "/api/pubsub/a/publish",
            "/socket.io/publish/a",
            "/demo/publish/",
            "//publish/a",
        ] {
            assert!(!is_route(p), "{p}");
        }
    }
}
