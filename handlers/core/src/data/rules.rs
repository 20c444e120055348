//! Per-collection access rules from the project's config: `members` (every member reads every
//! document) or `owner:<field>` (a user sees only documents whose `<field>` is their user id).

use crate::access::Actor;
use crate::ids::CollectionId;
use crate::model::{DocumentBody, Project};
use crate::ports::{FieldGuard, lookup};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessRule {
    Members,
    Owner(String),
    /// A rule this server cannot read: only admins see anything (fail closed, never open).
    AdminsOnly,
}

impl AccessRule {
    pub fn parse(s: &str) -> AccessRule {
        match s.trim() {
            "members" => AccessRule::Members,
            other => match other.strip_prefix("owner:") {
                Some(field) if valid_field(field) => AccessRule::Owner(field.to_owned()),
                _ => AccessRule::AdminsOnly,
            },
        }
    }

    pub fn of(project: &Project, collection: &CollectionId) -> AccessRule {
        match project.collections.get(collection.as_str()) {
            None => AccessRule::Members,
            Some(rule) => {
                let parsed = AccessRule::parse(&rule.access);
                if parsed == AccessRule::AdminsOnly {
                    tracing::warn!(
                        project = %project.id,
                        collection = %collection,
                        access = %rule.access,
                        "unreadable collection access rule; only admins may read it"
                    );
                }
                parsed
            }
        }
    }

    /// The condition a non-admin's reads and writes carry; `None` when there is none.
    pub fn guard(&self, actor: &Actor) -> Option<FieldGuard> {
        if actor.is_admin() {
            return None;
        }
        match self {
            AccessRule::Members => None,
            AccessRule::Owner(field) => Some(FieldGuard {
                field: field.clone(),
                value: actor.id.to_string(),
            }),
            // No document has a field named like this, so nothing matches.
            AccessRule::AdminsOnly => Some(FieldGuard {
                field: "\u{0}admins-only".to_owned(),
                value: String::new(),
            }),
        }
    }

    pub fn can_read(&self, actor: &Actor, doc: &DocumentBody) -> bool {
        self.guard(actor).is_none_or(|g| g.admits(doc))
    }

    pub fn owner_field(&self) -> Option<&str> {
        match self {
            AccessRule::Owner(f) => Some(f),
            _ => None,
        }
    }
}

fn valid_field(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 64
        && f.split('.')
            .all(|p| !p.is_empty() && !p.starts_with('$') && !p.chars().any(char::is_control))
}

/// Where an owner-scoped document says its owner is, if it says so.
pub fn owner_of<'a>(rule: &AccessRule, doc: &'a DocumentBody) -> Option<&'a str> {
    rule.owner_field()
        .and_then(|f| lookup(doc, f))
        .and_then(|v| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_fail_closed() {
        assert_eq!(AccessRule::parse("members"), AccessRule::Members);
        assert_eq!(
            AccessRule::parse("owner:ownerId"),
            AccessRule::Owner("ownerId".into())
        );
        assert_eq!(
            AccessRule::parse("owner:meta.owner"),
            AccessRule::Owner("meta.owner".into())
        );
        for bad in ["owner:", "owner:$x", "everyone", "owner:a..b"] {
            assert_eq!(AccessRule::parse(bad), AccessRule::AdminsOnly, "{bad}");
        }
    }
}
