//! Calls by id, with two indexes: `ringing` (calls in state ringing by creation, for the sweep
//! and the ringing counts; it stays small) and `chat_calls` (a caller's calls in a chat by
//! creation, for the latest one).

use async_trait::async_trait;
use redb::ReadableTable;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{CallId, ChatId, UserId};
use switchboard_handlers::core::model::{Call, CallState};
use switchboard_handlers::core::ports::{CallStore, StoreResult};
use switchboard_handlers::core::time::Timestamp;

use super::EmbeddedStore;
use super::codec::{Db, encode, get};
use super::tables::{CALLS, CHAT_CALLS, RINGING};

/// The timestamp field a transition into `to` stamps.
fn stamp(call: &mut Call, to: CallState, at: Timestamp) {
    match to {
        CallState::Accepted | CallState::Rejected => call.answered_at = Some(at),
        CallState::Ended | CallState::Missed => call.ended_at = Some(at),
        CallState::Ringing => {}
    }
}

fn ringing_calls(txn: &redb::ReadTransaction) -> StoreResult<Vec<Call>> {
    let ringing = txn.open_table(RINGING).db()?;
    let calls = txn.open_table(CALLS).db()?;
    let mut out = Vec::new();
    for entry in ringing.range(..).db()? {
        let (k, _) = entry.db()?;
        if let Some(c) = get::<Call>(&calls, "calls", k.value().1)? {
            out.push(c);
        }
    }
    Ok(out)
}

#[async_trait]
impl CallStore for EmbeddedStore {
    async fn insert_call(&self, call: &Call) -> StoreResult<()> {
        let (call, bytes) = (call.clone(), encode(call)?);
        self.write(move |txn| {
            let mut calls = txn.open_table(CALLS).db()?;
            let id = call.id.as_str();
            if calls.get(id).db()?.is_some() {
                return Err(AppError::Conflict(format!("call {id} already exists")));
            }
            calls.insert(id, bytes.as_slice()).db()?;
            let at = call.created_at.millis();
            if call.state == CallState::Ringing {
                txn.open_table(RINGING).db()?.insert((at, id), ()).db()?;
            }
            let key = (call.chat_id.as_str(), call.caller_id.as_str(), at, id);
            txn.open_table(CHAT_CALLS).db()?.insert(key, ()).db()?;
            Ok(())
        })
        .await
    }

    async fn get_call(&self, id: &CallId) -> StoreResult<Option<Call>> {
        self.read(|txn| get(&txn.open_table(CALLS).db()?, "calls", id.as_str()))
    }

    async fn transition_call(
        &self,
        id: &CallId,
        from: &[CallState],
        to: CallState,
        at: Timestamp,
    ) -> StoreResult<Option<Call>> {
        let (id, from) = (id.clone(), from.to_vec());
        self.write(move |txn| {
            let mut calls = txn.open_table(CALLS).db()?;
            let Some(mut call) = get::<Call>(&calls, "calls", id.as_str())? else {
                return Ok(None);
            };
            if !from.contains(&call.state) {
                return Ok(None);
            }
            let was = call.state;
            call.state = to;
            stamp(&mut call, to, at);
            calls.insert(id.as_str(), encode(&call)?.as_slice()).db()?;
            let key = (call.created_at.millis(), id.as_str());
            let mut ringing = txn.open_table(RINGING).db()?;
            match (was == CallState::Ringing, to == CallState::Ringing) {
                (true, false) => drop(ringing.remove(key).db()?),
                (false, true) => drop(ringing.insert(key, ()).db()?),
                _ => {}
            }
            Ok(Some(call))
        })
        .await
    }

    async fn stale_ringing_calls(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<CallId>> {
        self.read(|txn| {
            let ringing = txn.open_table(RINGING).db()?;
            let mut out = Vec::new();
            for entry in ringing.range(..(before.millis(), "")).db()?.take(limit) {
                let (k, _) = entry.db()?;
                if let Ok(id) = CallId::try_from(k.value().1) {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }

    async fn count_ringing(&self, caller: &UserId, callee: &UserId) -> StoreResult<u64> {
        self.read(|txn| {
            let n = ringing_calls(txn)?
                .iter()
                .filter(|c| &c.caller_id == caller && c.participants.contains(callee))
                .count();
            Ok(n as u64)
        })
    }

    async fn latest_call(
        &self,
        chat: &ChatId,
        caller: &UserId,
        states: &[CallState],
    ) -> StoreResult<Option<Call>> {
        self.read(|txn| {
            let index = txn.open_table(CHAT_CALLS).db()?;
            let calls = txn.open_table(CALLS).db()?;
            let (c, u) = (chat.as_str(), caller.as_str());
            let range = index
                .range((c, u, i64::MIN, "")..=(c, u, i64::MAX, ""))
                .db()?;
            for entry in range.rev() {
                let (k, _) = entry.db()?;
                if let Some(call) = get::<Call>(&calls, "calls", k.value().3)?
                    && states.contains(&call.state)
                {
                    return Ok(Some(call));
                }
            }
            Ok(None)
        })
    }
}
