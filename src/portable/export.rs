//! Writes every record of the store (or of one project) in a fixed order: projects, users, apps,
//! then per project its chats (each followed by its messages, oldest first, and receipts), calls,
//! documents, integrations (each followed by its webhook events), wallets and realtime data.

use std::io::Write;

use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::model::Message;
use switchboard_handlers::core::ports::Store;
use switchboard_handlers::core::realtime_channels::{MessageQuery, RealtimeStore};

use super::{ChannelRecord, Dump, MessageRecord, Record, canonical};

/// Rows per page when reading through the ports.
const PAGE: usize = 1000;
/// Webhook events listed per integration (stores keep far fewer).
const MAX_EVENTS: usize = 1_000_000;

struct Lines<'w, W: Write> {
    out: &'w mut W,
    written: usize,
}

impl<W: Write> Lines<'_, W> {
    fn put(&mut self, record: Record) -> anyhow::Result<()> {
        let value = canonical(serde_json::to_value(&record)?);
        serde_json::to_writer(&mut *self.out, &value)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }
}

/// Returns how many records were written.
pub async fn export<W: Write>(
    store: &dyn Store,
    realtime: &dyn RealtimeStore,
    dump: &dyn Dump,
    project: Option<&ProjectId>,
    out: &mut W,
) -> anyhow::Result<usize> {
    let mut lines = Lines { out, written: 0 };
    let projects: Vec<_> = store
        .list_projects(None)
        .await?
        .into_iter()
        .filter(|p| project.is_none_or(|only| &p.id == only))
        .collect();
    if let Some(only) = project
        && projects.is_empty()
    {
        anyhow::bail!("project {only} does not exist");
    }
    for p in &projects {
        lines.put(Record::Project(p.clone()))?;
    }
    for u in dump.all_users().await? {
        if project.is_none() || projects.iter().any(|p| p.has_member(&u.id)) {
            lines.put(Record::User(u))?;
        }
    }
    for app in store.list_apps().await? {
        if project.is_none_or(|only| &app.project_id == only) {
            lines.put(Record::App(app))?;
        }
    }
    for p in &projects {
        let id = &p.id;
        for chat in store.list_chats(id, None).await? {
            let chat_id = chat.id.clone();
            lines.put(Record::Chat(chat))?;
            for m in history(store, &chat_id).await? {
                lines.put(Record::Message(m))?;
            }
            for r in dump.receipts(&chat_id).await? {
                lines.put(Record::Receipt(r))?;
            }
        }
        for call in dump.calls(id).await? {
            lines.put(Record::Call(call))?;
        }
        for doc in dump.documents(id).await? {
            lines.put(Record::Document(doc))?;
        }
        for integration in store.list_integrations(id).await? {
            let events = store
                .list_webhook_events(&integration.id, MAX_EVENTS)
                .await?;
            lines.put(Record::Integration(integration))?;
            for e in events.into_iter().rev() {
                lines.put(Record::WebhookEvent(e))?;
            }
        }
        for a in store.list_addresses(id, None).await? {
            lines.put(Record::WalletAddress(a))?;
        }
        for t in dump.transactions(id).await? {
            lines.put(Record::WalletTransaction(t))?;
        }
        for (i, def) in realtime.list_channels(id).await?.iter().enumerate() {
            lines.put(Record::RealtimeChannel(ChannelRecord::new(
                i as u64 + 1,
                def,
            )))?;
        }
        for m in realtime_history(realtime, id).await? {
            lines.put(Record::RealtimeMessage(m))?;
        }
        if let Some(days) = realtime.retention_days(id).await? {
            lines.put(Record::RealtimeRetention {
                project_id: id.clone(),
                days,
            })?;
        }
    }
    lines.out.flush()?;
    Ok(lines.written)
}

/// A chat's messages, oldest first.
async fn history(
    store: &dyn Store,
    chat: &switchboard_handlers::core::ids::ChatId,
) -> anyhow::Result<Vec<Message>> {
    let mut all: Vec<Message> = Vec::new();
    loop {
        let before = all.last().map(|m| m.id.clone());
        let page = store.list_messages(chat, PAGE, before.as_ref()).await?;
        let done = page.len() < PAGE;
        all.extend(page);
        if done {
            break;
        }
    }
    all.reverse();
    Ok(all)
}

/// A project's stored realtime messages, oldest first.
async fn realtime_history(
    realtime: &dyn RealtimeStore,
    project: &ProjectId,
) -> anyhow::Result<Vec<MessageRecord>> {
    let mut all = Vec::new();
    loop {
        let q = MessageQuery {
            limit: PAGE,
            offset: all.len(),
            ..Default::default()
        };
        let page = realtime.list_messages(project, &q).await?;
        let done = page.len() < PAGE;
        all.extend(page.iter().map(MessageRecord::new));
        if done {
            break;
        }
    }
    all.reverse();
    Ok(all)
}
