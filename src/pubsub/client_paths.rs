//! Temporary client paths: `GET /{plateId}/pubsub/{channel}/client` (authenticated) issues
//! `/{plateId}/s/{token}`, a WebSocket path that needs no credentials, for a browser that must
//! not see the API key. Parameters: `pattern`, `max_dur` (ms per connection, 0 = unlimited),
//! `expiry` or `ttl` (ms to connect, 0–600000, default 300000; `expiry` wins), `max_uses`
//! (completed connections, 0 = unlimited, default 1).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use switchboard_handlers::core::access::{Actor, ActorKind, Role};
use switchboard_handlers::core::ids::{ProjectId, UserId};

use super::error::PubSubError;
use super::target::{self, Target};
use super::tokens::{Grant, Issue, Use};
use super::{PubSub, auth, ws};

pub const MAX_EXPIRY_MS: u64 = 600_000;
const DEFAULT_EXPIRY_MS: u64 = 300_000;

#[derive(Debug, Default, Deserialize)]
pub struct ClientQuery {
    pattern: Option<String>,
    max_dur: Option<String>,
    expiry: Option<String>,
    ttl: Option<String>,
    max_uses: Option<String>,
}

fn number(name: &str, v: Option<&str>, default: u64) -> Result<u64, PubSubError> {
    match v.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| {
            PubSubError::InvalidQuery(format!("{name} must be an integer of at least 0"))
        }),
    }
}

/// The query's numbers, checked.
fn limits(q: &ClientQuery) -> Result<(u64, u64, u64), PubSubError> {
    let max_dur = number("max_dur", q.max_dur.as_deref(), 0)?;
    let expiry = number(
        "expiry",
        q.expiry.as_deref().or(q.ttl.as_deref()),
        DEFAULT_EXPIRY_MS,
    )?;
    if expiry > MAX_EXPIRY_MS {
        return Err(PubSubError::InvalidQuery(format!(
            "expiry must be 0 to {MAX_EXPIRY_MS} ms"
        )));
    }
    let max_uses = number("max_uses", q.max_uses.as_deref(), 1)?;
    Ok((max_dur, expiry, max_uses))
}

pub async fn issue(
    State(st): State<Arc<PubSub>>,
    Path((plate, channel)): Path<(String, String)>,
    query: Result<Query<ClientQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let issued = async {
        let Query(q) = query.map_err(|e| PubSubError::InvalidQuery(e.body_text()))?;
        let project = target::plate(&plate)?;
        let pattern = target::flag(q.pattern.as_deref());
        let target = Target::new(project, target::channel(&channel, pattern)?, pattern)?;
        let (max_dur, expiry, max_uses) = limits(&q)?;
        let actor = auth::authorize(&st.core, auth::header(&headers), &target.project).await?;
        st.check_rate(&actor)?;
        let plate = target.project.as_str().to_owned();
        let token = st
            .tokens
            .issue(&Issue {
                plate: plate.clone(),
                grant: Grant {
                    channel: target.channel.clone(),
                    pattern,
                    max_dur_ms: max_dur,
                },
                expiry_ms: expiry,
                max_uses,
            })
            .await?;
        Ok::<_, PubSubError>(json!({
            "ok": true,
            "data": {
                "path": format!("/{}/s/{token}", urlencode(&plate)),
                "plate_id": plate,
                "channel": target.channel,
                "pattern": pattern,
                "max_dur_ms": max_dur,
                "expiry_ms": expiry,
                "max_uses": max_uses,
            }
        }))
    };
    match issued.await {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A path segment, percent-encoded where it must be.
fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `GET /{plateId}/s/{token}`: checked before the upgrade (HTTP refusals), counted once the
/// upgrade completed.
pub async fn connect(
    State(st): State<Arc<PubSub>>,
    Path((plate, token)): Path<(String, String)>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let checked = async {
        let ws = ws.map_err(|_| PubSubError::WebsocketRequired)?;
        let project = target::plate(&plate)?;
        st.tokens
            .usage(project.as_str(), &token, Use::Check)
            .await?;
        Ok::<_, PubSubError>((ws, project))
    };
    let (ws, project) = match checked.await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    ws::upgrade(ws, move |socket| async move {
        let grant = match st
            .tokens
            .usage(project.as_str(), &token, Use::Consume)
            .await
        {
            Ok(g) => g,
            // Used up or expired between the check and the upgrade.
            Err(e) => return ws::refuse(socket, &e, e.code()).await,
        };
        let target = match Target::new(project.clone(), grant.channel, grant.pattern) {
            Ok(t) => t,
            Err(e) => return ws::refuse(socket, &e, "bad token").await,
        };
        let Some(actor) = client_actor(&project) else {
            return;
        };
        let max_dur = (grant.max_dur_ms > 0).then(|| Duration::from_millis(grant.max_dur_ms));
        ws::run(st, socket, actor, target, max_dur, false).await;
    })
}

/// A client path's connection is nobody's in particular: an app client of the plate (no user
/// room, cap or presence).
fn client_actor(project: &ProjectId) -> Option<Actor> {
    Some(Actor {
        id: UserId::try_from(format!("pubsub-client:{project}")).ok()?,
        name: "pubsub client".to_owned(),
        role: Role::User,
        kind: ActorKind::AppClient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(expiry: Option<&str>, ttl: Option<&str>) -> ClientQuery {
        ClientQuery {
            expiry: expiry.map(str::to_owned),
            ttl: ttl.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn query_rules() {
        assert_eq!(limits(&q(None, None)), Ok((0, 300_000, 1)));
        assert_eq!(limits(&q(Some("0"), None)), Ok((0, 0, 1)));
        assert_eq!(limits(&q(None, Some("1000"))), Ok((0, 1000, 1)));
        assert_eq!(limits(&q(Some("5"), Some("1000"))), Ok((0, 5, 1)));
        assert_eq!(limits(&q(Some("600000"), None)), Ok((0, 600_000, 1)));
        assert!(limits(&q(Some("600001"), None)).is_err());
        assert!(limits(&q(Some("-1"), None)).is_err());
        let bad = ClientQuery {
            max_uses: Some("x".into()),
            ..Default::default()
        };
        assert!(limits(&bad).is_err());
    }

    #[test]
    fn plates_are_encoded_in_paths() {
        assert_eq!(urlencode("p_42"), "p_42");
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
