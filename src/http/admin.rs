//! Admin views of the live system: the nodes and their connections per protocol
//! (`GET /api/admin/nodes`), a project's rooms with their member counts
//! (`GET /api/projects/{p}/rooms`) and who is present in it (`GET /api/projects/{p}/presence`).

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use switchboard_handlers::core::access::{Actor, require_member};
use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::presence;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, QueryParams};

pub const DEFAULT_ROOMS_PAGE: usize = 100;
pub const MAX_ROOMS_PAGE: usize = 500;

fn require_admin(actor: &Actor) -> Result<(), AppError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("needs an API key or an admin token"))
    }
}

fn project_id(p: String) -> Result<ProjectId, AppError> {
    ProjectId::try_from(p).map_err(AppError::invalid)
}

/// `GET /api/admin/nodes`: every live node's connections per protocol and room count, and
/// their sums.
pub async fn nodes(State(st): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<Value>> {
    require_admin(&actor)?;
    let (mut reports, clustered) = st.nodes.cluster().await;
    let mut connections: BTreeMap<String, usize> = BTreeMap::new();
    for r in &mut reports {
        r.room_members.clear();
        for (protocol, n) in &r.connections {
            *connections.entry(protocol.clone()).or_insert(0) += n;
        }
    }
    let total: usize = connections.values().sum();
    Ok(Json(json!({
        "node": st.nodes.node,
        "clustered": clustered,
        "nodes": reports,
        "cluster": { "nodes": reports.len(), "connections": connections, "total": total },
    })))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RoomsPage {
    limit: Option<String>,
    after: Option<String>,
}

#[derive(Debug, Serialize)]
struct RoomCount {
    room: String,
    /// Members on the node that answered.
    here: usize,
    /// Members on every node (each node reports its largest rooms).
    cluster: usize,
}

/// `GET /api/projects/{p}/rooms?limit=&after=`: the project's rooms with members anywhere, by
/// name, with their member counts here and in the cluster.
pub async fn rooms(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
    QueryParams(page): QueryParams<RoomsPage>,
) -> ApiResult<Json<Value>> {
    require_admin(&actor)?;
    let limit =
        super::extract::page_limit(page.limit.as_deref(), DEFAULT_ROOMS_PAGE, MAX_ROOMS_PAGE)?;
    let pid = project_id(p)?;
    let member = require_member(st.core.store.as_ref(), &actor, &pid).await?;
    let owned = ProjectRooms::of(&st, &member.project).await?;
    let (reports, _) = st.nodes.cluster().await;
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in &reports {
        let here = r.node == st.nodes.node;
        for (room, n) in &r.room_members {
            if owned.contains(room) {
                let c = counts.entry(room.clone()).or_default();
                if here {
                    c.0 += n;
                }
                c.1 += n;
            }
        }
    }
    let after = page.after.filter(|a| !a.is_empty());
    let mut list: Vec<RoomCount> = counts
        .into_iter()
        .filter(|(room, _)| after.as_ref().is_none_or(|a| room > a))
        .take(limit + 1)
        .map(|(room, (here, cluster))| RoomCount {
            room,
            here,
            cluster,
        })
        .collect();
    let more = list.len() > limit;
    list.truncate(limit);
    let next = if more {
        list.last().map(|r| r.room.clone())
    } else {
        None
    };
    Ok(Json(json!({ "rooms": list, "nextCursor": next })))
}

/// Which room names belong to a project: those naming it, and those of its chats,
/// integrations, wallet addresses and members.
struct ProjectRooms {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl ProjectRooms {
    async fn of(
        st: &AppState,
        project: &switchboard_handlers::core::model::Project,
    ) -> Result<Self, AppError> {
        let p = project.id.as_str();
        let escaped = p.replace('%', "%25").replace(':', "%3A");
        let mut exact = HashSet::new();
        exact.insert(format!("project:{p}"));
        exact.insert(format!("wallet:project:{p}"));
        let mut prefixes: Vec<String> = ["custom", "collection", "document"]
            .iter()
            .map(|k| format!("{k}:{p}:"))
            .collect();
        prefixes.extend(
            ["wallet:chain", "wallet:currency"]
                .iter()
                .map(|k| format!("{k}:{p}:")),
        );
        prefixes.extend(
            [
                "channel",
                "channel-presence",
                "realtime-presence",
                "app-user",
                "wallet-own:project",
                "wallet-own:chain",
                "wallet-own:currency",
            ]
            .iter()
            .map(|k| format!("{k}:{escaped}:")),
        );
        for u in &project.members {
            exact.insert(format!("user:{u}"));
        }
        for c in st.core.store.list_chats(&project.id, None).await? {
            exact.insert(format!("chat:{}", c.id));
        }
        for i in st.core.store.list_integrations(&project.id).await? {
            exact.insert(format!("integration:{}", i.id));
            exact.insert(format!("integration-webhooks:{}", i.id));
        }
        for a in st.core.store.list_addresses(&project.id, None).await? {
            exact.insert(format!("wallet:address:{}", a.id));
        }
        Ok(ProjectRooms { exact, prefixes })
    }

    fn contains(&self, room: &str) -> bool {
        self.exact.contains(room) || self.prefixes.iter().any(|p| room.starts_with(p.as_str()))
    }
}

/// `GET /api/projects/{p}/presence`: the members present in the project (as
/// `presence:get:online` answers them).
pub async fn presence(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Path(p): Path<String>,
) -> ApiResult<Json<Value>> {
    let pid = project_id(p)?;
    Ok(Json(presence::list(&st.core, &actor, &pid).await?))
}
