//! The storage consumer: the one thread between the queue and the store.
//!
//! It takes a batch, appends it, and acks only after the append succeeded
//! (at-least-once: a crash between the two redelivers, and the store keeps
//! the last write of a series+timestamp). Then every observer and the alert
//! engine see the stored batch. A failing store is retried with backoff,
//! forever in normal running (giving up would drop accepted data) and a few
//! times while draining for shutdown. Its throughput is the pipeline's end
//! to end rate. Story: docs chapter 0, "The storage consumer".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{AlertEngine, AppendObserver, MetricQueue, MetricStore};

use crate::PipelineOptions;

/// What the consumer counted, shared with the running pipeline.
#[derive(Default)]
pub(crate) struct ConsumerStats {
    pub(crate) stored: AtomicU64,
    /// Turns of the loop, counted as each begins: a turn ends when its
    /// delivery is stored and acked, or its consume found nothing. Once a
    /// turn begins after the queue was seen empty, everything accepted
    /// before is stored and acked (`settle`).
    pub(crate) passes: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) last_error: parking_lot::Mutex<String>,
}

/// How many times a failing append is retried while draining for shutdown
/// before the batch is counted as lost (in normal running it retries forever:
/// giving up would silently drop accepted data). Once one batch is lost in
/// the drain the store is evidently down, and the rest get one try each, so
/// a dead disk cannot stretch shutdown to hours.
const DRAIN_RETRIES: u32 = 5;

pub(crate) fn run_storage_consumer(
    queue: &dyn MetricQueue,
    store: &dyn MetricStore,
    observers: &[Arc<dyn AppendObserver>],
    alerting: &dyn AlertEngine,
    draining: &AtomicBool,
    stats: &ConsumerStats,
    options: &PipelineOptions,
) {
    loop {
        stats.passes.fetch_add(1, Ordering::SeqCst);
        let delivery = match queue.consume(options.consume_batch.max(1), options.consume_wait) {
            Ok(Some(delivery)) => delivery,
            Ok(None) => {
                if draining.load(Ordering::SeqCst) && queue.is_empty() {
                    return;
                }
                continue;
            }
            Err(e) => {
                common::say_err!("[Storage] consume failed: {e}");
                if draining.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(50);
        loop {
            match store.append(&delivery.metrics) {
                Ok(()) => {
                    stats
                        .stored
                        .fetch_add(delivery.metrics.len() as u64, Ordering::Relaxed);
                    if options.log_writes {
                        log_write(&delivery.metrics, store);
                    }
                    if let Err(e) = queue.ack(delivery.ack) {
                        common::say_err!("[Storage] ack failed: {e}");
                    }
                    notify(observers, alerting, &delivery.metrics);
                    break;
                }
                Err(e @ common::StorageError::Limit(_)) => {
                    // A limit refuses the same batch every time: retrying
                    // would stall the pipeline for good. The store kept
                    // what the limit allowed; the refusal is reported and
                    // counted in the last error, and the batch acked.
                    common::say_err!("[Storage] {e}");
                    *stats.last_error.lock() = e.to_string();
                    if let Err(e) = queue.ack(delivery.ack) {
                        common::say_err!("[Storage] ack failed: {e}");
                    }
                    notify(observers, alerting, &delivery.metrics);
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    common::say_err!(
                        "[Storage] append of {} metrics failed (attempt {attempt}): {e}",
                        delivery.metrics.len()
                    );
                    *stats.last_error.lock() = e.to_string();
                    if draining.load(Ordering::SeqCst) && attempt >= DRAIN_RETRIES {
                        stats
                            .lost
                            .fetch_add(delivery.metrics.len() as u64, Ordering::Relaxed);
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Waits until every write accepted before the call is stored and acked,
/// then makes the acks durable ([`MetricQueue::sync_acks`]): what
/// [`common::WriteBarrier`] asks of the runtime. The queue seen empty means
/// whatever was pushed before is consumed, by a turn begun by then; the
/// next turn beginning means that one's delivery is stored and acked (one
/// consumer, one delivery at a time). An idle consumer begins it when its
/// consume times out, so settling an idle pipeline takes up to
/// `consume_wait`.
pub(crate) fn settle(
    queue: &dyn MetricQueue,
    stats: &ConsumerStats,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    let pass = loop {
        if queue.is_empty() {
            break stats.passes.load(Ordering::SeqCst);
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "{} accepted metrics are still queued after {timeout:?}: writes arrive faster than they are stored",
                queue.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    while stats.passes.load(Ordering::SeqCst) <= pass {
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "the storage consumer did not finish its batch within {timeout:?}: {}",
                stats.last_error.lock()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    queue.sync_acks().map_err(|e| e.to_string())
}

fn log_write(metrics: &[common::Metric], store: &dyn MetricStore) {
    match metrics {
        [one] => common::say!(
            "[Storage] Wrote {}{}={} @ {} ({})",
            one.name,
            one.labels,
            one.value,
            one.timestamp_ms,
            store.name()
        ),
        many => common::say!("[Storage] Wrote {} metrics ({})", many.len(), store.name()),
    }
}

fn notify(
    observers: &[Arc<dyn AppendObserver>],
    alerting: &dyn AlertEngine,
    metrics: &[common::Metric],
) {
    for observer in observers {
        observer.appended(metrics);
    }
    alerting.observe(metrics);
}
