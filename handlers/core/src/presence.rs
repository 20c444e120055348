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

#[derive(Debug, Default, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[ts(optional_fields = nullable)]
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;
    use crate::test_doubles::{Skip, TestCore, api_key, conn, project_id, user, user_id};

    /// Projects `p` (alice, bob) and `q` (alice).
    async fn fixture() -> TestCore {
        let t = TestCore::new();
        let (a, b) = (user_id("alice"), user_id("bob"));
        t.project("p", &[&a, &b], &[]).await;
        t.project("q", &[&a], &[]).await;
        t
    }

    fn in_project(p: &str) -> GoOnline {
        GoOnline {
            project_id: Some(project_id(p)),
            ..GoOnline::default()
        }
    }

    #[tokio::test]
    async fn going_online_tells_the_project_room_but_not_the_announcing_socket() {
        let t = fixture().await;
        let alice = user("alice");
        connected(&t.core, &alice, &conn("a1")).await;
        let req = GoOnline {
            project_id: Some(project_id("p")),
            status: Some("busy".to_owned()),
            metadata: serde_json::from_value(json!({"device": "web"})).expect("map"),
        };
        let out = online(&t.core, &alice, &conn("a1"), req)
            .await
            .expect("online");
        assert_eq!(out["projectIds"], json!(["p"]));
        let told = t.fanout.of(events::PRESENCE_USER_ONLINE);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].topics, vec![Topic::Project(project_id("p"))]);
        assert_eq!(told[0].skip, Skip::Conn(conn("a1")));
        assert_eq!(told[0].payload["userId"], "alice");
        assert_eq!(told[0].payload["status"], "busy");
        assert_eq!(told[0].payload["metadata"], json!({"device": "web"}));
    }

    #[tokio::test]
    async fn going_online_without_a_project_announces_in_every_project_the_user_is_in() {
        let t = fixture().await;
        let out = online(&t.core, &user("alice"), &conn("a1"), GoOnline::default())
            .await
            .expect("online");
        assert_eq!(out["projectIds"], json!(["p", "q"]));
        assert_eq!(out["status"], "online");
        let rooms: Vec<Vec<Topic>> = t
            .fanout
            .of(events::PRESENCE_USER_ONLINE)
            .into_iter()
            .map(|p| p.topics)
            .collect();
        assert_eq!(
            rooms,
            vec![
                vec![Topic::Project(project_id("p"))],
                vec![Topic::Project(project_id("q"))]
            ]
        );
    }

    #[tokio::test]
    async fn presence_is_for_members_users_and_short_statuses() {
        let t = fixture().await;
        let e = online(&t.core, &user("bob"), &conn("b1"), in_project("q"))
            .await
            .expect_err("bob is not in q");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = online(&t.core, &api_key("apikey:1"), &conn("k"), in_project("p"))
            .await
            .expect_err("an API key has no presence");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        for bad in [String::new(), "s".repeat(MAX_STATUS + 1)] {
            let req = GoOnline {
                status: Some(bad),
                ..in_project("p")
            };
            let e = online(&t.core, &user("bob"), &conn("b1"), req)
                .await
                .expect_err("bad status");
            assert_eq!(e.code(), ErrorCode::InvalidPayload);
        }
        let req = GoOnline {
            status: Some("é".repeat(MAX_STATUS)),
            ..in_project("p")
        };
        online(&t.core, &user("bob"), &conn("b1"), req)
            .await
            .expect("64 characters, however many bytes");
        assert_eq!(t.fanout.of(events::PRESENCE_USER_ONLINE).len(), 1);
    }

    #[tokio::test]
    async fn a_user_with_several_sockets_goes_offline_once_when_the_last_closes() {
        let t = fixture().await;
        let alice = user("alice");
        for c in ["a1", "a2"] {
            connected(&t.core, &alice, &conn(c)).await;
        }
        assert_eq!(t.core.local_conns.count_of(&alice.id), 2);
        online(&t.core, &alice, &conn("a1"), in_project("p"))
            .await
            .expect("online");
        let listed = list(&t.core, &user("bob"), &project_id("p"))
            .await
            .expect("list");
        assert_eq!(listed["users"][0]["userId"], "alice");
        assert_eq!(listed["users"][0]["connections"], 2);

        disconnected(&t.core, &alice, &conn("a1")).await;
        assert!(t.fanout.of(events::PRESENCE_USER_OFFLINE).is_empty());
        disconnected(&t.core, &alice, &conn("a2")).await;
        let told = t.fanout.of(events::PRESENCE_USER_OFFLINE);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].topics, vec![Topic::Project(project_id("p"))]);
        assert_eq!(told[0].skip, Skip::Nobody);
        assert_eq!(told[0].payload["userId"], "alice");
        assert_eq!(t.core.local_conns.count_of(&alice.id), 0);
        // A late duplicate close changes nothing.
        disconnected(&t.core, &alice, &conn("a2")).await;
        assert_eq!(t.fanout.of(events::PRESENCE_USER_OFFLINE).len(), 1);
        let listed = list(&t.core, &user("bob"), &project_id("p"))
            .await
            .expect("list");
        assert_eq!(listed["users"], json!([]));
    }

    #[tokio::test]
    async fn a_user_who_never_announced_goes_offline_silently() {
        let t = fixture().await;
        let bob = user("bob");
        connected(&t.core, &bob, &conn("b1")).await;
        disconnected(&t.core, &bob, &conn("b1")).await;
        assert!(t.fanout.all().is_empty());
    }

    #[tokio::test]
    async fn api_key_connections_have_no_presence() {
        let t = fixture().await;
        let key = api_key("apikey:1");
        connected(&t.core, &key, &conn("k1")).await;
        assert_eq!(t.core.local_conns.count_of(&key.id), 0);
        assert_eq!(
            t.core.presence.connections(&key.id).await.expect("count"),
            0
        );
        disconnected(&t.core, &key, &conn("k1")).await;
        assert!(t.fanout.all().is_empty());
    }

    #[tokio::test]
    async fn going_offline_retracts_everywhere_and_skips_the_sender_once() {
        let t = fixture().await;
        let alice = user("alice");
        connected(&t.core, &alice, &conn("a1")).await;
        online(&t.core, &alice, &conn("a1"), GoOnline::default())
            .await
            .expect("online");
        offline(&t.core, &alice, &conn("a1"))
            .await
            .expect("offline");
        let told = t.fanout.of(events::PRESENCE_USER_OFFLINE);
        assert_eq!(told.len(), 2, "one per announced project");
        assert!(told.iter().all(|p| p.skip == Skip::Conn(conn("a1"))));
        // Connected but no longer announced: not listed, and a second offline says nothing.
        let listed = list(&t.core, &alice, &project_id("p")).await.expect("list");
        assert_eq!(listed["users"], json!([]));
        offline(&t.core, &alice, &conn("a1"))
            .await
            .expect("offline");
        disconnected(&t.core, &alice, &conn("a1")).await;
        assert_eq!(t.fanout.of(events::PRESENCE_USER_OFFLINE).len(), 2);
    }

    #[tokio::test]
    async fn a_status_update_refreshes_last_seen_without_a_broadcast() {
        let t = fixture().await;
        let alice = user("alice");
        let before = update(&t.core, &alice).await.expect("update");
        assert_eq!(before["announced"], false);
        connected(&t.core, &alice, &conn("a1")).await;
        online(&t.core, &alice, &conn("a1"), in_project("p"))
            .await
            .expect("online");
        t.fanout.clear();
        let after = update(&t.core, &alice).await.expect("update");
        assert_eq!(after["announced"], true);
        assert!(t.fanout.all().is_empty());
        // Announcing again with a new status re-broadcasts it.
        let req = GoOnline {
            status: Some("away".to_owned()),
            ..in_project("p")
        };
        online(&t.core, &alice, &conn("a1"), req)
            .await
            .expect("online");
        let told = t.fanout.of(events::PRESENCE_USER_ONLINE);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].payload["status"], "away");
        let listed = list(&t.core, &alice, &project_id("p")).await.expect("list");
        assert_eq!(listed["users"][0]["status"], "away");
    }

    #[tokio::test]
    async fn the_heartbeat_keeps_this_nodes_users_online_and_takes_a_dead_nodes_offline_once() {
        let limits = crate::Limits {
            presence_heartbeat: Duration::from_millis(400),
            presence_ttl: Duration::from_millis(1200),
            ..crate::Limits::default()
        };
        let t = TestCore::with_limits(limits);
        let (a, b) = (user_id("alice"), user_id("bob"));
        t.project("p", &[&a, &b], &[]).await;
        let alice = user("alice");
        connected(&t.core, &alice, &conn("a1")).await;
        // bob's only connection is on a node that is gone: nobody refreshes it.
        t.core
            .presence
            .add_connection(&b, &conn("elsewhere"))
            .await
            .expect("recorded");
        for who in ["alice", "bob"] {
            online(&t.core, &user(who), &conn("x"), in_project("p"))
                .await
                .expect("online");
        }
        let beat = tokio::spawn(run_heartbeat(t.core.clone()));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        beat.abort();
        let told = t.fanout.of(events::PRESENCE_USER_OFFLINE);
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0].payload["userId"], "bob");
        assert_eq!(t.core.presence.connections(&a).await.expect("count"), 1);
        let listed = list(&t.core, &alice, &project_id("p")).await.expect("list");
        assert_eq!(listed["users"].as_array().map(Vec::len), Some(1));
        assert_eq!(listed["users"][0]["userId"], "alice");
    }

    #[tokio::test]
    async fn only_members_list_a_projects_presence() {
        let t = fixture().await;
        let e = list(&t.core, &user("bob"), &project_id("q"))
            .await
            .expect_err("bob is not in q");
        assert_eq!(e.code(), ErrorCode::Forbidden);
    }
}
