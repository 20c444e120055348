//! Loads the demo world from `seeds/*.json` through the store ports, so both stores are seeded
//! the same way. Every write is an upsert or an idempotent insert: running it twice changes
//! nothing.

use std::path::Path;

use serde::Deserialize;

use switchboard_handlers::core::ids::{CollectionId, ProjectId};
use switchboard_handlers::core::model::{
    Chat, Document, DocumentBody, Integration, Message, Project, User, WalletAddress,
};
use switchboard_handlers::core::ports::Store;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub projects: Vec<Project>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub chats: Vec<Chat>,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub collections: Vec<SeedCollection>,
    #[serde(default)]
    pub integrations: Vec<Integration>,
    #[serde(default)]
    pub wallet_addresses: Vec<WalletAddress>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCollection {
    pub project_id: ProjectId,
    pub collection_id: CollectionId,
    pub documents: Vec<DocumentBody>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub files: usize,
    pub projects: usize,
    pub messages: usize,
    pub documents: usize,
}

/// Reads every `*.json` in `dir`, in name order.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<(String, SeedFile)>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read seeds folder {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)?;
            let file: SeedFile = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("seed file {} is invalid: {e}", p.display()))?;
            Ok((p.display().to_string(), file))
        })
        .collect()
}

pub async fn load(store: &dyn Store, dir: &Path) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    for (_, f) in read_dir(dir)? {
        report.files += 1;
        for p in &f.projects {
            store.put_project(p).await?;
            report.projects += 1;
        }
        for u in &f.users {
            store.put_user(u).await?;
        }
        for c in &f.chats {
            store.put_chat(c).await?;
        }
        for m in &f.messages {
            // The seed key makes re-seeding a no-op even though messages are insert-only.
            let key = format!("seed:{}", m.id);
            store.insert_message(m.clone(), Some(&key)).await?;
            report.messages += 1;
        }
        for c in f.collections {
            for body in c.documents {
                store
                    .put_document(&Document {
                        project_id: c.project_id.clone(),
                        collection_id: c.collection_id.clone(),
                        body,
                    })
                    .await?;
                report.documents += 1;
            }
        }
        for i in &f.integrations {
            store.put_integration(i).await?;
        }
        for a in &f.wallet_addresses {
            store.put_address(a).await?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds are public (in the repository and the image): a secret in them would be known
    /// to everyone, so they carry none an attacker could use against a server.
    #[test]
    fn demo_seeds_carry_no_usable_secrets() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let files = read_dir(&dir).expect("seeds parse");
        assert!(!files.is_empty());
        for (name, f) in files {
            for i in &f.integrations {
                assert_eq!(
                    i.webhook_secret, None,
                    "{name}: integration {} has a webhook secret anyone could sign with",
                    i.id
                );
            }
        }
    }
}
