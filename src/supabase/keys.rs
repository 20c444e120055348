//! Who a realtime-js client is. Supabase hands apps two project keys — the anon key (public,
//! shipped in the app) and the service key (server-side, bypasses row-level security) — and
//! users' JWTs as access tokens. Switchboard takes the same three: the keys of
//! `SUPABASE_ANON_KEYS` / `SUPABASE_SERVICE_KEYS` (each belongs to one project), and its own
//! user JWTs and API keys.

use subtle::ConstantTimeEq;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::access::{Actor, ActorKind, Role};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{ProjectId, UserId};
use switchboard_handlers::core::ports::Credentials;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    Anon,
    Service,
}

/// The configured project keys.
#[derive(Debug, Clone, Default)]
pub struct ProjectKeys(Vec<(ProjectId, KeyRole, String)>);

impl ProjectKeys {
    pub fn new(anon: Vec<(ProjectId, String)>, service: Vec<(ProjectId, String)>) -> Self {
        let anon = anon.into_iter().map(|(p, k)| (p, KeyRole::Anon, k));
        let service = service.into_iter().map(|(p, k)| (p, KeyRole::Service, k));
        ProjectKeys(anon.chain(service).collect())
    }

    /// Every key is compared (in constant time), so timing tells nothing about which matched.
    fn find(&self, key: &str) -> Option<(ProjectId, KeyRole)> {
        let mut found = None;
        for (project, role, k) in &self.0 {
            if bool::from(k.as_bytes().ct_eq(key.as_bytes())) {
                found = Some((project.clone(), *role));
            }
        }
        found
    }
}

/// What a credential proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A project's anon key: public channels only, no rows.
    Anon(ProjectId),
    /// A project's service key: an admin of that project.
    Service(ProjectId),
    /// A Switchboard user JWT or API key; project membership is checked where it is used.
    Switchboard(Actor),
}

impl Caller {
    /// The project a key belongs to; `None` for Switchboard credentials, which name it apart.
    pub fn key_project(&self) -> Option<&ProjectId> {
        match self {
            Caller::Anon(p) | Caller::Service(p) => Some(p),
            Caller::Switchboard(_) => None,
        }
    }

    /// The actor the core sees. An anon client is no user (no per-user cap, no presence entry
    /// of the project, no membership); `label` makes its id unique per connection.
    pub fn actor(&self, label: &str) -> Result<Actor, AppError> {
        match self {
            Caller::Anon(_) => Ok(Actor {
                id: UserId::try_from(format!("anon:{label}")).map_err(AppError::invalid)?,
                name: "anon".to_owned(),
                role: Role::User,
                kind: ActorKind::AppClient,
            }),
            Caller::Service(p) => Ok(Actor {
                id: UserId::try_from(format!("service:{p}")).map_err(AppError::invalid)?,
                name: "service_role".to_owned(),
                role: Role::Admin,
                kind: ActorKind::ApiKey,
            }),
            Caller::Switchboard(a) => Ok(a.clone()),
        }
    }

    pub fn is_anon(&self) -> bool {
        matches!(self, Caller::Anon(_))
    }
}

/// A project key, else a Switchboard JWT, else an API key. The JWT's error is the one reported
/// (it says why a token was refused: expired, bad signature, …).
pub async fn identify(core: &Core, keys: &ProjectKeys, key: &str) -> Result<Caller, AppError> {
    if let Some((project, role)) = keys.find(key) {
        return Ok(match role {
            KeyRole::Anon => Caller::Anon(project),
            KeyRole::Service => Caller::Service(project),
        });
    }
    let as_token = Credentials {
        token: Some(key.to_owned()),
        api_key: None,
    };
    match core.auth.authenticate(&as_token).await {
        Ok(a) => Ok(Caller::Switchboard(a)),
        Err(token_err) => core
            .auth
            .authenticate(&Credentials {
                token: None,
                api_key: Some(key.to_owned()),
            })
            .await
            .map(Caller::Switchboard)
            .map_err(|_| token_err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> ProjectId {
        ProjectId::try_from(s.to_owned()).expect("valid id")
    }

    #[test]
    fn keys_find_their_project_and_role() {
        let keys = ProjectKeys::new(
            vec![(pid("a"), "anon-key-a".into())],
            vec![(pid("a"), "service-key-a".into())],
        );
        assert_eq!(keys.find("anon-key-a"), Some((pid("a"), KeyRole::Anon)));
        assert_eq!(
            keys.find("service-key-a"),
            Some((pid("a"), KeyRole::Service))
        );
        assert_eq!(keys.find("anon-key-"), None);
        assert_eq!(keys.find(""), None);
    }

    #[test]
    fn a_service_key_is_an_admin_and_an_anon_key_no_user() {
        let svc = Caller::Service(pid("a")).actor("x").expect("actor");
        assert!(svc.is_admin());
        assert_eq!(svc.kind, ActorKind::ApiKey);
        let anon = Caller::Anon(pid("a")).actor("sb.1.2").expect("actor");
        assert!(!anon.is_admin());
        assert_eq!(anon.kind, ActorKind::AppClient);
        assert_eq!(anon.id.as_str(), "anon:sb.1.2");
    }
}
