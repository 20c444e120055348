//! Call signalling: a stored call record (ringing → accepted | rejected | missed → ended) and
//! the events that tell the people involved. State changes are atomic transitions in the store,
//! so when two nodes race (an accept against the missed-call timeout) exactly one wins.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::Core;
use super::access::{Actor, require_participant};
use super::error::AppError;
use super::events;
use super::ids::{CallId, ChatId, UserId, new_object_id};
use super::model::{Call, CallState, CallType};
use super::ports::ConnId;
use super::time::Timestamp;
use super::topic::Topic;

/// An unanswered call ends after this long with `call:missed` (the default of
/// `CALL_RING_TIMEOUT_SECS`).
pub const MISSED_AFTER: Duration = Duration::from_secs(45);
pub const MAX_CALL_PARTICIPANTS: usize = 32;
/// Calls from one caller that may ring one callee at once: a flood of `call:initiate` rings
/// at most this many times.
pub const MAX_RINGING_PER_CALLEE: u64 = 10;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Initiate {
    pub chat_id: ChatId,
    #[serde(rename = "type")]
    pub kind: CallType,
    pub participants: Vec<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Answer {
    pub chat_id: ChatId,
    pub caller_id: UserId,
    #[serde(default)]
    pub call_id: Option<CallId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct End {
    pub chat_id: ChatId,
    pub participants: Vec<UserId>,
    #[serde(default)]
    pub call_id: Option<CallId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signal {
    pub call_id: CallId,
    pub to: UserId,
    pub signal: Value,
}

fn user_topics<'a>(users: impl IntoIterator<Item = &'a UserId>) -> Vec<Topic> {
    let mut out: Vec<Topic> = Vec::new();
    for u in users {
        let t = Topic::User(u.clone());
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

pub async fn initiate(core: &Arc<Core>, actor: &Actor, req: Initiate) -> Result<Value, AppError> {
    if req.participants.len() > MAX_CALL_PARTICIPANTS {
        return Err(AppError::invalid(format!(
            "at most {MAX_CALL_PARTICIPANTS} participants"
        )));
    }
    let p = require_participant(core.store.as_ref(), actor, &req.chat_id, None).await?;
    let mut invited: Vec<UserId> = Vec::new();
    for u in req.participants {
        if u == actor.id || invited.contains(&u) {
            continue;
        }
        if !p.chat.has_participant(&u) {
            return Err(AppError::forbidden(format!(
                "{u} is not a participant of chat {}",
                p.chat.id
            )));
        }
        invited.push(u);
    }
    if invited.is_empty() {
        return Err(AppError::invalid(
            "participants must name at least one other chat participant",
        ));
    }
    let call = Call {
        id: CallId::try_from(new_object_id()).map_err(AppError::internal)?,
        chat_id: p.chat.id.clone(),
        project_id: p.chat.project_id.clone(),
        caller_id: actor.id.clone(),
        kind: req.kind,
        participants: invited,
        state: CallState::Ringing,
        created_at: Timestamp::now(),
        answered_at: None,
        ended_at: None,
    };
    // Refused before the write when the cap is visibly reached; counted again after it, so
    // concurrent initiates (other tabs, other nodes) can never ring more than the cap: the
    // last of them to count sees all the others.
    ringing_cap(core, &call, false).await?;
    core.store.insert_call(&call).await?;
    if let Err(e) = ringing_cap(core, &call, true).await {
        core.store
            .transition_call(
                &call.id,
                &[CallState::Ringing],
                CallState::Ended,
                Timestamp::now(),
            )
            .await?;
        return Err(e);
    }
    let payload = json!({
        "callId": call.id,
        "chatId": call.chat_id,
        "type": call.kind,
        "callerId": call.caller_id,
        "participants": call.participants,
    });
    core.fanout
        .publish(
            &user_topics(&call.participants),
            events::CALL_INCOMING,
            &payload,
            None,
        )
        .await?;
    spawn_missed_timer(core.clone(), call.id.clone());
    Ok(json!({ "callId": call.id }))
}

/// CONFLICT when a callee already has `MAX_RINGING_PER_CALLEE` calls ringing from this caller
/// (`inserted`: the call itself is stored and counted).
async fn ringing_cap(core: &Core, call: &Call, inserted: bool) -> Result<(), AppError> {
    let limit = MAX_RINGING_PER_CALLEE + u64::from(inserted);
    for callee in &call.participants {
        if core.store.count_ringing(&call.caller_id, callee).await? >= limit {
            return Err(AppError::Conflict(format!(
                "{callee} already has {MAX_RINGING_PER_CALLEE} calls ringing from you; end one first"
            )));
        }
    }
    Ok(())
}

/// Only the node that started the call arms the timer, and the transition from `ringing` is
/// atomic, so `call:missed` goes out once even if an accept races it on another node.
fn spawn_missed_timer(core: Arc<Core>, id: CallId) {
    tokio::spawn(async move {
        tokio::time::sleep(core.limits.call_ring_timeout).await;
        miss_if_ringing(&core, &id).await;
    });
}

async fn miss_if_ringing(core: &Core, id: &CallId) -> bool {
    match core
        .store
        .transition_call(
            id,
            &[CallState::Ringing],
            CallState::Missed,
            Timestamp::now(),
        )
        .await
    {
        Ok(Some(call)) => {
            let targets = user_topics(std::iter::once(&call.caller_id).chain(&call.participants));
            let payload = json!({ "callId": call.id, "chatId": call.chat_id });
            if let Err(e) = core
                .fanout
                .publish(&targets, events::CALL_MISSED, &payload, None)
                .await
            {
                tracing::warn!(error = %e, "call:missed not delivered");
            }
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, call = %id, "missed-call transition failed");
            false
        }
    }
}

/// How long past the ring timeout a call must be before the sweep takes it: long enough that
/// the starting node's own timer wins whenever that node is alive.
const SWEEP_GRACE: Duration = Duration::from_secs(5);

/// Misses calls whose starting node died (or restarted) while they rang, so no call rings
/// forever. Every node sweeps; the atomic transition keeps `call:missed` to one per call.
/// Returns how many calls this sweep missed.
pub async fn sweep_stale_calls(core: &Core) -> usize {
    let age = core.limits.call_ring_timeout + SWEEP_GRACE;
    let cutoff = Timestamp::from_millis(
        Timestamp::now().millis() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX),
    );
    let ids = match core.store.stale_ringing_calls(cutoff, 100).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::debug!(error = %e, "stale-call sweep skipped");
            return 0;
        }
    };
    let mut missed = 0;
    for id in ids {
        if miss_if_ringing(core, &id).await {
            missed += 1;
        }
    }
    missed
}

/// Runs `sweep_stale_calls` every ring timeout (at least every second) until the task is
/// dropped.
pub async fn run_stale_call_sweeper(core: Arc<Core>) {
    let every = core.limits.call_ring_timeout.max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let n = sweep_stale_calls(&core).await;
        if n > 0 {
            tracing::info!(calls = n, "missed calls whose ringing node went away");
        }
    }
}

/// The call an answer refers to: by id, or the caller's newest ringing/accepted call in the chat.
async fn find_call(
    core: &Core,
    chat: &ChatId,
    caller: &UserId,
    id: Option<&CallId>,
) -> Result<Call, AppError> {
    let found = match id {
        Some(id) => core.store.get_call(id).await?,
        None => {
            core.store
                .latest_call(chat, caller, &[CallState::Ringing, CallState::Accepted])
                .await?
        }
    };
    found
        .filter(|c| &c.chat_id == chat && &c.caller_id == caller)
        .ok_or_else(|| AppError::not_found("call", id.map(CallId::as_str).unwrap_or("(latest)")))
}

pub async fn accept(core: &Core, actor: &Actor, req: Answer) -> Result<Value, AppError> {
    answer(core, actor, req, true).await
}

pub async fn reject(core: &Core, actor: &Actor, req: Answer) -> Result<Value, AppError> {
    answer(core, actor, req, false).await
}

async fn answer(core: &Core, actor: &Actor, req: Answer, accept: bool) -> Result<Value, AppError> {
    require_participant(core.store.as_ref(), actor, &req.chat_id, None).await?;
    let call = find_call(core, &req.chat_id, &req.caller_id, req.call_id.as_ref()).await?;
    if !call.participants.contains(&actor.id) {
        return Err(AppError::forbidden("not invited to this call"));
    }
    let now = Timestamp::now();
    let call = if accept {
        match call.state {
            // In a group call a later participant joins an accepted call.
            CallState::Accepted => call,
            _ => core
                .store
                .transition_call(&call.id, &[CallState::Ringing], CallState::Accepted, now)
                .await?
                .ok_or_else(|| AppError::Conflict("the call is no longer ringing".to_owned()))?,
        }
    } else if call.participants.len() == 1 {
        core.store
            .transition_call(&call.id, &[CallState::Ringing], CallState::Rejected, now)
            .await?
            .ok_or_else(|| AppError::Conflict("the call is no longer ringing".to_owned()))?
    } else {
        // One invitee declining a group call does not end it for the others.
        if !matches!(call.state, CallState::Ringing | CallState::Accepted) {
            return Err(AppError::Conflict("the call is over".to_owned()));
        }
        call
    };
    let event = if accept {
        events::CALL_ACCEPTED
    } else {
        events::CALL_REJECTED
    };
    let payload = json!({ "callId": call.id, "chatId": call.chat_id, "userId": actor.id });
    core.fanout
        .publish(
            &[Topic::User(call.caller_id.clone())],
            event,
            &payload,
            None,
        )
        .await?;
    Ok(json!({ "callId": call.id, "state": call.state.as_str() }))
}

pub async fn end(core: &Core, actor: &Actor, req: End, conn: &ConnId) -> Result<Value, AppError> {
    require_participant(core.store.as_ref(), actor, &req.chat_id, None).await?;
    let call = match &req.call_id {
        Some(id) => core
            .store
            .get_call(id)
            .await?
            .filter(|c| c.chat_id == req.chat_id)
            .ok_or_else(|| AppError::not_found("call", id.as_str()))?,
        None => core
            .store
            .latest_call(
                &req.chat_id,
                &actor.id,
                &[CallState::Ringing, CallState::Accepted],
            )
            .await?
            .ok_or_else(|| AppError::not_found("call", "(latest; pass callId)"))?,
    };
    if !call.involves(&actor.id) {
        return Err(AppError::forbidden("not part of this call"));
    }
    let ended = core
        .store
        .transition_call(
            &call.id,
            &[CallState::Ringing, CallState::Accepted],
            CallState::Ended,
            Timestamp::now(),
        )
        .await?
        .ok_or_else(|| AppError::Conflict("the call is already over".to_owned()))?;
    let duration_ms = match (ended.answered_at, ended.ended_at) {
        (Some(a), Some(e)) => (e.millis() - a.millis()).max(0),
        _ => 0,
    };
    let payload = json!({
        "callId": ended.id,
        "chatId": ended.chat_id,
        "endedBy": actor.id,
        "durationMs": duration_ms,
    });
    // Everyone involved (and anyone the ender named who is in the call), on every tab but the
    // ending socket.
    let named = req.participants.iter().filter(|u| ended.involves(u));
    let targets = user_topics(
        std::iter::once(&ended.caller_id)
            .chain(&ended.participants)
            .chain(named),
    );
    core.fanout
        .publish(&targets, events::CALL_ENDED, &payload, Some(conn))
        .await?;
    Ok(json!({ "callId": ended.id, "durationMs": duration_ms }))
}

pub async fn signal(core: &Core, actor: &Actor, req: Signal) -> Result<Value, AppError> {
    // SDP and ICE are objects (some clients encode them as a string); anything else is a
    // wrong type, refused before the call is looked up.
    let well_typed = match &req.signal {
        Value::Object(_) => true,
        Value::String(s) => !s.is_empty(),
        _ => false,
    };
    if !well_typed {
        return Err(AppError::invalid(
            "signal must be an object (SDP or ICE) or a non-empty string",
        ));
    }
    let call = core
        .store
        .get_call(&req.call_id)
        .await?
        .ok_or_else(|| AppError::not_found("call", req.call_id.as_str()))?;
    if !call.involves(&actor.id) {
        return Err(AppError::forbidden("not part of this call"));
    }
    if !call.involves(&req.to) || req.to == actor.id {
        return Err(AppError::forbidden(
            "the recipient is not another party of this call",
        ));
    }
    if !matches!(call.state, CallState::Ringing | CallState::Accepted) {
        return Err(AppError::Conflict("the call is over".to_owned()));
    }
    core.fanout
        .publish(
            &[Topic::User(req.to.clone())],
            events::CALL_SIGNAL,
            &json!({ "callId": call.id, "from": actor.id, "signal": req.signal }),
            None,
        )
        .await?;
    Ok(json!({}))
}
