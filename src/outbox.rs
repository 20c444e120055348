//! A connection's bounded queue of outgoing frames, for the plain-WebSocket front ends: the hub
//! pushes without waiting, the connection's task pops and writes. A connection that lets its
//! queue fill up is a slow consumer: the queue closes, the task sees the end and closes the
//! socket, and nobody else ever waits for it.
//!
//! Hand-written rather than a `tokio::sync::mpsc` channel because every idle connection holds
//! one: an mpsc channel allocates its first block of 32 slots up front (~1.3 KB per connection
//! here), while an empty `VecDeque` holds nothing (docs/performance.md, "Pusher protocol").

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Why a push was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue was full: it is closed now.
    Full,
    /// The queue was closed before.
    Closed,
}

struct State<T> {
    queue: VecDeque<T>,
    closed: bool,
}

pub struct Outbox<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    capacity: usize,
}

/// Capacity kept by an emptied queue; beyond it the memory of a burst is given back.
const KEEP: usize = 16;

impl<T> Outbox<T> {
    pub fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item`; a full queue closes instead.
    pub fn push(&self, item: T) -> Result<(), Refused> {
        let mut s = self.lock();
        if s.closed {
            return Err(Refused::Closed);
        }
        if s.queue.len() >= self.capacity {
            s.closed = true;
            s.queue = VecDeque::new();
            drop(s);
            self.ready.notify_one();
            return Err(Refused::Full);
        }
        s.queue.push_back(item);
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// Closes the queue: the consumer's next `pop` ends.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.queue = VecDeque::new();
        drop(s);
        self.ready.notify_one();
    }

    /// The next item if one is queued, without waiting.
    pub fn try_pop(&self) -> Option<T> {
        let mut s = self.lock();
        if s.closed {
            return None;
        }
        s.queue.pop_front()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next item; `None` once the queue is closed. One consumer only.
    pub async fn pop(&self) -> Option<T> {
        loop {
            {
                let mut s = self.lock();
                if s.closed {
                    return None;
                }
                if let Some(item) = s.queue.pop_front() {
                    if s.queue.is_empty() && s.queue.capacity() > KEEP {
                        s.queue = VecDeque::new();
                    }
                    return Some(item);
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push between the check
            // above and this await is not missed.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_and_a_full_queue_closes() {
        let q = Outbox::new(2);
        assert_eq!(q.push(1), Ok(()));
        assert_eq!(q.push(2), Ok(()));
        assert_eq!(q.pop().await, Some(1));
        assert_eq!(q.push(3), Ok(()));
        assert_eq!(q.push(4), Err(Refused::Full));
        assert_eq!(q.pop().await, None, "a slow consumer's backlog is dropped");
        assert_eq!(q.push(5), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_for_a_push_and_for_close() {
        let q = Arc::new(Outbox::new(4));
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.push("x"), Ok(()));
        assert_eq!(waiting.await.ok().flatten(), Some("x"));
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.close();
        assert_eq!(waiting.await.ok().flatten(), None);
    }

    #[tokio::test]
    async fn an_emptied_queue_gives_its_memory_back() {
        let q = Outbox::new(1024);
        for i in 0..500 {
            assert_eq!(q.push(i), Ok(()));
        }
        for _ in 0..500 {
            assert!(q.pop().await.is_some());
        }
        assert_eq!(q.lock().queue.capacity(), 0);
    }
}
