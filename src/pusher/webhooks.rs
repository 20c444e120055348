//! Webhooks: `channel_occupied`, `channel_vacated`, `member_added`, `member_removed` and
//! `client_event`, POSTed to each of an app's webhook URLs whose `event_types` list the event
//! (an empty list takes every event). Deliveries go through the integrations' outbound client
//! (its SSRF guard, `INTEGRATION_ALLOW_PRIVATE`, its timeout), are retried with backoff, and
//! queue in a bounded buffer: beyond it they are dropped, logged.
//!
//! Pusher apps get Pusher's scheme: `{"time_ms", "events": [event]}`, `X-Pusher-Key`,
//! `X-Pusher-Signature` = hex HMAC-SHA256 of the body with the app's secret. Apinator apps get
//! Apinator's: one event per POST as `{"id", "event", "app_id", "channel", "user_id"?,
//! "time_ms"}`, `X-Realtime-Signature: sha256=<hex HMAC-SHA256(endpoint secret, ts.body)>`,
//! `X-Realtime-Timestamp`, `X-Realtime-Event`, `X-Realtime-Delivery-ID`; it has no
//! `client_event`.
//!
//! Departures (`member_removed`, `channel_vacated`) wait a few seconds and are not sent when
//! the user or a subscriber is back by then; the matching arrival is not sent either, so a
//! quick reconnect makes no remove/add (vacate/occupy) pair.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use switchboard_handlers::core::channel_presence::ChannelPresence;
use switchboard_handlers::core::ports::{Outbound, OutboundRequest};
use switchboard_handlers::core::time::Timestamp;

use super::apps::{App, Dialect};
use super::sign;

/// Deliveries waiting for a worker; more are dropped.
const QUEUE: usize = 4096;
/// Deliveries in flight at once on a node.
const WORKERS: usize = 8;
/// Attempts per delivery, waiting 1 s, 2 s, 4 s … between them.
const ATTEMPTS: u32 = 4;
/// How long a departure waits for the user (or a subscriber) to come back.
pub const DEPARTURE_DELAY: Duration = Duration::from_secs(3);

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

    pub fn channel(name: &'static str, channel: &str) -> Event {
        Event {
            name,
            channel: channel.to_owned(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
        }
    }
}

/// How a delivery is signed and shaped.
enum Scheme {
    Pusher { key: String, secret: String },
    Apinator { app_id: String, secret: String },
}

struct Job {
    url: String,
    scheme: Scheme,
    event: Event,
}

/// Who left, for a departure that waits: a presence member, or every subscriber.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Member,
    Subscribers,
}

type Pending = (String, String, String, Who);

pub struct Webhooks {
    tx: mpsc::Sender<Job>,
    /// `(app id, channel, user, who)` whose departure is waiting.
    pending: Mutex<HashSet<Pending>>,
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

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event` for every webhook of `app` that wants it.
    pub fn send(&self, app: &App, event: Event) {
        if app.dialect == Dialect::Apinator && event.name == "client_event" {
            return;
        }
        for w in &app.webhooks {
            if !w.event_types.is_empty() && !w.event_types.iter().any(|t| t == event.name) {
                continue;
            }
            let scheme = match app.dialect {
                Dialect::Pusher => Scheme::Pusher {
                    key: app.key.clone(),
                    secret: app.secret.clone(),
                },
                Dialect::Apinator => Scheme::Apinator {
                    app_id: app.id.clone(),
                    // Checked present when the apps were read.
                    secret: w.secret.clone().unwrap_or_default(),
                },
            };
            let job = Job {
                url: w.url.clone(),
                scheme,
                event: event.clone(),
            };
            if self.tx.try_send(job).is_err() {
                tracing::warn!(app = %app.id, event = event.name, "webhook queue full; event dropped");
            }
        }
    }

    /// An arrival: sent unless it cancels a pending departure (a quick reconnect).
    fn arrived(&self, app: &App, key: Pending, event: Event) {
        if app.webhooks.is_empty() {
            return;
        }
        if !self.pending().remove(&key) {
            self.send(app, event);
        }
    }

    /// The user's first connection joined a presence channel: `member_added`.
    pub fn member_added(&self, app: &App, channel: &str, user: &str) {
        let key = pending(app, channel, user, Who::Member);
        self.arrived(app, key, Event::member("member_added", channel, user));
    }

    /// The channel's first subscriber in the cluster: `channel_occupied`.
    pub fn occupied(&self, app: &App, channel: &str) {
        let key = pending(app, channel, "", Who::Subscribers);
        self.arrived(app, key, Event::channel("channel_occupied", channel));
    }

    /// A departure: sent after [`DEPARTURE_DELAY`] unless an arrival cancelled it meanwhile
    /// and unless `back` says the user (or a subscriber) is in the channel again.
    fn departed<F>(self: &Arc<Self>, app: &Arc<App>, key: Pending, event: Event, back: F)
    where
        F: Future<Output = bool> + Send + 'static,
    {
        if app.webhooks.is_empty() {
            return;
        }
        self.pending().insert(key.clone());
        let (hooks, app) = (self.clone(), app.clone());
        tokio::spawn(async move {
            tokio::time::sleep(DEPARTURE_DELAY).await;
            if hooks.pending().remove(&key) && !back.await {
                hooks.send(&app, event);
            }
        });
    }

    /// The user's last connection left: `member_removed` (`room` is the channel's presence
    /// key).
    pub fn member_removed(
        self: &Arc<Self>,
        app: &Arc<App>,
        presence: &Arc<dyn ChannelPresence>,
        room: &str,
        channel: &str,
        user: &str,
    ) {
        let (presence, room, who) = (presence.clone(), room.to_owned(), user.to_owned());
        let back = async move {
            presence
                .members(&room)
                .await
                .map(|m| m.iter().any(|m| m.user_id == who))
                .unwrap_or(false)
        };
        let key = pending(app, channel, user, Who::Member);
        self.departed(
            app,
            key,
            Event::member("member_removed", channel, user),
            back,
        );
    }

    /// The channel's last subscriber in the cluster left: `channel_vacated` (`key` is the
    /// channel's occupancy key).
    pub fn vacated(
        self: &Arc<Self>,
        app: &Arc<App>,
        presence: &Arc<dyn ChannelPresence>,
        occupancy: &str,
        channel: &str,
    ) {
        let (presence, occupancy) = (presence.clone(), occupancy.to_owned());
        let back = async move {
            presence
                .connection_count(&occupancy)
                .await
                .is_ok_and(|n| n > 0)
        };
        let key = pending(app, channel, "", Who::Subscribers);
        self.departed(app, key, Event::channel("channel_vacated", channel), back);
    }
}

fn pending(app: &App, channel: &str, user: &str, who: Who) -> Pending {
    (app.id.clone(), channel.to_owned(), user.to_owned(), who)
}

#[derive(Serialize)]
struct PusherBody<'a> {
    time_ms: i64,
    events: [&'a Event; 1],
}

#[derive(Serialize)]
struct ApinatorBody<'a> {
    id: &'a str,
    event: &'a str,
    app_id: &'a str,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    time_ms: i64,
}

/// The Apinator signature header's value: `sha256=hex(hmac(secret, "{ts}.{body}"))`.
pub fn apinator_signature(secret: &str, ts: &str, body: &str) -> String {
    format!(
        "sha256={}",
        sign::hmac_hex(secret, format!("{ts}.{body}").as_bytes())
    )
}

/// The body and headers of one delivery. The outbound client serialises `value` the same way
/// `serde_json::to_string` does here, so the signature covers the bytes sent.
fn prepare(job: &Job) -> Option<(Value, Vec<(String, String)>)> {
    let now = Timestamp::now();
    match &job.scheme {
        Scheme::Pusher { key, secret } => {
            let value = serde_json::to_value(PusherBody {
                time_ms: now.millis(),
                events: [&job.event],
            })
            .ok()?;
            let text = serde_json::to_string(&value).ok()?;
            let headers = vec![
                ("X-Pusher-Key".into(), key.clone()),
                (
                    "X-Pusher-Signature".into(),
                    sign::hmac_hex(secret, text.as_bytes()),
                ),
            ];
            Some((value, headers))
        }
        Scheme::Apinator { app_id, secret } => {
            let id = uuid::Uuid::new_v4().to_string();
            let value = serde_json::to_value(ApinatorBody {
                id: &id,
                event: job.event.name,
                app_id,
                channel: &job.event.channel,
                user_id: job.event.user_id.as_deref(),
                time_ms: now.millis(),
            })
            .ok()?;
            let text = serde_json::to_string(&value).ok()?;
            let ts = (now.millis() / 1000).to_string();
            let headers = vec![
                (
                    "X-Realtime-Signature".into(),
                    apinator_signature(secret, &ts, &text),
                ),
                ("X-Realtime-Timestamp".into(), ts),
                ("X-Realtime-Event".into(), job.event.name.to_owned()),
                ("X-Realtime-Delivery-ID".into(), id),
            ];
            Some((value, headers))
        }
    }
}

async fn deliver(outbound: &dyn Outbound, job: Job) {
    // Prepared once: every attempt carries the same id, time and signature, so a receiver
    // that saw an earlier attempt arrive can tell a retry apart.
    let Some((value, headers)) = prepare(&job) else {
        return;
    };
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
        }
        let req = OutboundRequest {
            method: "POST".into(),
            url: job.url.clone(),
            query: Vec::new(),
            headers: headers.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    // COMPAT-PROTOCOLS A.13.
    #[test]
    fn apinator_signature_vector() {
        assert_eq!(
            apinator_signature(
                "webhook-secret-1",
                "1700000000",
                r#"{"event":"channel_occupied","channel":"chat"}"#
            ),
            "sha256=96f105a746abcc4bcf70c7a73ef99fb3b3f1cc196d88948b83e93a885b355695"
        );
    }

    // COMPAT-PROTOCOLS A.12.
    #[test]
    fn pusher_signature_vector() {
        assert_eq!(
            sign::hmac_hex(
                "app-secret",
                br#"{"time_ms":1700000000000,"events":[{"name":"channel_occupied","channel":"chat"}]}"#
            ),
            "ae2cc664b9674c03c83b7608aa8cd47f9cb900f2ffe0b51e2b2ba5014cc470a9"
        );
    }
}
