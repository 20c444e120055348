//! Calls. A state change is one conditional `findAndModify` (`_id` and `state ∈ from`), so when
//! two nodes race (the missed-call timeout against an accept) exactly one of them matches.

use async_trait::async_trait;
use bson::{Bson, DateTime, doc};
use mongodb::options::ReturnDocument;

use switchboard_handlers::core::ids::{CallId, ChatId, UserId};
use switchboard_handlers::core::model::{Call, CallState};
use switchboard_handlers::core::ports::{CallStore, StoreResult};
use switchboard_handlers::core::time::Timestamp;

use super::convert::{from_doc, to_doc};
use super::{CALLS, MongoStore, map_err};

fn state_list(states: &[CallState]) -> Vec<Bson> {
    states.iter().map(|s| Bson::from(s.as_str())).collect()
}

#[async_trait]
impl CallStore for MongoStore {
    async fn insert_call(&self, call: &Call) -> StoreResult<()> {
        self.coll(CALLS)
            .insert_one(to_doc(call)?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_call(&self, id: &CallId) -> StoreResult<Option<Call>> {
        let d = self
            .coll(CALLS)
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }

    async fn transition_call(
        &self,
        id: &CallId,
        from: &[CallState],
        to: CallState,
        at: Timestamp,
    ) -> StoreResult<Option<Call>> {
        if from.is_empty() {
            return Ok(None);
        }
        let mut set = doc! { "state": to.as_str() };
        let at = DateTime::from_millis(at.millis());
        match to {
            CallState::Accepted | CallState::Rejected => {
                set.insert("answeredAt", at);
            }
            CallState::Ended | CallState::Missed => {
                set.insert("endedAt", at);
            }
            CallState::Ringing => {}
        }
        let d = self
            .coll(CALLS)
            .find_one_and_update(
                doc! { "_id": id.as_str(), "state": { "$in": state_list(from) } },
                doc! { "$set": set },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }

    async fn stale_ringing_calls(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<CallId>> {
        use futures_util::TryStreamExt;
        let docs: Vec<bson::Document> = self
            .coll(CALLS)
            .find(doc! {
                "state": CallState::Ringing.as_str(),
                "createdAt": { "$lt": DateTime::from_millis(before.millis()) },
            })
            .projection(doc! { "_id": 1 })
            .sort(doc! { "state": 1, "createdAt": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        Ok(docs
            .iter()
            .filter_map(|d| d.get_str("_id").ok())
            .filter_map(|s| CallId::try_from(s).ok())
            .collect())
    }

    async fn count_ringing(&self, caller: &UserId, callee: &UserId) -> StoreResult<u64> {
        // `state` first: the (state, createdAt) index narrows this to the calls ringing now.
        self.coll(CALLS)
            .count_documents(doc! {
                "state": CallState::Ringing.as_str(),
                "callerId": caller.as_str(),
                "participants": callee.as_str(),
            })
            .await
            .map_err(map_err)
    }

    async fn latest_call(
        &self,
        chat: &ChatId,
        caller: &UserId,
        states: &[CallState],
    ) -> StoreResult<Option<Call>> {
        if states.is_empty() {
            return Ok(None);
        }
        let d = self
            .coll(CALLS)
            .find_one(doc! {
                "chatId": chat.as_str(),
                "callerId": caller.as_str(),
                "state": { "$in": state_list(states) },
            })
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .await
            .map_err(map_err)?;
        d.map(from_doc).transpose()
    }
}
