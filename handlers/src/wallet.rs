//! `wallet:subscribe:*` and `wallet:unsubscribe:*`: joining the wallet rooms that
//! `wallet:transaction` is emitted to.

use serde::Deserialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::access::require_member;
use crate::core::error::AppError;
use crate::core::events;
use crate::core::ids::AddressId;
use crate::core::payloads::WalletScope;
use crate::core::project::ProjectOnly;
use crate::core::topic::Topic;
use crate::core::wallet::{self, Label};
use crate::socketio::Ctx;
use crate::socketio::payload::to_json;

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct AddressRef {
    pub address_id: AddressId,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[ts(optional_fields = nullable)]
pub struct ChainRef {
    pub chain: Label,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[ts(optional_fields = nullable)]
pub struct CurrencyRef {
    pub currency: Label,
}

fn subscribed<A: Adapter>(cx: &Ctx<A>, room: Topic, data: WalletScope) -> Result<Value, AppError> {
    cx.join(&room)?;
    cx.emit(events::WALLET_SUBSCRIBED, &data);
    to_json(&data)
}

fn unsubscribed<A: Adapter>(
    cx: &Ctx<A>,
    room: Topic,
    data: WalletScope,
) -> Result<Value, AppError> {
    cx.leave(&room);
    cx.emit(events::WALLET_UNSUBSCRIBED, &data);
    to_json(&data)
}

/// The address's owner (or an admin) only.
pub async fn subscribe_address<A: Adapter>(
    cx: &Ctx<A>,
    req: AddressRef,
) -> Result<Value, AppError> {
    let addr = wallet::subscribe_address(&cx.core, &cx.session.actor, &req.address_id).await?;
    subscribed(
        cx,
        Topic::WalletAddress(addr.id.to_string()),
        WalletScope::Address {
            address_id: addr.id.clone(),
        },
    )
}

pub async fn subscribe_project<A: Adapter>(
    cx: &Ctx<A>,
    req: ProjectOnly,
) -> Result<Value, AppError> {
    let m = require_member(cx.core.store.as_ref(), &cx.session.actor, &req.project_id).await?;
    subscribed(
        cx,
        Topic::WalletProject(m.project.id.clone(), wallet::viewer(&cx.session.actor)),
        WalletScope::Project {
            project_id: m.project.id.clone(),
        },
    )
}

/// Scoped to the active project.
pub async fn subscribe_chain<A: Adapter>(cx: &Ctx<A>, req: ChainRef) -> Result<Value, AppError> {
    let p = wallet::active_member(&cx.core, &cx.session.actor, cx.session.active_project()).await?;
    subscribed(
        cx,
        Topic::WalletChain(
            p.clone(),
            req.chain.0.clone(),
            wallet::viewer(&cx.session.actor),
        ),
        WalletScope::Chain {
            chain: req.chain.0.clone(),
            project_id: p.clone(),
        },
    )
}

/// Scoped to the active project.
pub async fn subscribe_currency<A: Adapter>(
    cx: &Ctx<A>,
    req: CurrencyRef,
) -> Result<Value, AppError> {
    let p = wallet::active_member(&cx.core, &cx.session.actor, cx.session.active_project()).await?;
    subscribed(
        cx,
        Topic::WalletCurrency(
            p.clone(),
            req.currency.0.clone(),
            wallet::viewer(&cx.session.actor),
        ),
        WalletScope::Currency {
            currency: req.currency.0.clone(),
            project_id: p.clone(),
        },
    )
}

pub async fn unsubscribe_address<A: Adapter>(
    cx: &Ctx<A>,
    req: AddressRef,
) -> Result<Value, AppError> {
    unsubscribed(
        cx,
        Topic::WalletAddress(req.address_id.to_string()),
        WalletScope::Address {
            address_id: req.address_id.clone(),
        },
    )
}

pub async fn unsubscribe_project<A: Adapter>(
    cx: &Ctx<A>,
    req: ProjectOnly,
) -> Result<Value, AppError> {
    unsubscribed(
        cx,
        Topic::WalletProject(req.project_id.clone(), wallet::viewer(&cx.session.actor)),
        WalletScope::Project {
            project_id: req.project_id.clone(),
        },
    )
}
