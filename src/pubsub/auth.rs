//! `Authorization: <api key>` or `Authorization: Bearer <api key | JWT>` ("bearer" in any
//! case), the same keys and tokens as the REST API: an API key (or an admin token) may use any
//! plate; a user token the plates (projects) it is a member of.

use axum::http::HeaderMap;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::access::{Actor, require_member};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::Credentials;

use super::error::PubSubError;

/// The longest credential accepted: JWTs are a few hundred bytes.
const MAX_CREDENTIAL: usize = 8 * 1024;

/// The header's value, if there is one.
pub fn header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn credentials(raw: &str) -> Credentials {
    let raw = raw.trim();
    let value = match raw.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
        _ => raw,
    };
    // A value with two dots is a JWT; anything else is an API key (as the REST API decides).
    if value.matches('.').count() == 2 {
        Credentials {
            token: Some(value.to_owned()),
            api_key: None,
        }
    } else {
        Credentials {
            token: None,
            api_key: Some(value.to_owned()),
        }
    }
}

/// Who `raw` authenticates, if they may use `plate`.
pub async fn authorize(
    core: &Core,
    raw: Option<&str>,
    plate: &ProjectId,
) -> Result<Actor, PubSubError> {
    let raw = raw.ok_or(PubSubError::MissingAuthorization)?;
    if raw.len() > MAX_CREDENTIAL {
        return Err(PubSubError::InvalidAuthorization);
    }
    let actor = core
        .auth
        .authenticate(&credentials(raw))
        .await
        .map_err(|e| match e {
            AppError::Unavailable { .. } => PubSubError::ManagerUnavailable,
            _ => PubSubError::InvalidAuthorization,
        })?;
    require_member(core.store.as_ref(), &actor, plate)
        .await
        .map_err(|e| PubSubError::from_core(&e))?;
    Ok(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_in_any_case() {
        let c = credentials("BeArEr  k_live");
        assert_eq!(c.api_key.as_deref(), Some("k_live"));
        let c = credentials("k_live");
        assert_eq!(c.api_key.as_deref(), Some("k_live"));
        let c = credentials("Bearer a.b.c");
        assert_eq!(c.token.as_deref(), Some("a.b.c"));
    }
}
