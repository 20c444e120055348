//! Which channels a project's definitions admit, read through a short cache: every subscribe,
//! publish and delivery asks, and definitions change rarely. A change made through this node's
//! REST API is seen at once here and within [`TTL`] on the other nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_handlers::core::ids::ProjectId;
use switchboard_handlers::core::ports::StoreResult;
use switchboard_handlers::core::realtime_channels::{self, ChannelDef, RealtimeStore};

pub const TTL: Duration = Duration::from_secs(2);

type Cached = (Instant, Arc<Vec<ChannelDef>>);

pub struct Definitions {
    pub store: Arc<dyn RealtimeStore>,
    cache: Mutex<HashMap<ProjectId, Cached>>,
}

impl Definitions {
    pub fn new(store: Arc<dyn RealtimeStore>) -> Self {
        Definitions {
            store,
            cache: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn of(&self, project: &ProjectId) -> StoreResult<Arc<Vec<ChannelDef>>> {
        let now = Instant::now();
        if let Some((at, defs)) = self.lock().get(project)
            && now.duration_since(*at) < TTL
        {
            return Ok(defs.clone());
        }
        let defs = Arc::new(self.store.list_channels(project).await?);
        let mut cache = self.lock();
        // Only projects with live traffic stay: expired entries go whenever one is refreshed.
        cache.retain(|_, (at, _)| now.duration_since(*at) < TTL);
        cache.insert(project.clone(), (now, defs.clone()));
        Ok(defs)
    }

    /// The enabled definition admitting `channel`, if any.
    pub async fn admitting(
        &self,
        project: &ProjectId,
        channel: &str,
    ) -> StoreResult<Option<ChannelDef>> {
        let defs = self.of(project).await?;
        Ok(realtime_channels::admitting(&defs, channel).cloned())
    }

    /// A definition of `project` changed on this node.
    pub fn invalidate(&self, project: &ProjectId) {
        self.lock().remove(project);
    }
}
