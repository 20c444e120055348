//! Rooms, typed. `Topic` renders exactly the contract's room names; no other code writes a room
//! name by hand, so a typo is a compile error and a rename is one edit.

use std::fmt;

use super::ids::{ChatId, CollectionId, DocumentId, IntegrationId, ProjectId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    User(UserId),
    Project(ProjectId),
    Collection(ProjectId, CollectionId),
    Document(ProjectId, CollectionId, DocumentId),
    Chat(ChatId),
    Integration(IntegrationId),
    IntegrationWebhooks(IntegrationId),
    WalletAddress(String),
    WalletProject(ProjectId),
    WalletChain(ProjectId, String),
    WalletCurrency(ProjectId, String),
    Custom(ProjectId, String),
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::User(u) => write!(f, "user:{u}"),
            Topic::Project(p) => write!(f, "project:{p}"),
            Topic::Collection(p, c) => write!(f, "collection:{p}:{c}"),
            Topic::Document(p, c, d) => write!(f, "document:{p}:{c}:{d}"),
            Topic::Chat(c) => write!(f, "chat:{c}"),
            Topic::Integration(i) => write!(f, "integration:{i}"),
            Topic::IntegrationWebhooks(i) => write!(f, "integration-webhooks:{i}"),
            Topic::WalletAddress(a) => write!(f, "wallet:address:{a}"),
            Topic::WalletProject(p) => write!(f, "wallet:project:{p}"),
            Topic::WalletChain(p, c) => write!(f, "wallet:chain:{p}:{c}"),
            Topic::WalletCurrency(p, c) => write!(f, "wallet:currency:{p}:{c}"),
            Topic::Custom(p, r) => write!(f, "custom:{p}:{r}"),
        }
    }
}

impl Topic {
    pub fn room(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<T: TryFrom<&'static str>>(s: &'static str) -> T
    where
        T::Error: std::fmt::Debug,
    {
        T::try_from(s).expect("valid id")
    }

    #[test]
    fn rooms_match_the_contract() {
        assert_eq!(Topic::User(id("alice")).room(), "user:alice");
        assert_eq!(Topic::Project(id("demo")).room(), "project:demo");
        assert_eq!(
            Topic::Collection(id("demo"), id("tasks")).room(),
            "collection:demo:tasks"
        );
        assert_eq!(
            Topic::Document(id("demo"), id("tasks"), id("t1")).room(),
            "document:demo:tasks:t1"
        );
        assert_eq!(Topic::Chat(id("general")).room(), "chat:general");
        assert_eq!(
            Topic::IntegrationWebhooks(id("i1")).room(),
            "integration-webhooks:i1"
        );
        assert_eq!(
            Topic::WalletChain(id("demo"), "eth".into()).room(),
            "wallet:chain:demo:eth"
        );
        assert_eq!(
            Topic::Custom(id("demo"), "r".into()).room(),
            "custom:demo:r"
        );
    }
}
