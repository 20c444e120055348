//! The socketioxide Redis adapter's driver over our connections. The stock `redis` driver holds
//! one plain multiplexed connection that never reconnects: after a Redis restart its node stays
//! cut off until the process restarts (SOCKETIOXIDE-NOTES.md §3). This one subscribes through a
//! [`Subscriber`], which reconnects and subscribes again by itself, and publishes through the
//! node's command [`Client`]. Plain (not sharded) pub/sub, like the stock driver.

use ::redis::RedisError;
use socketioxide::adapter::Emitter;
use socketioxide_redis::CustomRedisAdapter;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::watch;

use super::{Client, Subscriber};

/// The adapter type of a Redis-backed node.
pub type Adapter = CustomRedisAdapter<Emitter, AdapterDriver>;

#[derive(Clone)]
pub struct AdapterDriver {
    subscriber: Subscriber,
    client: Client,
}

impl AdapterDriver {
    pub fn new(subscriber: Subscriber, client: Client) -> Self {
        AdapterDriver { subscriber, client }
    }

    /// See [`Subscriber::link`].
    pub fn link(&self) -> watch::Receiver<bool> {
        self.subscriber.link()
    }
}

impl Driver for AdapterDriver {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.client.publish(&chan, val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        Ok(MessageStream::new(
            self.subscriber.route(&chan, size).await?,
        ))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.subscriber.unsubscribe(&chan).await
    }

    /// Nodes subscribed to the adapter's request channel (each node subscribes once).
    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = self
            .client
            .query(::redis::cmd("PUBSUB").arg("NUMSUB").arg(chan))
            .await?;
        Ok(count)
    }
}
