//! Who an `/insforge` connection is, decided from the handshake's `auth` object in upstream's
//! order: `apiKey` (a Switchboard API key: admin), `token` starting `anon_` (a project's anon
//! key from `INSFORGE_ANON_KEYS`), any other `token` (a Switchboard user JWT); nothing is
//! refused. Refusals carry upstream's connect-error messages, which the SDK shows as they are.
//!
//! The project: an anon key's own; otherwise the handshake's `project` query parameter
//! (`baseUrl: 'https://host/insforge?project=<id>'`), which a user JWT may omit when its user
//! belongs to exactly one project.

use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq;

use switchboard_handlers::core::Core;
use switchboard_handlers::core::access::{self, Actor, ActorKind, Role};
use switchboard_handlers::core::ids::{ProjectId, UserId};
use switchboard_handlers::core::ports::Credentials;

/// The InsForge role of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An API key: `senderType: system`, anonymous presence.
    Admin,
    /// An anon key: anonymous presence.
    Anon,
    /// A user JWT: `senderId` = its `sub`, one presence member for all the user's sockets.
    Authenticated,
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub kind: Kind,
    pub actor: Actor,
    pub project: ProjectId,
}

/// Why a handshake was refused; `Display` is the connect error's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NoAuthentication,
    InvalidApiKey,
    InvalidAnonKey,
    InvalidToken(String),
    Project(String),
    TooManyConnections(usize),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NoAuthentication => f.write_str("No authentication provided"),
            Refused::InvalidApiKey => f.write_str("Invalid API key"),
            Refused::InvalidAnonKey => f.write_str("Invalid anon key"),
            Refused::InvalidToken(why) => write!(f, "Invalid token: {why}"),
            Refused::Project(why) => f.write_str(why),
            Refused::TooManyConnections(max) => {
                write!(f, "Too many connections: at most {max} per user")
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandshakeAuth {
    token: Option<String>,
    api_key: Option<String>,
}

/// The anon keys of `INSFORGE_ANON_KEYS`.
#[derive(Debug, Clone, Default)]
pub struct AnonKeys(Vec<(ProjectId, String)>);

impl AnonKeys {
    pub fn new(keys: Vec<(ProjectId, String)>) -> Self {
        AnonKeys(keys)
    }

    /// Every key is compared (in constant time), so timing tells nothing about which matched.
    fn project_of(&self, key: &str) -> Option<ProjectId> {
        let mut found = None;
        for (project, k) in &self.0 {
            if bool::from(k.as_bytes().ct_eq(key.as_bytes())) {
                found = Some(project.clone());
            }
        }
        found
    }
}

/// The `project` query parameter of the handshake, if any.
pub fn project_param(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "project")
        .map(|(_, v)| v.into_owned())
}

pub async fn identify(
    core: &Core,
    anon_keys: &AnonKeys,
    raw: Option<serde_json::Value>,
    project_param: Option<String>,
    conn: &str,
) -> Result<Identity, Refused> {
    let auth = raw
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value::<HandshakeAuth>(v).ok())
        .unwrap_or_default();
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    if let Some(key) = non_empty(auth.api_key) {
        let actor = core
            .auth
            .authenticate(&Credentials {
                token: None,
                api_key: Some(key),
            })
            .await
            .map_err(|_| Refused::InvalidApiKey)?;
        if actor.kind != ActorKind::ApiKey {
            return Err(Refused::InvalidApiKey);
        }
        let project = named_project(core, &actor, project_param).await?;
        return Ok(Identity {
            kind: Kind::Admin,
            actor,
            project,
        });
    }
    let Some(token) = non_empty(auth.token) else {
        return Err(Refused::NoAuthentication);
    };
    if token.starts_with("anon_") {
        let project = anon_keys
            .project_of(&token)
            .ok_or(Refused::InvalidAnonKey)?;
        if project_param.is_some_and(|p| p != project.as_str()) {
            return Err(Refused::Project(format!(
                "The anon key is for project {project}"
            )));
        }
        let actor = Actor {
            id: UserId::try_from(format!("anon:{conn}")).map_err(|_| Refused::InvalidAnonKey)?,
            name: "anonymous".to_owned(),
            role: Role::User,
            kind: ActorKind::AppClient,
        };
        return Ok(Identity {
            kind: Kind::Anon,
            actor,
            project,
        });
    }
    let actor = core
        .auth
        .authenticate(&Credentials {
            token: Some(token),
            api_key: None,
        })
        .await
        .map_err(|e| {
            let why = e.to_string();
            Refused::InvalidToken(
                why.strip_prefix("unauthorized: ")
                    .unwrap_or(&why)
                    .to_owned(),
            )
        })?;
    let project = match project_param {
        Some(_) => named_project(core, &actor, project_param).await?,
        None => only_project(core, &actor).await?,
    };
    Ok(Identity {
        kind: Kind::Authenticated,
        actor,
        project,
    })
}

async fn named_project(
    core: &Core,
    actor: &Actor,
    param: Option<String>,
) -> Result<ProjectId, Refused> {
    let param = param.ok_or_else(|| {
        Refused::Project("Missing project: connect with ?project=<id> in the URL".to_owned())
    })?;
    let project = ProjectId::try_from(param)
        .map_err(|e| Refused::Project(format!("Invalid project: {e}")))?;
    access::require_member(core.store.as_ref(), actor, &project)
        .await
        .map_err(|e| Refused::Project(format!("Project refused: {}", e.public_message())))?;
    Ok(project)
}

async fn only_project(core: &Core, actor: &Actor) -> Result<ProjectId, Refused> {
    let projects = core
        .store
        .list_projects(Some(&actor.id))
        .await
        .map_err(|e| Refused::Project(format!("Project lookup failed: {}", e.public_message())))?;
    match projects.as_slice() {
        [one] => Ok(one.id.clone()),
        _ => Err(Refused::Project(
            "Missing project: connect with ?project=<id> in the URL".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_comes_from_the_query() {
        assert_eq!(
            project_param(Some("EIO=4&project=demo&transport=websocket")).as_deref(),
            Some("demo")
        );
        assert_eq!(project_param(Some("project=a%3Ab")).as_deref(), Some("a:b"));
        assert_eq!(project_param(Some("EIO=4")), None);
        assert_eq!(project_param(None), None);
    }

    #[test]
    fn anon_keys_name_their_project() {
        let keys = AnonKeys::new(vec![(
            ProjectId::try_from("demo").expect("id"),
            "anon_key_one".to_owned(),
        )]);
        assert_eq!(
            keys.project_of("anon_key_one")
                .map(|p| p.as_str().to_owned()),
            Some("demo".into())
        );
        assert!(keys.project_of("anon_key_two").is_none());
    }
}
