//! Loads an export file through the store ports, into whichever store is configured. Every
//! record is an upsert by id or an insert that skips what is already stored, so importing a
//! file twice changes nothing the second time.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use switchboard_handlers::core::error::AppError;
use switchboard_handlers::core::ids::{IntegrationId, ProjectId};
use switchboard_handlers::core::ports::Store;
use switchboard_handlers::core::realtime_channels::{MessageQuery, RealtimeStore};

use super::Record;

/// A line longer than this is refused rather than buffered.
const MAX_LINE_BYTES: usize = 64 << 20;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Records read.
    pub records: usize,
    /// Of those, already stored (nothing written).
    pub skipped: usize,
}

/// What the store already holds, learnt once per integration or project, so inserts that have
/// no conflict check of their own are not repeated.
#[derive(Default)]
struct Seen {
    webhook_events: HashMap<IntegrationId, HashSet<String>>,
    realtime_messages: HashMap<ProjectId, HashSet<String>>,
}

pub async fn import<R: BufRead>(
    store: &dyn Store,
    realtime: &dyn RealtimeStore,
    input: R,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut seen = Seen::default();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_BYTES {
            anyhow::bail!("line {}: longer than {MAX_LINE_BYTES} bytes", n + 1);
        }
        let record: Record = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("line {}: not an export record: {e}", n + 1))?;
        report.records += 1;
        let stored = put(store, realtime, &mut seen, record)
            .await
            .map_err(|e| anyhow::anyhow!("line {}: {e}", n + 1))?;
        if !stored {
            report.skipped += 1;
        }
    }
    Ok(report)
}

/// False when the record was already there.
async fn put(
    store: &dyn Store,
    realtime: &dyn RealtimeStore,
    seen: &mut Seen,
    record: Record,
) -> Result<bool, AppError> {
    let inserted = |r: Result<(), AppError>| match r {
        Ok(()) => Ok(true),
        Err(AppError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    };
    match record {
        Record::Project(p) => store.put_project(&p).await.map(|()| true),
        Record::User(u) => store.put_user(&u).await.map(|()| true),
        Record::Chat(c) => store.put_chat(&c).await.map(|()| true),
        Record::Message(m) => match store.insert_message(m, None).await {
            Ok(_) => Ok(true),
            Err(AppError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        },
        Record::Receipt(r) => store
            .mark_read(&r.chat_id, &r.user_id, &[r.message_id], r.read_at)
            .await
            .map(|_| true),
        Record::Call(c) => inserted(store.insert_call(&c).await),
        Record::Document(d) => store.put_document(&d).await.map(|()| true),
        Record::Integration(i) => store.put_integration(&i).await.map(|()| true),
        Record::WebhookEvent(e) => {
            let ids = match seen.webhook_events.entry(e.integration_id.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let stored = store
                        .list_webhook_events(&e.integration_id, usize::MAX >> 1)
                        .await?;
                    v.insert(stored.into_iter().map(|e| e.id).collect())
                }
            };
            if !ids.insert(e.id.clone()) {
                return Ok(false);
            }
            store.insert_webhook_event(&e).await
        }
        Record::WalletAddress(a) => store.put_address(&a).await.map(|()| true),
        Record::WalletTransaction(t) => store.put_transaction(&t).await.map(|_| true),
        Record::App(a) => inserted(store.create_app(&a).await),
        Record::RealtimeChannel(c) => realtime.put_channel(&c.def()).await.map(|()| true),
        Record::RealtimeMessage(m) => {
            let ids = match seen.realtime_messages.entry(m.project_id.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(stored_realtime_ids(realtime, &m.project_id).await?)
                }
            };
            if !ids.insert(m.id.clone()) {
                return Ok(false);
            }
            realtime.insert_message(&m.message()).await.map(|()| true)
        }
        Record::RealtimeRetention { project_id, days } => realtime
            .set_retention_days(&project_id, Some(days))
            .await
            .map(|()| true),
    }
}

async fn stored_realtime_ids(
    realtime: &dyn RealtimeStore,
    project: &ProjectId,
) -> Result<HashSet<String>, AppError> {
    let mut ids = HashSet::new();
    loop {
        let q = MessageQuery {
            limit: 1000,
            offset: ids.len(),
            ..Default::default()
        };
        let page = realtime.list_messages(project, &q).await?;
        let done = page.len() < 1000;
        ids.extend(page.into_iter().map(|m| m.id));
        if done {
            return Ok(ids);
        }
    }
}
