//! Whether a channel has subscribers anywhere in the cluster, and how many: every Pusher
//! subscription is recorded in the channel presence store (in Redis with several nodes) as a
//! connection of one pseudo-member, under a key of its own. The store decides "first" and
//! "last" once for the cluster, and sweeps the subscriptions of a node that died, so
//! `channel_occupied` / `channel_vacated` fire once per cluster-wide transition and the HTTP
//! API's `subscription_count` and channel list are the cluster's.

use switchboard_handlers::core::channel_presence::Joined;
use switchboard_handlers::core::ids::ProjectId;

use super::Pusher;
use super::channel;

/// The pseudo-member every subscription of a channel belongs to.
const EVERYONE: &str = "*";
const PREFIX: &str = "occ:";

/// The occupancy key of a channel of `project`.
pub fn key(project: &ProjectId, name: &str) -> String {
    format!("{PREFIX}{}", channel::topic(project, name).room())
}

/// The channel room an occupancy key stands for; `None` for any other key.
pub fn room_of(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX)
}

/// Records a subscription; the channel's first in the cluster tells the project's apps.
pub async fn enter(st: &Pusher, project: &ProjectId, name: &str, conn: &str) {
    let key = key(project, name);
    let conn = conn.to_owned();
    match st.presence.join(&key, EVERYONE, "{}", &conn, 1).await {
        Ok(Joined::First) => {
            for app in st.apps.current().iter().filter(|a| &a.project == project) {
                st.webhooks.occupied(app, name);
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pusher channel occupancy not recorded"),
    }
}

/// Forgets a subscription; the channel's last in the cluster tells the project's apps.
pub async fn leave(st: &Pusher, project: &ProjectId, name: &str, conn: &str) {
    let key = key(project, name);
    match st.presence.leave(&key, EVERYONE, &conn.to_owned()).await {
        Ok(true) => vacated(st, project, &key, name),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "pusher channel occupancy not released"),
    }
}

/// `channel_vacated` to every app of the project (after the departure delay).
pub fn vacated(st: &Pusher, project: &ProjectId, key: &str, name: &str) {
    for app in st.apps.current().iter().filter(|a| &a.project == project) {
        st.webhooks.vacated(app, &st.presence, key, name);
    }
}

/// The channel's subscriptions in the cluster.
pub async fn subscription_count(
    st: &Pusher,
    project: &ProjectId,
    name: &str,
) -> Result<usize, switchboard_handlers::core::error::AppError> {
    st.presence.connection_count(&key(project, name)).await
}

/// The project's channels with subscribers in the cluster whose names start with `prefix`.
pub async fn channels(
    st: &Pusher,
    project: &ProjectId,
    prefix: &str,
) -> Result<Vec<String>, switchboard_handlers::core::error::AppError> {
    let base = key(project, "");
    let keys = st.presence.channels(&format!("{base}{prefix}")).await?;
    Ok(keys
        .iter()
        .filter_map(|k| k.strip_prefix(&base))
        .map(str::to_owned)
        .collect())
}
