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
    /// A project's wallet feed. `None`: every transaction (admins); `Some(user)`: only the
    /// transactions of that user's addresses (members), docs/protocol.md "Wallet visibility".
    WalletProject(ProjectId, Option<UserId>),
    WalletChain(ProjectId, String, Option<UserId>),
    WalletCurrency(ProjectId, String, Option<UserId>),
    Custom(ProjectId, String),
    /// A protocol front end's channel (a Pusher channel, a Supabase Realtime channel), scoped
    /// by project: every app of the project shares it. Each front end validates its names
    /// (Pusher's hold no `:`; Supabase's may: the project part of the room is escaped).
    Channel(ProjectId, String),
    /// The changes of a channel's presence set, which every protocol shares (Pusher
    /// `presence-` channels, Supabase Realtime, InsForge): apart from the channel's own events,
    /// and joined only by protocol front ends, so none relays them as user events.
    ChannelPresence(ProjectId, String),
    /// The connections of a user an app's backend signed in (Pusher user sign-in): not a
    /// Switchboard user, and a room no client names, so only the app can reach them all (to
    /// terminate them).
    AppUser(ProjectId, String),
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
            Topic::WalletProject(p, None) => write!(f, "wallet:project:{p}"),
            Topic::WalletChain(p, c, None) => write!(f, "wallet:chain:{p}:{c}"),
            Topic::WalletCurrency(p, c, None) => write!(f, "wallet:currency:{p}:{c}"),
            Topic::WalletProject(p, Some(u)) => {
                write!(
                    f,
                    "wallet-own:project:{}:{}",
                    Escaped(p.as_str()),
                    Escaped(u.as_str())
                )
            }
            Topic::WalletChain(p, c, Some(u)) => write!(
                f,
                "wallet-own:chain:{}:{c}:{}",
                Escaped(p.as_str()),
                Escaped(u.as_str())
            ),
            Topic::WalletCurrency(p, c, Some(u)) => write!(
                f,
                "wallet-own:currency:{}:{c}:{}",
                Escaped(p.as_str()),
                Escaped(u.as_str())
            ),
            Topic::Custom(p, r) => write!(f, "custom:{p}:{r}"),
            Topic::Channel(p, c) => write!(f, "channel:{}:{c}", Escaped(p.as_str())),
            Topic::ChannelPresence(p, c) => {
                write!(f, "channel-presence:{}:{c}", Escaped(p.as_str()))
            }
            Topic::AppUser(p, u) => {
                write!(f, "app-user:{}:{}", Escaped(p.as_str()), Escaped(u))
            }
        }
    }
}

/// Ids may hold `:`, so a member's own wallet feed (a room no client names: it is not in the
/// contract) escapes them; with its own `wallet-own:` prefix it can equal neither another
/// member's room nor a contract room.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '%' => f.write_str("%25")?,
                ':' => f.write_str("%3A")?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// Whether an event name is one the protocol front ends use for their own control frames
/// (Pusher's `pusher:` and `pusher_internal:`, Apinator's and InsForge's `realtime:`,
/// InsForge's `presence:`, Phoenix's `phx_`). An event a client names and publishes on a
/// channel (a Supabase broadcast, an InsForge publish, a REST emit, a Pusher trigger) may not
/// use one: another protocol's clients would take it for their server's own frame, a forged
/// `member_added` say.
pub fn is_protocol_event(event: &str) -> bool {
    const PREFIXES: [&str; 5] = [
        "pusher:",
        "pusher_internal:",
        "realtime:",
        "presence:",
        "phx_",
    ];
    PREFIXES.iter().any(|p| event.starts_with(p))
}

impl Topic {
    pub fn room(&self) -> String {
        self.to_string()
    }

    /// The channel name in a `Channel` or `ChannelPresence` room of `project` (names may hold
    /// `:`; the project part is escaped, so the split is unambiguous).
    pub fn channel_name_in<'r>(room: &'r str, project: &ProjectId) -> Option<&'r str> {
        let rest = room
            .strip_prefix("channel:")
            .or_else(|| room.strip_prefix("channel-presence:"))?;
        let p = Escaped(project.as_str()).to_string();
        rest.strip_prefix(p.as_str())?.strip_prefix(':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_events_are_recognised() {
        for e in [
            "pusher:subscribe",
            "pusher_internal:member_added",
            "realtime:subscription_succeeded",
            "presence:join",
            "phx_reply",
        ] {
            assert!(is_protocol_event(e), "{e}");
        }
        for e in [
            "new-message",
            "client-typing",
            "message",
            "custom:x",
            "pusher",
        ] {
            assert!(!is_protocol_event(e), "{e}");
        }
    }

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
            Topic::WalletChain(id("demo"), "eth".into(), None).room(),
            "wallet:chain:demo:eth"
        );
        assert_eq!(
            Topic::WalletProject(id("demo"), None).room(),
            "wallet:project:demo"
        );
        assert_eq!(
            Topic::WalletCurrency(id("demo"), "ETH".into(), Some(id("bob"))).room(),
            "wallet-own:currency:demo:ETH:bob"
        );
        assert_ne!(
            Topic::WalletProject(id("a:b"), Some(id("c"))).room(),
            Topic::WalletProject(id("a"), Some(id("b:c"))).room()
        );
        assert_eq!(
            Topic::Custom(id("demo"), "r".into()).room(),
            "custom:demo:r"
        );
        assert_eq!(
            Topic::Channel(id("demo"), "presence-room".into()).room(),
            "channel:demo:presence-room"
        );
        assert_eq!(
            Topic::ChannelPresence(id("demo"), "room1".into()).room(),
            "channel-presence:demo:room1"
        );
        // Names may hold `:`, project ids too: the project is escaped, so no two differ only
        // in where the split falls.
        let a = Topic::Channel(id("a:b"), "c".into()).room();
        let b = Topic::Channel(id("a"), "b:c".into()).room();
        assert_ne!(a, b);
        assert_eq!(Topic::channel_name_in(&b, &id("a")), Some("b:c"));
        assert_eq!(Topic::channel_name_in(&a, &id("a:b")), Some("c"));
        assert_eq!(Topic::channel_name_in(&a, &id("a")), None);
    }
}
