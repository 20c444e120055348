//! The embedded store: maps behind one `RwLock`. Locks are never held across an await.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use async_trait::async_trait;

use crate::error::AppError;
use crate::ids::{
    AddressId, CallId, ChatId, CollectionId, DocumentId, IntegrationId, MessageId, ProjectId,
    UserId,
};
use crate::model::{
    Call, CallState, Chat, Document, DocumentBody, Integration, IntegrationStats, Message, Project,
    ReadSummary, Reader, User, WalletAddress, WalletTransaction, WebhookEvent,
};
use crate::ports::{
    AppStore, CallStore, ChatStore, DocQuery, DocumentStore, FieldGuard, Inserted,
    IntegrationStore, ProjectStore, Store, StoreResult, StoredApp, UserStore, WalletStore, Written,
    chat_exists,
};
use crate::time::Timestamp;

#[derive(Default)]
struct Data {
    projects: BTreeMap<ProjectId, Project>,
    users: BTreeMap<UserId, User>,
    chats: BTreeMap<ChatId, Chat>,
    messages: HashMap<MessageId, Message>,
    /// Per chat, message ids in (createdAt, id) order.
    chat_messages: HashMap<ChatId, Vec<(i64, MessageId)>>,
    /// (chat, sender, clientMessageId) → message id.
    client_ids: HashMap<(ChatId, UserId, String), MessageId>,
    /// (chat, reader) → message id → first `readAt`.
    receipts: HashMap<(ChatId, UserId), HashMap<MessageId, Timestamp>>,
    /// Message id → (readAt ms, reader): the same receipts message first, earliest first.
    readers: HashMap<MessageId, BTreeSet<(i64, UserId)>>,
    calls: HashMap<CallId, Call>,
    documents: BTreeMap<(ProjectId, CollectionId, String), Document>,
    integrations: BTreeMap<IntegrationId, Integration>,
    integration_stats: HashMap<IntegrationId, IntegrationStats>,
    /// Per integration, oldest first, the newest `MAX_WEBHOOK_EVENTS` kept.
    webhook_events: HashMap<IntegrationId, std::collections::VecDeque<WebhookEvent>>,
    addresses: BTreeMap<String, WalletAddress>,
    transactions: HashMap<String, WalletTransaction>,
    apps: BTreeMap<String, StoredApp>,
}

#[derive(Default)]
pub struct MemoryStore {
    data: RwLock<Data>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Data> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Data> {
        self.data.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn doc_id(doc: &Document) -> StoreResult<String> {
    match doc.body.get("id") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(AppError::invalid("document needs a string id")),
    }
}

#[async_trait]
impl ProjectStore for MemoryStore {
    async fn put_project(&self, project: &Project) -> StoreResult<()> {
        self.write()
            .projects
            .insert(project.id.clone(), project.clone());
        Ok(())
    }

    async fn get_project(&self, id: &ProjectId) -> StoreResult<Option<Project>> {
        Ok(self.read().projects.get(id).cloned())
    }

    async fn list_projects(&self, member: Option<&UserId>) -> StoreResult<Vec<Project>> {
        Ok(self
            .read()
            .projects
            .values()
            .filter(|p| member.is_none_or(|m| p.has_member(m)))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        self.write().users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        Ok(self.read().users.get(id).cloned())
    }
}

#[async_trait]
impl ChatStore for MemoryStore {
    async fn put_chat(&self, chat: &Chat) -> StoreResult<()> {
        self.write().chats.insert(chat.id.clone(), chat.clone());
        Ok(())
    }

    async fn insert_chat(&self, chat: &Chat) -> StoreResult<()> {
        let mut d = self.write();
        if d.chats.contains_key(&chat.id) {
            return Err(chat_exists(&chat.id));
        }
        d.chats.insert(chat.id.clone(), chat.clone());
        Ok(())
    }

    async fn get_chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        Ok(self.read().chats.get(id).cloned())
    }

    async fn list_chats(
        &self,
        project: &ProjectId,
        participant: Option<&UserId>,
    ) -> StoreResult<Vec<Chat>> {
        Ok(self
            .read()
            .chats
            .values()
            .filter(|c| &c.project_id == project)
            .filter(|c| participant.is_none_or(|u| c.has_participant(u)))
            .cloned()
            .collect())
    }

    async fn insert_message(
        &self,
        message: Message,
        client_message_id: Option<&str>,
    ) -> StoreResult<Inserted<Message>> {
        let mut d = self.write();
        let key = client_message_id.map(|k| {
            (
                message.chat_id.clone(),
                message.sender_id.clone(),
                k.to_owned(),
            )
        });
        if let Some(key) = &key
            && let Some(existing) = d.client_ids.get(key).and_then(|id| d.messages.get(id))
        {
            return Ok(Inserted::Existing(existing.clone()));
        }
        if d.messages.contains_key(&message.id) {
            return Err(AppError::Conflict(format!(
                "message {} already exists",
                message.id
            )));
        }
        let order = d.chat_messages.entry(message.chat_id.clone()).or_default();
        let entry = (message.created_at.millis(), message.id.clone());
        let pos = order.partition_point(|e| e < &entry);
        order.insert(pos, entry);
        if let Some(key) = key {
            d.client_ids.insert(key, message.id.clone());
        }
        d.messages.insert(message.id.clone(), message.clone());
        Ok(Inserted::New(message))
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        Ok(self.read().messages.get(id).cloned())
    }

    async fn list_messages(
        &self,
        chat: &ChatId,
        limit: usize,
        before: Option<&MessageId>,
    ) -> StoreResult<Vec<Message>> {
        let d = self.read();
        let Some(order) = d.chat_messages.get(chat) else {
            return Ok(Vec::new());
        };
        let end = match before {
            Some(b) => match order.iter().position(|(_, id)| id == b) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            None => order.len(),
        };
        Ok(order[..end]
            .iter()
            .rev()
            .take(limit)
            .filter_map(|(_, id)| d.messages.get(id).cloned())
            .collect())
    }

    async fn list_messages_after(
        &self,
        chat: &ChatId,
        after: &MessageId,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let d = self.read();
        let Some(order) = d.chat_messages.get(chat) else {
            return Ok(Vec::new());
        };
        let Some(start) = order.iter().position(|(_, id)| id == after) else {
            return Ok(Vec::new());
        };
        Ok(order[start + 1..]
            .iter()
            .take(limit)
            .filter_map(|(_, id)| d.messages.get(id).cloned())
            .collect())
    }

    async fn toggle_reaction(
        &self,
        id: &MessageId,
        emoji: &str,
        user: &UserId,
    ) -> StoreResult<Option<(Message, bool)>> {
        let mut d = self.write();
        let Some(m) = d.messages.get_mut(id) else {
            return Ok(None);
        };
        let added = m.toggle_reaction(emoji, user)?;
        Ok(Some((m.clone(), added)))
    }

    async fn edit_message(
        &self,
        id: &MessageId,
        content: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        let mut d = self.write();
        Ok(d.messages.get_mut(id).map(|m| {
            m.content = content.clone();
            m.edited_at = Some(at);
            m.clone()
        }))
    }

    async fn delete_message(&self, id: &MessageId, at: Timestamp) -> StoreResult<Option<Message>> {
        let mut d = self.write();
        Ok(d.messages.get_mut(id).map(|m| {
            m.content = serde_json::Value::String(String::new());
            m.deleted_at = Some(at);
            m.clone()
        }))
    }

    async fn mark_read(
        &self,
        chat: &ChatId,
        user: &UserId,
        ids: &[MessageId],
        at: Timestamp,
    ) -> StoreResult<Vec<MessageId>> {
        let mut d = self.write();
        let valid: Vec<MessageId> = dedup(ids)
            .into_iter()
            .filter(|id| d.messages.get(id).is_some_and(|m| &m.chat_id == chat))
            .collect();
        if valid.is_empty() {
            return Ok(valid);
        }
        let d = &mut *d;
        let read = d.receipts.entry((chat.clone(), user.clone())).or_default();
        for id in &valid {
            if read.contains_key(id) {
                continue;
            }
            read.insert(id.clone(), at);
            d.readers
                .entry(id.clone())
                .or_default()
                .insert((at.millis(), user.clone()));
        }
        Ok(valid)
    }

    async fn read_summaries(
        &self,
        chat: &ChatId,
        ids: &[MessageId],
        first: usize,
    ) -> StoreResult<Vec<ReadSummary>> {
        let d = self.read();
        let summary = |id: &MessageId| {
            let readers = d
                .readers
                .get(id)
                .filter(|_| d.messages.get(id).is_some_and(|m| &m.chat_id == chat));
            let Some(readers) = readers else {
                return ReadSummary::default();
            };
            ReadSummary {
                read_count: u64::try_from(readers.len()).unwrap_or(u64::MAX),
                read_by: readers
                    .iter()
                    .take(first)
                    .map(|(ms, user)| Reader {
                        user_id: user.clone(),
                        read_at: Timestamp::from_millis(*ms),
                    })
                    .collect(),
            }
        };
        Ok(ids.iter().map(summary).collect())
    }

    async fn unread_count(&self, chat: &ChatId, user: &UserId) -> StoreResult<u64> {
        let d = self.read();
        let Some(order) = d.chat_messages.get(chat) else {
            return Ok(0);
        };
        let read = d.receipts.get(&(chat.clone(), user.clone()));
        let n = order
            .iter()
            .filter_map(|(_, id)| d.messages.get(id))
            .filter(|m| &m.sender_id != user && m.deleted_at.is_none())
            .filter(|m| read.is_none_or(|r| !r.contains_key(&m.id)))
            .count();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

/// The ids without repeats, first occurrence kept.
fn dedup(ids: &[MessageId]) -> Vec<MessageId> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// The timestamp field a transition into `to` stamps.
fn stamp(call: &mut Call, to: CallState, at: Timestamp) {
    match to {
        CallState::Accepted | CallState::Rejected => call.answered_at = Some(at),
        CallState::Ended | CallState::Missed => call.ended_at = Some(at),
        CallState::Ringing => {}
    }
}

#[async_trait]
impl CallStore for MemoryStore {
    async fn insert_call(&self, call: &Call) -> StoreResult<()> {
        let mut d = self.write();
        if d.calls.contains_key(&call.id) {
            return Err(AppError::Conflict(format!(
                "call {} already exists",
                call.id
            )));
        }
        d.calls.insert(call.id.clone(), call.clone());
        Ok(())
    }

    async fn get_call(&self, id: &CallId) -> StoreResult<Option<Call>> {
        Ok(self.read().calls.get(id).cloned())
    }

    async fn transition_call(
        &self,
        id: &CallId,
        from: &[CallState],
        to: CallState,
        at: Timestamp,
    ) -> StoreResult<Option<Call>> {
        let mut d = self.write();
        let Some(call) = d.calls.get_mut(id) else {
            return Ok(None);
        };
        if !from.contains(&call.state) {
            return Ok(None);
        }
        call.state = to;
        stamp(call, to, at);
        Ok(Some(call.clone()))
    }

    async fn count_ringing(&self, caller: &UserId, callee: &UserId) -> StoreResult<u64> {
        let n = self
            .read()
            .calls
            .values()
            .filter(|c| c.state == CallState::Ringing && &c.caller_id == caller)
            .filter(|c| c.participants.contains(callee))
            .count();
        Ok(n as u64)
    }

    async fn stale_ringing_calls(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<CallId>> {
        let mut stale: Vec<(Timestamp, CallId)> = self
            .read()
            .calls
            .values()
            .filter(|c| c.state == CallState::Ringing && c.created_at < before)
            .map(|c| (c.created_at, c.id.clone()))
            .collect();
        stale.sort();
        Ok(stale.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn latest_call(
        &self,
        chat: &ChatId,
        caller: &UserId,
        states: &[CallState],
    ) -> StoreResult<Option<Call>> {
        Ok(self
            .read()
            .calls
            .values()
            .filter(|c| &c.chat_id == chat && &c.caller_id == caller)
            .filter(|c| states.contains(&c.state))
            .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            .cloned())
    }
}

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn put_document(&self, doc: &Document) -> StoreResult<()> {
        let id = doc_id(doc)?;
        self.write().documents.insert(
            (doc.project_id.clone(), doc.collection_id.clone(), id),
            doc.clone(),
        );
        Ok(())
    }

    async fn get_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
    ) -> StoreResult<Option<Document>> {
        Ok(self
            .read()
            .documents
            .get(&(project.clone(), collection.clone(), id.as_str().to_owned()))
            .cloned())
    }

    async fn insert_document(&self, doc: &Document) -> StoreResult<()> {
        let id = doc_id(doc)?;
        let mut data = self.write();
        let key = (doc.project_id.clone(), doc.collection_id.clone(), id);
        if data.documents.contains_key(&key) {
            return Err(AppError::Conflict(format!("document {} exists", key.2)));
        }
        data.documents.insert(key, doc.clone());
        Ok(())
    }

    async fn find_documents(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        q: &DocQuery,
    ) -> StoreResult<Vec<Document>> {
        let data = self.read();
        let lo = (project.clone(), collection.clone(), String::new());
        // Like MongoDB's maxTimeMS: a filter too costly for the collection gives up.
        let deadline = std::time::Instant::now() + q.max_time;
        let mut hits: Vec<&Document> = Vec::new();
        let candidates = data
            .documents
            .range(lo..)
            .take_while(|((p, c, _), _)| p == project && c == collection)
            .filter(|((_, _, id), _)| q.after.as_ref().is_none_or(|a| id.as_str() > a.as_str()))
            .map(|(_, d)| d)
            .filter(|d| q.guard.as_ref().is_none_or(|g| g.admits(&d.body)));
        for (i, d) in candidates.enumerate() {
            if i % 64 == 63 && std::time::Instant::now() > deadline {
                return Err(crate::data::documents::query_ran_too_long(q.max_time));
            }
            if q.filter.matches(&d.body) {
                hits.push(d);
            }
        }
        if !q.sort.0.is_empty() {
            hits.sort_by(|a, b| q.sort.compare(&a.body, &b.body));
        }
        Ok(hits
            .into_iter()
            .skip(q.skip)
            .take(q.limit)
            .cloned()
            .collect())
    }

    async fn patch_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        set: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>> {
        let mut data = self.write();
        let key = (project.clone(), collection.clone(), id.as_str().to_owned());
        let Some(doc) = data.documents.get_mut(&key) else {
            return Ok(None);
        };
        if guard.is_some_and(|g| !g.admits(&doc.body)) {
            return Ok(None);
        }
        let before = doc.clone();
        for (k, v) in set {
            if k != "id" {
                doc.body.insert(k.clone(), v.clone());
            }
        }
        Ok(Some(Written {
            before,
            after: doc.clone(),
        }))
    }

    async fn replace_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        body: &DocumentBody,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Written>> {
        let mut data = self.write();
        let key = (project.clone(), collection.clone(), id.as_str().to_owned());
        let Some(doc) = data.documents.get_mut(&key) else {
            return Ok(None);
        };
        if guard.is_some_and(|g| !g.admits(&doc.body)) {
            return Ok(None);
        }
        let before = doc.clone();
        let mut body = body.clone();
        body.insert("id".to_owned(), serde_json::Value::String(id.to_string()));
        doc.body = body;
        Ok(Some(Written {
            before,
            after: doc.clone(),
        }))
    }

    async fn count_collections(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        up_to: usize,
    ) -> StoreResult<(usize, bool)> {
        let data = self.read();
        let exists = data
            .documents
            .range((project.clone(), collection.clone(), String::new())..)
            .next()
            .is_some_and(|((p, c, _), _)| p == project && c == collection);
        // Hop from collection to collection: `c + " "` sorts after every id of `c` and before
        // the next collection (ids hold no control characters, the only ones below a space).
        let mut count = 0;
        let mut from = " ".to_owned();
        while count < up_to {
            let Ok(start) = CollectionId::try_from(from.as_str()) else {
                break;
            };
            match data
                .documents
                .range((project.clone(), start, String::new())..)
                .next()
            {
                Some(((p, c, _), _)) if p == project => {
                    count += 1;
                    from = format!("{c} ");
                }
                _ => break,
            }
        }
        Ok((count, exists))
    }

    async fn list_collections(
        &self,
        project: &ProjectId,
        after: Option<&CollectionId>,
        limit: usize,
    ) -> StoreResult<Vec<CollectionId>> {
        let data = self.read();
        // Hop from collection to collection as `count_collections` does.
        let mut from = after.map_or_else(|| " ".to_owned(), |c| format!("{c} "));
        let mut out = Vec::new();
        while out.len() < limit {
            let Ok(start) = CollectionId::try_from(from.as_str()) else {
                break;
            };
            match data
                .documents
                .range((project.clone(), start, String::new())..)
                .next()
            {
                Some(((p, c, _), _)) if p == project => {
                    from = format!("{c} ");
                    out.push(c.clone());
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn delete_document(
        &self,
        project: &ProjectId,
        collection: &CollectionId,
        id: &DocumentId,
        guard: Option<&FieldGuard>,
    ) -> StoreResult<Option<Document>> {
        let mut data = self.write();
        let key = (project.clone(), collection.clone(), id.as_str().to_owned());
        if data
            .documents
            .get(&key)
            .is_none_or(|d| guard.is_some_and(|g| !g.admits(&d.body)))
        {
            return Ok(None);
        }
        Ok(data.documents.remove(&key))
    }
}

#[async_trait]
impl IntegrationStore for MemoryStore {
    async fn put_integration(&self, integration: &Integration) -> StoreResult<()> {
        self.write()
            .integrations
            .insert(integration.id.clone(), integration.clone());
        Ok(())
    }

    async fn create_integration(&self, integration: &Integration) -> StoreResult<()> {
        match self.write().integrations.entry(integration.id.clone()) {
            std::collections::btree_map::Entry::Occupied(_) => Err(AppError::Conflict(format!(
                "integration {} exists",
                integration.id
            ))),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(integration.clone());
                Ok(())
            }
        }
    }

    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool> {
        let mut data = self.write();
        match data.integrations.get_mut(&integration.id) {
            Some(stored) if stored.project_id == integration.project_id => {
                *stored = integration.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_integration(&self, id: &IntegrationId) -> StoreResult<Option<Integration>> {
        Ok(self.read().integrations.get(id).cloned())
    }

    async fn list_integrations(&self, project: &ProjectId) -> StoreResult<Vec<Integration>> {
        Ok(self
            .read()
            .integrations
            .values()
            .filter(|i| &i.project_id == project)
            .cloned()
            .collect())
    }

    async fn delete_integration(&self, id: &IntegrationId) -> StoreResult<bool> {
        let mut data = self.write();
        data.integration_stats.remove(id);
        data.webhook_events.remove(id);
        Ok(data.integrations.remove(id).is_some())
    }

    async fn record_integration_run(
        &self,
        id: &IntegrationId,
        at: Timestamp,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let mut data = self.write();
        let stats = data.integration_stats.entry(id.clone()).or_default();
        stats.executions += 1;
        stats.failures += u64::from(error.is_some());
        stats.last_executed_at = Some(at);
        stats.last_error = error.map(str::to_owned);
        Ok(())
    }

    async fn integration_stats(&self, id: &IntegrationId) -> StoreResult<IntegrationStats> {
        Ok(self
            .read()
            .integration_stats
            .get(id)
            .cloned()
            .unwrap_or_default())
    }

    async fn insert_webhook_event(&self, event: &WebhookEvent) -> StoreResult<bool> {
        let mut data = self.write();
        let list = data
            .webhook_events
            .entry(event.integration_id.clone())
            .or_default();
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        if list.iter().any(|e| {
            same(&e.signature, &event.signature) || same(&e.delivery_id, &event.delivery_id)
        }) {
            return Ok(false);
        }
        list.push_back(event.clone());
        if list.len() > MAX_WEBHOOK_EVENTS {
            list.pop_front();
        }
        Ok(true)
    }

    async fn purge_webhook_events(&self, before: Timestamp) -> StoreResult<u64> {
        let mut data = self.write();
        let mut n = 0;
        data.webhook_events.retain(|_, list| {
            // Oldest first: expired events are a prefix.
            while list.front().is_some_and(|e| e.received_at < before) {
                list.pop_front();
                n += 1;
            }
            !list.is_empty()
        });
        Ok(n)
    }

    async fn list_webhook_events(
        &self,
        integration: &IntegrationId,
        limit: usize,
    ) -> StoreResult<Vec<WebhookEvent>> {
        Ok(self
            .read()
            .webhook_events
            .get(integration)
            .map(|l| l.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}

/// The embedded store keeps this many webhook events per integration (it is for development);
/// both stores also drop events older than the retention window.
const MAX_WEBHOOK_EVENTS: usize = 1000;

#[async_trait]
impl AppStore for MemoryStore {
    async fn create_app(&self, app: &StoredApp) -> StoreResult<()> {
        let mut data = self.write();
        if data.apps.contains_key(&app.id) {
            return Err(AppError::Conflict(format!("app {} exists", app.id)));
        }
        if data.apps.values().any(|a| a.key == app.key) {
            return Err(AppError::Conflict(format!("app key {} is taken", app.key)));
        }
        data.apps.insert(app.id.clone(), app.clone());
        Ok(())
    }

    async fn list_apps(&self) -> StoreResult<Vec<StoredApp>> {
        Ok(self.read().apps.values().cloned().collect())
    }

    async fn delete_app(&self, id: &str) -> StoreResult<bool> {
        Ok(self.write().apps.remove(id).is_some())
    }
}

#[async_trait]
impl WalletStore for MemoryStore {
    async fn put_address(&self, address: &WalletAddress) -> StoreResult<()> {
        self.write()
            .addresses
            .insert(address.id.as_str().to_owned(), address.clone());
        Ok(())
    }

    async fn list_addresses(
        &self,
        project: &ProjectId,
        owner: Option<&UserId>,
    ) -> StoreResult<Vec<WalletAddress>> {
        Ok(self
            .read()
            .addresses
            .values()
            .filter(|a| &a.project_id == project)
            .filter(|a| owner.is_none_or(|o| &a.user_id == o))
            .cloned()
            .collect())
    }

    async fn get_address(&self, id: &AddressId) -> StoreResult<Option<WalletAddress>> {
        Ok(self.read().addresses.get(id.as_str()).cloned())
    }

    async fn put_transaction(&self, tx: &WalletTransaction) -> StoreResult<bool> {
        Ok(self
            .write()
            .transactions
            .insert(tx.id.clone(), tx.clone())
            .is_none())
    }

    async fn get_transaction(&self, id: &str) -> StoreResult<Option<WalletTransaction>> {
        Ok(self.read().transactions.get(id).cloned())
    }

    async fn list_transactions(
        &self,
        project: &ProjectId,
        addresses: Option<&[AddressId]>,
        limit: usize,
        before: Option<&str>,
    ) -> StoreResult<Vec<WalletTransaction>> {
        let data = self.read();
        let anchor = match before {
            None => None,
            Some(b) => match data.transactions.get(b) {
                Some(t) if &t.project_id == project => Some((t.created_at, t.id.as_str())),
                _ => return Ok(Vec::new()),
            },
        };
        let mut list: Vec<&WalletTransaction> = data
            .transactions
            .values()
            .filter(|t| &t.project_id == project)
            .filter(|t| addresses.is_none_or(|a| a.contains(&t.address_id)))
            .filter(|t| anchor.is_none_or(|a| (t.created_at, t.id.as_str()) < a))
            .collect();
        list.sort_by(|x, y| (y.created_at, &y.id).cmp(&(x.created_at, &x.id)));
        Ok(list.into_iter().take(limit).cloned().collect())
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.read().projects.is_empty())
    }
}
