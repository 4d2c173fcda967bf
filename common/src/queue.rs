//! Slot 2, the queue: decouples the ingestion server (producers) from the
//! storage consumer so a slow disk does not slow down `POST /metrics`.
//!
//! phase0 puts a `Mutex<VecDeque>` here (lost on crash, one lock for every
//! producer); craft 2 puts crossbeam, a durable partitioned log and NATS
//! JetStream behind the same trait. Story: docs chapter 0 and chapter 2.

use std::time::Duration;

use thiserror::Error;

use crate::Metric;

/// Why a queue call failed.
#[derive(Debug, Error)]
pub enum QueueError {
    /// The queue is at capacity; nothing of the batch was enqueued. The
    /// ingestion server answers 503 with Retry-After (backpressure).
    #[error("queue is full ({capacity} metrics); retry later")]
    Full {
        /// The configured capacity, in metrics.
        capacity: usize,
    },
    /// The queue was closed for shutdown; nothing of the batch was enqueued.
    #[error("queue is closed")]
    Closed,
    /// An ack named a delivery this queue does not know (already acked, or
    /// from another queue).
    #[error("unknown ack token {0}")]
    UnknownAck(u64),
    /// The backend failed (disk, broker).
    #[error("queue backend failed: {0}")]
    Backend(String),
}

/// Names one delivery for [`MetricQueue::ack`]. Opaque to the consumer: each
/// implementation decides what the number maps to (an offset range, broker
/// message handles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckToken(pub u64);

/// A batch handed to a consumer, to be acknowledged once processed.
#[derive(Debug)]
pub struct Delivery {
    /// The metrics, in the order their producers pushed them.
    pub metrics: Vec<Metric>,
    /// Pass to [`MetricQueue::ack`] after the batch is safely stored.
    pub ack: AckToken,
}

/// What a 202 means for a queue: where an accepted metric lives until the
/// storage consumer has written it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// In process memory: lost if the process dies before it is stored.
    Memory,
    /// Written to disk, fsynced per the queue's documented policy.
    Disk,
    /// Acknowledged by an external broker.
    Broker,
}

impl Durability {
    /// `memory`, `disk` or `broker`, as `/health` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Memory => "memory",
            Durability::Disk => "disk",
            Durability::Broker => "broker",
        }
    }
}

/// A multi-producer queue of metrics with acknowledged consumption.
///
/// # Contract
/// - [`push`](Self::push) never blocks on a full queue: it fails with
///   [`QueueError::Full`] and enqueues nothing of the batch (all or nothing).
/// - Order: metrics of one series pushed by one producer are delivered in
///   the order pushed. Unpartitioned queues keep each producer's whole push
///   order; partitioned ones (craft 2's log, NATS) route by series, so
///   different series may interleave differently. There is no order across
///   producers.
/// - No loss: every pushed metric is delivered at least once, unless the
///   process dies and [`durability`](Self::durability) is `Memory`.
/// - A delivery not acked may be delivered again (durable queues do so after a
///   restart); in-memory queues may treat ack as bookkeeping only.
/// - [`consume`](Self::consume) may block up to `wait` for data; it returns
///   `Ok(None)` when none arrived in time.
pub trait MetricQueue: Send + Sync {
    /// Enqueues a batch, all or nothing, without blocking.
    ///
    /// # Errors
    /// [`QueueError::Full`] at capacity, [`QueueError::Closed`] after
    /// [`close`](Self::close), [`QueueError::Backend`] on I/O failure.
    fn push(&self, metrics: Vec<Metric>) -> Result<(), QueueError>;

    /// Takes up to `max` metrics (at least 1 when any), waiting up to `wait`.
    ///
    /// # Errors
    /// [`QueueError::Backend`] on I/O failure.
    fn consume(&self, max: usize, wait: Duration) -> Result<Option<Delivery>, QueueError>;

    /// Marks a delivery as processed.
    ///
    /// # Errors
    /// [`QueueError::UnknownAck`] for a token not handed out or acked twice.
    fn ack(&self, token: AckToken) -> Result<(), QueueError>;

    /// Makes every ack so far durable: once it returns, a restart does not
    /// deliver again what was acked. Queues that persist acks lazily (craft
    /// 2's log writes its offsets every 100 ms) do it now; the default does
    /// nothing, right for in-memory queues and for brokers that hear each
    /// ack before `ack` returns.
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the acks cannot be written.
    fn sync_acks(&self) -> Result<(), QueueError> {
        Ok(())
    }

    /// Metrics accepted but not yet consumed (the backlog `/health` reports).
    fn len(&self) -> usize;

    /// True when [`len`](Self::len) is 0.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses further pushes; consuming continues so the backlog can drain.
    fn close(&self);

    /// Where an accepted metric lives until stored.
    fn durability(&self) -> Durability;

    /// What a 202 promises, in one sentence for `/health` and the logs.
    /// Queues with a policy (an fsync interval, a broker's replication)
    /// override it to name theirs.
    fn guarantee(&self) -> String {
        match self.durability() {
            Durability::Memory => {
                "held in process memory: lost if the process dies before it is stored".into()
            }
            Durability::Disk => "written to disk before the 202".into(),
            Durability::Broker => "acknowledged by the broker before the 202".into(),
        }
    }

    /// A short name for logs and `/health` (`phase0`, `crossbeam`, `log`, …).
    fn name(&self) -> &'static str;
}
