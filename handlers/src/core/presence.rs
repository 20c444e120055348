//! Presence: who is online in which project, across the cluster. Connection entries live in a
//! `PresenceStore` (Redis in a cluster) with a TTL that this node's heartbeat refreshes; when a
//! user's last connection anywhere closes, or expires because its node died, exactly one node
//! learns it and announces `presence:user:offline` once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Core;
use super::access::{Actor, require_member};
use super::error::AppError;
use super::events;
use super::ids::{ProjectId, UserId};
use super::ports::{ConnId, Presence};
use super::time::Timestamp;
use super::topic::Topic;

/// Defaults: a heartbeat every 10 s, entries live 15 s, so a dead node's users go offline
/// within two heartbeat intervals (TTL plus half an interval for the sweep).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

const MAX_STATUS: usize = 64;

/// This node's user connections, for the heartbeat.
#[derive(Default)]
pub struct LocalConns(Mutex<HashMap<ConnId, UserId>>);

impl LocalConns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, UserId>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's sockets of `user`.
    pub fn count_of(&self, user: &UserId) -> usize {
        self.lock().values().filter(|u| *u == user).count()
    }

    fn snapshot(&self) -> Vec<(UserId, ConnId)> {
        self.lock()
            .iter()
            .map(|(c, u)| (u.clone(), c.clone()))
            .collect()
    }
}

/// A user socket connected on this node.
pub async fn connected(core: &Core, actor: &Actor, conn: &ConnId) {
    if !actor.is_user() {
        return;
    }
    core.local_conns
        .lock()
        .insert(conn.clone(), actor.id.clone());
    if let Err(e) = core.presence.add_connection(&actor.id, conn).await {
        tracing::warn!(error = %e, "presence: connection not recorded");
    }
}

/// A user socket closed on this node: offline once if it was the user's last anywhere.
pub async fn disconnected(core: &Core, actor: &Actor, conn: &ConnId) {
    if !actor.is_user() {
        return;
    }
    core.local_conns.lock().remove(conn);
    match core.presence.remove_connection(&actor.id, conn).await {
        Ok(true) => went_offline(core, &actor.id, None).await,
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "presence: disconnect not recorded"),
    }
}

/// Retracts the user's presence and tells each project they announced it in.
async fn went_offline(core: &Core, user: &UserId, sender: Option<&ConnId>) {
    let was = match core.presence.retract(user).await {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "presence: retract failed");
            return;
        }
    };
    let now = Timestamp::now();
    for p in &was.projects {
        let payload = json!({ "userId": user, "projectId": p, "lastSeen": now });
        if let Err(e) = core
            .fanout
            .publish(
                &[Topic::Project(p.clone())],
                events::PRESENCE_USER_OFFLINE,
                &payload,
                sender,
            )
            .await
        {
            tracing::warn!(error = %e, "presence:user:offline not delivered");
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GoOnline {
    pub project_id: Option<ProjectId>,
    pub status: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// `presence:online`: in one project, or in every project the user is a member of.
pub async fn online(
    core: &Core,
    actor: &Actor,
    conn: &ConnId,
    req: GoOnline,
) -> Result<Value, AppError> {
    let status = req.status.unwrap_or_else(|| "online".to_owned());
    if status.is_empty() || status.chars().count() > MAX_STATUS {
        return Err(AppError::invalid(format!(
            "status must be 1 to {MAX_STATUS} characters"
        )));
    }
    if !actor.is_user() {
        return Err(AppError::forbidden("presence is for user connections"));
    }
    let projects: Vec<ProjectId> = match &req.project_id {
        Some(p) => vec![
            require_member(core.store.as_ref(), actor, p)
                .await?
                .project
                .id,
        ],
        None => core
            .store
            .list_projects(Some(&actor.id))
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect(),
    };
    let metadata = Value::Object(req.metadata.unwrap_or_default());
    let now = Timestamp::now();
    core.presence
        .announce(&Presence {
            user: actor.id.clone(),
            status: status.clone(),
            metadata: metadata.clone(),
            last_seen: now,
            projects: projects.clone(),
        })
        .await?;
    for p in &projects {
        let payload = json!({
            "userId": actor.id, "projectId": p, "status": status,
            "lastSeen": now, "metadata": metadata,
        });
        core.fanout
            .publish(
                &[Topic::Project(p.clone())],
                events::PRESENCE_USER_ONLINE,
                &payload,
                Some(conn),
            )
            .await?;
    }
    Ok(json!({ "projectIds": projects, "status": status, "lastSeen": now }))
}

/// `presence:offline`: retracts the user's presence everywhere; rooms hear it, not the sender.
pub async fn offline(core: &Core, actor: &Actor, conn: &ConnId) -> Result<Value, AppError> {
    went_offline(core, &actor.id, Some(conn)).await;
    Ok(json!({}))
}

/// `presence:update`: the heartbeat a client sends; refreshes `lastSeen`, no broadcast.
pub async fn update(core: &Core, actor: &Actor) -> Result<Value, AppError> {
    let now = Timestamp::now();
    let announced = core.presence.touch(&actor.id, now).await?;
    Ok(json!({ "lastSeen": now, "announced": announced }))
}

/// `presence:get:online`: members who announced presence in the project and still have a
/// connection somewhere in the cluster.
pub async fn list(core: &Core, actor: &Actor, project: &ProjectId) -> Result<Value, AppError> {
    require_member(core.store.as_ref(), actor, project).await?;
    let mut users = Vec::new();
    for p in core.presence.announced_in(project).await? {
        let n = core.presence.connections(&p.user).await?;
        if n > 0 {
            users.push(json!({
                "userId": p.user, "status": p.status, "lastSeen": p.last_seen,
                "metadata": p.metadata, "connections": n,
            }));
        }
    }
    Ok(json!({ "projectId": project, "users": users }))
}

/// Refreshes this node's entries every heartbeat and sweeps expired ones twice as often, so
/// users of a dead node go offline (once, from whichever node claims them) within
/// TTL + heartbeat/2.
pub async fn run_heartbeat(core: Arc<Core>) {
    let every = core.limits.presence_heartbeat / 2;
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beat = false;
    loop {
        tick.tick().await;
        beat = !beat;
        if beat {
            let conns = core.local_conns.snapshot();
            if let Err(e) = core.presence.heartbeat(&conns).await {
                tracing::warn!(error = %e, "presence heartbeat failed");
            }
        }
        match core.presence.sweep().await {
            Ok(users) => {
                for u in users {
                    went_offline(&core, &u, None).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "presence sweep skipped"),
        }
    }
}
