//! What a request names: the plate (a Switchboard project), the channel or pattern, and the
//! words a plate id cannot be because fixed routes own them.

use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::topic::Topic;

use super::error::PubSubError;
use super::patterns::{Glob, MAX_PATTERN_BYTES};

/// First path segments that belong to the server's fixed routes (Socket.IO, REST, the other
/// protocols, health): never plate ids, even where no fixed route matches the rest of the path.
pub const RESERVED_PLATES: &[&str] = &[
    "socket.io",
    "api",
    "app",
    "apps",
    "realtime",
    "console",
    "health",
    "ready",
    "metrics",
    "webhooks",
    "raw-ws",
    "insforge",
];

/// Longest channel name in bytes (the hub's channel limit, shared with Pusher and Supabase).
pub const MAX_CHANNEL_BYTES: usize = 255;

/// A subscription: one exact channel, or one pattern over the plate's channels.
#[derive(Debug, Clone)]
pub struct Target {
    pub project: ProjectId,
    /// The channel name, or the pattern's source text.
    pub channel: String,
    pub pattern: Option<Glob>,
}

impl Target {
    pub fn new(project: ProjectId, channel: String, pattern: bool) -> Result<Self, PubSubError> {
        let pattern = if pattern {
            // An empty pattern is every channel of the plate.
            let source = if channel.is_empty() { "*" } else { &channel };
            Some(Glob::compile(source).map_err(|e| PubSubError::InvalidQuery(e.to_string()))?)
        } else {
            None
        };
        Ok(Target {
            project,
            channel,
            pattern,
        })
    }

    pub fn topic(&self) -> Topic {
        Topic::Channel(self.project.clone(), self.channel.clone())
    }
}

pub fn plate(raw: &str) -> Result<ProjectId, PubSubError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(PubSubError::MissingPathValue("plateId"));
    }
    if RESERVED_PLATES.iter().any(|r| r.eq_ignore_ascii_case(raw)) {
        return Err(PubSubError::UnknownPlate(raw.to_owned()));
    }
    ProjectId::try_from(raw).map_err(PubSubError::InvalidQuery)
}

/// A channel name, or with `pattern` a pattern (which may be empty: every channel).
pub fn channel(raw: &str, pattern: bool) -> Result<String, PubSubError> {
    let raw = raw.trim();
    if raw.is_empty() && !pattern {
        return Err(PubSubError::MissingPathValue("channel"));
    }
    let max = if pattern {
        MAX_PATTERN_BYTES
    } else {
        MAX_CHANNEL_BYTES
    };
    if raw.len() > max {
        return Err(PubSubError::InvalidQuery(format!(
            "a channel {} is at most {max} bytes",
            if pattern { "pattern" } else { "name" }
        )));
    }
    if raw.chars().any(char::is_control) {
        return Err(PubSubError::InvalidQuery(
            "a channel name cannot hold control characters".to_owned(),
        ));
    }
    Ok(raw.to_owned())
}

/// `pattern=true` or `pattern=1` (any case); anything else is an exact subscription.
pub fn flag(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_bad_plates_are_refused() {
        assert!(matches!(plate("api"), Err(PubSubError::UnknownPlate(_))));
        assert!(matches!(
            plate("Socket.IO"),
            Err(PubSubError::UnknownPlate(_))
        ));
        assert!(matches!(plate(" "), Err(PubSubError::MissingPathValue(_))));
        assert_eq!(plate(" demo ").expect("plate").as_str(), "demo");
    }

    #[test]
    fn channels_and_flags() {
        assert_eq!(channel(" user:123 ", false).expect("ok"), "user:123");
        assert!(channel("", false).is_err());
        assert_eq!(channel("", true).expect("every channel"), "");
        assert!(channel(&"x".repeat(256), false).is_err());
        assert!(channel("a\nb", false).is_err());
        assert!(flag(Some("TRUE")) && flag(Some("1")));
        assert!(!flag(Some("yes")) && !flag(None));
    }

    #[test]
    fn an_empty_pattern_is_every_channel() {
        let demo = ProjectId::try_from("demo").expect("id");
        let t = Target::new(demo.clone(), String::new(), true).expect("target");
        assert!(t.pattern.expect("a pattern").matches("any:thing"));
        let t = Target::new(demo, "a[".to_owned(), true);
        assert!(matches!(t, Err(PubSubError::InvalidQuery(_))));
    }
}
