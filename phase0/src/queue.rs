//! phase0's queue: a `VecDeque` behind one `std::sync::Mutex`, as the seed's
//! `std::queue` + mutex.
//!
//! Bottlenecks, on purpose: every producer and the consumer contend for one
//! lock; an empty queue is polled every 100 ms (no condition variable — the
//! seed's `sleep(100ms)`), so a metric can wait up to 100 ms before the
//! storage consumer sees it; everything queued is lost if the process dies.
//! Craft 2 removes each of these. Story: docs chapter 0, "The queue".

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{AckToken, Delivery, Durability, Metric, MetricQueue, QueueError};

/// The seed polls an empty queue this often.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Default capacity: large enough that phase0 only refuses under a flood,
/// small enough that a flood cannot eat all memory (~1M metrics ≈ 200 MB).
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// A bounded FIFO of metrics behind one mutex.
pub struct MutexQueue {
    state: Mutex<State>,
    capacity: usize,
}

struct State {
    items: VecDeque<Metric>,
    closed: bool,
    next_token: u64,
    /// Deliveries handed out and not yet acked. Memory-only: there is nothing
    /// to redeliver after a crash, but a double ack is still a caller bug.
    outstanding: HashSet<u64>,
}

impl MutexQueue {
    /// A queue holding at most `capacity` metrics.
    pub fn new(capacity: usize) -> Self {
        MutexQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                next_token: 0,
                outstanding: HashSet::new(),
            }),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the deque half-updated
        // (each operation is a single push/pop), so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self, max: usize) -> Option<Delivery> {
        let mut state = self.lock();
        if state.items.is_empty() {
            return None;
        }
        let n = max.max(1).min(state.items.len());
        let metrics: Vec<Metric> = state.items.drain(..n).collect();
        let token = state.next_token;
        state.next_token += 1;
        state.outstanding.insert(token);
        Some(Delivery {
            metrics,
            ack: AckToken(token),
        })
    }
}

impl Default for MutexQueue {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MetricQueue for MutexQueue {
    fn push(&self, metrics: Vec<Metric>) -> Result<(), QueueError> {
        let mut state = self.lock();
        if state.closed {
            return Err(QueueError::Closed);
        }
        if state.items.len() + metrics.len() > self.capacity {
            return Err(QueueError::Full {
                capacity: self.capacity,
            });
        }
        state.items.extend(metrics);
        Ok(())
    }

    fn consume(&self, max: usize, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(delivery) = self.take(max) {
                return Ok(Some(delivery));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // The seed's poll: sleep, then look again. A condvar would wake
            // the consumer at once; craft 2's channels do.
            std::thread::sleep(POLL_INTERVAL.min(deadline - now));
        }
    }

    fn ack(&self, token: AckToken) -> Result<(), QueueError> {
        if self.lock().outstanding.remove(&token.0) {
            Ok(())
        } else {
            Err(QueueError::UnknownAck(token.0))
        }
    }

    fn len(&self) -> usize {
        self.lock().items.len()
    }

    fn close(&self) {
        self.lock().closed = true;
    }

    fn durability(&self) -> Durability {
        Durability::Memory
    }

    fn name(&self) -> &'static str {
        "phase0"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn conformance() {
        common::testkit::queue::run_all(&|capacity| Arc::new(MutexQueue::new(capacity)));
    }
}
