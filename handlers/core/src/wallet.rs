//! Wallet feeds: who may subscribe to which wallet rooms, and how a transaction reaches them.
//! A transaction goes to its address, project, chain and currency rooms in ONE emit, so a
//! socket in several of them gets it once; and it is emitted either by the node that recorded
//! it (through the adapter, to every node) or, when a MongoDB change stream reports every write
//! to every node, by each node to its own sockets only — never both.

use serde::Deserialize;
use serde_json::Value;

use super::Core;
use super::access::{Actor, require_member};
use super::error::AppError;
use super::events;
use super::ids::{AddressId, ProjectId, UserId, new_object_id};
use super::model::{TxDirection, TxStatus, WalletAddress, WalletTransaction};
use super::time::Timestamp;
use super::topic::Topic;

const MAX_NAME: usize = 64;
const MAX_AMOUNT_DIGITS: usize = 100;
const MAX_HASH: usize = 256;

/// A chain or currency name as it appears in room names.
#[derive(Debug, Clone, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct Label(pub String);

impl TryFrom<String> for Label {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty()
            || s.len() > MAX_NAME
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "must be 1 to {MAX_NAME} of A-Z a-z 0-9 _ - . (got {s:?})"
            ));
        }
        Ok(Label(s))
    }
}

/// A non-negative decimal string (`"12"`, `"0.000001"`): amounts are never floats.
pub fn check_amount(s: &str) -> Result<(), AppError> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit());
    if s.len() > MAX_AMOUNT_DIGITS || !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(AppError::invalid(format!(
            "amount must be a decimal string like \"12.5\" (got {s:?})"
        )));
    }
    Ok(())
}

/// Who sees a wallet feed: admins (and API keys) every transaction of the project, a member
/// only those of their own addresses — the same rule as `GET …/wallet/addresses` and
/// `wallet:subscribe:address` (docs/protocol.md, "Wallet visibility").
pub fn viewer(actor: &Actor) -> Option<UserId> {
    (!actor.is_admin()).then(|| actor.id.clone())
}

/// Every room a transaction of `owner`'s address goes to: its address, and the project, chain
/// and currency feeds as admins and as the owner see them.
pub fn topics(tx: &WalletTransaction, owner: &UserId) -> Vec<Topic> {
    let mut rooms = vec![Topic::WalletAddress(tx.address_id.to_string())];
    for viewer in [None, Some(owner.clone())] {
        rooms.push(Topic::WalletProject(tx.project_id.clone(), viewer.clone()));
        rooms.push(Topic::WalletChain(
            tx.project_id.clone(),
            tx.chain.clone(),
            viewer.clone(),
        ));
        rooms.push(Topic::WalletCurrency(
            tx.project_id.clone(),
            tx.currency.clone(),
            viewer,
        ));
    }
    rooms
}

/// `wallet:subscribe:address`: the address's owner or an admin.
pub async fn subscribe_address(
    core: &Core,
    actor: &Actor,
    id: &AddressId,
) -> Result<WalletAddress, AppError> {
    // Another user's address answers exactly like a missing one, so ids cannot be probed.
    core.store
        .get_address(id)
        .await?
        .filter(|addr| actor.is_admin() || addr.user_id == actor.id)
        .ok_or_else(|| AppError::not_found("wallet address", id.as_str()))
}

/// `wallet:subscribe:chain` / `:currency` are scoped to the active project.
pub async fn active_member(
    core: &Core,
    actor: &Actor,
    active: Option<ProjectId>,
) -> Result<ProjectId, AppError> {
    let p = active
        .ok_or_else(|| AppError::invalid("no active project: send subscribe:project first"))?;
    Ok(require_member(core.store.as_ref(), actor, &p)
        .await?
        .project
        .id)
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct NewTransaction {
    #[serde(default)]
    pub id: Option<String>,
    pub address_id: AddressId,
    pub amount: String,
    pub direction: TxDirection,
    pub tx_hash: String,
    pub status: TxStatus,
    #[serde(default)]
    pub confirmations: u64,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// The next three come from the address; they are accepted so that a transaction as the
    /// server delivers it can be posted back, and refused when they contradict the address.
    #[serde(default)]
    pub project_id: Option<ProjectId>,
    #[serde(default)]
    pub chain: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// A field the address decides, given anyway: equal is fine, anything else names the field.
fn agrees(field: &str, given: Option<&str>, actual: &str) -> Result<(), AppError> {
    match given {
        Some(g) if g != actual => Err(AppError::invalid(format!(
            "{field} {g:?} contradicts the address, whose {field} is {actual:?}"
        ))),
        _ => Ok(()),
    }
}

/// Records a transaction of a known address of `project` (insert or replace by id, so status
/// updates flow through the same call) and delivers it. Returns it and whether it was new.
pub async fn record(
    core: &Core,
    project: &ProjectId,
    req: NewTransaction,
) -> Result<(WalletTransaction, bool), AppError> {
    check_amount(&req.amount)?;
    if req.tx_hash.is_empty() || req.tx_hash.len() > MAX_HASH {
        return Err(AppError::invalid(format!(
            "txHash must be 1 to {MAX_HASH} characters"
        )));
    }
    if let Some(id) = &req.id
        && (id.is_empty() || id.chars().count() > super::ids::MAX_ID_LEN)
    {
        return Err(AppError::invalid("id must be 1 to 128 characters"));
    }
    let addr = core
        .store
        .get_address(&req.address_id)
        .await?
        .filter(|a| &a.project_id == project)
        .ok_or_else(|| {
            AppError::invalid(format!(
                "addressId {} is not a wallet address of project {project}",
                req.address_id
            ))
        })?;
    agrees(
        "projectId",
        req.project_id.as_ref().map(ProjectId::as_str),
        addr.project_id.as_str(),
    )?;
    agrees("chain", req.chain.as_deref(), &addr.chain)?;
    agrees("currency", req.currency.as_deref(), &addr.currency)?;
    let owner = addr.user_id;
    let tx = WalletTransaction {
        id: req.id.unwrap_or_else(new_object_id),
        address_id: addr.id,
        project_id: addr.project_id,
        chain: addr.chain,
        currency: addr.currency,
        amount: req.amount,
        direction: req.direction,
        tx_hash: req.tx_hash,
        status: req.status,
        confirmations: req.confirmations,
        created_at: req.created_at.unwrap_or_else(Timestamp::now),
    };
    let new = core.store.put_transaction(&tx).await?;
    if !core.changes.feed_reports_writes() {
        let payload = serde_json::to_value(&tx).map_err(AppError::internal)?;
        core.fanout
            .publish(
                &topics(&tx, &owner),
                events::WALLET_TRANSACTION,
                &payload,
                None,
            )
            .await?;
    }
    Ok((tx, new))
}

/// A transaction the change feed reported (ours or another service's): to this node's sockets.
pub async fn deliver_local(core: &Core, tx: &WalletTransaction, owner: &UserId) {
    let Ok(payload) = serde_json::to_value(tx) else {
        return;
    };
    if let Err(e) = core
        .fanout
        .publish_local(&topics(tx, owner), events::WALLET_TRANSACTION, &payload)
        .await
    {
        tracing::warn!(error = %e, "wallet:transaction not delivered");
    }
}

/// Completes a transaction document another service wrote with only its address: project,
/// chain and currency come from the address. Returns it with the address's owner.
pub async fn complete(
    core: &Core,
    mut raw: serde_json::Map<String, Value>,
) -> Option<(WalletTransaction, UserId)> {
    let addr_id = AddressId::try_from(raw.get("addressId")?.as_str()?).ok()?;
    let addr = core.store.get_address(&addr_id).await.ok()??;
    raw.entry("projectId")
        .or_insert_with(|| Value::String(addr.project_id.to_string()));
    raw.entry("chain")
        .or_insert_with(|| Value::String(addr.chain.clone()));
    raw.entry("currency")
        .or_insert_with(|| Value::String(addr.currency.clone()));
    raw.entry("confirmations").or_insert(Value::from(0));
    raw.entry("createdAt")
        .or_insert_with(|| Value::String(Timestamp::now().to_iso()));
    let tx: WalletTransaction = match serde_json::from_value(Value::Object(raw)) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!(error = %e, "wallet transaction from the database is unreadable; skipped");
            return None;
        }
    };
    if check_amount(&tx.amount).is_err() || tx.project_id != addr.project_id {
        tracing::warn!(id = %tx.id, "wallet transaction with a bad amount or project; skipped");
        return None;
    }
    Some((tx, addr.user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_decimal_strings() {
        for ok in [
            "0",
            "12",
            "12.5",
            "0.000000000000000001",
            "100000000000000000000000",
        ] {
            assert!(check_amount(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-1", "1.", ".5", "1e5", "NaN", "1,5", " 1", "0x10"] {
            assert!(check_amount(bad).is_err(), "{bad}");
        }
    }
}
