//! Authentication: HS256 JWTs (exp enforced, no other algorithm accepted, so `none` and HS/RS
//! confusion are refused) and API keys compared in constant time. Implements the core's
//! `Authenticator` port for both the Socket.IO handshake and REST.

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use switchboard_handlers::core::access::{Actor, ActorKind, Role};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::UserId;
use switchboard_handlers::core::ports::{Authenticator, Credentials};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

pub struct JwtAuthenticator {
    decoding: DecodingKey,
    validation: Validation,
    api_keys: Vec<String>,
}

impl JwtAuthenticator {
    pub fn new(secret: &str, api_keys: Vec<String>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Small allowance for clock skew between the token issuer and this node.
        validation.leeway = 5;
        JwtAuthenticator {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            api_keys,
        }
    }

    fn verify_token(&self, token: &str) -> Result<Actor, AppError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidSignature => "bad token signature",
                ErrorKind::InvalidAlgorithm => "token algorithm not accepted",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid token",
            };
            AppError::Unauthorized(why.to_owned())
        })?;
        let c = data.claims;
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
}
