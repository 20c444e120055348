//! Redis through the `redis` crate. A node holds one connection for commands and publishes
//! ([`Client`]) and one connection per subscriber ([`Subscriber`]: the Socket.IO adapter, the
//! room bus, the document change bus), so a busy channel never delays another channel's
//! messages or a command's reply. Each is a `ConnectionManager` on RESP3: when Redis goes away
//! it reconnects by itself for as long as it takes, and a subscriber's channels are subscribed
//! again on the new connection (the stock socketioxide `redis` driver does neither, hence our
//! own adapter driver, [`AdapterDriver`]).

mod adapter;
mod client;
mod subscriber;

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use switchboard_handlers::core::hub::remote::RemoteHealth;

pub use adapter::{Adapter, AdapterDriver};
pub use client::Client;
pub use subscriber::{Message, Messages, PUBSUB_BUFFER, Subscriber, consume};

/// How long one command may take, waiting for a reconnect included, before it fails: a
/// broadcast then stays on this node and presence answers UNAVAILABLE instead of hanging.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// One connection attempt; a refused connection fails at once, a black-holed one after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect attempts start this far apart and double up to `RETRY_MAX_DELAY` (plus up to as
/// much again in jitter, so the nodes do not all come back in the same instant).
const RETRY_MIN_DELAY: Duration = Duration::from_millis(100);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(1);

pub struct RedisParts {
    pub ctr: RedisAdapterCtr<AdapterDriver>,
    /// The adapter's driver, to watch its connection ([`spawn_health_watch`]).
    pub driver: AdapterDriver,
    /// Commands and publishes (health checks, presence, the buses' publishers).
    pub client: Client,
}

/// The URL's server and credentials, always on RESP3: subscribers receive their messages as
/// RESP3 pushes, and a connection's drop is seen at once only there.
fn open(url: &str) -> anyhow::Result<::redis::Client> {
    let info = url
        .into_connection_info()
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    ::redis::Client::open(info.set_redis_settings(settings))
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))
}

/// Never gives up reconnecting: a subscriber has no command of its own that would start a new
/// attempt later, so a bounded number of retries would leave it deaf after a long outage.
/// Commands do not wait for it: they fail after `COMMAND_TIMEOUT`.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(usize::MAX)
        .set_min_delay(RETRY_MIN_DELAY)
        .set_max_delay(RETRY_MAX_DELAY)
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
}

/// Opens a connection manager once Redis has answered a first connection: the manager itself
/// would retry forever, and a node that cannot reach Redis at start-up must say so and stop.
async fn manage(
    client: &::redis::Client,
    config: ConnectionManagerConfig,
) -> anyhow::Result<ConnectionManager> {
    let probe = AsyncConnectionConfig::new().set_connection_timeout(Some(CONNECT_TIMEOUT));
    let mut first = client
        .get_multiplexed_async_connection_with_config(&probe)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis (REDIS_URL): {e}"))?;
    ::redis::cmd("PING")
        .query_async::<()>(&mut first)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis (REDIS_URL): {e}"))?;
    drop(first);
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis (REDIS_URL): {e}"))
}

/// Connects the command client.
pub async fn client(url: &str) -> anyhow::Result<Client> {
    Ok(Client::new(manage(&open(url)?, manager_config()).await?))
}

/// A pub/sub connection of its own; `what` names it in logs.
pub async fn subscriber(url: &str, what: &'static str) -> anyhow::Result<Subscriber> {
    Subscriber::connect(&open(url)?, what).await
}

/// The command client and the Socket.IO adapter's constructor over its own subscriber.
pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<RedisParts> {
    let client = client(url).await?;
    let driver = AdapterDriver::new(subscriber(url, "Socket.IO adapter").await?, client.clone());
    let cfg = RedisAdapterConfig::new()
        .with_prefix(prefix.to_owned())
        .with_request_timeout(Duration::from_secs(3))
        .with_stream_buffer(4096);
    let ctr = RedisAdapterCtr::new_with_driver(driver.clone(), cfg);
    Ok(RedisParts {
        ctr,
        driver,
        client,
    })
}

/// Keeps `health` current with the adapter's connection: down when it drops (broadcasts then
/// stay on this node), up once its subscriptions are back.
pub fn spawn_health_watch(driver: &AdapterDriver, health: Arc<RemoteHealth>) {
    let mut link = driver.link();
    tokio::spawn(async move {
        while link.changed().await.is_ok() {
            if *link.borrow_and_update() {
                health.up();
            } else {
                health.down();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_is_opened_on_resp3() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://127.0.0.1:6379/?protocol=resp2",
            "redis://user:pw@127.0.0.1:6379/2?protocol=resp3",
        ] {
            let client = open(url).expect("valid url");
            assert_eq!(
                client.get_connection_info().redis_settings().protocol(),
                ProtocolVersion::RESP3,
                "{url}"
            );
        }
    }

    #[test]
    fn a_bad_url_is_reported() {
        let err = open("http://example").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("REDIS_URL is not a valid Redis URL")),
            "{err:?}"
        );
    }
}
