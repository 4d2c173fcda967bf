//! The first step off phase0's queue: a bounded MPMC channel
//! (crossbeam-channel) carrying whole batches.
//!
//! Removes: the single lock every producer and the consumer fight over
//! (crossbeam's channel is lock-free on the fast path), and the 100 ms poll
//! (a consumer parks and is woken by the next push). Keeps: memory-only
//! durability — a crash loses the backlog; `log/` removes that.
//!
//! Batches travel as one `Vec` per push, so a 1,000-metric push costs one
//! channel operation, not 1,000. Capacity is counted in metrics with an
//! atomic reservation, which is what makes a push all-or-nothing without a
//! lock. Story: docs chapter 2, "Step 1: crossbeam".

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{AckToken, Delivery, Durability, Metric, MetricQueue, QueueError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;

use crate::backlog::Backlog;

/// A bounded, lock-free MPMC queue of metric batches.
pub struct CrossbeamQueue {
    sender: Sender<Vec<Metric>>,
    receiver: Receiver<Vec<Metric>>,
    /// Metrics pushed and not yet handed to a consumer; reserved before the
    /// send so capacity is never exceeded.
    backlog: Backlog,
    closed: AtomicBool,
    /// The tail of a batch larger than a consumer's `max`, kept for the next
    /// `consume` so a batch is never reordered.
    /// The unread tail of a batch larger than the last `max`: an
    /// iterator, so each delivery moves its share out of the front without
    /// shifting (or copying) the rest.
    leftover: Mutex<std::vec::IntoIter<Metric>>,
    next_token: AtomicU64,
    /// Deliveries handed out and not yet acked. Bookkeeping only (nothing is
    /// redelivered from memory), but a double ack is still a caller bug.
    outstanding: Mutex<HashSet<u64>>,
}

impl CrossbeamQueue {
    /// A queue holding at most `capacity` metrics (at least 1).
    pub fn new(capacity: usize) -> Self {
        // The channel is unbounded in batches; the metric count bounds it.
        let (sender, receiver) = crossbeam_channel::unbounded();
        CrossbeamQueue {
            sender,
            receiver,
            backlog: Backlog::new(capacity, 0),
            closed: AtomicBool::new(false),
            leftover: Mutex::new(Vec::new().into_iter()),
            next_token: AtomicU64::new(0),
            outstanding: Mutex::new(HashSet::new()),
        }
    }

    /// Moves up to `max` metrics from `batch` into `out`; what does not fit
    /// becomes the leftover, read from the front by later deliveries.
    fn take_from(
        batch: Vec<Metric>,
        out: &mut Vec<Metric>,
        leftover: &mut std::vec::IntoIter<Metric>,
        max: usize,
    ) {
        let room = max - out.len();
        if batch.len() <= room {
            if out.is_empty() {
                *out = batch;
            } else {
                out.extend(batch);
            }
        } else {
            let mut rest = batch.into_iter();
            out.extend(rest.by_ref().take(room));
            *leftover = rest;
        }
    }

    fn deliver(&self, metrics: Vec<Metric>) -> Delivery {
        self.backlog.release(metrics.len());
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.outstanding.lock().insert(token);
        Delivery {
            metrics,
            ack: AckToken(token),
        }
    }
}

impl MetricQueue for CrossbeamQueue {
    fn push(&self, metrics: Vec<Metric>) -> Result<(), QueueError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        if metrics.is_empty() {
            return Ok(());
        }
        self.backlog.reserve(metrics.len())?;
        let n = metrics.len();
        if self.sender.send(metrics).is_err() {
            // Unreachable while `self` holds the receiver; undo anyway.
            self.backlog.release(n);
            return Err(QueueError::Closed);
        }
        Ok(())
    }

    fn consume(&self, max: usize, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let max = max.max(1);
        // One consumer at a time assembles a delivery, so a split batch's
        // tail is handed out before anything received after it.
        let mut leftover = self.leftover.lock();
        let mut out = Vec::new();
        if leftover.len() > 0 {
            out.extend(leftover.by_ref().take(max));
        }
        if out.is_empty() {
            let deadline = Instant::now() + wait;
            match self.receiver.recv_deadline(deadline) {
                Ok(batch) => Self::take_from(batch, &mut out, &mut leftover, max),
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
        while out.len() < max && leftover.len() == 0 {
            match self.receiver.try_recv() {
                Ok(batch) => Self::take_from(batch, &mut out, &mut leftover, max),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        drop(leftover);
        Ok(Some(self.deliver(out)))
    }

    fn ack(&self, token: AckToken) -> Result<(), QueueError> {
        if self.outstanding.lock().remove(&token.0) {
            Ok(())
        } else {
            Err(QueueError::UnknownAck(token.0))
        }
    }

    fn len(&self) -> usize {
        self.backlog.get()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn durability(&self) -> Durability {
        Durability::Memory
    }

    fn name(&self) -> &'static str {
        "crossbeam"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::testkit::metric;

    #[test]
    fn a_batch_larger_than_max_is_split_in_order() {
        let queue = CrossbeamQueue::new(100);
        let batch: Vec<Metric> = (0..10).map(|i| metric("m", &[], i as f64, i)).collect();
        queue.push(batch.clone()).unwrap();
        queue.push(vec![metric("m", &[], 10.0, 10)]).unwrap();
        let mut seen = Vec::new();
        while let Some(d) = queue.consume(4, Duration::from_millis(10)).unwrap() {
            assert!(d.metrics.len() <= 4);
            seen.extend(d.metrics);
            queue.ack(d.ack).unwrap();
        }
        let values: Vec<i64> = seen.iter().map(|m| m.value as i64).collect();
        assert_eq!(values, (0..=10).collect::<Vec<_>>());
        assert!(queue.is_empty());
    }
}
