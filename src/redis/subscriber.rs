//! A pub/sub connection. Redis pushes each message on the connection's reader; this hands it,
//! in arrival order, to the bounded queue of its channel, and its reader takes it from there.
//! After a reconnect the connection manager subscribes every channel again by itself.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use ::redis::aio::ConnectionManager;
use ::redis::{PushInfo, PushKind, RedisResult, Value};
use tokio::sync::{mpsc, watch};

use super::client::timed;
use super::{manage, manager_config};

/// A channel's message as Redis delivered it: (channel, payload).
pub(super) type Item = (String, Vec<u8>);

/// Messages a reader may fall behind by before its channel's messages are dropped. It holds
/// about a second of a busy node's room-bus traffic; the Socket.IO adapter sets its own.
pub const PUBSUB_BUFFER: usize = 16 * 1024;

/// Cheap to clone: clones share the connection and its subscriptions.
#[derive(Clone)]
pub struct Subscriber {
    conn: ConnectionManager,
    shared: Arc<Shared>,
}

struct Shared {
    what: &'static str,
    routes: RwLock<HashMap<String, Route>>,
    /// Whether the connection is up with its subscriptions in place.
    link: watch::Sender<bool>,
}

struct Route {
    tx: mpsc::Sender<Item>,
    /// Messages dropped since the reader last kept up, reported once it does.
    dropped: AtomicU64,
}

/// One channel's messages for its reader. Holds the connection open while it is read.
pub struct Messages {
    rx: mpsc::Receiver<Item>,
    _subscriber: Subscriber,
}

pub struct Message {
    pub channel: String,
    pub payload: Vec<u8>,
}

impl Subscriber {
    pub(super) async fn connect(
        client: &::redis::Client,
        what: &'static str,
    ) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            what,
            routes: RwLock::default(),
            link: watch::Sender::new(true),
        });
        let on_push = shared.clone();
        let config = manager_config()
            .set_push_sender(move |info: PushInfo| {
                on_push.push(info);
                Ok::<(), Infallible>(())
            })
            .set_automatic_resubscription();
        let conn = manage(client, config).await?;
        Ok(Subscriber { conn, shared })
    }

    /// Subscribes to `channel`; up to `buffer` of its messages wait for the reader.
    pub async fn subscribe(&self, channel: &str, buffer: usize) -> RedisResult<Messages> {
        Ok(Messages {
            rx: self.route(channel, buffer).await?,
            _subscriber: self.clone(),
        })
    }

    pub(super) async fn route(
        &self,
        channel: &str,
        buffer: usize,
    ) -> RedisResult<mpsc::Receiver<Item>> {
        let (tx, rx) = mpsc::channel(buffer);
        // In place before the SUBSCRIBE: a message may follow its confirmation at once.
        self.shared.routes().insert(
            channel.to_owned(),
            Route {
                tx,
                dropped: AtomicU64::new(0),
            },
        );
        if let Err(e) = timed(self.conn.clone().subscribe(channel)).await {
            self.shared.routes().remove(channel);
            return Err(e);
        }
        Ok(rx)
    }

    pub async fn unsubscribe(&self, channel: &str) -> RedisResult<()> {
        self.shared.routes().remove(channel);
        timed(self.conn.clone().unsubscribe(channel)).await
    }

    /// Follows the connection: false from a drop until its subscriptions are back.
    pub fn link(&self) -> watch::Receiver<bool> {
        self.shared.link.subscribe()
    }
}

impl Shared {
    fn routes(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Route>> {
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs on the connection's reader: must not block.
    fn push(&self, info: PushInfo) {
        match info.kind {
            PushKind::Message => self.deliver(info.data),
            PushKind::Disconnection if self.link.send_replace(false) => {
                tracing::warn!(
                    what = self.what,
                    "Redis connection lost; reconnecting (messages published meanwhile are missed)"
                );
            }
            // The first confirmation after a drop is the resubscription on the new connection.
            PushKind::Subscribe if !self.link.send_replace(true) => {
                tracing::warn!(
                    what = self.what,
                    "Redis reconnected; channels subscribed again"
                );
            }
            _ => {}
        }
    }

    fn deliver(&self, data: Vec<Value>) {
        let mut data = data.into_iter();
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            return;
        };
        let Ok(channel) = String::from_utf8(channel) else {
            return;
        };
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        let Some(route) = routes.get(&channel) else {
            return;
        };
        match route.tx.try_send((channel, payload)) {
            Ok(()) => {
                let missed = route.dropped.swap(0, Ordering::Relaxed);
                if missed > 0 {
                    tracing::error!(
                        missed,
                        what = self.what,
                        "pub/sub receiver lagged; messages were dropped"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if route.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        what = self.what,
                        "pub/sub receiver full; dropping messages until it catches up"
                    );
                }
            }
            // Its reader is gone (shutting down).
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Hands every message of `messages` to `on_message`, in order. `what` names the consumer in
/// logs. Returns when the channel is unsubscribed.
pub async fn consume<F, Fut>(mut messages: Messages, what: &'static str, mut on_message: F)
where
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = ()>,
{
    while let Some((channel, payload)) = messages.rx.recv().await {
        on_message(Message { channel, payload }).await;
    }
    tracing::debug!(what, "pub/sub reader stopped");
}
