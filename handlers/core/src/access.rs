//! Who is acting, and the proofs that they may. Use cases take proof values (`ProjectMember`) as
//! arguments, so calling one without the check does not compile.

use serde::Serialize;

use super::error::AppError;
use super::ids::{ProjectId, UserId};
use super::model::Project;
use super::ports::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A person, from a JWT.
    User,
    /// A server or admin client, from an API key.
    ApiKey,
    /// A client of a protocol app (a Pusher app key): not a user, so no per-user connection
    /// cap, no user room and no presence entry; what it may do is its protocol's business.
    AppClient,
}

/// The authenticated party behind a connection or request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The JWT's `sub`; for API keys a stable non-secret label (`apikey:<n>`).
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub kind: ActorKind,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn is_user(&self) -> bool {
        self.kind == ActorKind::User
    }

    /// The `from` object the contract attaches to relayed events.
    pub fn from_json(&self) -> serde_json::Value {
        serde_json::json!({ "userId": self.id, "name": self.name })
    }
}

/// Proof that an actor may act in a project: a member, or an admin.
#[derive(Debug, Clone)]
pub struct ProjectMember {
    pub project: Project,
    pub actor: Actor,
}

impl ProjectMember {
    pub fn project_id(&self) -> &ProjectId {
        &self.project.id
    }
}

/// A non-admin learns nothing about projects they are not in: a missing project and a project
/// they are not a member of both answer FORBIDDEN. Admins get NOT_FOUND for a missing one.
pub async fn require_member(
    store: &dyn Store,
    actor: &Actor,
    project_id: &ProjectId,
) -> Result<ProjectMember, AppError> {
    let project = store.get_project(project_id).await?;
    match project {
        Some(p) if actor.is_admin() || p.has_member(&actor.id) => Ok(ProjectMember {
            project: p,
            actor: actor.clone(),
        }),
        None if actor.is_admin() => Err(AppError::not_found("project", project_id.as_str())),
        _ => Err(AppError::forbidden(format!(
            "not a member of project {project_id}"
        ))),
    }
}

/// Proof that an actor takes part in a chat (participants; admins everywhere).
#[derive(Debug, Clone)]
pub struct ChatParticipant {
    pub chat: super::model::Chat,
    pub actor: Actor,
}

/// Unknown chat (or one of another project than the caller named): NOT_FOUND. Known chat the
/// caller is not a participant of: FORBIDDEN.
pub async fn require_participant(
    store: &dyn Store,
    actor: &Actor,
    chat_id: &super::ids::ChatId,
    project_id: Option<&ProjectId>,
) -> Result<ChatParticipant, AppError> {
    let chat = store
        .get_chat(chat_id)
        .await?
        .filter(|c| project_id.is_none_or(|p| &c.project_id == p))
        .ok_or_else(|| AppError::not_found("chat", chat_id.as_str()))?;
    if actor.is_admin() || chat.has_participant(&actor.id) {
        Ok(ChatParticipant {
            chat,
            actor: actor.clone(),
        })
    } else {
        Err(AppError::forbidden(format!(
            "not a participant of chat {chat_id}"
        )))
    }
}
