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

    /// Runs on the connection's reader: must not block. The link guards flip the state and
    /// are true only on a change, so each drop and each return is logged once.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            what: "test",
            routes: RwLock::default(),
            link: watch::Sender::new(true),
        }
    }

    fn route(s: &Shared, channel: &str, buffer: usize) -> mpsc::Receiver<Item> {
        let (tx, rx) = mpsc::channel(buffer);
        s.routes().insert(
            channel.to_owned(),
            Route {
                tx,
                dropped: AtomicU64::new(0),
            },
        );
        rx
    }

    fn message(channel: &str, payload: &str) -> PushInfo {
        PushInfo {
            kind: PushKind::Message,
            data: vec![
                Value::BulkString(channel.into()),
                Value::BulkString(payload.into()),
            ],
        }
    }

    fn confirmation(kind: PushKind, channel: &str) -> PushInfo {
        PushInfo {
            kind,
            data: vec![Value::BulkString(channel.into()), Value::Int(1)],
        }
    }

    #[test]
    fn messages_reach_their_channel_in_order() {
        let s = shared();
        let mut a = route(&s, "a", 8);
        let mut b = route(&s, "b", 8);
        for (ch, p) in [
            ("a", "1"),
            ("b", "x"),
            ("a", "2"),
            ("nobody", "?"),
            ("a", "3"),
        ] {
            s.push(message(ch, p));
        }
        let got: Vec<Item> = std::iter::from_fn(|| a.try_recv().ok()).collect();
        assert_eq!(
            got,
            [("a", "1"), ("a", "2"), ("a", "3")].map(|(c, p)| (c.to_owned(), p.into()))
        );
        assert_eq!(b.try_recv().ok(), Some(("b".to_owned(), b"x".to_vec())));
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn malformed_pushes_are_skipped() {
        let s = shared();
        let mut a = route(&s, "a", 8);
        for data in [
            vec![],
            vec![Value::BulkString(b"a".to_vec())],
            vec![Value::Int(1), Value::BulkString(b"p".to_vec())],
            vec![
                Value::BulkString(vec![0xff]),
                Value::BulkString(b"p".to_vec()),
            ],
        ] {
            s.push(PushInfo {
                kind: PushKind::Message,
                data,
            });
        }
        assert!(a.try_recv().is_err());
    }

    #[test]
    fn a_full_reader_loses_the_overflow_and_then_gets_new_messages() {
        let s = shared();
        let mut a = route(&s, "a", 2);
        for p in ["1", "2", "3", "4"] {
            s.push(message("a", p));
        }
        assert_eq!(
            s.routes()
                .get("a")
                .map(|r| r.dropped.load(Ordering::Relaxed)),
            Some(2)
        );
        assert_eq!(a.try_recv().ok().map(|m| m.1), Some(b"1".to_vec()));
        assert_eq!(a.try_recv().ok().map(|m| m.1), Some(b"2".to_vec()));
        s.push(message("a", "5"));
        assert_eq!(a.try_recv().ok().map(|m| m.1), Some(b"5".to_vec()));
        assert_eq!(
            s.routes()
                .get("a")
                .map(|r| r.dropped.load(Ordering::Relaxed)),
            Some(0)
        );
    }

    #[test]
    fn the_link_is_down_from_a_drop_until_the_resubscription() {
        let s = shared();
        let link = s.link.subscribe();
        s.push(confirmation(PushKind::Subscribe, "a"));
        assert!(*link.borrow());
        s.push(PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        });
        assert!(!*link.borrow());
        s.push(confirmation(PushKind::Unsubscribe, "a"));
        assert!(!*link.borrow());
        s.push(confirmation(PushKind::Subscribe, "a"));
        assert!(*link.borrow());
    }
}
