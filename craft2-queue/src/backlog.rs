//! A capacity-bounded count of metrics, without a lock: how the in-memory
//! and broker queues make `push` all-or-nothing and never blocking.
//!
//! A push reserves room for its whole batch with one compare-and-swap loop
//! before it enqueues anything; a consume (or a failed enqueue) releases it.
//! phase0 did the same check under its one mutex; here concurrent producers
//! only contend on one atomic word. Story: docs chapter 2, "Step 1:
//! crossbeam".

use std::sync::atomic::{AtomicUsize, Ordering};

use common::QueueError;

/// Metrics accepted and not yet taken, bounded by a capacity.
#[derive(Debug)]
pub struct Backlog {
    count: AtomicUsize,
    capacity: usize,
}

impl Backlog {
    /// An empty backlog of at most `capacity` (at least 1) metrics, starting
    /// at `initial` (what a broker already holds).
    pub fn new(capacity: usize, initial: usize) -> Self {
        Backlog {
            count: AtomicUsize::new(initial),
            capacity: capacity.max(1),
        }
    }

    /// Reserves room for `n` metrics, or fails with [`QueueError::Full`]
    /// without reserving anything.
    ///
    /// # Errors
    /// [`QueueError::Full`] when `n` more would pass the capacity.
    pub fn reserve(&self, n: usize) -> Result<(), QueueError> {
        let mut current = self.count.load(Ordering::Relaxed);
        loop {
            if current.saturating_add(n) > self.capacity {
                return Err(QueueError::Full {
                    capacity: self.capacity,
                });
            }
            match self.count.compare_exchange_weak(
                current,
                current + n,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes `n` metrics off the backlog, never below zero.
    pub fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let _ = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// The current count.
    pub fn get(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Lowers the count from `seen` to `to` if nothing changed it meanwhile
    /// (a resync with a broker's own count).
    pub fn correct(&self, seen: usize, to: usize) {
        let _ = self
            .count
            .compare_exchange(seen, to, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_all_or_nothing_and_release_saturates() {
        let backlog = Backlog::new(10, 0);
        backlog.reserve(8).unwrap();
        assert!(matches!(
            backlog.reserve(3),
            Err(QueueError::Full { capacity: 10 })
        ));
        assert_eq!(backlog.get(), 8);
        backlog.reserve(2).unwrap();
        backlog.release(15);
        assert_eq!(backlog.get(), 0);
        backlog.reserve(10).unwrap();
        backlog.correct(10, 4);
        assert_eq!(backlog.get(), 4);
        backlog.correct(10, 0);
        assert_eq!(backlog.get(), 4, "a stale correction is ignored");
    }
}
