//! Recording stand-ins for the ports a use case talks through (fan-out, per-connection sink,
//! authenticator, outbound HTTP), and a `Core` built over the in-memory store and presence with
//! them, so the core's rules can be checked in process, without a socket or a server.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::Value;
use serde_json::value::RawValue;

use super::access::{Actor, ActorKind, Role};
use super::data::live::{DeliverLocally, LiveData};
use super::error::AppError;
use super::ids::{ChatId, ProjectId, UserId};
use super::memory::{MemoryPresence, MemoryStore};
use super::model::{Chat, CollectionRule, Project};
use super::ports::{
    Authenticator, ChatStore, ConnId, Credentials, Fanout, LocalSink, Outbound, OutboundRequest,
    OutboundResponse, ProjectStore,
};
use super::time::Timestamp;
use super::topic::Topic;
use super::{Core, Limits};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which connections a publication skips.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    Nobody,
    Conn(ConnId),
    /// Every connection in any of these topics.
    Topics(Vec<Topic>),
    /// `publish_local` (this node only; nobody skipped).
    LocalOnly,
}

/// One call of any `Fanout` method, as the use case made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub topics: Vec<Topic>,
    pub event: String,
    pub payload: Value,
    pub skip: Skip,
}

/// Records every publication in order; delivers nothing.
#[derive(Default)]
pub struct RecordingFanout {
    log: Mutex<Vec<Published>>,
}

impl RecordingFanout {
    pub fn all(&self) -> Vec<Published> {
        lock(&self.log).clone()
    }

    /// The publications of one event, in order.
    pub fn of(&self, event: &str) -> Vec<Published> {
        lock(&self.log)
            .iter()
            .filter(|p| p.event == event)
            .cloned()
            .collect()
    }

    /// The event names published so far, in order.
    pub fn events(&self) -> Vec<String> {
        lock(&self.log).iter().map(|p| p.event.clone()).collect()
    }

    pub fn clear(&self) {
        lock(&self.log).clear();
    }

    fn record(&self, topics: &[Topic], event: &str, payload: Value, skip: Skip) {
        lock(&self.log).push(Published {
            topics: topics.to_vec(),
            event: event.to_owned(),
            payload,
            skip,
        });
    }
}

fn skip_conn(except: Option<&ConnId>) -> Skip {
    except.map_or(Skip::Nobody, |c| Skip::Conn(c.clone()))
}

#[async_trait]
impl Fanout for RecordingFanout {
    async fn publish(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except: Option<&ConnId>,
    ) -> Result<(), AppError> {
        self.record(topics, event, payload.clone(), skip_conn(except));
        Ok(())
    }

    async fn publish_encoded(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &RawValue,
        except: Option<&ConnId>,
    ) -> Result<(), AppError> {
        let decoded = serde_json::from_str(payload.get()).map_err(AppError::internal)?;
        self.record(topics, event, decoded, skip_conn(except));
        Ok(())
    }

    async fn publish_except_topics(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
        except_topics: &[Topic],
    ) -> Result<(), AppError> {
        self.record(
            topics,
            event,
            payload.clone(),
            Skip::Topics(except_topics.to_vec()),
        );
        Ok(())
    }

    async fn publish_local(
        &self,
        topics: &[Topic],
        event: &str,
        payload: &Value,
    ) -> Result<(), AppError> {
        self.record(topics, event, payload.clone(), Skip::LocalOnly);
        Ok(())
    }
}

/// One event sent to one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub conn: ConnId,
    pub event: String,
    pub payload: Value,
}

/// Records what is sent to single connections (live data deliveries), in order.
#[derive(Default)]
pub struct RecordingSink {
    log: Mutex<Vec<Sent>>,
}

impl RecordingSink {
    pub fn all(&self) -> Vec<Sent> {
        lock(&self.log).clone()
    }

    /// What one connection received, in order.
    pub fn to(&self, conn: &str) -> Vec<Sent> {
        lock(&self.log)
            .iter()
            .filter(|s| s.conn == conn)
            .cloned()
            .collect()
    }

    /// The event names one connection received, in order.
    pub fn events_to(&self, conn: &str) -> Vec<String> {
        self.to(conn).into_iter().map(|s| s.event).collect()
    }

    pub fn clear(&self) {
        lock(&self.log).clear();
    }
}

impl LocalSink for RecordingSink {
    fn send(&self, conn: &ConnId, event: &str, payload: &Value) {
        lock(&self.log).push(Sent {
            conn: conn.clone(),
            event: event.to_owned(),
            payload: payload.clone(),
        });
    }
}

/// Accepts the tokens and API keys it was given, refuses everything else as the real one does
/// (`Unauthorized`), and remembers what it was shown.
#[derive(Default)]
pub struct StaticAuthenticator {
    tokens: Mutex<HashMap<String, Actor>>,
    api_keys: Mutex<HashMap<String, Actor>>,
    seen: Mutex<Vec<Credentials>>,
}

impl StaticAuthenticator {
    pub fn accept_token(&self, token: &str, actor: Actor) {
        lock(&self.tokens).insert(token.to_owned(), actor);
    }

    pub fn accept_api_key(&self, key: &str, actor: Actor) {
        lock(&self.api_keys).insert(key.to_owned(), actor);
    }

    pub fn seen(&self) -> Vec<Credentials> {
        lock(&self.seen).clone()
    }
}

#[async_trait]
impl Authenticator for StaticAuthenticator {
    async fn authenticate(&self, creds: &Credentials) -> Result<Actor, AppError> {
        lock(&self.seen).push(creds.clone());
        if let Some(t) = &creds.token {
            return lock(&self.tokens)
                .get(t)
                .cloned()
                .ok_or_else(|| AppError::Unauthorized("invalid token".to_owned()));
        }
        if let Some(k) = &creds.api_key {
            return lock(&self.api_keys)
                .get(k)
                .cloned()
                .ok_or_else(|| AppError::Unauthorized("invalid api key".to_owned()));
        }
        Err(AppError::Unauthorized("no credentials".to_owned()))
    }
}

/// Answers requests with canned responses, in order (then `Upstream` errors), and records them.
#[derive(Default)]
pub struct CannedOutbound {
    answers: Mutex<VecDeque<Result<OutboundResponse, AppError>>>,
    requests: Mutex<Vec<OutboundRequest>>,
}

impl CannedOutbound {
    pub fn answer(&self, status: u16, body: Value) {
        lock(&self.answers).push_back(Ok(OutboundResponse { status, body }));
    }

    pub fn fail(&self, error: AppError) {
        lock(&self.answers).push_back(Err(error));
    }

    pub fn requests(&self) -> Vec<OutboundRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl Outbound for CannedOutbound {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, AppError> {
        lock(&self.requests).push(request);
        lock(&self.answers)
            .pop_front()
            .unwrap_or_else(|| Err(AppError::Upstream("no canned response left".to_owned())))
    }
}

/// A `Core` over the in-memory store and presence, with every outward port recorded. Document
/// writes are delivered straight into the core's own live registry, as on a single node.
pub struct TestCore {
    pub core: Arc<Core>,
    pub store: Arc<MemoryStore>,
    pub fanout: Arc<RecordingFanout>,
    pub sink: Arc<RecordingSink>,
    pub auth: Arc<StaticAuthenticator>,
    pub outbound: Arc<CannedOutbound>,
}

impl Default for TestCore {
    fn default() -> Self {
        Self::with_limits(Limits::default())
    }
}

impl TestCore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: Limits) -> Self {
        let store = Arc::new(MemoryStore::new());
        let fanout = Arc::new(RecordingFanout::default());
        let sink = Arc::new(RecordingSink::default());
        let auth = Arc::new(StaticAuthenticator::default());
        let outbound = Arc::new(CannedOutbound::default());
        let live = Arc::new(LiveData::new(sink.clone()));
        let core = Arc::new(Core {
            store: store.clone(),
            auth: auth.clone(),
            fanout: fanout.clone(),
            hub: Arc::new(crate::hub::Hub::new(limits.max_rooms_per_socket)),
            metrics: Arc::default(),
            typing: Default::default(),
            changes: Arc::new(DeliverLocally(live.clone())),
            live,
            presence: Arc::new(MemoryPresence::new(limits.presence_ttl)),
            local_conns: Default::default(),
            outbound: outbound.clone(),
            integration_calls: Default::default(),
            limits,
        });
        TestCore {
            core,
            store,
            fanout,
            sink,
            auth,
            outbound,
        }
    }

    /// A project with these members; `collections` maps a collection to its access rule.
    pub async fn project(&self, id: &str, members: &[&UserId], collections: &[(&str, &str)]) {
        let project = Project {
            id: project_id(id),
            name: id.to_owned(),
            members: members.iter().map(|m| (*m).clone()).collect(),
            collections: collections
                .iter()
                .map(|(c, a)| {
                    (
                        (*c).to_owned(),
                        CollectionRule {
                            access: (*a).to_owned(),
                        },
                    )
                })
                .collect(),
            created_at: Timestamp::now(),
        };
        if let Err(e) = self.store.put_project(&project).await {
            panic!("memory store refused project {id}: {e}");
        }
    }

    /// A chat of `project` with these participants, owned by the first.
    pub async fn chat(&self, id: &str, project: &str, participants: &[&UserId]) {
        let Some(owner) = participants.first() else {
            panic!("chat {id} needs a participant");
        };
        let chat = Chat {
            id: chat_id(id),
            project_id: project_id(project),
            name: id.to_owned(),
            participants: participants.iter().map(|p| (*p).clone()).collect(),
            owner_id: (*owner).clone(),
            created_at: Timestamp::now(),
        };
        if let Err(e) = self.store.put_chat(&chat).await {
            panic!("memory store refused chat {id}: {e}");
        }
    }
}

fn parse<T: TryFrom<String, Error = String>>(s: &str) -> T {
    T::try_from(s.to_owned()).unwrap_or_else(|e| panic!("test id {s:?}: {e}"))
}

pub fn user_id(s: &str) -> UserId {
    parse(s)
}

pub fn project_id(s: &str) -> ProjectId {
    parse(s)
}

pub fn chat_id(s: &str) -> ChatId {
    parse(s)
}

/// A person (JWT) with the `user` role.
pub fn user(id: &str) -> Actor {
    Actor {
        id: user_id(id),
        name: id.to_owned(),
        role: Role::User,
        kind: ActorKind::User,
    }
}

/// A person with the `admin` role.
pub fn admin(id: &str) -> Actor {
    Actor {
        role: Role::Admin,
        ..user(id)
    }
}

/// A server client (API key), admin role.
pub fn api_key(id: &str) -> Actor {
    Actor {
        kind: ActorKind::ApiKey,
        ..admin(id)
    }
}

pub fn conn(s: &str) -> ConnId {
    s.to_owned()
}

/// The doubles keep the promises of the ports they stand in for, so a rule checked against
/// them holds against the real adapters too.
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    #[tokio::test]
    async fn the_authenticator_admits_only_what_it_was_given_and_remembers_what_it_saw() {
        let auth = StaticAuthenticator::default();
        auth.accept_token("t", user("alice"));
        auth.accept_api_key("k", api_key("apikey:1"));
        let with = |token: Option<&str>, api_key: Option<&str>| Credentials {
            token: token.map(str::to_owned),
            api_key: api_key.map(str::to_owned),
        };
        let alice = auth.authenticate(&with(Some("t"), None)).await;
        assert_eq!(alice.expect("known token"), user("alice"));
        let key = auth.authenticate(&with(None, Some("k"))).await;
        assert!(!key.expect("known key").is_user());
        for creds in [
            with(Some("x"), None),
            with(None, Some("x")),
            with(None, None),
        ] {
            let e = auth.authenticate(&creds).await.expect_err("refused");
            assert_eq!(e.code(), ErrorCode::Unauthorized);
        }
        assert_eq!(auth.seen().len(), 5);
    }

    #[tokio::test]
    async fn the_outbound_double_answers_in_order_then_fails_like_an_unreachable_far_end() {
        let out = CannedOutbound::default();
        out.answer(200, json!({"ok": true}));
        out.fail(AppError::forbidden("private address"));
        let req = |url: &str| OutboundRequest {
            method: "GET".to_owned(),
            url: url.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            json_body: None,
        };
        let first = out.send(req("https://a.example/1")).await.expect("canned");
        assert_eq!(first.status, 200);
        assert_eq!(first.body, json!({"ok": true}));
        let e = out
            .send(req("https://a.example/2"))
            .await
            .expect_err("canned");
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = out
            .send(req("https://a.example/3"))
            .await
            .expect_err("none left");
        assert_eq!(e.code(), ErrorCode::Unavailable);
        let urls: Vec<String> = out.requests().into_iter().map(|r| r.url).collect();
        assert_eq!(urls.len(), 3);
        assert_eq!(urls[2], "https://a.example/3");
    }

    #[tokio::test]
    async fn the_fanout_double_records_every_kind_of_publication_as_sent() {
        let f = RecordingFanout::default();
        let users = [Topic::User(user_id("a"))];
        let chat = [Topic::Chat(chat_id("c"))];
        let raw = RawValue::from_string(r#"{"n":1}"#.to_owned()).expect("json");
        f.publish(&users, "e1", &json!(1), Some(&conn("s")))
            .await
            .expect("recorded");
        f.publish_encoded(&users, "e2", &raw, None)
            .await
            .expect("recorded");
        f.publish_except_topics(&users, "e3", &json!(3), &chat)
            .await
            .expect("recorded");
        f.publish_local(&chat, "e4", &json!(4))
            .await
            .expect("recorded");
        assert_eq!(f.events(), ["e1", "e2", "e3", "e4"]);
        let all = f.all();
        assert_eq!(all[0].skip, Skip::Conn(conn("s")));
        assert_eq!(all[1].payload, json!({"n": 1}));
        assert_eq!(all[1].skip, Skip::Nobody);
        assert_eq!(all[2].skip, Skip::Topics(chat.to_vec()));
        assert_eq!(all[3].skip, Skip::LocalOnly);
        assert_eq!(all[3].topics, chat.to_vec());
    }
}
