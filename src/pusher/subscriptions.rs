//! What one connection asks for: subscribe and unsubscribe (public, private, encrypted and
//! presence channels, signatures checked, presence members kept), client events (private and
//! presence channels only, rate-limited, never echoed to the sender), and keepalive pings.
//! Every refusal is a frame for the client; none closes the connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use switchboard_handlers::core::channel_presence::{Joined, Member};
use switchboard_handlers::core::topic::Topic;

use super::Pusher;
use super::apps::App;
use super::channel::{self, Kind};
use super::occupancy;
use super::sign;
use super::webhooks::Event;
use super::wire::{self, ClientFrame, Envelope};
use crate::channel_members::change::{self, PresenceChange, Side};
use crate::channel_members::info::{MemberInfo, Protocol};

/// Pusher's published limits.
pub const MAX_MEMBERS: usize = 100;
pub const MAX_USER_ID: usize = 128;
pub const MAX_USER_INFO: usize = 1024;
pub const MAX_EVENT_NAME: usize = 200;
pub const MAX_CLIENT_DATA: usize = 10 * 1024;
/// Largest `user_data` of a sign-in.
pub const MAX_USER_DATA: usize = 4 * 1024;

struct Subscribed {
    kind: Kind,
    /// The member's user id, on presence channels.
    user: Option<String>,
    /// What the shared presence set holds for this connection, on presence channels.
    info: Option<MemberInfo>,
}

/// Client events counted in one-second windows.
struct RateWindow {
    start: Instant,
    count: u32,
}

impl RateWindow {
    fn allow(&mut self, per_sec: u32) -> bool {
        let now = Instant::now();
        if now.duration_since(self.start) >= Duration::from_secs(1) {
            self.start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= per_sec
    }
}

/// Every frame a connection sends, as a token bucket (`RATE_LIMIT_PER_SEC`, `RATE_LIMIT_BURST`,
/// as for Socket.IO): subscribing and leaving presence channels in a loop would otherwise make
/// every member of them hear about it as fast as the client can write.
struct FrameBudget {
    tokens: f64,
    last: Instant,
}

impl FrameBudget {
    fn take(&mut self, per_sec: u32, burst: u32) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * f64::from(per_sec);
        self.tokens = (self.tokens + refill).min(f64::from(burst.max(1)));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why a subscription was refused, as `pusher:subscription_error` reports it.
struct Refused {
    kind: &'static str,
    error: String,
    status: u16,
}

fn auth_error(error: impl Into<String>) -> Refused {
    Refused {
        kind: "AuthError",
        error: error.into(),
        status: 401,
    }
}

fn limit(error: impl Into<String>) -> Refused {
    Refused {
        kind: "LimitReached",
        error: error.into(),
        status: 403,
    }
}

fn invalid(error: impl Into<String>) -> Refused {
    Refused {
        kind: "InvalidChannel",
        error: error.into(),
        status: 400,
    }
}

fn unavailable() -> Refused {
    Refused {
        kind: "Unavailable",
        error: "presence is unavailable, try again later".into(),
        status: 503,
    }
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct PresenceData<'a> {
    presence: Snapshot<'a>,
}

#[derive(Serialize)]
struct Snapshot<'a> {
    ids: Vec<&'a str>,
    hash: BTreeMap<&'a str, &'a RawValue>,
    count: usize,
}

pub(super) struct Subscriptions {
    st: Pusher,
    app: Arc<App>,
    socket_id: String,
    /// Bounded by the hub's room limit, which every subscription passes.
    channels: HashMap<String, Subscribed>,
    events: RateWindow,
    frames: FrameBudget,
    /// The user the app's backend signed this connection in as (`pusher:signin`).
    user: Option<String>,
    /// Set when the connection must close (a bad sign-in): the code and reason.
    pub close: Option<(u16, &'static str)>,
}

impl Subscriptions {
    pub fn new(st: Pusher, app: Arc<App>, socket_id: String) -> Self {
        let burst = f64::from(st.core.limits.rate_burst);
        Subscriptions {
            st,
            app,
            socket_id,
            channels: HashMap::new(),
            events: RateWindow {
                start: Instant::now(),
                count: 0,
            },
            frames: FrameBudget {
                tokens: burst,
                last: Instant::now(),
            },
            user: None,
            close: None,
        }
    }

    /// Handles one text frame; returns the frames to send back.
    pub async fn handle(&mut self, text: &str) -> Vec<Utf8Bytes> {
        let limits = &self.st.core.limits;
        if !self.frames.take(limits.rate_per_sec, limits.rate_burst) {
            return vec![wire::error(
                self.app.dialect,
                Some(4301),
                "Too many frames: this connection is sending faster than allowed",
            )];
        }
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(_) => {
                return vec![wire::error(
                    self.app.dialect,
                    None,
                    "Invalid frame: expected a JSON object with an event",
                )];
            }
        };
        if frame.event.starts_with("client-") {
            return self.client_event(frame).await.err().into_iter().collect();
        }
        match &*wire::event_in(self.app.dialect, &frame.event) {
            "pusher:ping" => vec![wire::pong(self.app.dialect)],
            "pusher:pong" => Vec::new(),
            "pusher:subscribe" => vec![self.subscribe(frame.data.as_deref()).await],
            "pusher:unsubscribe" => {
                self.unsubscribe(frame.data.as_deref()).await;
                Vec::new()
            }
            "pusher:signin" => self
                .signin(frame.data.as_deref())
                .await
                .into_iter()
                .collect(),
            other => {
                tracing::debug!(event = other, "unknown pusher event ignored");
                Vec::new()
            }
        }
    }

    /// `pusher:signin`: the app's backend signed `user_data`; the connection becomes that
    /// user's (its server-to-user channel, `terminate_connections`). A bad sign-in closes the
    /// connection with `pusher:error` 4009 and close code 4009, as Pusher does.
    async fn signin(&mut self, data: Option<&RawValue>) -> Option<Utf8Bytes> {
        match self.try_signin(data).await {
            Ok(user_data) => Some(wire::signin_success(self.app.dialect, &user_data)),
            Err(why) => {
                tracing::debug!(why, "pusher sign-in refused");
                self.close = Some((
                    4009,
                    "Sign-in failed: a bad signature, or user_data without an id",
                ));
                None
            }
        }
    }

    async fn try_signin(&mut self, data: Option<&RawValue>) -> Result<String, String> {
        let req: wire::Signin =
            wire::control(data).map_err(|e| format!("Invalid pusher:signin data: {e}"))?;
        if req.user_data.len() > MAX_USER_DATA {
            return Err(format!("user_data is larger than {MAX_USER_DATA} bytes"));
        }
        if !sign::user_auth_valid(
            &self.app.key,
            &self.app.secret,
            &self.socket_id,
            &req.user_data,
            &req.auth,
        ) {
            return Err("Invalid signature".into());
        }
        let user: wire::UserData = serde_json::from_str(&req.user_data)
            .map_err(|_| "user_data must be a JSON object with a string id".to_owned())?;
        if user.id.is_empty() || user.id.chars().count() > MAX_USER_ID {
            return Err(format!(
                "user_data.id must have 1 to {MAX_USER_ID} characters"
            ));
        }
        match &self.user {
            Some(current) if *current == user.id => return Ok(req.user_data),
            Some(_) => return Err("This connection is signed in as another user".into()),
            None => {}
        }
        let topic = Topic::AppUser(self.app.project.clone(), user.id.clone());
        self.st
            .core
            .hub
            .join(&self.socket_id, &topic)
            .map_err(|e| e.public_message())?;
        self.user = Some(user.id);
        Ok(req.user_data)
    }

    fn topic(&self, name: &str) -> Topic {
        channel::topic(&self.app.project, name)
    }

    async fn subscribe(&mut self, data: Option<&RawValue>) -> Utf8Bytes {
        let req: wire::Subscribe = match wire::control(data) {
            Ok(r) => r,
            Err(e) => {
                return wire::error(
                    self.app.dialect,
                    None,
                    &format!("Invalid pusher:subscribe data: {e}"),
                );
            }
        };
        match self.try_subscribe(&req).await {
            Ok(frame) => frame,
            Err(r) => {
                wire::subscription_error(self.app.dialect, &req.channel, r.kind, &r.error, r.status)
            }
        }
    }

    async fn try_subscribe(&mut self, req: &wire::Subscribe) -> Result<Utf8Bytes, Refused> {
        let name = req.channel.as_str();
        let kind = channel::kind_of(name).map_err(invalid)?;
        if kind == Kind::ServerToUser
            && name.strip_prefix(channel::SERVER_TO_USER) != self.user.as_deref()
        {
            return Err(auth_error(
                "Only the signed-in user may subscribe to their server-to-user channel",
            ));
        }
        if let Some(s) = self.channels.get(name) {
            // Subscribing again changes nothing and is answered again.
            return self.succeeded(name, s.kind).await;
        }
        let member = if kind.signed() {
            let channel_data =
                if kind == Kind::Presence {
                    Some(req.channel_data.as_deref().ok_or_else(|| {
                        auth_error("channel_data is required on presence channels")
                    })?)
                } else {
                    None
                };
            let auth = req.auth.as_deref().unwrap_or("");
            if !sign::channel_auth_valid(
                &self.app.key,
                &self.app.secret,
                &self.socket_id,
                name,
                channel_data,
                auth,
            ) {
                return Err(auth_error("Invalid signature"));
            }
            channel_data.map(parse_member).transpose()?
        } else {
            None
        };
        let topic = self.topic(name);
        self.st
            .core
            .hub
            .can_join(&self.socket_id, &topic)
            .map_err(|e| limit(e.public_message()))?;
        let room = topic.room();
        let mut first = false;
        let stored = member.as_ref().map(|(_, info)| {
            MemberInfo::new(
                Protocol::Pusher,
                serde_json::from_str(info.get()).unwrap_or_default(),
            )
        });
        if let (Some((user, _)), Some(stored)) = (&member, &stored) {
            match self
                .st
                .presence
                .join(&room, user, &stored.to_text(), &self.socket_id, MAX_MEMBERS)
                .await
            {
                Ok(Joined::Full) => {
                    return Err(limit(format!(
                        "The presence channel has its maximum of {MAX_MEMBERS} members"
                    )));
                }
                Ok(joined) => first = joined == Joined::First,
                Err(e) => {
                    tracing::warn!(error = %e, "pusher presence join failed");
                    return Err(unavailable());
                }
            }
        }
        let presence_topic = change::topic(&self.app.project, name);
        let hub = &self.st.core.hub;
        let joined = hub.join(&self.socket_id, &topic).and_then(|()| {
            if member.is_none() {
                return Ok(());
            }
            hub.join(&self.socket_id, &presence_topic).inspect_err(|_| {
                hub.leave(&self.socket_id, &topic);
            })
        });
        if let Err(e) = joined {
            if let Some((user, _)) = &member {
                let _ = self.st.presence.leave(&room, user, &self.socket_id).await;
            }
            return Err(limit(e.public_message()));
        }
        self.channels.insert(
            name.to_owned(),
            Subscribed {
                kind,
                user: member.as_ref().map(|(u, _)| u.clone()),
                info: stored.clone(),
            },
        );
        occupancy::enter(&self.st, &self.app.project, name, &self.socket_id).await;
        if let (Some((user, _)), Some(stored)) = (&member, stored) {
            // Every connection is announced (Supabase shows each); Pusher's own clients hear
            // of the user's first only.
            let side = Side {
                key: user.clone(),
                conn: self.socket_id.clone(),
                info: stored,
                edge: first,
            };
            change::publish(
                &self.st.core,
                &self.app.project,
                name,
                &PresenceChange::join(side),
                Some(&self.socket_id),
            )
            .await;
            if first {
                self.st.webhooks.member_added(&self.app, name, user);
            }
        }
        self.succeeded(name, kind).await
    }

    async fn succeeded(&self, name: &str, kind: Kind) -> Result<Utf8Bytes, Refused> {
        if kind != Kind::Presence {
            return Ok(wire::subscription_succeeded(
                self.app.dialect,
                name,
                &Empty {},
            ));
        }
        let members: Vec<Member> = self
            .st
            .presence
            .members(&self.topic(name).room())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "pusher presence members unavailable");
                unavailable()
            })?;
        // Every protocol's members, each shown with the info Pusher would have for it.
        let infos: Vec<(&str, Box<RawValue>)> = members
            .iter()
            .filter_map(|m| {
                let info = MemberInfo::from_text(&m.info)?.pusher_info();
                serde_json::value::to_raw_value(&info)
                    .ok()
                    .map(|i| (m.user_id.as_str(), i))
            })
            .collect();
        let snapshot = Snapshot {
            ids: infos.iter().map(|(u, _)| *u).collect(),
            hash: infos.iter().map(|(u, i)| (*u, &**i)).collect(),
            count: infos.len(),
        };
        Ok(wire::subscription_succeeded(
            self.app.dialect,
            name,
            &PresenceData { presence: snapshot },
        ))
    }

    async fn unsubscribe(&mut self, data: Option<&RawValue>) {
        let Ok(req) = wire::control::<wire::Unsubscribe>(data) else {
            return;
        };
        let Some(s) = self.channels.remove(&req.channel) else {
            return;
        };
        let topic = self.topic(&req.channel);
        self.st.core.hub.leave(&self.socket_id, &topic);
        if let (Some(user), Some(info)) = (s.user, s.info) {
            self.st.core.hub.leave(
                &self.socket_id,
                &change::topic(&self.app.project, &req.channel),
            );
            self.left_presence(&req.channel, user, info).await;
        }
        occupancy::leave(&self.st, &self.app.project, &req.channel, &self.socket_id).await;
    }

    /// The connection is closing: it leaves every presence channel and gives up its
    /// subscriptions (its rooms go with the session).
    pub async fn leave_all(&mut self) {
        for (name, s) in std::mem::take(&mut self.channels) {
            if let (Some(user), Some(info)) = (s.user, s.info) {
                self.left_presence(&name, user, info).await;
            }
            occupancy::leave(&self.st, &self.app.project, &name, &self.socket_id).await;
        }
    }

    async fn left_presence(&self, name: &str, user: String, info: MemberInfo) {
        let room = self.topic(name).room();
        let last = match self.st.presence.leave(&room, &user, &self.socket_id).await {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(error = %e, "pusher presence leave not recorded");
                return;
            }
        };
        if last {
            self.st
                .webhooks
                .member_removed(&self.app, &self.st.presence, &room, name, &user);
        }
        let side = Side {
            key: user,
            conn: self.socket_id.clone(),
            info,
            edge: last,
        };
        change::publish(
            &self.st.core,
            &self.app.project,
            name,
            &PresenceChange::leave(side),
            Some(&self.socket_id),
        )
        .await;
    }

    async fn client_event(&mut self, frame: ClientFrame) -> Result<(), Utf8Bytes> {
        let per_sec = self.app.client_events_per_sec;
        if !self.events.allow(per_sec) {
            return Err(wire::error(
                self.app.dialect,
                Some(4301),
                &format!("Client event rate limit exceeded: at most {per_sec} per second"),
            ));
        }
        if !self.app.client_messages {
            return Err(wire::error(
                self.app.dialect,
                None,
                "Client events are disabled for this app",
            ));
        }
        let Some(name) = frame.channel.as_deref() else {
            return Err(wire::error(
                self.app.dialect,
                None,
                "Client event rejected - no channel given",
            ));
        };
        let Some(s) = self.channels.get(name) else {
            return Err(wire::error(
                self.app.dialect,
                None,
                "Client event rejected - not subscribed to the channel",
            ));
        };
        if !s.kind.takes_client_events() {
            return Err(wire::error(
                self.app.dialect,
                None,
                "Client event rejected - only supported on private and presence channels",
            ));
        }
        if frame.event.len() > MAX_EVENT_NAME {
            return Err(wire::error(
                self.app.dialect,
                None,
                "Client event rejected - the event name is longer than 200 characters",
            ));
        }
        let null;
        let raw = match frame.data.as_deref() {
            Some(d) => d,
            None => {
                null = serde_json::value::to_raw_value(&serde_json::Value::Null)
                    .map_err(|_| wire::error(self.app.dialect, None, "Client event rejected"))?;
                &*null
            }
        };
        let data = wire::as_string(raw);
        if wire::data_len(&data) > MAX_CLIENT_DATA {
            return Err(wire::error(
                self.app.dialect,
                None,
                "Client event rejected - data is larger than 10 KB",
            ));
        }
        let payload = Envelope {
            data: &data,
            user_id: s.user.as_deref(),
        }
        .encode()
        .ok_or_else(|| wire::error(self.app.dialect, None, "Client event rejected"))?;
        let topic = self.topic(name);
        self.st
            .core
            .fanout
            .publish_encoded(
                std::slice::from_ref(&topic),
                &frame.event,
                &payload,
                Some(&self.socket_id),
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "pusher client event not published");
                wire::error(
                    self.app.dialect,
                    None,
                    "Client event not delivered, try again later",
                )
            })?;
        if !self.app.webhooks.is_empty() {
            self.st.webhooks.send(
                &self.app,
                Event {
                    name: "client_event",
                    channel: name.to_owned(),
                    user_id: s.user.clone(),
                    event: Some(frame.event.clone()),
                    data: serde_json::from_str(data.get()).ok(),
                    socket_id: Some(self.socket_id.clone()),
                },
            );
        }
        Ok(())
    }
}

/// A presence member from the signed `channel_data`: user id (a string or a number, kept as
/// its string form) and info (`null` when absent), within Pusher's limits.
fn parse_member(channel_data: &str) -> Result<(String, Box<RawValue>), Refused> {
    let cd: wire::ChannelData = serde_json::from_str(channel_data)
        .map_err(|e| invalid(format!("channel_data is not a presence member: {e}")))?;
    let user = cd.user_id.into_string();
    if user.is_empty() {
        return Err(invalid("channel_data has an empty user_id"));
    }
    if user.chars().count() > MAX_USER_ID {
        return Err(limit(format!(
            "user_id is longer than {MAX_USER_ID} characters"
        )));
    }
    let info = match cd.user_info {
        Some(i) => i,
        None => serde_json::value::to_raw_value(&serde_json::Value::Null)
            .map_err(|_| invalid("channel_data has no usable user_info"))?,
    };
    if info.get().len() > MAX_USER_INFO {
        return Err(limit(format!(
            "user_info is larger than {MAX_USER_INFO} bytes"
        )));
    }
    Ok((user, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_from_channel_data() {
        let (u, i) = parse_member(r#"{"user_id":"u1","user_info":{"name":"Ann"}}"#)
            .ok()
            .expect("member");
        assert_eq!((u.as_str(), i.get()), ("u1", r#"{"name":"Ann"}"#));
        let (u, i) = parse_member(r#"{"user_id":42}"#).ok().expect("member");
        assert_eq!((u.as_str(), i.get()), ("42", "null"));
        for bad in [
            "",
            "[]",
            r#"{"user_info":{}}"#,
            r#"{"user_id":""}"#,
            r#"{"user_id":true}"#,
        ] {
            assert_eq!(
                parse_member(bad).err().map(|r| r.kind),
                Some("InvalidChannel"),
                "{bad}"
            );
        }
        let long = format!(r#"{{"user_id":"{}"}}"#, "u".repeat(129));
        assert_eq!(
            parse_member(&long).err().map(|r| r.kind),
            Some("LimitReached")
        );
        let big = format!(r#"{{"user_id":"u","user_info":"{}"}}"#, "i".repeat(1100));
        assert_eq!(
            parse_member(&big).err().map(|r| r.kind),
            Some("LimitReached")
        );
    }

    #[test]
    fn frame_budget_allows_a_burst_then_the_rate() {
        let mut b = FrameBudget {
            tokens: 3.0,
            last: Instant::now(),
        };
        assert!((0..3).all(|_| b.take(1, 3)));
        assert!(!b.take(1, 3));
        b.last -= Duration::from_secs(2);
        assert!(b.take(1, 3) && b.take(1, 3));
        assert!(!b.take(1, 3));
    }

    #[test]
    fn rate_window() {
        let mut w = RateWindow {
            start: Instant::now(),
            count: 0,
        };
        assert!((0..10).all(|_| w.allow(10)));
        assert!(!w.allow(10));
        w.start -= Duration::from_secs(1);
        assert!(w.allow(10));
    }
}
