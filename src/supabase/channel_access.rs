//! Who may join a channel. Supabase authorizes private channels with row-level security on
//! `realtime.messages`; Switchboard's counterpart is project membership and the collection
//! rules. A private channel named `<collection>` or `<collection>:<document id>`, where the
//! project declares a rule for `<collection>`, follows that rule: `members` admits every member,
//! `owner:<field>` admits the owner of the named document (and nobody on the bare collection
//! name), an unreadable rule admits admins only. Any other private channel admits the
//! project's members. Public channels admit whoever the connection admitted, anon keys
//! included. Joining grants reading and sending alike.

use switchboard_handlers::core::Core;
use switchboard_handlers::core::access::{Actor, require_member};
use switchboard_handlers::core::data::rules::{AccessRule, owner_of};
use switchboard_handlers::core::error::ErrorCode;
use switchboard_handlers::core::ids::{CollectionId, DocumentId, ProjectId};

/// Why a join was refused: the reason realtime-js shows (`Code: message`).
pub fn unauthorized(name: &str) -> String {
    format!("Unauthorized: You do not have permissions to read from this Channel topic: {name}")
}

/// Whether `actor` (`anon` for an anon-key client) may join channel `name` of `project`.
pub async fn authorize(
    core: &Core,
    actor: &Actor,
    anon: bool,
    project: &ProjectId,
    name: &str,
    private: bool,
) -> Result<(), String> {
    if !private {
        return Ok(());
    }
    if anon {
        return Err(unauthorized(name));
    }
    let member = match require_member(core.store.as_ref(), actor, project).await {
        Ok(m) => m,
        Err(e) if e.code() == ErrorCode::Unavailable => return Err(unavailable()),
        Err(_) => return Err(unauthorized(name)),
    };
    if actor.is_admin() {
        return Ok(());
    }
    let (collection, doc) = match name.split_once(':') {
        Some((c, d)) => (c, Some(d)),
        None => (name, None),
    };
    if !member.project.collections.contains_key(collection) {
        return Ok(());
    }
    let Ok(collection) = CollectionId::try_from(collection.to_owned()) else {
        return Ok(());
    };
    match AccessRule::of(&member.project, &collection) {
        AccessRule::Members => Ok(()),
        AccessRule::AdminsOnly => Err(unauthorized(name)),
        rule @ AccessRule::Owner(_) => {
            let Some(id) = doc.and_then(|d| DocumentId::try_from(d.to_owned()).ok()) else {
                return Err(unauthorized(name));
            };
            match core.store.get_document(project, &collection, &id).await {
                Ok(Some(d)) if owner_of(&rule, &d.body) == Some(actor.id.as_str()) => Ok(()),
                Ok(_) => Err(unauthorized(name)),
                Err(_) => Err(unavailable()),
            }
        }
    }
}

fn unavailable() -> String {
    "Unavailable: channel authorization is unavailable, try again later".to_owned()
}
