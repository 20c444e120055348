//! The MongoDB change feed: one database-level change stream per node over the project
//! collections (`data.<project>.<collection>`) and `wallet_transactions`, turned into
//! `DocumentChange`s for this node's live registry and `wallet:transaction` for its sockets. Every node consumes the stream and delivers only to its own sockets, so each
//! socket gets each change once, and writes made by any client of the database are delivered.

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document as BsonDoc, doc};
use futures_util::StreamExt;
use mongodb::change_stream::ChangeStream;
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::options::{FullDocumentBeforeChangeType, FullDocumentType};

use switchboard_handlers::core::Core;
use switchboard_handlers::core::data::change::{ChangeKind, DocumentChange};
use switchboard_handlers::core::ids::{CollectionId, DocumentId, ProjectId};
use switchboard_handlers::core::model::DocumentBody;
use switchboard_handlers::core::time::Timestamp;
use switchboard_handlers::core::wallet;

use super::documents::read;
use super::{MongoStore, WALLET_TRANSACTIONS};

type Stream = ChangeStream<ChangeStreamEvent<BsonDoc>>;

/// Server error codes after which a resume token is useless: the oplog moved past it, or the
/// token is not one this deployment can read.
const HISTORY_LOST: i32 = 286;
const INVALID_RESUME_TOKEN: i32 = 260;
const FATAL_CHANGE_STREAM: i32 = 280;

pub struct ChangeFeed {
    store: MongoStore,
    stream: Stream,
    pre_images: bool,
}

impl MongoStore {
    /// Opens the feed, or says why not (a standalone server has no change streams).
    pub async fn open_change_feed(&self) -> Result<ChangeFeed, String> {
        // Pre-images exist only where a collection enables them (MongoDB 6.0+); a server that
        // does not know the option refuses the stream, so try without.
        match open(self, None, true).await {
            Ok(stream) => Ok(ChangeFeed {
                store: self.clone(),
                stream,
                pre_images: true,
            }),
            Err(with) => match open(self, None, false).await {
                Ok(stream) => {
                    tracing::info!(error = %with, "change stream without pre-images");
                    Ok(ChangeFeed {
                        store: self.clone(),
                        stream,
                        pre_images: false,
                    })
                }
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

async fn open(
    store: &MongoStore,
    resume: Option<ResumeToken>,
    pre_images: bool,
) -> mongodb::error::Result<Stream> {
    let pipeline = [doc! { "$match": {
        "ns.coll": { "$regex": "^(data\\.|wallet_transactions$)" },
        "operationType": { "$in": ["insert", "update", "replace", "delete"] },
    }}];
    let mut w = store
        .database()
        .watch()
        .pipeline(pipeline)
        .full_document(FullDocumentType::UpdateLookup)
        .resume_after(resume);
    if pre_images {
        w = w.full_document_before_change(FullDocumentBeforeChangeType::WhenAvailable);
    }
    w.await
}

impl ChangeFeed {
    /// Runs until the task is dropped: delivers each change, and after any failure reopens the
    /// stream from the last resume token (backing off up to 5 s), so a restarted database or a
    /// dropped cursor loses nothing the oplog still holds.
    pub async fn run(mut self, core: Arc<Core>) {
        let mut token: Option<ResumeToken> = self.stream.resume_token();
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.stream.next().await {
                Some(Ok(ev)) => {
                    backoff = Duration::from_millis(250);
                    token = Some(ev.id.clone());
                    route(&core, ev).await;
                    continue;
                }
                Some(Err(e)) => {
                    core.metrics.database_error();
                    tracing::warn!(error = %e, "change stream failed; resuming");
                }
                None => tracing::warn!("change stream ended; resuming"),
            }
            loop {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                match open(&self.store, token.clone(), self.pre_images).await {
                    Ok(s) => {
                        tracing::info!("change stream resumed");
                        self.stream = s;
                        break;
                    }
                    Err(e) if token.is_some() && token_is_useless(&e) => {
                        tracing::error!(
                            error = %e,
                            "change stream cannot resume from its token; restarting from now \
                             (changes made meanwhile are not delivered)"
                        );
                        token = None;
                    }
                    Err(e) => {
                        core.metrics.database_error();
                        tracing::warn!(error = %e, "change stream not reopened yet");
                    }
                }
            }
        }
    }
}

async fn route(core: &Core, ev: ChangeStreamEvent<BsonDoc>) {
    let coll = ev.ns.as_ref().and_then(|n| n.coll.as_deref()).unwrap_or("");
    if coll == WALLET_TRANSACTIONS {
        if !matches!(
            ev.operation_type,
            OperationType::Insert | OperationType::Update | OperationType::Replace
        ) {
            return;
        }
        let Some(d) = ev.full_document else { return };
        let Some(raw) = wallet_json(d) else { return };
        if let Some((tx, owner)) = wallet::complete(core, raw).await {
            wallet::deliver_local(core, &tx, &owner).await;
        }
    } else if let Some(change) = to_change(ev) {
        core.live.deliver(&change).await;
    }
}

/// A transaction document as JSON for the core: `_id` as `id`, dates as ISO strings, and the
/// amount as a decimal string (Decimal128 and integers are exact; a double is not, so such a
/// document is skipped rather than delivered with a float's rounding).
fn wallet_json(mut d: BsonDoc) -> Option<serde_json::Map<String, serde_json::Value>> {
    let amount = match d.remove("amount")? {
        Bson::String(s) => s,
        Bson::Decimal128(x) => x.to_string(),
        Bson::Int32(n) => n.to_string(),
        Bson::Int64(n) => n.to_string(),
        other => {
            tracing::warn!(amount = %other, "wallet transaction amount is not a decimal; skipped");
            return None;
        }
    };
    let mut body = read_any(d);
    body.insert("amount".to_owned(), serde_json::Value::String(amount));
    Some(body)
}

fn read_any(d: BsonDoc) -> serde_json::Map<String, serde_json::Value> {
    d.into_iter()
        .map(|(k, v)| {
            let k = if k == "_id" { "id".to_owned() } else { k };
            (k, super::convert::bson_to_json(v))
        })
        .collect()
}

fn token_is_useless(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    let code = match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    };
    matches!(
        code,
        Some(HISTORY_LOST | INVALID_RESUME_TOKEN | FATAL_CHANGE_STREAM)
    )
}

/// `data.<project>.<collection>` back into its ids; project ids hold no dots (enforced where
/// collections are created), so the first dot after the prefix separates them.
fn namespace(coll: &str) -> Option<(ProjectId, CollectionId)> {
    let rest = coll.strip_prefix("data.")?;
    let (p, c) = rest.split_once('.')?;
    Some((
        ProjectId::try_from(p).ok()?,
        CollectionId::try_from(c).ok()?,
    ))
}

fn to_change(ev: ChangeStreamEvent<BsonDoc>) -> Option<DocumentChange> {
    let (project, collection) = namespace(ev.ns.as_ref()?.coll.as_deref()?)?;
    let id = match ev.document_key.as_ref()?.get("_id")? {
        Bson::String(s) => s.clone(),
        Bson::ObjectId(o) => o.to_hex(),
        Bson::Int32(n) => n.to_string(),
        Bson::Int64(n) => n.to_string(),
        // Other id types cannot be addressed through the API; their changes are skipped.
        _ => return None,
    };
    let document_id = DocumentId::try_from(id).ok()?;
    let kind = match ev.operation_type {
        OperationType::Insert => ChangeKind::Created,
        OperationType::Update | OperationType::Replace => ChangeKind::Updated,
        OperationType::Delete => ChangeKind::Deleted,
        _ => return None,
    };
    let body = |d: BsonDoc| -> DocumentBody { read(&project, &collection, d).body };
    let document = match kind {
        ChangeKind::Deleted => None,
        // An update whose document was deleted before the lookup: its delete follows.
        _ => Some(body(ev.full_document?)),
    };
    let previous = ev.full_document_before_change.map(body);
    let changed_at = ev
        .wall_time
        .map(|t| Timestamp::from_millis(t.timestamp_millis()))
        .unwrap_or_else(Timestamp::now);
    Some(DocumentChange {
        kind,
        project_id: project.clone(),
        collection_id: collection.clone(),
        document_id,
        document,
        previous,
        changed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_split_at_the_first_dot() {
        let (p, c) = namespace("data.demo.tasks").expect("data namespace");
        assert_eq!((p.as_str(), c.as_str()), ("demo", "tasks"));
        let (p, c) = namespace("data.demo.a.b").expect("dotted collection");
        assert_eq!((p.as_str(), c.as_str()), ("demo", "a.b"));
        assert!(namespace("messages").is_none());
        assert!(namespace("data.nodot").is_none());
    }
}
