//! Socket-side data subscriptions: collection, document and live query. Each checks membership
//! and the collection's rule, registers with this node's `LiveData`, and sends its `subscribed`
//! event through the registry so it precedes every delivery to the new subscription.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::documents::{DataScope, scope};
use crate::Core;
use crate::access::Actor;
use crate::error::AppError;
use crate::events;
use crate::ids::{CollectionId, DocumentId, MAX_ID_LEN, ProjectId};
use crate::ports::{ConnId, DocQuery};
use crate::query::{Filter, Sort};

/// The initial result set of a live query holds at most this many documents (by id); later
/// changes still add, change and remove documents as they happen.
pub const MAX_INITIAL_RESULTS: usize = 1000;

pub async fn subscribe_collection(
    core: &Core,
    actor: &Actor,
    conn: &ConnId,
    project: &ProjectId,
    collection: &CollectionId,
    announce: bool,
) -> Result<Value, AppError> {
    let s = scope(core, actor, project, collection).await?;
    let data = json!({ "type": "collection", "projectId": project, "collectionId": collection });
    core.live.watch_collection(
        conn,
        actor,
        s.key(),
        &s.rule,
        announce.then_some((events::SUBSCRIBED, &data)),
    );
    Ok(data)
}

/// Always succeeds for a well-formed request: leaving what one is not in changes nothing.
pub fn unsubscribe_collection(
    core: &Core,
    conn: &ConnId,
    project: &ProjectId,
    collection: &CollectionId,
) -> Value {
    core.live
        .unwatch_collection(conn, &(project.clone(), collection.clone()));
    json!({ "type": "collection", "projectId": project, "collectionId": collection })
}

/// The `subscribed` payload also carries `document`: its current state, or null when it does
/// not exist yet or the caller may not read it (the two look alike on purpose).
pub async fn subscribe_document(
    core: &Core,
    actor: &Actor,
    conn: &ConnId,
    project: &ProjectId,
    collection: &CollectionId,
    document: &DocumentId,
) -> Result<Value, AppError> {
    let s = scope(core, actor, project, collection).await?;
    let current = core
        .store
        .get_document(project, collection, document)
        .await?
        .map(|d| d.body)
        .filter(|b| s.rule.can_read(actor, b));
    let data = json!({
        "type": "document",
        "projectId": project,
        "collectionId": collection,
        "documentId": document,
        "document": current,
    });
    core.live.watch_document(
        conn,
        actor,
        s.key(),
        document.clone(),
        &s.rule,
        Some((events::SUBSCRIBED, &data)),
    );
    Ok(data)
}

#[derive(Debug, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct SubscribeQuery {
    pub project_id: ProjectId,
    pub collection_id: CollectionId,
    pub query_id: QueryId,
    #[serde(default)]
    pub query: Option<Value>,
}

/// A client-chosen live query id (bounded like every id).
#[derive(Debug, Clone, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct QueryId(pub String);

impl TryFrom<String> for QueryId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > MAX_ID_LEN || s.chars().any(char::is_control) {
            return Err(format!(
                "queryId must be 1 to {MAX_ID_LEN} characters without control characters"
            ));
        }
        Ok(QueryId(s))
    }
}

pub async fn subscribe_query(
    core: &Core,
    actor: &Actor,
    conn: &ConnId,
    req: SubscribeQuery,
) -> Result<Value, AppError> {
    // Validation before authorization (contract): a bad filter is INVALID_PAYLOAD for anyone.
    let filter = match &req.query {
        None | Some(Value::Null) => Filter::match_all(),
        Some(v) => Filter::parse(v, &core.limits.filter)?,
    };
    let s: DataScope = scope(core, actor, &req.project_id, &req.collection_id).await?;
    let qid = req.query_id.0;
    core.live
        .begin_query(conn, actor, s.key(), &qid, filter.clone(), &s.rule)?;
    let found = core
        .store
        .find_documents(
            &req.project_id,
            &req.collection_id,
            &DocQuery {
                filter,
                sort: Sort::default(),
                limit: MAX_INITIAL_RESULTS,
                skip: 0,
                after: None,
                guard: s.rule.guard(actor),
                max_time: core.limits.query_max_time,
            },
        )
        .await;
    let docs = match found {
        Ok(d) => d,
        Err(e) => {
            core.live.cancel_query(conn, &qid);
            return Err(e);
        }
    };
    let ids: HashSet<DocumentId> = docs
        .iter()
        .filter_map(|d| d.body.get("id").and_then(Value::as_str))
        .filter_map(|s| DocumentId::try_from(s).ok())
        .collect();
    let data = json!({
        "type": "query",
        "projectId": req.project_id,
        "collectionId": req.collection_id,
        "queryId": qid,
        "documents": docs.into_iter().map(|d| Value::Object(d.body)).collect::<Vec<_>>(),
    });
    core.live
        .activate_query(conn, &qid, ids, (events::SUBSCRIBED, &data))
        .await;
    Ok(data)
}

pub fn unsubscribe_query(core: &Core, conn: &ConnId, query_id: &QueryId) -> Value {
    core.live.cancel_query(conn, &query_id.0);
    json!({ "type": "query", "queryId": query_id.0 })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::data::documents;
    use crate::error::ErrorCode;
    use crate::model::DocumentBody;
    use crate::ports::DocumentStore;
    use crate::test_doubles::{TestCore, admin, conn, project_id, user, user_id};

    /// Project `p` (alice, bob) with `notes` (members) and `todos` (owner:owner); `q` (carol).
    /// Connections `s`, `s1`, `s2`, `a` and `b` are open.
    async fn fixture() -> TestCore {
        let t = TestCore::new();
        for c in ["s", "s1", "s2", "a", "b"] {
            t.core.live.open_conn(&conn(c));
        }
        let (a, b, c) = (user_id("alice"), user_id("bob"), user_id("carol"));
        t.project("p", &[&a, &b], &[("todos", "owner:owner")]).await;
        t.project("q", &[&c], &[]).await;
        t
    }

    fn coll(s: &str) -> CollectionId {
        CollectionId::try_from(s).expect("id")
    }

    fn doc_id(s: &str) -> DocumentId {
        DocumentId::try_from(s).expect("id")
    }

    fn body(v: Value) -> DocumentBody {
        let Value::Object(m) = v else {
            panic!("a document is an object: {v}");
        };
        m
    }

    /// Writes through the data use case, so the change reaches the live registry as in the
    /// server.
    async fn create(t: &TestCore, actor: &Actor, c: &str, doc: Value) -> DocumentBody {
        let s = scope(&t.core, actor, &project_id("p"), &coll(c))
            .await
            .expect("scope");
        documents::create(&t.core, &s, body(doc))
            .await
            .expect("created")
    }

    fn query(c: &str, qid: &str, q: Option<Value>) -> SubscribeQuery {
        SubscribeQuery {
            project_id: project_id("p"),
            collection_id: coll(c),
            query_id: QueryId(qid.to_owned()),
            query: q,
        }
    }

    #[tokio::test]
    async fn subscribing_to_a_collection_needs_membership_and_a_storable_name() {
        let t = fixture().await;
        let p = project_id("p");
        let e = subscribe_collection(
            &t.core,
            &user("carol"),
            &conn("s"),
            &p,
            &coll("notes"),
            true,
        )
        .await
        .expect_err("carol is not in p");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = subscribe_collection(&t.core, &user("alice"), &conn("s"), &p, &coll("a$b"), true)
            .await
            .expect_err("not a collection name");
        assert_eq!(e.code(), ErrorCode::InvalidPayload);
        assert!(t.sink.all().is_empty());
        assert_eq!(t.core.live.connections(), 0, "nothing registered");
    }

    #[tokio::test]
    async fn a_collection_subscriber_gets_subscribed_first_then_the_writes() {
        let t = fixture().await;
        let alice = user("alice");
        let p = project_id("p");
        let out = subscribe_collection(&t.core, &alice, &conn("s1"), &p, &coll("notes"), true)
            .await
            .expect("subscribed");
        assert_eq!(
            out,
            json!({ "type": "collection", "projectId": "p", "collectionId": "notes" })
        );
        // Without the announcement (a re-join), nothing is sent up front.
        subscribe_collection(&t.core, &alice, &conn("s2"), &p, &coll("notes"), false)
            .await
            .expect("subscribed");
        create(&t, &user("bob"), "notes", json!({"text": "hi"})).await;
        assert_eq!(
            t.sink.events_to("s1"),
            [events::SUBSCRIBED, events::DOCUMENT_CREATED]
        );
        assert_eq!(t.sink.to("s1")[0].payload, out);
        assert_eq!(t.sink.events_to("s2"), [events::DOCUMENT_CREATED]);
        unsubscribe_collection(&t.core, &conn("s1"), &p, &coll("notes"));
        // Leaving what one is not in is fine too.
        unsubscribe_collection(&t.core, &conn("s1"), &p, &coll("never"));
        create(&t, &user("bob"), "notes", json!({"text": "again"})).await;
        assert_eq!(t.sink.to("s1").len(), 2);
        assert_eq!(t.sink.to("s2").len(), 2);
    }

    #[tokio::test]
    async fn a_document_one_may_not_read_looks_like_one_that_does_not_exist() {
        let t = fixture().await;
        let (alice, bob) = (user("alice"), user("bob"));
        let mine = create(&t, &alice, "todos", json!({"title": "a"})).await;
        assert_eq!(mine["owner"], "alice", "the owner field is filled in");
        let id = doc_id(mine["id"].as_str().expect("an id"));
        let p = project_id("p");
        let seen = subscribe_document(&t.core, &alice, &conn("a"), &p, &coll("todos"), &id)
            .await
            .expect("subscribed");
        assert_eq!(seen["document"], Value::Object(mine));
        let hidden = subscribe_document(&t.core, &bob, &conn("b"), &p, &coll("todos"), &id)
            .await
            .expect("subscribed");
        let missing = subscribe_document(
            &t.core,
            &bob,
            &conn("b"),
            &p,
            &coll("todos"),
            &doc_id("nope"),
        )
        .await
        .expect("subscribed");
        assert_eq!(hidden["document"], Value::Null);
        assert_eq!(missing["document"], Value::Null);
        assert_eq!(
            t.sink.events_to("b"),
            [events::SUBSCRIBED, events::SUBSCRIBED]
        );
    }

    #[tokio::test]
    async fn a_bad_filter_is_invalid_for_anyone_before_membership_is_checked() {
        let t = fixture().await;
        let bad = Some(json!({"n": {"$where": "1"}}));
        let e = subscribe_query(
            &t.core,
            &user("carol"),
            &conn("s"),
            query("notes", "q", bad),
        )
        .await
        .expect_err("bad filter");
        assert_eq!(e.code(), ErrorCode::InvalidPayload);
        let e = subscribe_query(
            &t.core,
            &user("carol"),
            &conn("s"),
            query("notes", "q", None),
        )
        .await
        .expect_err("carol is not in p");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        assert_eq!(t.core.live.connections(), 0);
    }

    #[tokio::test]
    async fn a_live_query_starts_with_the_matching_readable_documents_then_follows_writes() {
        let t = fixture().await;
        let (alice, bob) = (user("alice"), user("bob"));
        let root = admin("root");
        for (who, n) in [(&alice, 1), (&alice, 5), (&bob, 7)] {
            create(&t, who, "todos", json!({"n": n})).await;
        }
        create(
            &t,
            &root,
            "todos",
            json!({"id": "x", "n": 9, "owner": "alice"}),
        )
        .await;
        let out = subscribe_query(
            &t.core,
            &alice,
            &conn("s1"),
            query("todos", "big", Some(json!({"n": {"$gte": 3}}))),
        )
        .await
        .expect("subscribed");
        let mut initial: Vec<i64> = out["documents"]
            .as_array()
            .expect("documents")
            .iter()
            .filter_map(|d| d["n"].as_i64())
            .collect();
        initial.sort_unstable();
        assert_eq!(initial, [5, 9], "only alice's documents with n ≥ 3");
        assert_eq!(t.sink.to("s1")[0].event, events::SUBSCRIBED);
        assert_eq!(t.sink.to("s1")[0].payload, out);

        create(&t, &alice, "todos", json!({"n": 4})).await;
        create(&t, &alice, "todos", json!({"n": 0})).await;
        create(&t, &bob, "todos", json!({"n": 8})).await;
        let s = scope(&t.core, &root, &project_id("p"), &coll("todos"))
            .await
            .expect("scope");
        documents::delete(&t.core, &s, &doc_id("x"))
            .await
            .expect("deleted");
        let got: Vec<(String, Value)> = t
            .sink
            .to("s1")
            .into_iter()
            .skip(1)
            .map(|s| (s.event, s.payload["queryId"].clone()))
            .collect();
        assert_eq!(
            got,
            [
                (events::QUERY_ADDED.to_owned(), json!("big")),
                (events::QUERY_REMOVED.to_owned(), json!("big")),
            ]
        );
        assert_eq!(t.sink.to("s1")[2].payload["documentId"], "x");

        unsubscribe_query(&t.core, &conn("s1"), &QueryId("big".to_owned()));
        create(&t, &alice, "todos", json!({"n": 6})).await;
        assert_eq!(t.sink.to("s1").len(), 3);
    }

    async fn put(t: &TestCore, n: usize) {
        for i in 0..n {
            let doc = crate::model::Document {
                project_id: project_id("p"),
                collection_id: coll("notes"),
                body: body(json!({"id": format!("d{i:04}"), "n": i})),
            };
            t.store.put_document(&doc).await.expect("put");
        }
    }

    #[tokio::test]
    async fn documents_past_the_initial_thousand_arrive_as_added_when_they_change() {
        let t = fixture().await;
        put(&t, MAX_INITIAL_RESULTS + 1).await;
        let out = subscribe_query(
            &t.core,
            &user("alice"),
            &conn("s1"),
            query("notes", "all", Some(Value::Null)),
        )
        .await
        .expect("subscribed");
        let docs = out["documents"].as_array().expect("documents");
        assert_eq!(docs.len(), MAX_INITIAL_RESULTS);
        assert_eq!(docs[0]["id"], "d0000", "by id");
        let s = scope(&t.core, &user("alice"), &project_id("p"), &coll("notes"))
            .await
            .expect("scope");
        for id in ["d0000", "d1000"] {
            documents::patch(&t.core, &s, &doc_id(id), body(json!({"seen": true})))
                .await
                .expect("patched");
        }
        assert_eq!(
            t.sink.events_to("s1"),
            [
                events::SUBSCRIBED,
                events::QUERY_CHANGED,
                events::QUERY_ADDED
            ]
        );
    }

    #[tokio::test]
    async fn a_live_query_whose_initial_find_fails_is_not_left_registered() {
        let limits = crate::Limits {
            query_max_time: std::time::Duration::ZERO,
            ..crate::Limits::default()
        };
        let t = TestCore::with_limits(limits);
        t.core.live.open_conn(&conn("s1"));
        let a = user_id("alice");
        t.project("p", &[&a], &[]).await;
        put(&t, 200).await;
        let filter = Some(json!({"n": {"$gte": 0}}));
        let e = subscribe_query(
            &t.core,
            &user("alice"),
            &conn("s1"),
            query("notes", "q", filter),
        )
        .await
        .expect_err("no time for the find");
        assert_eq!(e.code(), ErrorCode::InvalidPayload);
        assert!(
            !t.core.live.cancel_query(&conn("s1"), "q"),
            "already dropped"
        );
        assert!(t.sink.all().is_empty());
    }

    #[tokio::test]
    async fn a_subscribe_answered_after_its_connection_closed_registers_nothing() {
        let t = fixture().await;
        let alice = user("alice");
        let p = project_id("p");
        // The socket closed while the subscribes were reading the store.
        t.core.live.remove_conn(&conn("s1"));
        subscribe_collection(&t.core, &alice, &conn("s1"), &p, &coll("notes"), true)
            .await
            .expect("answered");
        subscribe_document(
            &t.core,
            &alice,
            &conn("s1"),
            &p,
            &coll("notes"),
            &doc_id("d"),
        )
        .await
        .expect("answered");
        subscribe_query(&t.core, &alice, &conn("s1"), query("notes", "q", None))
            .await
            .expect("answered");
        create(&t, &alice, "notes", json!({"id": "d"})).await;
        assert_eq!(t.core.live.connections(), 0);
        assert!(t.sink.all().is_empty(), "{:?}", t.sink.all());
    }

    #[test]
    fn query_ids_are_bounded_like_every_id() {
        let ok = |s: String| serde_json::from_value::<QueryId>(json!(s)).is_ok();
        assert!(ok("q".to_owned()));
        assert!(ok("é".repeat(MAX_ID_LEN)));
        assert!(!ok(String::new()));
        assert!(!ok("q".repeat(MAX_ID_LEN + 1)));
        assert!(!ok("a\nb".to_owned()));
    }
}
