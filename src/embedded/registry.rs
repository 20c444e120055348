//! Integrations, their run counters and their inbound webhook events. Events are kept per
//! integration in arrival order, the newest `MAX_WEBHOOK_EVENTS` (like the in-memory store) and
//! none older than the retention window; a replay is found among them.

use async_trait::async_trait;
use redb::ReadableTable;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{IntegrationId, ProjectId};
use switchboard_handlers::core::model::{Integration, IntegrationStats, WebhookEvent};
use switchboard_handlers::core::ports::{IntegrationStore, StoreResult};
use switchboard_handlers::core::time::Timestamp;

use super::EmbeddedStore;
use super::codec::{Db, all, decode, encode, get};
use super::tables::{INTEGRATION_STATS, INTEGRATIONS, WEBHOOK_EVENTS, next_seq};

/// Events kept per integration; the oldest go first.
const MAX_WEBHOOK_EVENTS: usize = 1000;

type Events<'t> = redb::Table<'t, (&'static str, u64), &'static [u8]>;

/// An integration's events, oldest first, with their sequence numbers.
fn events_of(
    t: &impl redb::ReadableTable<(&'static str, u64), &'static [u8]>,
    integration: &str,
) -> StoreResult<Vec<(u64, WebhookEvent)>> {
    let mut out = Vec::new();
    for entry in t.range((integration, 0)..=(integration, u64::MAX)).db()? {
        let (k, v) = entry.db()?;
        out.push((k.value().1, decode("webhook_events", v.value())?));
    }
    Ok(out)
}

fn remove_events(t: &mut Events<'_>, integration: &str) -> StoreResult<()> {
    for (seq, _) in events_of(t, integration)? {
        t.remove((integration, seq)).db()?;
    }
    Ok(())
}

#[async_trait]
impl IntegrationStore for EmbeddedStore {
    async fn put_integration(&self, integration: &Integration) -> StoreResult<()> {
        let (id, bytes) = (integration.id.to_string(), encode(integration)?);
        self.write(move |txn| {
            let mut t = txn.open_table(INTEGRATIONS).db()?;
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn create_integration(&self, integration: &Integration) -> StoreResult<()> {
        let (id, bytes) = (integration.id.to_string(), encode(integration)?);
        self.write(move |txn| {
            let mut t = txn.open_table(INTEGRATIONS).db()?;
            if t.get(id.as_str()).db()?.is_some() {
                return Err(AppError::Conflict(format!("integration {id} exists")));
            }
            t.insert(id.as_str(), bytes.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool> {
        let (new, bytes) = (integration.clone(), encode(integration)?);
        self.write(move |txn| {
            let mut t = txn.open_table(INTEGRATIONS).db()?;
            let id = new.id.as_str();
            match get::<Integration>(&t, "integrations", id)? {
                Some(stored) if stored.project_id == new.project_id => {
                    t.insert(id, bytes.as_slice()).db()?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn get_integration(&self, id: &IntegrationId) -> StoreResult<Option<Integration>> {
        self.read(|txn| {
            get(
                &txn.open_table(INTEGRATIONS).db()?,
                "integrations",
                id.as_str(),
            )
        })
    }

    async fn list_integrations(&self, project: &ProjectId) -> StoreResult<Vec<Integration>> {
        self.read(|txn| {
            all(
                &txn.open_table(INTEGRATIONS).db()?,
                "integrations",
                |i: &Integration| &i.project_id == project,
            )
        })
    }

    async fn delete_integration(&self, id: &IntegrationId) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |txn| {
            txn.open_table(INTEGRATION_STATS)
                .db()?
                .remove(id.as_str())
                .db()?;
            remove_events(&mut txn.open_table(WEBHOOK_EVENTS).db()?, &id)?;
            let existed = txn
                .open_table(INTEGRATIONS)
                .db()?
                .remove(id.as_str())
                .db()?
                .is_some();
            Ok(existed)
        })
        .await
    }

    async fn record_integration_run(
        &self,
        id: &IntegrationId,
        at: Timestamp,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let (id, error) = (id.to_string(), error.map(str::to_owned));
        self.write(move |txn| {
            let mut t = txn.open_table(INTEGRATION_STATS).db()?;
            let mut stats: IntegrationStats =
                get(&t, "integration_stats", &id)?.unwrap_or_default();
            stats.executions += 1;
            stats.failures += u64::from(error.is_some());
            stats.last_executed_at = Some(at);
            stats.last_error = error;
            t.insert(id.as_str(), encode(&stats)?.as_slice()).db()?;
            Ok(())
        })
        .await
    }

    async fn integration_stats(&self, id: &IntegrationId) -> StoreResult<IntegrationStats> {
        self.read(|txn| {
            Ok(get(
                &txn.open_table(INTEGRATION_STATS).db()?,
                "integration_stats",
                id.as_str(),
            )?
            .unwrap_or_default())
        })
    }

    async fn insert_webhook_event(&self, event: &WebhookEvent) -> StoreResult<bool> {
        let (event, bytes) = (event.clone(), encode(event)?);
        self.write(move |txn| {
            let mut t = txn.open_table(WEBHOOK_EVENTS).db()?;
            let integration = event.integration_id.as_str();
            let stored = events_of(&t, integration)?;
            let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
            if stored.iter().any(|(_, e)| {
                same(&e.signature, &event.signature) || same(&e.delivery_id, &event.delivery_id)
            }) {
                return Ok(false);
            }
            let seq = next_seq(txn).db()?;
            t.insert((integration, seq), bytes.as_slice()).db()?;
            let over = (stored.len() + 1).saturating_sub(MAX_WEBHOOK_EVENTS);
            for (old, _) in stored.iter().take(over) {
                t.remove((integration, *old)).db()?;
            }
            Ok(true)
        })
        .await
    }

    async fn purge_webhook_events(&self, before: Timestamp) -> StoreResult<u64> {
        self.write(move |txn| {
            let mut t = txn.open_table(WEBHOOK_EVENTS).db()?;
            let mut expired = Vec::new();
            for entry in t.range(..).db()? {
                let (k, v) = entry.db()?;
                let e: WebhookEvent = decode("webhook_events", v.value())?;
                if e.received_at < before {
                    let (i, seq) = k.value();
                    expired.push((i.to_owned(), seq));
                }
            }
            for (i, seq) in &expired {
                t.remove((i.as_str(), *seq)).db()?;
            }
            Ok(expired.len() as u64)
        })
        .await
    }

    async fn list_webhook_events(
        &self,
        integration: &IntegrationId,
        limit: usize,
    ) -> StoreResult<Vec<WebhookEvent>> {
        self.read(|txn| {
            let t = txn.open_table(WEBHOOK_EVENTS).db()?;
            let i = integration.as_str();
            let mut out = Vec::new();
            for entry in t.range((i, 0)..=(i, u64::MAX)).db()?.rev().take(limit) {
                let (_, v) = entry.db()?;
                out.push(decode("webhook_events", v.value())?);
            }
            Ok(out)
        })
    }
}
