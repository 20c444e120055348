//! Pusher channel names: what a name may hold, which kind of channel its prefix makes, and the
//! hub room a channel lives in.

use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::topic::Topic;

/// Longest channel name (the `pusher` server library's and Soketi's limit).
pub const MAX_NAME: usize = 200;

/// The prefix of the channels only a signed-in user may subscribe to.
pub const SERVER_TO_USER: &str = "#server-to-user-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Public,
    /// `private-`: subscribing needs a signature from the app's backend.
    Private,
    /// `private-encrypted-`: signed like private; payloads are end-to-end encrypted by the app,
    /// opaque here, and clients may not send events on it.
    Encrypted,
    /// `presence-`: signed over the member's `channel_data`; the member list is kept.
    Presence,
    /// `#server-to-user-<id>`: only the connections signed in as `<id>` subscribe (without a
    /// signature); the app sends to it (`sendToUser`).
    ServerToUser,
}

impl Kind {
    /// Whether subscribing needs a signature.
    pub fn signed(self) -> bool {
        matches!(self, Kind::Private | Kind::Encrypted | Kind::Presence)
    }

    /// Whether clients may send `client-*` events on it.
    pub fn takes_client_events(self) -> bool {
        matches!(self, Kind::Private | Kind::Presence)
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b)
}

/// The kind of a valid channel name, or why the name is not one.
pub fn kind_of(name: &str) -> Result<Kind, &'static str> {
    if name.is_empty() {
        return Err("The channel name is empty");
    }
    if name.len() > MAX_NAME {
        return Err("The channel name is longer than 200 characters");
    }
    let (body, kind) = match name.strip_prefix(SERVER_TO_USER) {
        Some(user) => (user, Some(Kind::ServerToUser)),
        None => (name, None),
    };
    if body.is_empty() || !body.bytes().all(allowed) {
        return Err("The channel name may hold only A-Z a-z 0-9 _ - = @ , . ;");
    }
    Ok(kind.unwrap_or(if name.starts_with("private-encrypted-") {
        Kind::Encrypted
    } else if name.starts_with("private-") {
        Kind::Private
    } else if name.starts_with("presence-") {
        Kind::Presence
    } else {
        Kind::Public
    }))
}

/// The hub topic of a channel: channels are scoped by project, so every app of a project
/// shares them.
pub fn topic(project: &ProjectId, name: &str) -> Topic {
    Topic::Channel(project.clone(), name.to_owned())
}

/// The channel name of a hub room made by [`topic`]; `None` for any other room. Channel names
/// hold no `:`, so the name is what follows the last one.
pub fn name_of_room(room: &str) -> Option<&str> {
    room.strip_prefix("channel:")?
        .rsplit_once(':')
        .map(|(_, name)| name)
}

/// Whether `s` is a Pusher socket id (`^\d+\.\d+$`).
pub fn is_socket_id(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.len() <= 20
                && b.len() <= 20
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_make_kinds() {
        assert_eq!(kind_of("chat"), Ok(Kind::Public));
        assert_eq!(kind_of("private-chat"), Ok(Kind::Private));
        assert_eq!(kind_of("private-encrypted-x"), Ok(Kind::Encrypted));
        assert_eq!(kind_of("presence-room"), Ok(Kind::Presence));
        assert_eq!(kind_of("#server-to-user-u1"), Ok(Kind::ServerToUser));
        assert_eq!(kind_of("a_b-c=d@e,f.g;h"), Ok(Kind::Public));
        assert_eq!(kind_of(&"x".repeat(200)), Ok(Kind::Public));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "has space",
            "a:b",
            "#other",
            "#server-to-user-",
            "é",
            "a/b",
            &"x".repeat(201),
        ] {
            assert!(kind_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rooms_name_their_channel() {
        let p = ProjectId::try_from("a:b").expect("id");
        let room = topic(&p, "presence-x").room();
        assert_eq!(name_of_room(&room), Some("presence-x"));
        assert_eq!(name_of_room("chat:c1"), None);
    }

    #[test]
    fn socket_ids() {
        assert!(is_socket_id("1234.5678"));
        for bad in ["1234", "1234.", ".1", "a.1", "1.2.3", "1 .2", ""] {
            assert!(!is_socket_id(bad), "{bad}");
        }
    }
}
