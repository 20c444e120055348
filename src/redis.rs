//! Redis: the socketioxide adapter's pub/sub (fred driver) plus a plain client for health checks
//! and, later, cluster-wide state. The fred driver is used because it reconnects; after each
//! reconnect we re-issue the adapter's shard subscriptions ourselves, since neither the adapter
//! nor fred's own `manage_subscriptions` restores them (SOCKETIOXIDE-NOTES.md §3).

use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, ClientLike, Config as FredConfig, EventInterface, PubsubInterface, ReconnectPolicy,
};
use fred::types::RespVersion;
use socketioxide_redis::drivers::fred::FredDriver;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use switchboard_handlers::core::hub::remote::RemoteHealth;

pub struct RedisParts {
    pub ctr: RedisAdapterCtr<FredDriver>,
    pub subscriber: SubscriberClient,
    /// A separate client for commands (health checks, state), so they never queue behind pub/sub.
    pub client: fred::prelude::Client,
}

fn config(url: &str) -> anyhow::Result<FredConfig> {
    let mut cfg = FredConfig::from_url(url)
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
    // The adapter needs RESP3 push messages; fred ignores `protocol=resp3` in the URL.
    cfg.version = RespVersion::RESP3;
    Ok(cfg)
}

fn builder(url: &str) -> anyhow::Result<Builder> {
    let mut b = Builder::from_config(config(url)?);
    b.set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
    // A command must not wait for a reconnect forever: broadcasts fall back to local delivery.
    b.with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2));
    b.with_connection_config(|c| {
        c.connection_timeout = Duration::from_secs(5);
        c.internal_command_timeout = Duration::from_secs(5);
    });
    Ok(b)
}

/// Messages fred buffers between its connection and the adapter's reader. fred's default (32)
/// dropped adapter broadcasts whenever the reader was not scheduled for a moment: 89% of a
/// two-node many-rooms run was lost ("fred driver pubsub channel lagged"). At 16K the buffer
/// holds about a second of a busy node's traffic.
const PUBSUB_BUFFER: usize = 16 * 1024;

/// A pub/sub connection of its own (fred's subscriber client), with the same reconnect policy.
pub fn subscriber(url: &str) -> anyhow::Result<SubscriberClient> {
    let mut b = builder(url)?;
    b.with_performance_config(|p| p.broadcast_channel_capacity = PUBSUB_BUFFER);
    Ok(b.build_subscriber_client()?)
}

pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<RedisParts> {
    let subscriber = subscriber(url)?;
    let client = builder(url)?.build()?;
    client
        .init()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis (REDIS_URL): {e}"))?;
    let cfg = RedisAdapterConfig::new()
        .with_prefix(prefix.to_owned())
        .with_request_timeout(Duration::from_secs(3))
        .with_stream_buffer(4096);
    let ctr = RedisAdapterCtr::new_with_fred_config(subscriber.clone(), cfg)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis (REDIS_URL): {e}"))?;
    Ok(RedisParts {
        ctr,
        subscriber,
        client,
    })
}

/// Call after the namespace is registered (its subscriptions exist by then). Also keeps
/// `health` current: down on a connection error (broadcasts then stay on this node), up once
/// the adapter's subscriptions are back.
pub fn spawn_resubscriber(subscriber: SubscriberClient, health: Arc<RemoteHealth>) {
    let mut reconnects = subscriber.reconnect_rx();
    let mut errors = subscriber.error_rx();
    let on_error = health.clone();
    tokio::spawn(async move {
        while let Ok((e, _)) = errors.recv().await {
            tracing::warn!(error = %e, "Redis connection error; broadcasts stay on this node until it returns");
            on_error.down();
        }
    });
    tokio::spawn(async move {
        while reconnects.recv().await.is_ok() {
            let channels = subscriber.tracked_shard_channels();
            tracing::warn!(
                channels = channels.len(),
                "Redis reconnected; resubscribing the adapter"
            );
            for ch in channels {
                if let Err(e) = subscriber.ssubscribe(ch.to_string()).await {
                    tracing::error!(error = %e, channel = %ch, "resubscribe failed");
                }
            }
            health.up();
        }
    });
}

/// Hands every pub/sub message of `subscriber` to `on_message`, in order, and re-subscribes its
/// channels after each reconnect (fred's subscriber client does not by itself). `what` names
/// the consumer in logs. Returns when the client is dropped.
pub async fn consume<F, Fut>(subscriber: SubscriberClient, what: &'static str, mut on_message: F)
where
    F: FnMut(fred::types::Message) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        tokio::select! {
            m = messages.recv() => match m {
                Ok(m) => on_message(m).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, what, "pub/sub receiver lagged; messages were dropped");
                }
                Err(_) => break,
            },
            r = reconnects.recv() => match r {
                Ok(_) => {
                    for c in subscriber.tracked_channels() {
                        if let Err(e) = subscriber.subscribe(c.to_string()).await {
                            tracing::error!(error = %e, what, "resubscribe failed");
                        }
                    }
                }
                Err(_) => break,
            },
        }
    }
}
