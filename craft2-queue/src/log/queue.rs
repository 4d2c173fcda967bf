//! [`LogQueue`]: the log behind the queue slot's trait — the platform's
//! durable default.
//!
//! `push` appends (and fsyncs per the policy) before it returns, so a 202
//! means "on disk". The storage consumer is one member of the group
//! `storage`; `ack` commits its batch. `len` is the group's lag: records
//! written and not yet committed, which after a restart includes what was
//! delivered but not stored — those are delivered again (at-least-once).
//! Capacity bounds that lag, so a stalled store turns into 503s instead of
//! a full disk. Story: docs chapter 2, "The log as the queue".

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{AckToken, Delivery, Durability, Metric, MetricQueue, QueueError};
use parking_lot::Mutex;

use super::{CommitToken, FsyncPolicy, GroupMember, Log, LogError};

/// The consumer group the platform's storage consumer uses.
pub const STORAGE_GROUP: &str = "storage";

/// A [`Log`] as a [`MetricQueue`].
pub struct LogQueue {
    log: Log,
    member: GroupMember,
    capacity: usize,
    closed: AtomicBool,
    next_token: AtomicU64,
    tokens: Mutex<HashMap<u64, CommitToken>>,
}

impl LogQueue {
    /// Wraps `log`, consuming as the group [`STORAGE_GROUP`], refusing
    /// pushes while more than `capacity` records are uncommitted.
    ///
    /// # Errors
    /// As [`Log::join`].
    pub fn new(log: Log, capacity: usize) -> Result<LogQueue, LogError> {
        let member = log.join(STORAGE_GROUP)?;
        Ok(LogQueue {
            log,
            member,
            capacity: capacity.max(1),
            closed: AtomicBool::new(false),
            next_token: AtomicU64::new(0),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The log underneath (offsets, stats, corruption reports).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The fsync policy.
    pub fn fsync(&self) -> FsyncPolicy {
        self.log.config().fsync
    }
}

fn backend(e: LogError) -> QueueError {
    QueueError::Backend(e.to_string())
}

impl MetricQueue for LogQueue {
    fn push(&self, metrics: Vec<Metric>) -> Result<(), QueueError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        if metrics.is_empty() {
            return Ok(());
        }
        // Checked without a lock, so pushes never wait for each other here:
        // concurrent pushes may pass the capacity by at most their own sizes.
        let lag = self.member.lag() as usize;
        if lag.saturating_add(metrics.len()) > self.capacity {
            return Err(QueueError::Full {
                capacity: self.capacity,
            });
        }
        self.log.append(&metrics).map_err(backend)
    }

    fn consume(&self, max: usize, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let Some(batch) = self.member.poll(max, wait).map_err(backend)? else {
            return Ok(None);
        };
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.tokens.lock().insert(token, batch.token);
        Ok(Some(Delivery {
            metrics: batch.records.into_iter().map(|(_, m)| m).collect(),
            ack: AckToken(token),
        }))
    }

    fn ack(&self, token: AckToken) -> Result<(), QueueError> {
        let Some(commit) = self.tokens.lock().remove(&token.0) else {
            return Err(QueueError::UnknownAck(token.0));
        };
        self.member
            .commit(commit)
            .map_err(|_| QueueError::UnknownAck(token.0))?;
        if self.closed.load(Ordering::Acquire) {
            // Draining for shutdown: write the offsets now rather than at
            // the next tick, so a clean stop re-delivers nothing.
            self.log.sync().map_err(backend)?;
        }
        Ok(())
    }

    /// Writes the offsets now (and fsyncs the partitions) instead of at
    /// the next tick.
    fn sync_acks(&self) -> Result<(), QueueError> {
        self.log.sync().map_err(backend)
    }

    fn len(&self) -> usize {
        self.member.lag() as usize
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn durability(&self) -> Durability {
        Durability::Disk
    }

    /// What a 202 means under this log's fsync policy.
    fn guarantee(&self) -> String {
        self.log.config().fsync.guarantee()
    }

    fn name(&self) -> &'static str {
        "log"
    }
}

impl Drop for LogQueue {
    fn drop(&mut self) {
        if let Err(e) = self.log.shutdown() {
            common::say_err!("[Log] final sync failed: {e}");
        }
    }
}
