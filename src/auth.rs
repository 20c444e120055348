//! Authentication: HS256 JWTs (no other algorithm accepted, so `none` and HS/RS confusion are
//! refused; `exp` required, `nbf` and `iat` checked, a bounded lifetime, `iss`/`aud` when
//! configured, reserved ids refused) and API keys compared in constant time. Implements the
//! core's `Authenticator` port for both the Socket.IO handshake and REST.

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use switchboard_handlers::core::access::{Actor, ActorKind, Role};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::UserId;
use switchboard_handlers::core::ports::{Authenticator, Credentials};

/// Id prefixes the server gives to identities that are not JWT users (API keys are `apikey:<n>`),
/// so a token cannot pose as one: compared without regard to ASCII case.
pub const RESERVED_ID_PREFIXES: &[&str] =
    &["apikey:", "system:", "anon:", "integration:", "webhook:"];

/// Default longest token lifetime (JWT_MAX_TTL_SECS): 30 days.
pub const DEFAULT_MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// Allowance for clock skew between the token issuer and this node, on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 5;

/// Why a user id cannot be a token's subject, if it cannot.
pub fn reserved_id(sub: &str) -> Option<&'static str> {
    RESERVED_ID_PREFIXES.iter().copied().find(|p| {
        sub.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What a token must satisfy beyond its signature (JWT_ISSUER, JWT_AUDIENCE, JWT_MAX_TTL_SECS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub max_ttl_secs: u64,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            issuer: None,
            audience: None,
            max_ttl_secs: DEFAULT_MAX_TTL_SECS,
        }
    }
}

pub struct JwtAuthenticator {
    decoding: DecodingKey,
    validation: Validation,
    max_ttl_secs: u64,
    api_keys: Vec<String>,
}

impl JwtAuthenticator {
    /// With the default policy: no issuer or audience, 30 days at most.
    pub fn new(secret: &str, api_keys: Vec<String>) -> Self {
        Self::with_policy(secret, api_keys, TokenPolicy::default())
    }

    pub fn with_policy(secret: &str, api_keys: Vec<String>, policy: TokenPolicy) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &policy.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        if let Some(aud) = &policy.audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        JwtAuthenticator {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            max_ttl_secs: policy.max_ttl_secs,
            api_keys,
        }
    }

    fn verify_token(&self, token: &str) -> Result<Actor, AppError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not valid yet (nbf)",
                ErrorKind::InvalidSignature => "bad token signature",
                ErrorKind::InvalidAlgorithm => "token algorithm not accepted",
                ErrorKind::InvalidIssuer => "token issuer not accepted",
                ErrorKind::InvalidAudience => "token audience not accepted",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid token",
            };
            AppError::Unauthorized(why.to_owned())
        })?;
        let c = data.claims;
        self.check_lifetime(&c)?;
        if let Some(prefix) = reserved_id(&c.sub) {
            return Err(AppError::Unauthorized(format!(
                "bad sub: ids starting with {prefix} are reserved"
            )));
        }
        let id =
            UserId::try_from(c.sub).map_err(|e| AppError::Unauthorized(format!("bad sub: {e}")))?;
        let role = match c.role.as_deref() {
            None | Some("user") => Role::User,
            Some("admin") => Role::Admin,
            Some(_) => return Err(AppError::Unauthorized("unknown role".to_owned())),
        };
        Ok(Actor {
            name: c.name.unwrap_or_else(|| id.to_string()),
            id,
            role,
            kind: ActorKind::User,
        })
    }

    /// `iat` not in the future, and `exp - iat` (or `exp - now` without `iat`) within the
    /// maximum lifetime, so that a leaked long-lived token cannot be used for years.
    fn check_lifetime(&self, c: &Claims) -> Result<(), AppError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(AppError::internal)?
            .as_secs();
        if c.iat
            .is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS))
        {
            return Err(AppError::Unauthorized(
                "token issued in the future (iat)".to_owned(),
            ));
        }
        let start = c.iat.unwrap_or(now);
        let lifetime = c.exp.saturating_sub(start);
        if lifetime > self.max_ttl_secs.saturating_add(LEEWAY_SECS) {
            return Err(AppError::Unauthorized(format!(
                "token lifetime exceeds {} s",
                self.max_ttl_secs
            )));
        }
        Ok(())
    }

    fn verify_api_key(&self, key: &str) -> Result<Actor, AppError> {
        // Compare against every key, without stopping early, so timing says nothing about
        // which key or how much of one matched.
        let mut found = None;
        for (i, k) in self.api_keys.iter().enumerate() {
            let same: bool = k.as_bytes().ct_eq(key.as_bytes()).into();
            if same && found.is_none() {
                found = Some(i);
            }
        }
        let i = found.ok_or_else(|| AppError::Unauthorized("unknown API key".to_owned()))?;
        let label = format!("apikey:{}", i + 1);
        Ok(Actor {
            id: UserId::try_from(label.clone()).map_err(AppError::internal)?,
            name: label,
            role: Role::Admin,
            kind: ActorKind::ApiKey,
        })
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, creds: &Credentials) -> Result<Actor, AppError> {
        match (&creds.token, &creds.api_key) {
            (Some(t), _) if !t.is_empty() => self.verify_token(t),
            (_, Some(k)) if !k.is_empty() => self.verify_api_key(k),
            _ => Err(AppError::Unauthorized("missing token or apiKey".to_owned())),
        }
    }
}

/// Mints a token for `switchboard token` and for tests.
pub fn mint(
    secret: &str,
    user: &str,
    role: Option<&str>,
    ttl_secs: u64,
    name: Option<&str>,
) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = Claims {
        sub: user.to_owned(),
        exp: now + ttl_secs,
        iat: Some(now),
        nbf: None,
        name: name.map(str::to_owned),
        role: role.map(str::to_owned),
    };
    Ok(encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> JwtAuthenticator {
        JwtAuthenticator::new("0123456789abcdef", vec!["key-one".into(), "key-two".into()])
    }

    fn creds(token: Option<String>, key: Option<&str>) -> Credentials {
        Credentials {
            token,
            api_key: key.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn tokens_and_keys() {
        let a = auth();
        let t = mint("0123456789abcdef", "alice", None, 60, Some("Alice")).expect("mint");
        let actor = a.authenticate(&creds(Some(t), None)).await.expect("valid");
        assert_eq!(actor.id.as_str(), "alice");
        assert_eq!(actor.name, "Alice");
        assert_eq!(actor.role, Role::User);

        let admin = mint("0123456789abcdef", "root", Some("admin"), 60, None).expect("mint");
        assert!(
            a.authenticate(&creds(Some(admin), None))
                .await
                .expect("valid")
                .is_admin()
        );

        let k = a
            .authenticate(&creds(None, Some("key-two")))
            .await
            .expect("key");
        assert_eq!(k.id.as_str(), "apikey:2");
        assert_eq!(k.kind, ActorKind::ApiKey);
    }

    #[tokio::test]
    async fn refusals() {
        let a = auth();
        let wrong = mint("another-secret-xyz", "alice", None, 60, None).expect("mint");
        let bad_role = mint("0123456789abcdef", "alice", Some("root"), 60, None).expect("mint");
        let expired = {
            let claims = Claims {
                sub: "alice".into(),
                exp: 1_000,
                iat: None,
                nbf: None,
                name: None,
                role: None,
            };
            encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"0123456789abcdef"),
            )
            .expect("encode")
        };
        // The right secret under another HMAC algorithm: only HS256 is accepted.
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: "alice".into(),
                exp: 9_999_999_999,
                iat: None,
                nbf: None,
                name: None,
                role: None,
            },
            &EncodingKey::from_secret(b"0123456789abcdef"),
        )
        .expect("encode");
        // An unsigned token ("alg":"none").
        let none =
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.";
        for c in [
            creds(None, None),
            creds(Some(String::new()), None),
            creds(Some(wrong), None),
            creds(Some(expired), None),
            creds(Some(bad_role), None),
            creds(Some(none.into()), None),
            creds(Some(hs512), None),
            creds(Some("garbage".into()), None),
            creds(None, Some("key-three")),
        ] {
            let e = a.authenticate(&c).await.expect_err("refused");
            assert!(matches!(e, AppError::Unauthorized(_)), "{e}");
        }
    }

    fn signed(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef"),
        )
        .expect("encode")
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    #[tokio::test]
    async fn time_claims_lifetime_and_reserved_ids() {
        let a = auth();
        let t = now();
        for (claims, why) in [
            (
                serde_json::json!({"sub": "alice", "nbf": t + 3600, "exp": t + 7200}),
                "not valid yet",
            ),
            (
                serde_json::json!({"sub": "alice", "exp": 32_472_144_000u64}),
                "lifetime",
            ),
            (
                serde_json::json!({"sub": "alice", "iat": t - 31 * 86_400, "exp": t + 60}),
                "lifetime",
            ),
            (
                serde_json::json!({"sub": "alice", "iat": t + 600, "exp": t + 700}),
                "future",
            ),
            (
                serde_json::json!({"sub": "apikey:1", "exp": t + 60}),
                "reserved",
            ),
            (
                serde_json::json!({"sub": "Anon:x", "exp": t + 60}),
                "reserved",
            ),
            (
                serde_json::json!({"sub": "alice", "exp": t + 60, "aud": "x"}),
                "audience",
            ),
        ] {
            match a
                .authenticate(&creds(Some(signed(claims.clone())), None))
                .await
            {
                Err(AppError::Unauthorized(m)) => assert!(m.contains(why), "{claims}: {m}"),
                other => panic!("{claims}: {other:?}"),
            }
        }
        let ok = serde_json::json!({"sub": "alice", "iat": t, "nbf": t, "exp": t + 30 * 86_400});
        a.authenticate(&creds(Some(signed(ok)), None))
            .await
            .expect("30 days from now is within the default");
    }

    #[tokio::test]
    async fn issuer_audience_and_max_ttl_policy() {
        let a = JwtAuthenticator::with_policy(
            "0123456789abcdef",
            vec![],
            TokenPolicy {
                issuer: Some("https://id.example.com".into()),
                audience: Some("switchboard".into()),
                max_ttl_secs: 600,
            },
        );
        let t = now();
        let good = |extra: serde_json::Value| {
            let mut c = serde_json::json!({"sub": "alice", "iat": t, "exp": t + 300,
                "iss": "https://id.example.com", "aud": "switchboard"});
            if let (Some(m), Some(e)) = (c.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    if v.is_null() {
                        m.remove(k);
                    } else {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            signed(c)
        };
        a.authenticate(&creds(Some(good(serde_json::json!({}))), None))
            .await
            .expect("matching iss and aud");
        for extra in [
            serde_json::json!({"iss": null}),
            serde_json::json!({"aud": null}),
            serde_json::json!({"iss": "https://other"}),
            serde_json::json!({"aud": "other"}),
            serde_json::json!({"exp": t + 3600}),
        ] {
            let e = a
                .authenticate(&creds(Some(good(extra.clone())), None))
                .await
                .expect_err("refused");
            assert!(matches!(e, AppError::Unauthorized(_)), "{extra}: {e}");
        }
    }
}
