//! The `export` and `import` commands: the configured store, and the file or standard stream.

use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::Arc;

use switchboard_handlers::core::ids::ProjectId;

use super::{Dump, ImportReport};
use crate::app::{Stores, connect_stores};
use crate::config::Config;

async fn open(config: &Config) -> anyhow::Result<Stores> {
    config.validate_store()?;
    connect_stores(config).await
}

fn dump_of(stores: &Stores) -> anyhow::Result<Arc<dyn Dump>> {
    match (&stores.embedded, &stores.mongo) {
        (Some(e), _) => Ok(Arc::new(e.clone())),
        (None, Some(m)) => Ok(Arc::new(m.clone())),
        (None, None) => anyhow::bail!(
            "STORE=memory holds nothing between runs; export from the embedded store (DATA_DIR) \
             or MongoDB (MONGODB_URI)"
        ),
    }
}

pub async fn export_file(
    config: &Config,
    project: Option<&ProjectId>,
    out: &Path,
) -> anyhow::Result<usize> {
    let stores = open(config).await?;
    let dump = dump_of(&stores)?;
    let store = stores.store.as_ref();
    let realtime = stores.realtime.as_ref();
    if out == Path::new("-") {
        let mut w = BufWriter::new(std::io::stdout().lock());
        return super::export(store, realtime, dump.as_ref(), project, &mut w).await;
    }
    // Written beside the target and renamed into place: a failed export leaves no partial file.
    let tmp = out.with_extension("partial");
    let file = std::fs::File::create(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    let mut w = BufWriter::new(file);
    let n = super::export(store, realtime, dump.as_ref(), project, &mut w).await;
    let n = match n {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    Ok(n)
}

pub async fn import_file(config: &Config, file: &Path) -> anyhow::Result<ImportReport> {
    let stores = open(config).await?;
    if stores.embedded.is_none() && stores.mongo.is_none() {
        anyhow::bail!(
            "STORE=memory keeps nothing after this command; import into the embedded store \
             (DATA_DIR) or MongoDB (MONGODB_URI)"
        );
    }
    let (store, realtime) = (stores.store.as_ref(), stores.realtime.as_ref());
    if file == Path::new("-") {
        return super::import(store, realtime, BufReader::new(std::io::stdin().lock())).await;
    }
    let f = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    super::import(store, realtime, BufReader::new(f)).await
}
