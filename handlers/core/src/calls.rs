//! Call signalling: a stored call record (ringing → accepted | rejected | missed → ended) and
//! the events that tell the people involved. State changes are atomic transitions in the store,
//! so when two nodes race (an accept against the missed-call timeout) exactly one wins.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::Core;
use super::access::{Actor, require_participant};
use super::error::AppError;
use super::events;
use super::ids::{CallId, ChatId, UserId, new_object_id};
use super::model::{Call, CallState, CallType};
use super::payloads::{
    CallAnswer, CallAnswered, CallEnded, CallEndedAck, CallIdOnly, CallIncoming, CallMissed,
    CallSignal, Empty, to_json,
};
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

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable, rename = "CallInitiate")]
#[schemars(rename = "CallInitiate")]
pub struct Initiate {
    pub chat_id: ChatId,
    #[serde(rename = "type")]
    pub kind: CallType,
    pub participants: Vec<UserId>,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable, rename = "CallReply")]
#[schemars(rename = "CallReply")]
pub struct Answer {
    pub chat_id: ChatId,
    pub caller_id: UserId,
    #[serde(default)]
    pub call_id: Option<CallId>,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable, rename = "CallEnd")]
#[schemars(rename = "CallEnd")]
pub struct End {
    pub chat_id: ChatId,
    pub participants: Vec<UserId>,
    #[serde(default)]
    pub call_id: Option<CallId>,
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable, rename = "CallSignalRequest")]
#[schemars(rename = "CallSignalRequest")]
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
    let payload = to_json(&CallIncoming {
        call_id: call.id.clone(),
        chat_id: call.chat_id.clone(),
        kind: call.kind,
        caller_id: call.caller_id.clone(),
        participants: call.participants.clone(),
    })?;
    core.fanout
        .publish(
            &user_topics(&call.participants),
            events::CALL_INCOMING,
            &payload,
            None,
        )
        .await?;
    spawn_missed_timer(core.clone(), call.id.clone());
    to_json(&CallIdOnly { call_id: call.id })
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
            let payload = to_json(&CallMissed {
                call_id: call.id.clone(),
                chat_id: call.chat_id.clone(),
            });
            let published = match payload {
                Ok(payload) => {
                    core.fanout
                        .publish(&targets, events::CALL_MISSED, &payload, None)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = published {
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
    let payload = to_json(&CallAnswer {
        call_id: call.id.clone(),
        chat_id: call.chat_id.clone(),
        user_id: actor.id.clone(),
    })?;
    core.fanout
        .publish(
            &[Topic::User(call.caller_id.clone())],
            event,
            &payload,
            None,
        )
        .await?;
    to_json(&CallAnswered {
        state: call.state.as_str().to_owned(),
        call_id: call.id,
    })
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
        (Some(a), Some(e)) => u64::try_from(e.millis() - a.millis()).unwrap_or(0),
        _ => 0,
    };
    let payload = to_json(&CallEnded {
        call_id: ended.id.clone(),
        chat_id: ended.chat_id.clone(),
        ended_by: actor.id.clone(),
        duration_ms,
    })?;
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
    to_json(&CallEndedAck {
        call_id: ended.id,
        duration_ms,
    })
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
            &to_json(&CallSignal {
                call_id: call.id,
                from: actor.id.clone(),
                signal: req.signal,
            })?,
            None,
        )
        .await?;
    to_json(&Empty {})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Limits;
    use crate::error::ErrorCode;
    use crate::ports::CallStore;
    use crate::test_doubles::{Skip, TestCore, chat_id, conn, user, user_id};

    /// Chat `c` of project `p` with alice, bob, carol and dave.
    async fn fixture(limits: Limits) -> TestCore {
        let t = TestCore::with_limits(limits);
        let (a, b, c, d) = (
            user_id("alice"),
            user_id("bob"),
            user_id("carol"),
            user_id("dave"),
        );
        t.project("p", &[&a, &b, &c, &d], &[]).await;
        t.chat("c", "p", &[&a, &b, &c, &d]).await;
        t
    }

    fn ring(to: &[&str]) -> Initiate {
        Initiate {
            chat_id: chat_id("c"),
            kind: CallType::Audio,
            participants: to.iter().map(|u| user_id(u)).collect(),
        }
    }

    fn answer(caller: &str, id: &CallId) -> Answer {
        Answer {
            chat_id: chat_id("c"),
            caller_id: user_id(caller),
            call_id: Some(id.clone()),
        }
    }

    fn hang_up(id: &CallId) -> End {
        End {
            chat_id: chat_id("c"),
            participants: Vec::new(),
            call_id: Some(id.clone()),
        }
    }

    async fn start(t: &TestCore, caller: &str, to: &[&str]) -> CallId {
        let out = initiate(&t.core, &user(caller), ring(to))
            .await
            .expect("call starts");
        serde_json::from_value(out["callId"].clone()).expect("a call id")
    }

    async fn state(t: &TestCore, id: &CallId) -> CallState {
        t.store
            .get_call(id)
            .await
            .expect("store answers")
            .expect("call stored")
            .state
    }

    fn user_topics_of(names: &[&str]) -> Vec<Topic> {
        names.iter().map(|u| Topic::User(user_id(u))).collect()
    }

    #[tokio::test]
    async fn an_initiated_call_rings_each_invitee_once_on_their_user_topic_but_not_the_caller() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["alice", "bob", "bob", "carol"]).await;
        let rang = t.fanout.of(events::CALL_INCOMING);
        assert_eq!(rang.len(), 1);
        assert_eq!(rang[0].topics, user_topics_of(&["bob", "carol"]));
        assert_eq!(rang[0].skip, Skip::Nobody);
        assert_eq!(
            rang[0].payload,
            json!({
                "callId": id, "chatId": "c", "type": "audio", "callerId": "alice",
                "participants": ["bob", "carol"],
            })
        );
        assert_eq!(state(&t, &id).await, CallState::Ringing);
    }

    #[tokio::test]
    async fn only_other_chat_participants_can_be_called() {
        let t = fixture(Limits::default()).await;
        let eve = user_id("eve");
        t.chat("other", "p", &[&eve]).await;
        let e = initiate(&t.core, &user("alice"), ring(&["eve"]))
            .await
            .expect_err("eve is not in chat c");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = initiate(&t.core, &user("alice"), ring(&["alice"]))
            .await
            .expect_err("calling only oneself");
        assert_eq!(e.code(), ErrorCode::InvalidPayload);
        let e = initiate(&t.core, &user("eve"), ring(&["bob"]))
            .await
            .expect_err("the caller must take part in the chat");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let many: Vec<String> = (0..=MAX_CALL_PARTICIPANTS)
            .map(|i| format!("u{i}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = initiate(&t.core, &user("alice"), ring(&many))
            .await
            .expect_err("too many participants");
        assert_eq!(e.code(), ErrorCode::InvalidPayload);
        assert!(t.fanout.all().is_empty(), "a refused call rings nobody");
    }

    #[tokio::test]
    async fn one_caller_rings_one_callee_at_most_ten_times_at_once() {
        let t = fixture(Limits::default()).await;
        let mut ids = Vec::new();
        for _ in 0..MAX_RINGING_PER_CALLEE {
            ids.push(start(&t, "alice", &["bob"]).await);
        }
        let e = initiate(&t.core, &user("alice"), ring(&["bob"]))
            .await
            .expect_err("the eleventh ringing call");
        assert_eq!(e.code(), ErrorCode::Conflict);
        // A group call that includes bob is refused as a whole, and leaves nothing ringing.
        let e = initiate(&t.core, &user("alice"), ring(&["carol", "bob"]))
            .await
            .expect_err("bob is at the cap");
        assert_eq!(e.code(), ErrorCode::Conflict);
        let (a, b) = (user_id("alice"), user_id("bob"));
        assert_eq!(t.store.count_ringing(&a, &b).await.expect("count"), 10);
        assert_eq!(
            t.store
                .count_ringing(&a, &user_id("carol"))
                .await
                .expect("count"),
            0
        );
        assert_eq!(t.fanout.of(events::CALL_INCOMING).len(), 10);
        // The cap is per caller→callee: others still ring bob, alice still rings carol.
        start(&t, "carol", &["bob"]).await;
        start(&t, "alice", &["carol"]).await;
        // Ending one of the ten makes room for one more.
        end(&t.core, &user("alice"), hang_up(&ids[0]), &conn("s1"))
            .await
            .expect("ends");
        start(&t, "alice", &["bob"]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_initiates_never_ring_one_callee_more_than_ten_times() {
        let t = fixture(Limits::default()).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let core = t.core.clone();
            tasks.spawn(async move { initiate(&core, &user("alice"), ring(&["bob"])).await });
        }
        let mut rang = 0;
        while let Some(done) = tasks.join_next().await {
            match done.expect("no panic") {
                Ok(_) => rang += 1,
                Err(e) => assert_eq!(e.code(), ErrorCode::Conflict, "{e}"),
            }
        }
        let ringing = t
            .store
            .count_ringing(&user_id("alice"), &user_id("bob"))
            .await
            .expect("count");
        assert!(rang <= MAX_RINGING_PER_CALLEE, "{rang} rang");
        assert_eq!(ringing, rang, "every refused call was taken back");
        assert_eq!(t.fanout.of(events::CALL_INCOMING).len() as u64, rang);
    }

    #[tokio::test]
    async fn an_accept_tells_the_caller_only_and_later_group_members_join_the_accepted_call() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["bob", "carol"]).await;
        let out = accept(&t.core, &user("bob"), answer("alice", &id))
            .await
            .expect("bob accepts");
        assert_eq!(out, json!({ "callId": id, "state": "accepted" }));
        let carol_too = accept(&t.core, &user("carol"), answer("alice", &id))
            .await
            .expect("carol joins");
        assert_eq!(carol_too["state"], "accepted");
        let told = t.fanout.of(events::CALL_ACCEPTED);
        assert_eq!(told.len(), 2);
        for (p, who) in told.iter().zip(["bob", "carol"]) {
            assert_eq!(p.topics, user_topics_of(&["alice"]));
            assert_eq!(p.skip, Skip::Nobody);
            assert_eq!(p.payload["userId"], who);
        }
        assert_eq!(state(&t, &id).await, CallState::Accepted);
    }

    #[tokio::test]
    async fn only_an_invitee_answers_and_only_while_the_call_is_live() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["bob"]).await;
        let e = accept(&t.core, &user("dave"), answer("alice", &id))
            .await
            .expect_err("dave was not invited");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = accept(&t.core, &user("bob"), answer("carol", &id))
            .await
            .expect_err("the call's caller is alice");
        assert_eq!(e.code(), ErrorCode::NotFound);
        end(&t.core, &user("alice"), hang_up(&id), &conn("s1"))
            .await
            .expect("ends");
        for accepting in [true, false] {
            let e = answer_call(&t, accepting, &id).await;
            assert_eq!(e.code(), ErrorCode::Conflict, "accept: {accepting}");
        }
    }

    async fn answer_call(t: &TestCore, accepting: bool, id: &CallId) -> AppError {
        let r = if accepting {
            accept(&t.core, &user("bob"), answer("alice", id)).await
        } else {
            reject(&t.core, &user("bob"), answer("alice", id)).await
        };
        r.expect_err("the call is over")
    }

    #[tokio::test]
    async fn an_answer_without_a_call_id_takes_the_callers_newest_live_call_in_the_chat() {
        let t = fixture(Limits::default()).await;
        start(&t, "alice", &["bob"]).await;
        let newest = start(&t, "alice", &["bob"]).await;
        let out = accept(
            &t.core,
            &user("bob"),
            Answer {
                chat_id: chat_id("c"),
                caller_id: user_id("alice"),
                call_id: None,
            },
        )
        .await
        .expect("accepts");
        assert_eq!(out["callId"], json!(newest));
    }

    #[tokio::test]
    async fn a_one_to_one_reject_ends_the_ringing_and_tells_the_caller() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["bob"]).await;
        let out = reject(&t.core, &user("bob"), answer("alice", &id))
            .await
            .expect("rejects");
        assert_eq!(out["state"], "rejected");
        let told = t.fanout.of(events::CALL_REJECTED);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].topics, user_topics_of(&["alice"]));
        assert_eq!(told[0].payload["userId"], "bob");
        assert_eq!(state(&t, &id).await, CallState::Rejected);
    }

    #[tokio::test]
    async fn one_invitee_declining_a_group_call_leaves_it_ringing_for_the_others() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["bob", "carol"]).await;
        let out = reject(&t.core, &user("bob"), answer("alice", &id))
            .await
            .expect("declines");
        assert_eq!(out["state"], "ringing");
        assert_eq!(t.fanout.of(events::CALL_REJECTED).len(), 1);
        accept(&t.core, &user("carol"), answer("alice", &id))
            .await
            .expect("carol still can accept");
    }

    #[tokio::test]
    async fn an_end_tells_everyone_in_the_call_on_every_tab_but_the_ending_one() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["bob", "carol"]).await;
        accept(&t.core, &user("bob"), answer("alice", &id))
            .await
            .expect("accepts");
        let req = End {
            chat_id: chat_id("c"),
            // dave is named but not in the call: not told.
            participants: vec![user_id("dave"), user_id("carol")],
            call_id: Some(id.clone()),
        };
        let out = end(&t.core, &user("bob"), req, &conn("bob-tab-1"))
            .await
            .expect("bob ends");
        assert!(out["durationMs"].as_i64().is_some_and(|d| d >= 0));
        let told = t.fanout.of(events::CALL_ENDED);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].topics, user_topics_of(&["alice", "bob", "carol"]));
        assert_eq!(told[0].skip, Skip::Conn(conn("bob-tab-1")));
        assert_eq!(told[0].payload["endedBy"], "bob");
        assert_eq!(state(&t, &id).await, CallState::Ended);
        let e = end(&t.core, &user("alice"), hang_up(&id), &conn("a"))
            .await
            .expect_err("already over");
        assert_eq!(e.code(), ErrorCode::Conflict);
    }

    #[tokio::test]
    async fn an_unanswered_call_lasts_zero_and_outsiders_cannot_end_it() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["bob"]).await;
        let e = end(&t.core, &user("dave"), hang_up(&id), &conn("d"))
            .await
            .expect_err("dave is not in the call");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let out = end(&t.core, &user("alice"), hang_up(&id), &conn("a"))
            .await
            .expect("the caller cancels");
        assert_eq!(out["durationMs"], 0);
    }

    #[tokio::test]
    async fn an_unanswered_call_is_missed_once_for_caller_and_invitees_after_the_ring_timeout() {
        let limits = Limits {
            call_ring_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let t = fixture(limits).await;
        let missed = start(&t, "alice", &["bob", "carol"]).await;
        let answered = start(&t, "alice", &["dave"]).await;
        accept(&t.core, &user("dave"), answer("alice", &answered))
            .await
            .expect("accepts in time");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let told = t.fanout.of(events::CALL_MISSED);
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0].topics, user_topics_of(&["alice", "bob", "carol"]));
        assert_eq!(told[0].payload, json!({ "callId": missed, "chatId": "c" }));
        assert_eq!(state(&t, &missed).await, CallState::Missed);
        assert_eq!(state(&t, &answered).await, CallState::Accepted);
        let e = accept(&t.core, &user("bob"), answer("alice", &missed))
            .await
            .expect_err("too late");
        assert_eq!(e.code(), ErrorCode::Conflict);
        // The sweep finds nothing left: the timer already won.
        assert_eq!(sweep_stale_calls(&t.core).await, 0);
    }

    #[tokio::test]
    async fn the_sweep_misses_calls_whose_node_died_while_they_rang_once() {
        let t = fixture(Limits::default()).await;
        let old = Timestamp::from_millis(Timestamp::now().millis() - 3_600_000);
        let call = Call {
            id: CallId::try_from("orphan").expect("id"),
            chat_id: chat_id("c"),
            project_id: crate::test_doubles::project_id("p"),
            caller_id: user_id("alice"),
            kind: CallType::Video,
            participants: vec![user_id("bob")],
            state: CallState::Ringing,
            created_at: old,
            answered_at: None,
            ended_at: None,
        };
        t.store.insert_call(&call).await.expect("insert");
        start(&t, "alice", &["bob"]).await;
        assert_eq!(sweep_stale_calls(&t.core).await, 1);
        assert_eq!(sweep_stale_calls(&t.core).await, 0);
        let told = t.fanout.of(events::CALL_MISSED);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].topics, user_topics_of(&["alice", "bob"]));
        assert_eq!(state(&t, &call.id).await, CallState::Missed);
    }

    #[tokio::test]
    async fn a_signal_goes_only_to_the_other_party_named_while_the_call_is_live() {
        let t = fixture(Limits::default()).await;
        let id = start(&t, "alice", &["bob"]).await;
        let sig = |to: &str, signal: Value| Signal {
            call_id: id.clone(),
            to: user_id(to),
            signal,
        };
        signal(&t.core, &user("bob"), sig("alice", json!({"sdp": "x"})))
            .await
            .expect("relayed");
        let told = t.fanout.of(events::CALL_SIGNAL);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].topics, user_topics_of(&["alice"]));
        assert_eq!(
            told[0].payload,
            json!({ "callId": id, "from": "bob", "signal": {"sdp": "x"} })
        );
        for (who, to, s, code) in [
            ("bob", "alice", json!(3), ErrorCode::InvalidPayload),
            ("bob", "alice", json!(""), ErrorCode::InvalidPayload),
            ("bob", "bob", json!("x"), ErrorCode::Forbidden),
            ("bob", "carol", json!("x"), ErrorCode::Forbidden),
            ("carol", "alice", json!("x"), ErrorCode::Forbidden),
        ] {
            let e = signal(&t.core, &user(who), sig(to, s.clone()))
                .await
                .expect_err("refused");
            assert_eq!(e.code(), code, "{who} → {to}: {s}");
        }
        end(&t.core, &user("alice"), hang_up(&id), &conn("a"))
            .await
            .expect("ends");
        let e = signal(&t.core, &user("bob"), sig("alice", json!("x")))
            .await
            .expect_err("over");
        assert_eq!(e.code(), ErrorCode::Conflict);
        assert_eq!(t.fanout.of(events::CALL_SIGNAL).len(), 1);
    }
}
