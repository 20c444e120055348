//! The cluster bus for what the Socket.IO adapter cannot carry: messages every node must see
//! and then deliver per connection itself (document changes when there is no change stream).
//! A node delivers its own messages locally at once and sends them to the others through Redis
//! pub/sub, so local delivery never waits on, or depends on, Redis.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use switchboard_handlers::core::data::change::DocumentChange;
use switchboard_handlers::core::data::live::LiveData;
use switchboard_handlers::core::ports::ChangePublisher;

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The sending node, so it skips its own message (it delivered already).
    node: String,
    change: DocumentChange,
}

pub struct RedisChanges {
    node: String,
    channel: String,
    client: crate::redis::Client,
    live: Arc<LiveData>,
}

#[async_trait]
impl ChangePublisher for RedisChanges {
    async fn publish(&self, change: DocumentChange) {
        self.live.deliver(&change).await;
        let env = Envelope {
            node: self.node.clone(),
            change,
        };
        let Ok(json) = serde_json::to_string(&env) else {
            return;
        };
        if let Err(e) = self.client.publish(&self.channel, json).await {
            tracing::warn!(error = %e, "document change not sent to the other nodes (Redis)");
        }
    }
}

fn channel(prefix: &str) -> String {
    format!("{prefix}#data-changes")
}

/// Subscribes this node to the other nodes' changes and returns the publisher for its own.
pub async fn redis_changes(
    url: &str,
    prefix: &str,
    client: crate::redis::Client,
    live: Arc<LiveData>,
) -> anyhow::Result<RedisChanges> {
    let node = switchboard_handlers::core::ids::new_object_id();
    let subscriber = crate::redis::subscriber(url, "document changes bus").await?;
    let ch = channel(prefix);
    let messages = subscriber
        .subscribe(&ch, crate::redis::PUBSUB_BUFFER)
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to {ch}: {e}"))?;
    let (me, sink) = (node.clone(), live.clone());
    tokio::spawn(crate::redis::consume(
        messages,
        "document changes bus",
        move |m| {
            let (me, sink) = (me.clone(), sink.clone());
            async move {
                match serde_json::from_slice::<Envelope>(&m.payload) {
                    Ok(env) if env.node != me => sink.deliver(&env.change).await,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "unreadable message on the bus"),
                }
            }
        },
    ));
    Ok(RedisChanges {
        node,
        channel: ch,
        client,
        live,
    })
}
