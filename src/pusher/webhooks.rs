//! Pusher webhooks: `member_added`, `member_removed` and `client_event`, POSTed to each of an
//! app's webhook URLs whose `event_types` list the event (an empty list takes every event),
//! signed as Pusher signs them (`X-Pusher-Key`, `X-Pusher-Signature` = hex HMAC-SHA256 of the
//! body with the app's secret; `Content-Type: application/json`). Deliveries go through the
//! integrations' outbound client (its SSRF guard, `INTEGRATION_ALLOW_PRIVATE`, its timeout),
//! are retried with backoff, and queue in a bounded buffer: beyond it they are dropped, logged.
//!
//! `member_removed` waits a few seconds and is not sent when the user is back by then; their
//! `member_added` on this node is not sent either, so a quick reconnect makes no remove/add pair.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use switchboard_handlers::core::channel_presence::ChannelPresence;
use switchboard_handlers::core::ports::{Outbound, OutboundRequest};
use switchboard_handlers::core::time::Timestamp;

use super::apps::App;
use super::sign;

/// Deliveries waiting for a worker; more are dropped.
const QUEUE: usize = 4096;
/// Deliveries in flight at once on a node.
const WORKERS: usize = 8;
/// Attempts per delivery, waiting 1 s, 2 s, 4 s … between them.
const ATTEMPTS: u32 = 4;
/// How long `member_removed` waits for the user to come back.
pub const REMOVED_DELAY: Duration = Duration::from_secs(3);

/// One event as Pusher's webhooks describe it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub name: &'static str,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
}

impl Event {
    pub fn member(name: &'static str, channel: &str, user: &str) -> Event {
        Event {
            name,
            channel: channel.to_owned(),
            user_id: Some(user.to_owned()),
            event: None,
            data: None,
            socket_id: None,
        }
    }
}

struct Job {
    url: String,
    key: String,
    secret: String,
    event: Event,
}

pub struct Webhooks {
    tx: mpsc::Sender<Job>,
    /// `(app id, channel, user)` whose `member_removed` is waiting.
    pending: Mutex<HashSet<(String, String, String)>>,
}

impl Webhooks {
    /// Starts the delivery workers.
    pub fn start(outbound: Arc<dyn Outbound>) -> Arc<Webhooks> {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WORKERS {
            let (rx, outbound) = (rx.clone(), outbound.clone());
            tokio::spawn(async move {
                loop {
                    let job = rx.lock().await.recv().await;
                    match job {
                        Some(job) => deliver(outbound.as_ref(), job).await,
                        None => return,
                    }
                }
            });
        }
        Arc::new(Webhooks {
            tx,
            pending: Mutex::default(),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String, String)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event` for every webhook of `app` that wants it.
    pub fn send(&self, app: &App, event: Event) {
        for w in &app.webhooks {
            if !w.event_types.is_empty() && !w.event_types.iter().any(|t| t == event.name) {
                continue;
            }
            let job = Job {
                url: w.url.clone(),
                key: app.key.clone(),
                secret: app.secret.clone(),
                event: event.clone(),
            };
            if self.tx.try_send(job).is_err() {
                tracing::warn!(app = %app.id, event = event.name, "webhook queue full; event dropped");
            }
        }
    }

    /// The user's first connection joined: `member_added`, unless this cancels their
    /// pending `member_removed` (a quick reconnect).
    pub fn member_added(&self, app: &App, channel: &str, user: &str) {
        if app.webhooks.is_empty() {
            return;
        }
        let key = (app.id.clone(), channel.to_owned(), user.to_owned());
        if !self.pending().remove(&key) {
            self.send(app, Event::member("member_added", channel, user));
        }
    }

    /// The user's last connection left: `member_removed` after [`REMOVED_DELAY`], unless they
    /// joined again meanwhile (`room` is the channel's presence key).
    pub fn member_removed(
        self: &Arc<Self>,
        app: &Arc<App>,
        presence: &Arc<dyn ChannelPresence>,
        room: &str,
        channel: &str,
        user: &str,
    ) {
        if app.webhooks.is_empty() {
            return;
        }
        let key = (app.id.clone(), channel.to_owned(), user.to_owned());
        self.pending().insert(key.clone());
        let (hooks, app, presence, room) =
            (self.clone(), app.clone(), presence.clone(), room.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(REMOVED_DELAY).await;
            if !hooks.pending().remove(&key) {
                return;
            }
            let (_, channel, user) = key;
            let back = presence
                .members(&room)
                .await
                .map(|m| m.iter().any(|m| m.user_id == user))
                .unwrap_or(false);
            if !back {
                hooks.send(&app, Event::member("member_removed", &channel, &user));
            }
        });
    }
}

#[derive(Serialize)]
struct Body<'a> {
    time_ms: i64,
    events: [&'a Event; 1],
}

async fn deliver(outbound: &dyn Outbound, job: Job) {
    let body = Body {
        time_ms: Timestamp::now().millis(),
        events: [&job.event],
    };
    // Signed over the bytes sent: the client serialises this same value the same way.
    let Ok(value) = serde_json::to_value(&body) else {
        return;
    };
    let Ok(text) = serde_json::to_string(&value) else {
        return;
    };
    let signature = sign::hmac_hex(&job.secret, text.as_bytes());
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
        }
        let req = OutboundRequest {
            method: "POST".into(),
            url: job.url.clone(),
            query: Vec::new(),
            headers: vec![
                ("X-Pusher-Key".into(), job.key.clone()),
                ("X-Pusher-Signature".into(), signature.clone()),
            ],
            json_body: Some(value.clone()),
        };
        match outbound.send(req).await {
            Ok(r) if (200..300).contains(&r.status) => return,
            Ok(r) => tracing::debug!(url = %job.url, status = r.status, attempt, "webhook refused"),
            Err(e) => tracing::debug!(url = %job.url, error = %e, attempt, "webhook failed"),
        }
    }
    tracing::warn!(url = %job.url, event = job.event.name, "webhook not delivered after {ATTEMPTS} attempts");
}
