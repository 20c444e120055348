//! Integrations: the per-project registry (validated specs, masked secrets), executing an
//! endpoint through the `Outbound` port with its outcome counted, and inbound webhooks checked
//! against the integration's HMAC secret before they are stored and fanned out.

use std::collections::BTreeMap;
use std::time::Instant;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::Core;
use super::access::{Actor, ProjectMember, require_member};
use super::error::AppError;
use super::events;
use super::ids::{IntegrationId, ProjectId, new_object_id};
use super::integration_gate::CallPermit;
use super::model::{Endpoint, Integration, IntegrationStats, MASK, WebhookEvent};
use super::ports::{OutboundRequest, OutboundResponse};
use super::time::Timestamp;
use super::topic::Topic;

pub const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
const MAX_NAME: usize = 128;
const MAX_URL: usize = 2048;
const MAX_ENDPOINTS: usize = 100;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_VALUE: usize = 8 * 1024;
const MAX_SECRET: usize = 512;
const MAX_PARAMS: usize = 100;
const MAX_PARAM_VALUE: usize = 4096;

/// An endpoint or parameter name: `[A-Za-z0-9_.-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ts_rs::TS, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct EndpointName(pub String);

impl TryFrom<String> for EndpointName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        check_name("endpoint", &s)?;
        Ok(EndpointName(s))
    }
}

fn check_name(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "{what} name must be 1 to 64 of A-Z a-z 0-9 _ - . (got {s:?})"
        ));
    }
    Ok(())
}

/// An integration as a client writes it (REST create / replace; a patch is merged into the
/// stored one first). Unknown fields are refused so a typo never silently drops a setting.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationSpec {
    #[serde(default)]
    pub id: Option<IntegrationId>,
    pub name: String,
    pub base_url: String,
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Ignored when present (clients send back what they read).
    #[serde(default)]
    #[allow(dead_code)]
    project_id: Option<Value>,
}

fn yes() -> bool {
    true
}

impl IntegrationSpec {
    /// Checks every field, and resolves masked secrets against `stored` (an update that sends
    /// back `********` keeps the stored value; a new integration cannot contain the mask).
    pub fn into_integration(
        self,
        id: IntegrationId,
        project: &ProjectId,
        stored: Option<&Integration>,
    ) -> Result<Integration, AppError> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(AppError::invalid(format!(
                "name must be 1 to {MAX_NAME} characters"
            )));
        }
        check_base_url(&self.base_url)?;
        if self.endpoints.len() > MAX_ENDPOINTS {
            return Err(AppError::invalid(format!(
                "at most {MAX_ENDPOINTS} endpoints"
            )));
        }
        let mut endpoints = BTreeMap::new();
        for (k, e) in self.endpoints {
            check_name("endpoint", &k).map_err(AppError::invalid)?;
            let method = e.method.to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                return Err(AppError::invalid(format!(
                    "endpoint {k}: method must be one of {}",
                    METHODS.join(", ")
                )));
            }
            if !e.path.starts_with('/')
                || e.path.len() > MAX_URL
                || e.path.chars().any(|c| c.is_whitespace() || c.is_control())
                || e.path.contains(['?', '#'])
            {
                return Err(AppError::invalid(format!(
                    "endpoint {k}: path must start with / and hold no spaces, ? or #"
                )));
            }
            endpoints.insert(
                k,
                Endpoint {
                    method,
                    path: e.path,
                },
            );
        }
        if self.headers.len() > MAX_HEADERS {
            return Err(AppError::invalid(format!("at most {MAX_HEADERS} headers")));
        }
        let mut headers = BTreeMap::new();
        for (k, v) in self.headers {
            if k.is_empty()
                || k.len() > 128
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
            {
                return Err(AppError::invalid(format!("header name {k:?} is not valid")));
            }
            let v = if v == MASK {
                stored
                    .and_then(|s| s.headers.get(&k))
                    .cloned()
                    .ok_or_else(|| {
                        AppError::invalid(format!("header {k}: the mask is not a value"))
                    })?
            } else {
                v
            };
            if v.len() > MAX_HEADER_VALUE || v.chars().any(|c| c.is_control()) {
                return Err(AppError::invalid(format!(
                    "header {k}: value must be at most {MAX_HEADER_VALUE} bytes without control characters"
                )));
            }
            headers.insert(k, v);
        }
        let webhook_secret = match self.webhook_secret {
            Some(s) if s == MASK => Some(
                stored
                    .and_then(|i| i.webhook_secret.clone())
                    .ok_or_else(|| AppError::invalid("webhookSecret: the mask is not a value"))?,
            ),
            Some(s) if s.is_empty() || s.len() > MAX_SECRET => {
                return Err(AppError::invalid(format!(
                    "webhookSecret must be 1 to {MAX_SECRET} bytes"
                )));
            }
            other => other,
        };
        Ok(Integration {
            id,
            project_id: project.clone(),
            name,
            base_url: self.base_url.trim_end_matches('/').to_owned(),
            endpoints,
            headers,
            webhook_secret,
            enabled: self.enabled,
        })
    }
}

fn check_base_url(s: &str) -> Result<(), AppError> {
    let bad = |why: &str| AppError::invalid(format!("baseUrl {why}"));
    if s.len() > MAX_URL {
        return Err(bad("is too long"));
    }
    let u = url::Url::parse(s).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    if u.host().is_none() {
        return Err(bad("needs a host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must not carry credentials (use headers)"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(())
}

/// Who may change the registry: API keys and admins (who act in every project).
pub fn require_registry_admin(actor: &Actor) -> Result<(), AppError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "integrations are configured by API keys and admins",
        ))
    }
}

/// A member's view of one integration of a project: unknown, or of another project, is
/// NOT_FOUND (after the membership check, so non-members learn nothing).
pub async fn find(
    core: &Core,
    actor: &Actor,
    project: &ProjectId,
    id: &IntegrationId,
) -> Result<(ProjectMember, Integration), AppError> {
    let member = require_member(core.store.as_ref(), actor, project).await?;
    Ok((member, of_project(core, project, id).await?))
}

/// The integration `id` if it belongs to `project`; NOT_FOUND otherwise.
async fn of_project(
    core: &Core,
    project: &ProjectId,
    id: &IntegrationId,
) -> Result<Integration, AppError> {
    core.store
        .get_integration(id)
        .await?
        .filter(|i| &i.project_id == project)
        .ok_or_else(|| AppError::not_found("integration", id.as_str()))
}

/// `disabled`, `error` (the last execution failed) or `active`.
pub fn status(integ: &Integration, stats: &IntegrationStats) -> &'static str {
    if !integ.enabled {
        "disabled"
    } else if stats.last_error.is_some() {
        "error"
    } else {
        "active"
    }
}

pub async fn status_of(core: &Core, integ: &Integration) -> Result<Value, AppError> {
    let stats = core.store.integration_stats(&integ.id).await?;
    Ok(json!({
        "integrationId": integ.id,
        "status": status(integ, &stats),
        "lastExecutedAt": stats.last_executed_at,
        "lastError": stats.last_error,
        "executions": stats.executions,
        "failures": stats.failures,
    }))
}

/// Query parameters: scalars, or arrays of scalars (repeated keys).
fn query_pairs(params: Option<Map<String, Value>>) -> Result<Vec<(String, String)>, AppError> {
    let Some(params) = params else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let scalar = |k: &str, v: &Value| -> Result<String, AppError> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(AppError::invalid(format!(
                    "params.{k} must be a string, number, boolean or an array of them"
                )));
            }
        };
        if s.len() > MAX_PARAM_VALUE {
            return Err(AppError::invalid(format!(
                "params.{k} is longer than {MAX_PARAM_VALUE} bytes"
            )));
        }
        Ok(s)
    };
    for (k, v) in &params {
        if k.is_empty() || k.len() > 128 {
            return Err(AppError::invalid("params names must be 1 to 128 bytes"));
        }
        match v {
            Value::Array(items) => {
                for item in items {
                    out.push((k.clone(), scalar(k, item)?));
                }
            }
            other => out.push((k.clone(), scalar(k, other)?)),
        }
        if out.len() > MAX_PARAMS {
            return Err(AppError::invalid(format!(
                "at most {MAX_PARAMS} query parameters"
            )));
        }
    }
    Ok(out)
}

fn request_for(
    integ: &Integration,
    endpoint: &EndpointName,
    query: Vec<(String, String)>,
    body: Option<Value>,
) -> Result<OutboundRequest, AppError> {
    let ep = integ.endpoints.get(&endpoint.0).ok_or_else(|| {
        AppError::not_found("endpoint", format!("{} of {}", endpoint.0, integ.id))
    })?;
    if !integ.enabled {
        return Err(AppError::forbidden(format!(
            "integration {} is disabled",
            integ.id
        )));
    }
    Ok(OutboundRequest {
        method: ep.method.clone(),
        url: format!("{}{}", integ.base_url, ep.path),
        query,
        headers: integ
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        json_body: body,
    })
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A place for one call of `integ` on this node, or RATE_LIMITED.
fn admit(core: &Core, integ: &Integration) -> Result<CallPermit, AppError> {
    core.integration_calls.admit(
        &integ.id,
        core.limits.integration_max_concurrent,
        core.limits.integration_rate_per_sec,
        Instant::now(),
    )
}

/// `integration:execute`: the real call, counted whatever its outcome. A response is a result
/// even with an error status (which counts as a failure); no response is an error.
pub async fn execute(
    core: &Core,
    integ: &Integration,
    endpoint: &EndpointName,
    params: Option<Map<String, Value>>,
    request_data: Option<Value>,
) -> Result<Value, AppError> {
    let req = request_for(integ, endpoint, query_pairs(params)?, request_data)?;
    let _permit = admit(core, integ)?;
    let started = Instant::now();
    let outcome = core.outbound.send(req).await;
    let duration = millis(started);
    let error = match &outcome {
        Ok(r) if r.status >= 400 => Some(format!("HTTP {}", r.status)),
        Ok(_) => None,
        Err(e) => Some(e.public_message()),
    };
    if let Err(e) = core
        .store
        .record_integration_run(&integ.id, Timestamp::now(), error.as_deref())
        .await
    {
        // The call happened; failing to count it must not hide its result from the caller.
        tracing::warn!(integration = %integ.id, error = %e, "integration run not counted");
    }
    let OutboundResponse { status, body } = outcome?;
    Ok(json!({
        "integrationId": integ.id,
        "endpoint": endpoint.0,
        "status": status,
        "data": body,
        "durationMs": duration,
    }))
}

/// `integration:test`: the endpoint without params or body, not counted. An endpoint that does
/// not answer is a test result (`ok: false`), not an error; a refused target is an error.
pub async fn test(
    core: &Core,
    integ: &Integration,
    endpoint: &EndpointName,
) -> Result<Value, AppError> {
    let req = request_for(integ, endpoint, Vec::new(), None)?;
    let _permit = admit(core, integ)?;
    let started = Instant::now();
    let outcome = core.outbound.send(req).await;
    let duration = millis(started);
    match outcome {
        Ok(r) => Ok(json!({
            "integrationId": integ.id,
            "endpoint": endpoint.0,
            "ok": (200..400).contains(&r.status),
            "status": r.status,
            "durationMs": duration,
        })),
        Err(e @ AppError::Upstream(_)) => Ok(json!({
            "integrationId": integ.id,
            "endpoint": endpoint.0,
            "ok": false,
            "status": null,
            "durationMs": duration,
            "error": e.public_message(),
        })),
        Err(e) => Err(e),
    }
}

/// The one answer to a webhook that is unsigned, badly signed, or addressed to an integration
/// that does not exist or has no secret: the sender cannot tell these apart.
pub fn webhook_refused() -> AppError {
    AppError::Unauthorized("missing or invalid webhook signature".into())
}

/// Keys unknown integrations' webhooks are checked against, so they cost the same HMAC as
/// known ones and timing does not reveal which integrations exist.
const DUMMY_SECRET: &str = "switchboard-no-such-integration";

/// Longest delivery id header kept (GitHub's are 36-character UUIDs).
const MAX_DELIVERY_ID: usize = 256;

/// What a webhook request carries besides its path.
#[derive(Debug, Clone, Copy)]
pub struct WebhookDelivery<'a> {
    pub body: &'a [u8],
    /// `X-Signature-256`.
    pub signature: Option<&'a str>,
    /// `X-Signature-Timestamp`: Unix seconds; when present the signature covers
    /// `<timestamp>.<body>` and must be within `webhook_tolerance` of now.
    pub timestamp: Option<&'a str>,
    /// The sender's delivery id (`X-Delivery-Id`, `X-GitHub-Delivery` or `X-Webhook-Id`).
    pub delivery_id: Option<&'a str>,
}

/// The outcome of an accepted webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Stored(Box<WebhookEvent>),
    /// Seen before within the retention window: acknowledged, not stored or emitted again.
    Duplicate,
}

/// Checks `X-Signature-256: sha256=<hex>` in constant time against the HMAC-SHA256 of `body`,
/// or of `<timestamp>.<body>` when a timestamp is given. Returns the MAC's hex (the replay key).
pub fn verify_signature(
    secret: &str,
    timestamp: Option<&str>,
    body: &[u8],
    header: Option<&str>,
) -> Result<String, AppError> {
    let sig = header
        .and_then(|h| h.trim().strip_prefix("sha256="))
        .and_then(decode_hex)
        .ok_or_else(webhook_refused)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(AppError::internal)?;
    if let Some(ts) = timestamp {
        mac.update(ts.as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| webhook_refused())?;
    Ok(sig.iter().map(|b| format!("{b:02x}")).collect())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A signed timestamp must be Unix seconds within `tolerance` of now, either side.
fn check_timestamp(ts: &str, tolerance: std::time::Duration) -> Result<(), AppError> {
    let secs: i64 = ts.trim().parse().map_err(|_| webhook_refused())?;
    let now = Timestamp::now().millis() / 1000;
    let skew = now.abs_diff(secs);
    if skew > tolerance.as_secs() {
        return Err(AppError::Unauthorized(format!(
            "X-Signature-Timestamp is {skew} s away from the server's clock (tolerance {} s)",
            tolerance.as_secs()
        )));
    }
    Ok(())
}

/// `POST /webhooks/<p>/<i>`: a signed body is stored, then emitted to the webhook room on every
/// node. Unknown integration, no secret configured, missing or bad signature: the same
/// UNAUTHORIZED after the same work (nothing stored or emitted). A replay (same signature or
/// delivery id as a stored event) is `Duplicate`.
pub async fn receive_webhook(
    core: &Core,
    project: &ProjectId,
    id: &IntegrationId,
    delivery: WebhookDelivery<'_>,
) -> Result<Received, AppError> {
    let integ = core
        .store
        .get_integration(id)
        .await?
        .filter(|i| &i.project_id == project);
    let secret = integ.as_ref().and_then(|i| i.webhook_secret.as_deref());
    let checked = verify_signature(
        secret.unwrap_or(DUMMY_SECRET),
        delivery.timestamp,
        delivery.body,
        delivery.signature,
    );
    let (Some(integ), Some(_), Ok(mac)) = (integ.as_ref(), secret, checked) else {
        return Err(webhook_refused());
    };
    if let Some(ts) = delivery.timestamp {
        check_timestamp(ts, core.limits.webhook_tolerance)?;
    }
    let delivery_id = match delivery.delivery_id.map(str::trim) {
        Some(d) if d.len() > MAX_DELIVERY_ID => {
            return Err(AppError::invalid(format!(
                "the delivery id header is longer than {MAX_DELIVERY_ID} bytes"
            )));
        }
        Some(d) if !d.is_empty() => Some(d.to_owned()),
        _ => None,
    };
    let text = std::str::from_utf8(delivery.body)
        .map_err(|_| AppError::invalid("webhook body must be UTF-8 (JSON or text)"))?;
    let parsed = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    };
    let event = WebhookEvent {
        id: new_object_id(),
        integration_id: integ.id.clone(),
        project_id: integ.project_id.clone(),
        body: parsed,
        received_at: Timestamp::now(),
        signature: Some(mac),
        delivery_id,
    };
    if !core.store.insert_webhook_event(&event).await? {
        return Ok(Received::Duplicate);
    }
    let payload = json!({
        "integrationId": event.integration_id,
        "id": event.id,
        "body": event.body,
        "receivedAt": event.received_at,
    });
    if let Err(e) = core
        .fanout
        .publish(
            &[Topic::IntegrationWebhooks(integ.id.clone())],
            events::INTEGRATION_WEBHOOK,
            &payload,
            None,
        )
        .await
    {
        // Stored: a subscriber that missed the live event can still list it over REST.
        tracing::warn!(integration = %integ.id, error = %e, "webhook stored but not emitted");
    }
    Ok(Received::Stored(Box::new(event)))
}

/// Deletes webhook events older than `webhook_retention`, every tenth of it (between a second
/// and ten minutes), for as long as the node runs.
pub async fn run_webhook_retention(core: std::sync::Arc<Core>) {
    let retention = core.limits.webhook_retention;
    let every = (retention / 10).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(600),
    );
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let before = Timestamp::from_millis(Timestamp::now().millis().saturating_sub(keep_ms));
        match core.store.purge_webhook_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "webhook events past retention deleted"),
            Err(e) => tracing::warn!(error = %e, "webhook retention sweep failed"),
        }
    }
}

/// A fresh id for a new integration when the client gives none.
pub fn new_id() -> Result<IntegrationId, AppError> {
    IntegrationId::try_from(new_object_id()).map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Result<Integration, AppError> {
        let s: IntegrationSpec =
            serde_json::from_value(v).map_err(|e| AppError::invalid(e.to_string()))?;
        let id = IntegrationId::try_from("i1").map_err(AppError::invalid)?;
        let p = ProjectId::try_from("p").map_err(AppError::invalid)?;
        s.into_integration(id, &p, None)
    }

    #[test]
    fn specs_are_validated() {
        let ok = spec(json!({
            "name": "Weather", "baseUrl": "https://api.example.com/v1/",
            "endpoints": { "now": { "method": "get", "path": "/now" } },
            "headers": { "Authorization": "Bearer x" }, "webhookSecret": "s"
        }))
        .expect("valid");
        assert_eq!(ok.base_url, "https://api.example.com/v1");
        assert_eq!(ok.endpoints["now"].method, "GET");
        for bad in [
            json!({ "name": "", "baseUrl": "https://a.b" }),
            json!({ "name": "x", "baseUrl": "ftp://a.b" }),
            json!({ "name": "x", "baseUrl": "https://u:p@a.b" }),
            json!({ "name": "x", "baseUrl": "https://a.b?q=1" }),
            json!({ "name": "x", "baseUrl": "not a url" }),
            json!({ "name": "x", "baseUrl": "https://a.b", "endpoints": { "e": { "method": "TRACE", "path": "/" } } }),
            json!({ "name": "x", "baseUrl": "https://a.b", "endpoints": { "e": { "method": "GET", "path": "x" } } }),
            json!({ "name": "x", "baseUrl": "https://a.b", "endpoints": { "e e": { "method": "GET", "path": "/" } } }),
            json!({ "name": "x", "baseUrl": "https://a.b", "headers": { "Bad Header": "v" } }),
            json!({ "name": "x", "baseUrl": "https://a.b", "headers": { "X": "a\r\nb" } }),
            json!({ "name": "x", "baseUrl": "https://a.b", "headers": { "X": MASK } }),
            json!({ "name": "x", "baseUrl": "https://a.b", "webhookSecret": "" }),
            json!({ "name": "x", "baseUrl": "https://a.b", "typo": 1 }),
        ] {
            assert!(spec(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn masked_values_keep_the_stored_secret() {
        let stored = spec(json!({
            "name": "x", "baseUrl": "https://a.b", "headers": { "A": "secret" }, "webhookSecret": "w"
        }))
        .expect("valid");
        let s: IntegrationSpec = serde_json::from_value(json!({
            "name": "y", "baseUrl": "https://a.b", "headers": { "A": MASK, "B": "new" },
            "webhookSecret": MASK
        }))
        .expect("decodes");
        let p = ProjectId::try_from("p").expect("id");
        let updated = s
            .into_integration(stored.id.clone(), &p, Some(&stored))
            .expect("valid");
        assert_eq!(updated.headers["A"], "secret");
        assert_eq!(updated.headers["B"], "new");
        assert_eq!(updated.webhook_secret.as_deref(), Some("w"));
    }

    #[test]
    fn params_become_query_pairs() {
        let m = json!({ "q": "x", "n": 2, "b": true, "tags": ["a", "b"] });
        let Value::Object(m) = m else { unreachable!() };
        let pairs = query_pairs(Some(m)).expect("valid");
        assert!(pairs.contains(&("tags".into(), "a".into())));
        assert!(pairs.contains(&("tags".into(), "b".into())));
        assert!(pairs.contains(&("n".into(), "2".into())));
        let Value::Object(bad) = json!({ "o": { "x": 1 } }) else {
            unreachable!()
        };
        assert!(query_pairs(Some(bad)).is_err());
    }

    #[test]
    fn signatures_are_checked() {
        let body = br#"{"a":1}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").expect("key");
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let sig = format!("sha256={hex}");
        assert_eq!(
            verify_signature("k", None, body, Some(&sig)).ok(),
            Some(hex.clone())
        );
        assert_eq!(
            verify_signature(
                "k",
                None,
                body,
                Some(&sig.to_uppercase().replace("SHA256=", "sha256="))
            )
            .ok(),
            Some(hex.clone()),
            "the replay key does not depend on the header's hex case"
        );
        assert!(verify_signature("k2", None, body, Some(&sig)).is_err());
        assert!(verify_signature("k", None, b"{}", Some(&sig)).is_err());
        assert!(verify_signature("k", None, body, Some(&hex)).is_err());
        assert!(verify_signature("k", None, body, Some("sha256=zz")).is_err());
        assert!(verify_signature("k", None, body, None).is_err());
        // With a timestamp the MAC covers `<timestamp>.<body>`, so the plain one no longer fits.
        assert!(verify_signature("k", Some("1700000000"), body, Some(&sig)).is_err());
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").expect("key");
        mac.update(b"1700000000.");
        mac.update(body);
        let ts_hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let ts_sig = format!("sha256={ts_hex}");
        assert!(verify_signature("k", Some("1700000000"), body, Some(&ts_sig)).is_ok());
        assert!(verify_signature("k", Some("1700000001"), body, Some(&ts_sig)).is_err());
        // Every refusal reads the same.
        let refusals: Vec<String> = [
            verify_signature("k2", None, body, Some(&sig)),
            verify_signature("k", None, body, None),
            verify_signature("k", None, body, Some("sha256=zz")),
        ]
        .into_iter()
        .map(|r| r.expect_err("refused").public_message())
        .collect();
        assert!(refusals.iter().all(|m| m == &refusals[0]), "{refusals:?}");
    }

    #[test]
    fn signed_timestamps_must_be_recent() {
        let tolerance = std::time::Duration::from_secs(300);
        let now = Timestamp::now().millis() / 1000;
        assert!(check_timestamp(&now.to_string(), tolerance).is_ok());
        assert!(check_timestamp(&(now - 299).to_string(), tolerance).is_ok());
        assert!(check_timestamp(&(now - 301).to_string(), tolerance).is_err());
        assert!(check_timestamp(&(now + 301).to_string(), tolerance).is_err());
        assert!(check_timestamp("yesterday", tolerance).is_err());
    }
}
