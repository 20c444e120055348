//! Channel membership and presence of `/insforge` sockets. A channel's logical members are the
//! channel's shared presence set (`crate::channel_members`: one set for every protocol, in
//! Redis for the cluster): a user's sockets are one member, an anon-key or API-key socket is a
//! member of its own, and another protocol's members are listed too. The member's JSON
//! (`{type, presenceId, joinedAt}`) is the first socket's info, so `joinedAt` is when the
//! member first appeared. Changes travel on the channel's `ChannelPresence` topic; the front
//! end turns them into `presence:join` when a member appears and `presence:leave` when its
//! last connection goes (`front_end.rs`).

use serde_json::{Value, json};

use switchboard_handlers::core::channel_presence::Joined;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::realtime_channels::validate_channel;
use switchboard_handlers::core::time::Timestamp;
use switchboard_handlers::core::topic::Topic;

use super::Insforge;
use super::auth::Kind;
use super::connection::Conn;
use super::wire::{Code, Refusal};
use crate::channel_members::ChannelMembers;
use crate::channel_members::change::{self, PresenceChange, Side};
use crate::channel_members::info::{MemberInfo, Protocol};

/// Members one channel may have.
pub const MAX_MEMBERS: usize = 10_000;

/// The presence store's key of a channel.
pub fn key(project: &ProjectId, channel: &str) -> String {
    ChannelMembers::channel(project, channel)
}

fn member_of(conn: &Conn) -> Value {
    let kind = match conn.identity.kind {
        Kind::Authenticated => "user",
        Kind::Admin | Kind::Anon => "anonymous",
    };
    json!({"type": kind, "presenceId": conn.presence_id, "joinedAt": Timestamp::now().to_iso()})
}

/// Subscribes (idempotent) and returns the channel's members, this socket's included.
pub async fn subscribe(st: &Insforge, conn: &Conn, channel: &str) -> Result<Vec<Value>, Refusal> {
    validate_channel(channel).map_err(|e| Refusal::new(Code::Unauthorized, e))?;
    let project = &conn.identity.project;
    let key = key(project, channel);
    if !conn.channels.contains(channel) {
        match st.definitions.admitting(project, channel).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Refusal::new(
                    Code::Unauthorized,
                    "Not authorized to subscribe to this channel",
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "insforge subscribe: definitions unavailable");
                return Err(Refusal::new(Code::Internal, "Failed to subscribe"));
            }
        }
        join(st, conn, project, channel, &key).await?;
    }
    let members = st.presence.members(&key).await.map_err(|e| {
        tracing::warn!(error = %e, "insforge subscribe: presence unavailable");
        Refusal::new(Code::Internal, "Failed to subscribe")
    })?;
    Ok(members
        .into_iter()
        .filter_map(|m| Some(MemberInfo::from_text(&m.info)?.insforge_member(&m.user_id)))
        .collect())
}

async fn join(
    st: &Insforge,
    conn: &Conn,
    project: &ProjectId,
    channel: &str,
    key: &str,
) -> Result<(), Refusal> {
    let hub = &st.core.hub;
    let id = &conn.session.conn;
    let topic = Topic::Channel(project.clone(), channel.to_owned());
    let ptopic = change::topic(project, channel);
    let full = |e: switchboard_handlers::core::error::AppError| {
        Refusal::new(Code::RateLimited, e.public_message())
    };
    hub.join(id, &ptopic).map_err(full)?;
    if let Err(e) = hub.join(id, &topic) {
        hub.leave(id, &ptopic);
        return Err(full(e));
    }
    let undo = || {
        hub.leave(id, &topic);
        hub.leave(id, &ptopic);
    };
    let info = MemberInfo::new(Protocol::Insforge, member_of(conn));
    match st
        .presence
        .join(
            key,
            &conn.presence_id,
            &info.to_text(),
            &conn.presence_conn,
            MAX_MEMBERS,
        )
        .await
    {
        Ok(joined @ (Joined::First | Joined::Again)) => {
            // Every connection is announced (Supabase shows each); InsForge clients hear of
            // the member's first only.
            let side = Side {
                key: conn.presence_id.clone(),
                conn: conn.presence_conn.clone(),
                info,
                edge: joined == Joined::First,
            };
            st.members
                .publish(
                    &st.core,
                    project,
                    channel,
                    &PresenceChange::join(side),
                    Some(id),
                )
                .await;
        }
        Ok(Joined::Full) => {
            undo();
            return Err(Refusal::new(
                Code::RateLimited,
                format!("The channel has its maximum of {MAX_MEMBERS} members"),
            ));
        }
        Err(e) => {
            undo();
            tracing::warn!(error = %e, "insforge subscribe: presence unavailable");
            return Err(Refusal::new(Code::Internal, "Failed to subscribe"));
        }
    }
    // The socket may have gone while this ran, its clean-up done: then leave again.
    if !conn.channels.insert(channel) {
        leave(st, conn, channel).await;
        return Err(Refusal::new(Code::Internal, "Disconnected"));
    }
    Ok(())
}

pub async fn unsubscribe(st: &Insforge, conn: &Conn, channel: &str) {
    if !conn.channels.remove(channel) {
        return;
    }
    let project = &conn.identity.project;
    let hub = &st.core.hub;
    hub.leave(
        &conn.session.conn,
        &Topic::Channel(project.clone(), channel.to_owned()),
    );
    hub.leave(&conn.session.conn, &change::topic(project, channel));
    leave(st, conn, channel).await;
}

/// The socket is gone: it leaves the presence of every channel it was in (the hub's rooms
/// go with the session).
pub async fn leave_all(st: &Insforge, conn: &Conn) {
    for channel in conn.channels.close() {
        leave(st, conn, &channel).await;
    }
}

async fn leave(st: &Insforge, conn: &Conn, channel: &str) {
    let project = &conn.identity.project;
    let key = key(project, channel);
    match st
        .presence
        .leave(&key, &conn.presence_id, &conn.presence_conn)
        .await
    {
        Ok(last) => {
            let side = Side {
                key: conn.presence_id.clone(),
                conn: conn.presence_conn.clone(),
                info: MemberInfo::new(Protocol::Insforge, member_of(conn)),
                edge: last,
            };
            st.members
                .publish(
                    &st.core,
                    project,
                    channel,
                    &PresenceChange::leave(side),
                    None,
                )
                .await;
        }
        Err(e) => tracing::warn!(error = %e, "insforge presence leave failed"),
    }
}

/// Logical members of the channel across the cluster: a message's `wsAudienceCount`.
pub async fn audience(st: &Insforge, project: &ProjectId, channel: &str) -> u64 {
    st.presence
        .user_count(&key(project, channel))
        .await
        .map_or(0, |n| n as u64)
}
