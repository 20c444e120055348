//! Every REST route in one table: method, path, handler and what it takes and answers. The
//! router (`router` in `mod.rs`) and the OpenAPI document (`openapi.rs`) are both built from
//! it, so a route cannot be served undocumented or documented unserved.

use std::sync::Arc;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use schemars::JsonSchema;
use serde_json::Value;

use switchboard_handlers::contract::schemas::{Components, Direction};
use switchboard_handlers::core::chat::CreateChat;
use switchboard_handlers::core::emit::EmitRequest;
use switchboard_handlers::core::integration::IntegrationSpec;
use switchboard_handlers::core::model::{Chat, Integration, Project, WalletTransaction};
use switchboard_handlers::core::wallet::NewTransaction;

use super::bodies::{
    AddressList, ChatList, DocumentBody, DocumentPage, Health, IntegrationList, MessagePage,
    ProjectList, Readiness, TransactionPage, WebhookEventList, WebhookReceipt,
};
use super::rate_limit::KeyedLimiter;
use super::{
    AppState, admin, chats, collections, contracts, documents, emit, health, integrations,
    projects, tail, wallet, webhooks,
};

/// A schema of the shared components, for one direction.
pub type SchemaFn = fn(&mut Components, Direction) -> Value;

fn schema_of<T: JsonSchema>(c: &mut Components, d: Direction) -> Value {
    c.schema::<T>(d)
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// `Authorization: Bearer <JWT or API key>` or `X-API-Key`.
    Caller,
    /// `X-Signature-256` over the body with the integration's webhook secret.
    WebhookSignature,
    /// `Authorization: Bearer <METRICS_TOKEN>` when one is configured.
    MetricsToken,
}

/// What an answer carries.
#[derive(Clone, Copy)]
pub enum Content {
    Json(SchemaFn),
    Text(&'static str),
    Empty,
}

pub struct Route {
    pub method: Method,
    /// The full path, `{name}` for a path parameter.
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// A struct whose fields are the query parameters.
    pub query: Option<SchemaFn>,
    pub body: Option<SchemaFn>,
    pub answers: Vec<(u16, &'static str, Content)>,
    pub handler: MethodRouter<AppState>,
}

impl Route {
    fn new(
        method: Method,
        path: &'static str,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            method,
            path,
            summary,
            access: Access::Caller,
            query: None,
            body: None,
            answers: Vec::new(),
            handler,
        }
    }

    fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(schema_of::<T>);
        self
    }

    fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some(schema_of::<T>);
        self
    }

    fn answers<T: JsonSchema>(mut self, status: u16, what: &'static str) -> Self {
        self.answers
            .push((status, what, Content::Json(schema_of::<T>)));
        self
    }

    fn text(mut self, status: u16, what: &'static str, media_type: &'static str) -> Self {
        self.answers.push((status, what, Content::Text(media_type)));
        self
    }

    fn empty(mut self, status: u16, what: &'static str) -> Self {
        self.answers.push((status, what, Content::Empty));
        self
    }
}

fn on<H, T>(method: Method, path: &'static str, summary: &'static str, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = match method {
        Method::POST => post(h),
        Method::PUT => put(h),
        Method::PATCH => patch(h),
        Method::DELETE => delete(h),
        _ => get(h),
    };
    Route::new(method, path, summary, handler)
}

/// The table as documents and tests read it (handlers built, never run).
pub fn documented() -> Vec<Route> {
    all(Arc::new(KeyedLimiter::new(1, 1)))
}

/// The table. `webhook_limiter` bounds webhook calls per integration.
pub fn all(webhook_limiter: Arc<KeyedLimiter>) -> Vec<Route> {
    use Method as M;
    let mut webhook = on(
        M::POST,
        "/webhooks/{project}/{integration}",
        "An integration's inbound webhook, verified with its secret, stored and emitted as `integration:webhook`",
        webhooks::receive,
    )
    .access(Access::WebhookSignature)
    .body::<Value>()
    .answers::<WebhookReceipt>(200, "Stored, or a replay of a stored call");
    webhook.handler = post(webhooks::receive).layer(axum::Extension(webhook_limiter));
    vec![
        on(M::GET, "/health", "The process serves HTTP", health::health)
            .access(Access::Public)
            .answers::<Health>(200, "Always `{ status: \"ok\" }`"),
        on(
            M::GET,
            "/ready",
            "Start-up finished and every backing service answers",
            health::ready,
        )
        .access(Access::Public)
        .answers::<Readiness>(200, "Ready")
        .answers::<Readiness>(503, "Starting, or a backing service is down"),
        on(M::GET, "/metrics", "Prometheus metrics", health::metrics)
            .access(Access::MetricsToken)
            .text(200, "Prometheus text format", "text/plain"),
        webhook,
        on(
            M::GET,
            "/api/projects",
            "The caller's projects (admins: all)",
            projects::list,
        )
        .answers::<ProjectList>(200, "The projects"),
        on(
            M::GET,
            "/api/projects/{project}",
            "One project",
            projects::get,
        )
        .answers::<Project>(200, "The project"),
        on(
            M::POST,
            "/api/projects/{project}/emit",
            "Emit an event into one of the project's rooms (API key or admin)",
            emit::emit,
        )
        .body::<EmitRequest>()
        .empty(202, "Emitted"),
        on(
            M::GET,
            "/api/projects/{project}/tail",
            "Live tail: the broadcasts passing through one room of the project, as Server-Sent Events (API key or admin)",
            tail::tail,
        )
        .query::<tail::TailQuery>()
        .text(200, "An event stream, one `message` per broadcast", "text/event-stream"),
        on(
            M::GET,
            "/api/projects/{project}/rooms",
            "The project's rooms with members, by name, with member counts on this node and in the cluster (API key or admin)",
            admin::rooms,
        )
        .query::<admin::RoomsPage>()
        .answers::<Value>(200, "`{ rooms: [{ room, here, cluster }], nextCursor }`"),
        on(
            M::GET,
            "/api/projects/{project}/presence",
            "The members present in the project, as `presence:get:online` answers",
            admin::presence,
        )
        .answers::<Value>(200, "`{ projectId, users: [...] }`"),
        on(
            M::GET,
            "/api/admin/nodes",
            "Each node's and the cluster's connections by protocol and rooms (API key or admin)",
            admin::nodes,
        )
        .answers::<Value>(200, "`{ node, clustered, nodes: [...], cluster }`"),
        on(
            M::GET,
            "/api/projects/{project}/chats",
            "The project's chats the caller takes part in",
            chats::list,
        )
        .answers::<ChatList>(200, "The chats"),
        on(
            M::POST,
            "/api/projects/{project}/chats",
            "Create a chat",
            chats::create,
        )
        .body::<CreateChat>()
        .answers::<Chat>(201, "The chat"),
        on(
            M::GET,
            "/api/projects/{project}/collections",
            "The project's collections that hold documents, by name, with their declared access rule",
            collections::list,
        )
        .query::<collections::Page>()
        .answers::<collections::CollectionList>(200, "The collections"),
        on(
            M::GET,
            "/api/projects/{project}/collections/{collection}/documents",
            "A page of a collection's documents",
            documents::list,
        )
        .query::<documents::ListQuery>()
        .answers::<DocumentPage>(200, "The documents"),
        on(
            M::POST,
            "/api/projects/{project}/collections/{collection}/documents",
            "Create a document (an `id` field, if given, is its id)",
            documents::create,
        )
        .body::<DocumentBody>()
        .answers::<DocumentBody>(201, "The stored document"),
        on(
            M::GET,
            "/api/projects/{project}/collections/{collection}/documents/{document}",
            "One document",
            documents::get,
        )
        .answers::<DocumentBody>(200, "The document"),
        on(
            M::PATCH,
            "/api/projects/{project}/collections/{collection}/documents/{document}",
            "Merge top-level fields into a document (like `$set`)",
            documents::patch,
        )
        .body::<DocumentBody>()
        .answers::<DocumentBody>(200, "The document"),
        on(
            M::PUT,
            "/api/projects/{project}/collections/{collection}/documents/{document}",
            "Replace a document",
            documents::replace,
        )
        .body::<DocumentBody>()
        .answers::<DocumentBody>(200, "The document"),
        on(
            M::DELETE,
            "/api/projects/{project}/collections/{collection}/documents/{document}",
            "Delete a document",
            documents::delete,
        )
        .empty(204, "Deleted"),
        on(
            M::GET,
            "/api/projects/{project}/integrations",
            "The project's integrations (secrets masked)",
            integrations::list,
        )
        .answers::<IntegrationList>(200, "The integrations"),
        on(
            M::POST,
            "/api/projects/{project}/integrations",
            "Create an integration",
            integrations::create,
        )
        .body::<IntegrationSpec>()
        .answers::<Integration>(201, "The integration, secrets masked"),
        on(
            M::GET,
            "/api/projects/{project}/integrations/{integration}",
            "One integration (secrets masked)",
            integrations::get,
        )
        .answers::<Integration>(200, "The integration"),
        on(
            M::PUT,
            "/api/projects/{project}/integrations/{integration}",
            "Replace an integration (`********` keeps a stored secret)",
            integrations::replace,
        )
        .body::<IntegrationSpec>()
        .answers::<Integration>(200, "The integration"),
        on(
            M::PATCH,
            "/api/projects/{project}/integrations/{integration}",
            "Merge fields into an integration",
            integrations::patch,
        )
        .body::<Value>()
        .answers::<Integration>(200, "The integration"),
        on(
            M::DELETE,
            "/api/projects/{project}/integrations/{integration}",
            "Delete an integration",
            integrations::delete,
        )
        .empty(204, "Deleted"),
        on(
            M::GET,
            "/api/projects/{project}/integrations/{integration}/webhook-events",
            "Stored webhook calls, newest first",
            integrations::webhook_events,
        )
        .query::<integrations::EventsQuery>()
        .answers::<WebhookEventList>(200, "The calls"),
        on(
            M::GET,
            "/api/projects/{project}/integrations/{integration}/status",
            "An integration's status, as `integration:status` answers",
            integrations::status,
        )
        .answers::<Value>(200, "`{ integrationId, status, lastExecutedAt, lastError, executions, failures }`"),
        on(
            M::GET,
            "/api/projects/{project}/wallet/addresses",
            "Wallet addresses (members: their own; admins: all)",
            wallet::addresses,
        )
        .answers::<AddressList>(200, "The addresses"),
        on(
            M::GET,
            "/api/projects/{project}/wallet/transactions",
            "Wallet transactions newest first (members: of their own addresses; admins: all)",
            wallet::transactions,
        )
        .query::<wallet::TransactionsPage>()
        .answers::<TransactionPage>(200, "The transactions"),
        on(
            M::POST,
            "/api/projects/{project}/wallet/transactions",
            "Record a wallet transaction and emit `wallet:transaction` (API key or admin)",
            wallet::record,
        )
        .body::<NewTransaction>()
        .answers::<WalletTransaction>(201, "Recorded")
        .answers::<WalletTransaction>(200, "Already recorded (same id)"),
        on(
            M::GET,
            "/api/chats/{chat}",
            "One chat (participants only)",
            chats::get,
        )
        .answers::<Chat>(200, "The chat"),
        on(
            M::GET,
            "/api/chats/{chat}/messages",
            "A page of a chat's messages, newest first",
            chats::messages,
        )
        .query::<chats::Page>()
        .answers::<MessagePage>(200, "The messages"),
        on(
            M::GET,
            "/api/schemas",
            "Index of the JSON Schemas of every Socket.IO event payload",
            contracts::schema_index,
        )
        .access(Access::Public)
        .answers::<Value>(200, "Each event's request, ack and payload schema URLs"),
        on(
            M::GET,
            "/api/schemas/{file}",
            "One JSON Schema, `<name>.json`",
            contracts::schema,
        )
        .access(Access::Public)
        .answers::<Value>(200, "A JSON Schema (draft 2020-12)"),
        on(
            M::GET,
            "/api/openapi.json",
            "This document",
            contracts::openapi,
        )
        .access(Access::Public)
        .answers::<Value>(200, "OpenAPI 3.1"),
        on(
            M::GET,
            "/api/asyncapi.json",
            "The Socket.IO events as an AsyncAPI 3 document",
            contracts::asyncapi,
        )
        .access(Access::Public)
        .answers::<Value>(200, "AsyncAPI 3"),
    ]
}
