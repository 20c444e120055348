//! Each message of a channel with `webhookUrls` is POSTed to every URL: the payload as JSON,
//! with `X-InsForge-Event`, `X-InsForge-Channel` (the resolved channel name) and
//! `X-InsForge-Message-Id`; unsigned, as upstream. Deliveries go through the outbound client
//! (its SSRF guard), time out after 10 s, are retried twice (after 1 s, then 2 s) on network
//! errors only, and every 2xx answer adds one to the message's `whDeliveredCount`. They wait in
//! a bounded queue; beyond it they are dropped and logged.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::{Outbound, OutboundRequest};
use switchboard_handlers::core::realtime_channels::{RealtimeStore, StoredMessage};

/// Deliveries waiting for a worker; more are dropped.
const QUEUE: usize = 4096;
/// Deliveries in flight at once on a node.
const WORKERS: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(10);
/// Waits before the retries of a delivery that failed on the network.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

struct Job {
    project: ProjectId,
    message_id: String,
    event: String,
    channel: String,
    payload: Value,
    url: String,
}

pub struct Webhooks {
    tx: mpsc::Sender<Job>,
}

impl Webhooks {
    pub fn start(outbound: Arc<dyn Outbound>, store: Arc<dyn RealtimeStore>) -> Arc<Self> {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WORKERS {
            let (rx, outbound, store) = (rx.clone(), outbound.clone(), store.clone());
            tokio::spawn(async move {
                loop {
                    let job = rx.lock().await.recv().await;
                    let Some(job) = job else { return };
                    if deliver(outbound.as_ref(), &job, &BACKOFF).await
                        && let Err(e) = store.add_delivered(&job.project, &job.message_id, 1).await
                    {
                        tracing::warn!(error = %e, "insforge webhook delivery not counted");
                    }
                }
            });
        }
        Arc::new(Webhooks { tx })
    }

    pub fn queue(&self, message: &StoredMessage, urls: &[String]) {
        for url in urls {
            let job = Job {
                project: message.project.clone(),
                message_id: message.id.clone(),
                event: message.event_name.clone(),
                channel: message.channel_name.clone(),
                payload: message.payload.clone(),
                url: url.clone(),
            };
            if self.tx.try_send(job).is_err() {
                tracing::warn!(url, "insforge webhook queue full; delivery dropped");
            }
        }
    }
}

/// True when the URL answered 2xx. `backoff`: the waits before each retry.
async fn deliver(outbound: &dyn Outbound, job: &Job, backoff: &[Duration]) -> bool {
    let request = OutboundRequest {
        method: "POST".to_owned(),
        url: job.url.clone(),
        query: Vec::new(),
        headers: vec![
            ("X-InsForge-Event".to_owned(), job.event.clone()),
            ("X-InsForge-Channel".to_owned(), job.channel.clone()),
            ("X-InsForge-Message-Id".to_owned(), job.message_id.clone()),
        ],
        json_body: Some(job.payload.clone()),
    };
    let mut waits = backoff.iter();
    loop {
        let outcome = tokio::time::timeout(TIMEOUT, outbound.send(request.clone())).await;
        match outcome {
            Ok(Ok(r)) => return (200..300).contains(&r.status),
            // Refused by the SSRF guard or malformed: retrying changes nothing.
            Ok(Err(e @ (AppError::Forbidden(_) | AppError::InvalidPayload(_)))) => {
                tracing::warn!(url = %job.url, error = %e, "insforge webhook refused");
                return false;
            }
            Ok(Err(e)) => tracing::debug!(url = %job.url, error = %e, "insforge webhook failed"),
            Err(_) => tracing::debug!(url = %job.url, "insforge webhook timed out"),
        }
        match waits.next() {
            Some(wait) => tokio::time::sleep(*wait).await,
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use switchboard_handlers::core::ports::OutboundResponse;

    use super::*;

    /// Answers with the scripted outcomes in turn and records the requests.
    struct Scripted {
        outcomes: Mutex<Vec<Result<u16, AppError>>>,
        seen: Mutex<Vec<OutboundRequest>>,
    }

    #[async_trait]
    impl Outbound for Scripted {
        async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, AppError> {
            self.seen.lock().expect("lock").push(request);
            let next = self.outcomes.lock().expect("lock").remove(0);
            next.map(|status| OutboundResponse {
                status,
                body: Value::Null,
            })
        }
    }

    fn scripted(outcomes: Vec<Result<u16, AppError>>) -> Scripted {
        Scripted {
            outcomes: Mutex::new(outcomes),
            seen: Mutex::default(),
        }
    }

    fn job() -> Job {
        Job {
            project: ProjectId::try_from("demo").expect("id"),
            message_id: "m1".into(),
            event: "paid".into(),
            channel: "order:1".into(),
            payload: serde_json::json!({"amount": 5}),
            url: "https://example.com/h".into(),
        }
    }

    const FAST: [Duration; 2] = [Duration::from_millis(1), Duration::from_millis(1)];

    #[tokio::test]
    async fn network_errors_are_retried_twice_then_given_up() {
        let out = scripted(vec![
            Err(AppError::Upstream("refused".into())),
            Err(AppError::Upstream("refused".into())),
            Ok(204),
        ]);
        assert!(deliver(&out, &job(), &FAST).await);
        let seen = out.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].json_body, Some(serde_json::json!({"amount": 5})));
        let header = |n: &str| {
            seen[0]
                .headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("X-InsForge-Event"), Some("paid"));
        assert_eq!(header("X-InsForge-Channel"), Some("order:1"));
        assert_eq!(header("X-InsForge-Message-Id"), Some("m1"));
        let out = scripted(
            (0..3)
                .map(|_| Err(AppError::Upstream("down".into())))
                .collect(),
        );
        assert!(!deliver(&out, &job(), &FAST).await);
        assert_eq!(out.seen.lock().expect("lock").len(), 3);
    }

    #[tokio::test]
    async fn http_errors_and_refused_targets_are_not_retried() {
        let out = scripted(vec![Ok(500)]);
        assert!(!deliver(&out, &job(), &FAST).await);
        let out = scripted(vec![Err(AppError::Forbidden("private address".into()))]);
        assert!(!deliver(&out, &job(), &FAST).await);
        assert_eq!(out.seen.lock().expect("lock").len(), 1);
    }
}
