//! This node's data subscriptions, and the delivery of each change to them.
//!
//! Every decision is per connection (who may read the document, which live queries it enters or
//! leaves), so deliveries go straight to connections through `LocalSink`, never through the
//! cross-node adapter. A connection with several matching subscriptions (the collection and the
//! document) gets one `document:*` per change.
//!
//! Matching a change against live queries is the one costly step (client filters against a
//! client-written document), so it never runs under the registry lock nor on a runtime worker:
//! the queries are snapshotted (their filters are shared, not copied), matched on the blocking
//! pool, and the verdicts applied under the lock again. Changes of one collection still go out
//! one at a time, in order, through that collection's turn; other collections, subscriptions
//! and everything else of the node go on meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::change::{ChangeKind, DocumentChange};
use super::rules::AccessRule;
use crate::access::Actor;
use crate::error::AppError;
use crate::events;
use crate::ids::{CollectionId, DocumentId, ProjectId};
use crate::model::DocumentBody;
use crate::ports::{ConnId, LocalSink};
use crate::query::Filter;

/// One collection's delivery turn: changes of a collection are delivered one after another.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// Contract limit: live queries per socket.
pub const MAX_QUERIES_PER_CONN: usize = 100;

type Key = (ProjectId, CollectionId);

pub struct LiveData {
    sink: Arc<dyn LocalSink>,
    reg: Mutex<Registry>,
    turns: Mutex<HashMap<Key, Turn>>,
    /// Matching threads at work at once: at most half the cores, so however many heavy writes
    /// arrive together, the runtime keeps cores for everything else.
    matchers: Arc<tokio::sync::Semaphore>,
}

#[derive(Default)]
struct Registry {
    /// Connections open on this node, from `open_conn` to `remove_conn`. Only they register:
    /// a subscribe still running when its connection closes (its store reads outlast the
    /// close) would otherwise leave a dead connection's subscriptions here for good, matched
    /// against every later write.
    open: HashSet<ConnId>,
    conns: HashMap<ConnId, Conn>,
    colls: HashMap<Key, Coll>,
}

struct Conn {
    actor: Actor,
    collections: HashSet<Key>,
    documents: HashSet<(Key, DocumentId)>,
    queries: HashMap<String, Key>,
}

struct Coll {
    rule: AccessRule,
    watchers: HashSet<ConnId>,
    doc_watchers: HashMap<DocumentId, HashSet<ConnId>>,
    queries: HashMap<(ConnId, String), LiveQuery>,
}

impl Coll {
    fn is_empty(&self) -> bool {
        self.watchers.is_empty() && self.doc_watchers.is_empty() && self.queries.is_empty()
    }
}

struct LiveQuery {
    filter: Arc<Filter>,
    state: QueryState,
}

enum QueryState {
    /// Registered before its initial find ran: changes meanwhile wait here, so none is lost
    /// between the find and the activation.
    Pending(Vec<DocumentChange>),
    /// The ids of the documents the client currently holds as this query's result set.
    Active(HashSet<DocumentId>),
}

impl LiveData {
    pub fn new(sink: Arc<dyn LocalSink>) -> Self {
        LiveData {
            sink,
            reg: Mutex::default(),
            turns: Mutex::default(),
            matchers: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            )),
        }
    }

    fn turn(&self, key: &Key) -> Turn {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.entry(key.clone()).or_default().clone()
    }

    /// Forgets a collection's turn once nobody holds or awaits it (clones are only made under
    /// the same lock, so the count cannot grow meanwhile).
    fn release(&self, key: &Key, turn: Turn) {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&turn) == 2 {
            turns.remove(key);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic elsewhere while holding the lock leaves plain maps behind: still usable.
        self.reg.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection's entry; `None` once it closed (or before it opened).
    fn conn<'a>(reg: &'a mut Registry, conn: &ConnId, actor: &Actor) -> Option<&'a mut Conn> {
        if !reg.open.contains(conn) {
            return None;
        }
        Some(reg.conns.entry(conn.clone()).or_insert_with(|| Conn {
            actor: actor.clone(),
            collections: HashSet::new(),
            documents: HashSet::new(),
            queries: HashMap::new(),
        }))
    }

    fn coll<'a>(reg: &'a mut Registry, key: &Key, rule: &AccessRule) -> &'a mut Coll {
        let c = reg.colls.entry(key.clone()).or_insert_with(|| Coll {
            rule: rule.clone(),
            watchers: HashSet::new(),
            doc_watchers: HashMap::new(),
            queries: HashMap::new(),
        });
        // The newest read of the project's config wins.
        c.rule = rule.clone();
        c
    }

    /// Registers a collection subscription of an open connection; `announce` is sent to it
    /// under the registry lock, so it precedes every change delivered to this subscription.
    pub fn watch_collection(
        &self,
        conn: &ConnId,
        actor: &Actor,
        key: Key,
        rule: &AccessRule,
        announce: Option<(&str, &Value)>,
    ) {
        let mut reg = self.lock();
        let Some(c) = Self::conn(&mut reg, conn, actor) else {
            return;
        };
        c.collections.insert(key.clone());
        Self::coll(&mut reg, &key, rule)
            .watchers
            .insert(conn.clone());
        if let Some((event, payload)) = announce {
            self.sink.send(conn, event, payload);
        }
    }

    pub fn unwatch_collection(&self, conn: &ConnId, key: &Key) {
        let mut reg = self.lock();
        if let Some(c) = reg.conns.get_mut(conn) {
            c.collections.remove(key);
        }
        if let Some(c) = reg.colls.get_mut(key) {
            c.watchers.remove(conn);
        }
        Self::prune(&mut reg, key);
    }

    pub fn watch_document(
        &self,
        conn: &ConnId,
        actor: &Actor,
        key: Key,
        doc: DocumentId,
        rule: &AccessRule,
        announce: Option<(&str, &Value)>,
    ) {
        let mut reg = self.lock();
        let Some(c) = Self::conn(&mut reg, conn, actor) else {
            return;
        };
        c.documents.insert((key.clone(), doc.clone()));
        Self::coll(&mut reg, &key, rule)
            .doc_watchers
            .entry(doc)
            .or_default()
            .insert(conn.clone());
        if let Some((event, payload)) = announce {
            self.sink.send(conn, event, payload);
        }
    }

    /// Registers a live query in the pending state (replacing one with the same id on this
    /// connection). Fails when the connection already has the maximum.
    pub fn begin_query(
        &self,
        conn: &ConnId,
        actor: &Actor,
        key: Key,
        query_id: &str,
        filter: Filter,
        rule: &AccessRule,
    ) -> Result<(), AppError> {
        let mut reg = self.lock();
        // A closed connection registers nothing, and its `activate_query` then finds nothing.
        let Some(c) = Self::conn(&mut reg, conn, actor) else {
            return Ok(());
        };
        if !c.queries.contains_key(query_id) && c.queries.len() >= MAX_QUERIES_PER_CONN {
            return Err(AppError::invalid(format!(
                "at most {MAX_QUERIES_PER_CONN} live queries per socket; unsubscribe:query first"
            )));
        }
        if let Some(old) = c.queries.insert(query_id.to_owned(), key.clone()) {
            if let Some(coll) = reg.colls.get_mut(&old) {
                coll.queries.remove(&(conn.clone(), query_id.to_owned()));
            }
            Self::prune(&mut reg, &old);
        }
        Self::coll(&mut reg, &key, rule).queries.insert(
            (conn.clone(), query_id.to_owned()),
            LiveQuery {
                filter: Arc::new(filter),
                state: QueryState::Pending(Vec::new()),
            },
        );
        Ok(())
    }

    /// Activates a pending query with the result set its client was given: sends `announce`
    /// (the `subscribed` event) and then what changed since the find, in order, before any
    /// later change of the collection. False when the query is gone (unsubscribed, replaced or
    /// disconnected meanwhile).
    pub async fn activate_query(
        &self,
        conn: &ConnId,
        query_id: &str,
        initial: HashSet<DocumentId>,
        announce: (&str, &Value),
    ) -> bool {
        let Some(key) = self
            .lock()
            .conns
            .get(conn)
            .and_then(|c| c.queries.get(query_id))
            .cloned()
        else {
            return false;
        };
        let turn = self.turn(&key);
        let done = {
            let _turn = turn.lock().await;
            self.activate_in_turn(conn, query_id, &key, initial, announce)
                .await
        };
        self.release(&key, turn);
        done
    }

    async fn activate_in_turn(
        &self,
        conn: &ConnId,
        query_id: &str,
        key: &Key,
        initial: HashSet<DocumentId>,
        announce: (&str, &Value),
    ) -> bool {
        let qkey = (conn.clone(), query_id.to_owned());
        // Nothing is buffered while this turn is held, so the pending changes can be taken out
        // and matched without the lock.
        let (filter, pending, readable) = {
            let mut reg = self.lock();
            let Registry { conns, colls, .. } = &mut *reg;
            let Some(actor) = conns.get(conn).map(|c| &c.actor) else {
                return false;
            };
            let Some(coll) = colls.get_mut(key) else {
                return false;
            };
            let rule = coll.rule.clone();
            let Some(q) = coll.queries.get_mut(&qkey) else {
                return false;
            };
            let QueryState::Pending(buf) = &mut q.state else {
                return false;
            };
            let pending = std::mem::take(buf);
            let readable: Vec<bool> = pending
                .iter()
                .map(|c| c.document.as_ref().is_some_and(|d| rule.can_read(actor, d)))
                .collect();
            (q.filter.clone(), pending, readable)
        };
        let docs: Vec<Option<Arc<DocumentBody>>> = pending
            .iter()
            .zip(&readable)
            .map(|(c, r)| c.document.clone().filter(|_| *r).map(Arc::new))
            .collect();
        let verdicts = self
            .match_all(docs.iter().map(|d| (filter.clone(), d.clone())).collect())
            .await;
        let mut reg = self.lock();
        let Some(q) = reg
            .colls
            .get_mut(key)
            .and_then(|c| c.queries.get_mut(&qkey))
            .filter(|q| Arc::ptr_eq(&q.filter, &filter))
        else {
            return false;
        };
        let mut set = initial;
        self.sink.send(conn, announce.0, announce.1);
        for ((change, doc), is_in) in pending.iter().zip(&docs).zip(verdicts) {
            if let Some((event, payload)) = step(&mut set, query_id, change, doc.as_deref(), is_in)
            {
                self.sink.send(conn, event, &payload);
            }
        }
        q.state = QueryState::Active(set);
        true
    }

    /// Drops a query; true if it existed.
    pub fn cancel_query(&self, conn: &ConnId, query_id: &str) -> bool {
        let mut reg = self.lock();
        let Some(key) = reg
            .conns
            .get_mut(conn)
            .and_then(|c| c.queries.remove(query_id))
        else {
            return false;
        };
        if let Some(c) = reg.colls.get_mut(&key) {
            c.queries.remove(&(conn.clone(), query_id.to_owned()));
        }
        Self::prune(&mut reg, &key);
        true
    }

    /// A connection opened on this node: from now until `remove_conn` it may subscribe.
    pub fn open_conn(&self, conn: &ConnId) {
        self.lock().open.insert(conn.clone());
    }

    /// Forgets everything of a closed connection, and refuses its later subscriptions.
    pub fn remove_conn(&self, conn: &ConnId) {
        let mut reg = self.lock();
        reg.open.remove(conn);
        let Some(c) = reg.conns.remove(conn) else {
            return;
        };
        let mut keys: HashSet<Key> = c.collections;
        for (key, doc) in c.documents {
            if let Some(coll) = reg.colls.get_mut(&key)
                && let Some(set) = coll.doc_watchers.get_mut(&doc)
            {
                set.remove(conn);
                if set.is_empty() {
                    coll.doc_watchers.remove(&doc);
                }
            }
            keys.insert(key);
        }
        for (qid, key) in c.queries {
            if let Some(coll) = reg.colls.get_mut(&key) {
                coll.queries.remove(&(conn.clone(), qid));
            }
            keys.insert(key);
        }
        for key in keys {
            if let Some(coll) = reg.colls.get_mut(&key) {
                coll.watchers.remove(conn);
            }
            Self::prune(&mut reg, &key);
        }
    }

    fn prune(reg: &mut Registry, key: &Key) {
        if reg.colls.get(key).is_some_and(Coll::is_empty) {
            reg.colls.remove(key);
        }
    }

    /// How many connections of this node hold any data subscription (for tests and metrics).
    pub fn connections(&self) -> usize {
        self.lock().conns.len()
    }

    /// Delivers one change to this node's subscribers.
    pub async fn deliver(&self, change: &DocumentChange) {
        let key = (change.project_id.clone(), change.collection_id.clone());
        if !self.lock().colls.contains_key(&key) {
            return;
        }
        let turn = self.turn(&key);
        {
            let _turn = turn.lock().await;
            self.deliver_in_turn(change, &key).await;
        }
        self.release(&key, turn);
    }

    async fn deliver_in_turn(&self, change: &DocumentChange, key: &Key) {
        // Readable by the query's owner: the document then needs matching, outside the lock.
        let doc = change.document.clone().map(Arc::new);
        let to_match: Vec<((ConnId, String), Arc<Filter>)> = {
            let mut reg = self.lock();
            let Registry { conns, colls, .. } = &mut *reg;
            let Some(coll) = colls.get_mut(key) else {
                return;
            };
            self.send_document_events(conns, coll, change);
            let rule = coll.rule.clone();
            let mut to_match = Vec::new();
            for ((conn, qid), q) in coll.queries.iter_mut() {
                let Some(actor) = conns.get(conn).map(|c| &c.actor) else {
                    continue;
                };
                match &mut q.state {
                    QueryState::Pending(buf) => buf.push(change.clone()),
                    QueryState::Active(set) => match &doc {
                        Some(d) if rule.can_read(actor, d) => {
                            to_match.push(((conn.clone(), qid.clone()), q.filter.clone()));
                        }
                        _ => {
                            if let Some((event, payload)) = step(set, qid, change, None, false) {
                                self.sink.send(conn, event, &payload);
                            }
                        }
                    },
                }
            }
            to_match
        };
        if to_match.is_empty() {
            return;
        }
        let verdicts = self
            .match_all(
                to_match
                    .iter()
                    .map(|(_, f)| (f.clone(), doc.clone()))
                    .collect(),
            )
            .await;
        let mut reg = self.lock();
        let Some(coll) = reg.colls.get_mut(key) else {
            return;
        };
        for ((qkey, filter), is_in) in to_match.into_iter().zip(verdicts) {
            // A query dropped or replaced meanwhile no longer wants this verdict.
            let Some(q) = coll
                .queries
                .get_mut(&qkey)
                .filter(|q| Arc::ptr_eq(&q.filter, &filter))
            else {
                continue;
            };
            let QueryState::Active(set) = &mut q.state else {
                continue;
            };
            if let Some((event, payload)) = step(set, &qkey.1, change, doc.as_deref(), is_in) {
                self.sink.send(&qkey.0, event, &payload);
            }
        }
    }

    /// Document events: the collection's watchers and the document's, each once.
    fn send_document_events(
        &self,
        conns: &HashMap<ConnId, Conn>,
        coll: &Coll,
        change: &DocumentChange,
    ) {
        let via_doc = coll.doc_watchers.get(&change.document_id);
        let mut targets: Vec<(&ConnId, bool)> = coll.watchers.iter().map(|c| (c, false)).collect();
        if let Some(ws) = via_doc {
            for c in ws {
                if !coll.watchers.contains(c) {
                    targets.push((c, true));
                }
            }
        }
        let mut full: Option<Value> = None;
        let mut bare: Option<Value> = None;
        for (conn, only_doc_room) in targets {
            let Some(actor) = conns.get(conn).map(|c| &c.actor) else {
                continue;
            };
            match document_view(&coll.rule, actor, change, only_doc_room) {
                View::Hidden => {}
                View::Full => {
                    let p = full.get_or_insert_with(|| change.payload());
                    self.sink.send(conn, change.event(), p);
                }
                View::WithoutPrevious => {
                    let p = bare.get_or_insert_with(|| {
                        let mut p = change.payload();
                        if let Some(o) = p.as_object_mut() {
                            o.remove("previous");
                        }
                        p
                    });
                    self.sink.send(conn, change.event(), p);
                }
            }
        }
    }
}

impl LiveData {
    /// Matches each filter against its document (`None`: nothing to match, so no) on the
    /// blocking pool, where however long client filters take holds up no other task of the node.
    async fn match_all(&self, work: Vec<(Arc<Filter>, Option<Arc<DocumentBody>>)>) -> Vec<bool> {
        let n = work.len();
        if work.iter().all(|(_, d)| d.is_none()) {
            return vec![false; n];
        }
        // The semaphore is never closed; without a permit, match anyway rather than lose a change.
        let _permit = self.matchers.clone().acquire_owned().await.ok();
        let matched = tokio::task::spawn_blocking(move || {
            work.iter()
                .map(|(f, d)| d.as_ref().is_some_and(|d| f.matches(d)))
                .collect::<Vec<bool>>()
        })
        .await;
        matched.unwrap_or_else(|e| {
            tracing::error!(error = %e, "live query matching failed; treated as no match");
            vec![false; n]
        })
    }
}

enum View {
    Hidden,
    Full,
    /// The previous version belongs to someone else (the owner field changed): not for them.
    WithoutPrevious,
}

fn document_view(
    rule: &AccessRule,
    actor: &Actor,
    change: &DocumentChange,
    only_doc_room: bool,
) -> View {
    if actor.is_admin() || *rule == AccessRule::Members {
        return View::Full;
    }
    let readable = |d: &DocumentBody| rule.can_read(actor, d);
    let prev_ok = change.previous.as_ref().is_none_or(readable);
    match (&change.document, change.kind) {
        (Some(d), _) if readable(d) => {
            if prev_ok {
                View::Full
            } else {
                View::WithoutPrevious
            }
        }
        (Some(_), _) => View::Hidden,
        (None, ChangeKind::Deleted) => match &change.previous {
            Some(p) if readable(p) => View::Full,
            Some(_) => View::Hidden,
            // A delete without a pre-image names only the id: tell those who subscribed to that
            // very document (they know the id already), not the whole collection.
            None if only_doc_room && *rule != AccessRule::AdminsOnly => View::Full,
            None => View::Hidden,
        },
        (None, _) => View::Hidden,
    }
}

/// Moves one active query's result set through one change, given whether the changed
/// document (`readable`: as its client may see it) matches: added / changed / removed, or nothing.
fn step(
    set: &mut HashSet<DocumentId>,
    query_id: &str,
    change: &DocumentChange,
    readable: Option<&DocumentBody>,
    matches: bool,
) -> Option<(&'static str, Value)> {
    let id = &change.document_id;
    let was_in = set.contains(id);
    let is_in = readable.is_some() && matches;
    let event = match (was_in, is_in) {
        (false, true) => {
            set.insert(id.clone());
            events::QUERY_ADDED
        }
        (true, true) => events::QUERY_CHANGED,
        (true, false) => {
            set.remove(id);
            events::QUERY_REMOVED
        }
        (false, false) => return None,
    };
    Some((
        event,
        json!({ "queryId": query_id, "documentId": id, "document": readable }),
    ))
}

/// Publishes a node's own writes straight into its own registry: the embedded store, or a
/// single node without change streams.
pub struct DeliverLocally(pub Arc<LiveData>);

#[async_trait::async_trait]
impl crate::ports::ChangePublisher for DeliverLocally {
    async fn publish(&self, change: DocumentChange) {
        self.0.deliver(&change).await;
    }
}

/// For when something else reports every write (a MongoDB change stream on every node).
pub struct PublishNothing;

#[async_trait::async_trait]
impl crate::ports::ChangePublisher for PublishNothing {
    async fn publish(&self, _change: DocumentChange) {}

    fn feed_reports_writes(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;
    use crate::query::FilterBudget;
    use crate::test_doubles::{RecordingSink, admin, conn, project_id, user};
    use crate::time::Timestamp;

    /// A registry whose connections `s1`, `s2`, `alice`, `bob`, `admin`, `coll`, `doc` and
    /// `held` are open.
    fn setup() -> (Arc<RecordingSink>, LiveData) {
        let sink = Arc::new(RecordingSink::default());
        let live = LiveData::new(sink.clone());
        for c in ["s1", "s2", "alice", "bob", "admin", "coll", "doc", "held"] {
            live.open_conn(&conn(c));
        }
        (sink, live)
    }

    fn key(c: &str) -> Key {
        (project_id("p"), CollectionId::try_from(c).expect("id"))
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

    fn filter(v: Value) -> Filter {
        Filter::parse(&v, &FilterBudget::default()).expect("filter")
    }

    fn change(
        kind: ChangeKind,
        id: &str,
        document: Option<Value>,
        previous: Option<Value>,
    ) -> DocumentChange {
        DocumentChange {
            kind,
            project_id: project_id("p"),
            collection_id: CollectionId::try_from("c").expect("id"),
            document_id: doc_id(id),
            document: document.map(body),
            previous: previous.map(body),
            changed_at: Timestamp::now(),
        }
    }

    fn created(id: &str, doc: Value) -> DocumentChange {
        change(ChangeKind::Created, id, Some(doc), None)
    }

    fn owners() -> AccessRule {
        AccessRule::Owner("owner".to_owned())
    }

    /// A live query on `c`, active with `initial` as its result set.
    async fn live_query(
        live: &LiveData,
        c: &str,
        actor: &Actor,
        qid: &str,
        f: Value,
        initial: &[&str],
        rule: &AccessRule,
    ) {
        live.begin_query(&conn(c), actor, key("c"), qid, filter(f), rule)
            .expect("registered");
        let set = initial.iter().map(|d| doc_id(d)).collect();
        assert!(
            live.activate_query(&conn(c), qid, set, ("subscribed", &json!({"queryId": qid})))
                .await
        );
    }

    #[tokio::test]
    async fn a_collection_watcher_hears_the_announcement_first_then_each_change_until_it_leaves() {
        let (sink, live) = setup();
        let ann = json!({"type": "collection"});
        live.watch_collection(
            &conn("s1"),
            &user("alice"),
            key("c"),
            &AccessRule::Members,
            Some(("subscribed", &ann)),
        );
        live.deliver(&created("d1", json!({"id": "d1"}))).await;
        // Another collection of the project is not watched.
        let mut other = created("d2", json!({"id": "d2"}));
        other.collection_id = CollectionId::try_from("other").expect("id");
        live.deliver(&other).await;
        assert_eq!(
            sink.events_to("s1"),
            ["subscribed", events::DOCUMENT_CREATED]
        );
        assert_eq!(sink.to("s1")[1].payload["documentId"], "d1");
        live.unwatch_collection(&conn("s1"), &key("c"));
        live.deliver(&created("d3", json!({"id": "d3"}))).await;
        assert_eq!(sink.to("s1").len(), 2);
    }

    #[tokio::test]
    async fn a_connection_watching_a_collection_and_its_document_gets_each_change_once() {
        let (sink, live) = setup();
        let alice = user("alice");
        live.watch_collection(&conn("s1"), &alice, key("c"), &AccessRule::Members, None);
        live.watch_document(
            &conn("s1"),
            &alice,
            key("c"),
            doc_id("d1"),
            &AccessRule::Members,
            None,
        );
        live.watch_document(
            &conn("s2"),
            &alice,
            key("c"),
            doc_id("d1"),
            &AccessRule::Members,
            None,
        );
        live.deliver(&created("d1", json!({"id": "d1"}))).await;
        live.deliver(&created("d2", json!({"id": "d2"}))).await;
        assert_eq!(sink.to("s1").len(), 2, "d1 once, d2 via the collection");
        let s2: Vec<Value> = sink
            .to("s2")
            .into_iter()
            .map(|s| s.payload["documentId"].clone())
            .collect();
        assert_eq!(
            s2,
            [json!("d1")],
            "a document watcher hears only its document"
        );
    }

    #[tokio::test]
    async fn under_an_owner_rule_a_user_hears_only_changes_of_documents_they_own() {
        let (sink, live) = setup();
        live.watch_collection(&conn("alice"), &user("alice"), key("c"), &owners(), None);
        live.watch_collection(&conn("bob"), &user("bob"), key("c"), &owners(), None);
        live.watch_collection(&conn("admin"), &admin("root"), key("c"), &owners(), None);
        live.deliver(&created("d1", json!({"id": "d1", "owner": "alice"})))
            .await;
        assert_eq!(sink.to("alice").len(), 1);
        assert!(sink.to("bob").is_empty());
        assert_eq!(sink.to("admin").len(), 1, "admins see everything");
        // Ownership moves to bob: bob hears it without the previous (alice's) version, alice
        // hears nothing more (her document is gone from her view).
        sink.clear();
        live.deliver(&change(
            ChangeKind::Updated,
            "d1",
            Some(json!({"id": "d1", "owner": "bob"})),
            Some(json!({"id": "d1", "owner": "alice"})),
        ))
        .await;
        assert!(sink.to("alice").is_empty());
        let bob = sink.to("bob");
        assert_eq!(bob.len(), 1);
        assert!(
            bob[0].payload.get("previous").is_none(),
            "{}",
            bob[0].payload
        );
        assert!(sink.to("admin")[0].payload.get("previous").is_some());
    }

    #[tokio::test]
    async fn a_delete_without_its_previous_version_reaches_only_that_documents_watchers() {
        let (sink, live) = setup();
        live.watch_collection(&conn("coll"), &user("alice"), key("c"), &owners(), None);
        live.watch_collection(&conn("admin"), &admin("root"), key("c"), &owners(), None);
        live_query(
            &live,
            "held",
            &user("alice"),
            "q",
            json!({}),
            &["d1"],
            &owners(),
        )
        .await;
        live.watch_document(
            &conn("doc"),
            &user("alice"),
            key("c"),
            doc_id("d1"),
            &owners(),
            None,
        );
        live.deliver(&change(ChangeKind::Deleted, "d1", None, None))
            .await;
        assert!(sink.to("coll").is_empty());
        assert_eq!(sink.events_to("doc"), [events::DOCUMENT_DELETED]);
        assert_eq!(sink.events_to("admin"), [events::DOCUMENT_DELETED]);
        assert_eq!(
            sink.events_to("held"),
            ["subscribed", events::QUERY_REMOVED],
            "a live query that held it hears it left"
        );
        // With the previous version, its owner's collection watchers hear it too.
        live.deliver(&change(
            ChangeKind::Deleted,
            "d1",
            None,
            Some(json!({"id": "d1", "owner": "alice"})),
        ))
        .await;
        assert_eq!(sink.to("coll").len(), 1);
        // A collection whose rule cannot be read shows non-admins nothing.
        live.unwatch_collection(&conn("coll"), &key("c"));
        sink.clear();
        live.watch_document(
            &conn("doc"),
            &user("alice"),
            key("c"),
            doc_id("d1"),
            &AccessRule::AdminsOnly,
            None,
        );
        live.deliver(&change(ChangeKind::Deleted, "d1", None, None))
            .await;
        live.deliver(&created("d1", json!({"id": "d1", "owner": "alice"})))
            .await;
        assert!(sink.to("doc").is_empty(), "{:?}", sink.to("doc"));
        assert!(sink.to("held").is_empty(), "{:?}", sink.to("held"));
        assert_eq!(sink.to("admin").len(), 2);
    }

    #[tokio::test]
    async fn a_live_query_adds_changes_and_removes_only_matching_documents() {
        let (sink, live) = setup();
        let alice = user("alice");
        live_query(
            &live,
            "s1",
            &alice,
            "q",
            json!({"n": {"$gte": 10}}),
            &["d0"],
            &AccessRule::Members,
        )
        .await;
        live.deliver(&created("d1", json!({"id": "d1", "n": 5})))
            .await;
        live.deliver(&created("d2", json!({"id": "d2", "n": 20})))
            .await;
        live.deliver(&change(
            ChangeKind::Updated,
            "d2",
            Some(json!({"id": "d2", "n": 30})),
            None,
        ))
        .await;
        live.deliver(&change(
            ChangeKind::Updated,
            "d0",
            Some(json!({"id": "d0", "n": 1})),
            None,
        ))
        .await;
        live.deliver(&change(ChangeKind::Deleted, "d2", None, None))
            .await;
        live.deliver(&change(ChangeKind::Deleted, "d1", None, None))
            .await;
        let got: Vec<(String, Value)> = sink
            .to("s1")
            .into_iter()
            .map(|s| (s.event, s.payload["documentId"].clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("subscribed".to_owned(), Value::Null),
                (events::QUERY_ADDED.to_owned(), json!("d2")),
                (events::QUERY_CHANGED.to_owned(), json!("d2")),
                (events::QUERY_REMOVED.to_owned(), json!("d0")),
                (events::QUERY_REMOVED.to_owned(), json!("d2")),
            ]
        );
        let added = &sink.to("s1")[1].payload;
        assert_eq!(added["queryId"], "q");
        assert_eq!(added["document"], json!({"id": "d2", "n": 20}));
        assert_eq!(sink.to("s1")[4].payload["document"], Value::Null);
    }

    #[tokio::test]
    async fn a_live_query_under_an_owner_rule_holds_only_its_owners_documents() {
        let (sink, live) = setup();
        live_query(&live, "s1", &user("alice"), "q", json!({}), &[], &owners()).await;
        live.deliver(&created("d1", json!({"id": "d1", "owner": "bob"})))
            .await;
        live.deliver(&created("d2", json!({"id": "d2", "owner": "alice"})))
            .await;
        // Given away: it leaves alice's result set.
        live.deliver(&change(
            ChangeKind::Updated,
            "d2",
            Some(json!({"id": "d2", "owner": "bob"})),
            Some(json!({"id": "d2", "owner": "alice"})),
        ))
        .await;
        let got: Vec<(String, Value, Value)> = sink
            .to("s1")
            .into_iter()
            .skip(1)
            .map(|s| {
                (
                    s.event,
                    s.payload["documentId"].clone(),
                    s.payload["document"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    events::QUERY_ADDED.to_owned(),
                    json!("d2"),
                    json!({"id": "d2", "owner": "alice"})
                ),
                (events::QUERY_REMOVED.to_owned(), json!("d2"), Value::Null),
            ]
        );
    }

    #[tokio::test]
    async fn changes_during_the_initial_find_follow_the_announcement_in_order() {
        let (sink, live) = setup();
        let alice = user("alice");
        live.begin_query(
            &conn("s1"),
            &alice,
            key("c"),
            "q",
            filter(json!({})),
            &AccessRule::Members,
        )
        .expect("registered");
        live.deliver(&created("d1", json!({"id": "d1"}))).await;
        live.deliver(&change(ChangeKind::Deleted, "d0", None, None))
            .await;
        assert!(sink.all().is_empty(), "nothing before the announcement");
        let initial = [doc_id("d0")].into_iter().collect();
        assert!(
            live.activate_query(&conn("s1"), "q", initial, ("subscribed", &json!({})))
                .await
        );
        assert_eq!(
            sink.events_to("s1"),
            ["subscribed", events::QUERY_ADDED, events::QUERY_REMOVED]
        );
    }

    #[tokio::test]
    async fn a_connection_holds_at_most_a_hundred_live_queries() {
        let (_sink, live) = setup();
        let alice = user("alice");
        let begin = |c: &str, q: &str| {
            live.begin_query(
                &conn(c),
                &alice,
                key("c"),
                q,
                filter(json!({})),
                &AccessRule::Members,
            )
        };
        for i in 0..MAX_QUERIES_PER_CONN {
            begin("s1", &format!("q{i}")).expect("within the limit");
        }
        let e = begin("s1", "one-more").expect_err("over the limit");
        assert_eq!(e.code(), ErrorCode::InvalidPayload);
        begin("s1", "q0").expect("replacing a query by its id is not one more");
        begin("s2", "q0").expect("the limit is per connection");
        assert!(live.cancel_query(&conn("s1"), "q1"));
        assert!(!live.cancel_query(&conn("s1"), "q1"), "already gone");
        begin("s1", "one-more").expect("room again after an unsubscribe");
    }

    #[tokio::test]
    async fn a_query_cancelled_or_replaced_before_activation_is_not_activated() {
        let (sink, live) = setup();
        let alice = user("alice");
        live.begin_query(
            &conn("s1"),
            &alice,
            key("c"),
            "q",
            filter(json!({})),
            &AccessRule::Members,
        )
        .expect("registered");
        live.cancel_query(&conn("s1"), "q");
        assert!(
            !live
                .activate_query(&conn("s1"), "q", HashSet::new(), ("subscribed", &json!({})))
                .await
        );
        // Re-registered in another collection: the old collection no longer feeds it.
        live.begin_query(
            &conn("s1"),
            &alice,
            key("c"),
            "q",
            filter(json!({})),
            &AccessRule::Members,
        )
        .expect("registered");
        live.begin_query(
            &conn("s1"),
            &alice,
            key("other"),
            "q",
            filter(json!({})),
            &AccessRule::Members,
        )
        .expect("replaced");
        assert!(
            live.activate_query(&conn("s1"), "q", HashSet::new(), ("subscribed", &json!({})))
                .await
        );
        live.deliver(&created("d1", json!({"id": "d1"}))).await;
        assert_eq!(sink.events_to("s1"), ["subscribed"]);
    }

    #[tokio::test]
    async fn a_subscription_finishing_after_its_connection_closed_leaves_nothing_behind() {
        let (sink, live) = setup();
        let alice = user("alice");
        live.remove_conn(&conn("s1"));
        let ann = json!({});
        live.watch_collection(
            &conn("s1"),
            &alice,
            key("c"),
            &AccessRule::Members,
            Some(("subscribed", &ann)),
        );
        live.watch_document(
            &conn("s1"),
            &alice,
            key("c"),
            doc_id("d1"),
            &AccessRule::Members,
            None,
        );
        live.begin_query(
            &conn("s1"),
            &alice,
            key("c"),
            "q",
            filter(json!({})),
            &AccessRule::Members,
        )
        .expect("nobody to refuse");
        assert!(
            !live
                .activate_query(&conn("s1"), "q", HashSet::new(), ("subscribed", &ann))
                .await
        );
        live.deliver(&created("d1", json!({"id": "d1"}))).await;
        assert_eq!(live.connections(), 0);
        assert!(live.lock().colls.is_empty());
        assert!(sink.all().is_empty());
    }

    #[tokio::test]
    async fn a_closed_connection_loses_every_subscription() {
        let (sink, live) = setup();
        let alice = user("alice");
        live.watch_collection(&conn("s1"), &alice, key("c"), &AccessRule::Members, None);
        live.watch_document(
            &conn("s1"),
            &alice,
            key("c"),
            doc_id("d1"),
            &AccessRule::Members,
            None,
        );
        live_query(
            &live,
            "s1",
            &alice,
            "q",
            json!({}),
            &[],
            &AccessRule::Members,
        )
        .await;
        live.watch_collection(&conn("s2"), &alice, key("c"), &AccessRule::Members, None);
        assert_eq!(live.connections(), 2);
        live.remove_conn(&conn("s1"));
        assert_eq!(live.connections(), 1);
        sink.clear();
        live.deliver(&created("d1", json!({"id": "d1"}))).await;
        assert!(sink.to("s1").is_empty());
        assert_eq!(sink.to("s2").len(), 1, "other connections keep theirs");
        live.remove_conn(&conn("s2"));
        assert_eq!(live.connections(), 0);
        assert!(live.lock().colls.is_empty(), "nothing left behind");
    }
}
