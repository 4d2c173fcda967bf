//! [`MetricWriter`]: how a slot that *derives* samples (craft 5's
//! recording rules) puts them back into the pipeline — through the queue,
//! exactly where an ingested write goes, so a derived sample is stored,
//! observed (alert rules on recorded series see it on ingest, craft 4's
//! cache hears of it) and queryable like any other, and a full queue
//! refuses it like any other write.
//!
//! A slot gets a writer, not the queue: it may add samples, never consume,
//! acknowledge or close. The composer, which owns the queue, hands the
//! writer out ([`QueueWriter`] over the pipeline's own queue). Writing
//! straight into the store instead would skip the queue's durability and
//! the storage consumer's observers, and would need a second writer to a
//! store built for one. Story: docs chapter 5, "Recording rules".

use std::sync::Arc;

use crate::{Metric, MetricQueue, QueueError};

/// A sink for derived samples.
///
/// # Contract
/// - [`write`](Self::write) never blocks on a full pipeline: it fails with
///   [`QueueError::Full`] and writes nothing of the batch (all or nothing),
///   so the caller can count and report the refusal — a refused batch is
///   never silently dropped by the writer.
/// - An accepted batch is stored as an ingested one would be, with the
///   same ordering and durability promise (the queue's
///   [`Durability`](crate::Durability)). *Stored* is later than
///   *accepted*: a caller that must read its own write waits on the
///   pipeline's [`WriteBarrier`](crate::WriteBarrier).
/// - Samples are not validated again: the caller writes names and labels
///   that [`Metric::validate`]-style rules accept.
pub trait MetricWriter: Send + Sync {
    /// Writes a batch, all or nothing, without blocking.
    ///
    /// # Errors
    /// [`QueueError::Full`] when the pipeline is at capacity,
    /// [`QueueError::Closed`] once it shuts down, [`QueueError::Backend`]
    /// when the queue's disk or broker fails.
    fn write(&self, metrics: Vec<Metric>) -> Result<(), QueueError>;
}

/// The pipeline's queue as a [`MetricWriter`]: derived samples enter where
/// ingested ones do.
pub struct QueueWriter {
    queue: Arc<dyn MetricQueue>,
}

impl QueueWriter {
    /// A writer pushing into `queue`.
    pub fn new(queue: Arc<dyn MetricQueue>) -> Self {
        QueueWriter { queue }
    }
}

impl std::fmt::Debug for QueueWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWriter")
            .field("queue", &self.queue.name())
            .finish()
    }
}

impl MetricWriter for QueueWriter {
    fn write(&self, metrics: Vec<Metric>) -> Result<(), QueueError> {
        self.queue.push(metrics)
    }
}
