//! # phase0 — the seed's monitoring platform, done the naive way
//!
//! Five components in one process, each the simplest thing that works, each
//! with its bottleneck left in plain sight for the crafts to remove:
//!
//! # Layout
//!
//! | slot | file | the deliberate bottleneck |
//! |---|---|---|
//! | 1 ingestion | `ingestion/mod.rs`, `ingestion/http1.rs` | one thread, blocking, one request per connection |
//! | 2 queue | `queue.rs` | one mutex, polled every 100 ms, lost on crash |
//! | 3 storage | `storage.rs` | open/append/close per metric, JSON text |
//! | 4 query | `query.rs` | full file scan per request |
//! | 5 alerting | `alerting.rs`, `notifier.rs` | polls every 10 s, re-queries each window, prints |
//!
//! [`build`] gathers them as `pipeline::Components`, which the runtime
//! crate runs; `main.rs` adds the command line. The story is in
//! `docs/src/ch00-phase0.md`.

pub mod alerting;
pub mod ingestion;
pub mod notifier;
pub mod query;
pub mod queue;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{AlertRule, Clock, MetricStore, Notifier, QueryEngine, StorageError};
use pipeline::Components;

/// Everything phase0 can be told.
#[derive(Clone)]
pub struct Config {
    /// Where `phase0_metrics.jsonl` lives.
    pub data_dir: PathBuf,
    /// The alert rules.
    pub rules: Vec<AlertRule>,
    /// How often the alerting engine checks.
    pub alert_interval: Duration,
    /// Queue capacity in metrics.
    pub queue_capacity: usize,
    /// HTTP limits.
    pub limits: ingestion::Limits,
    /// Where alerts go.
    pub notifiers: Vec<Arc<dyn Notifier>>,
}

impl Default for Config {
    /// The seed: working directory, three default rules, 10 s checks,
    /// alerts to the console.
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("."),
            rules: alerting::default_rules(),
            alert_interval: alerting::DEFAULT_INTERVAL,
            queue_capacity: queue::DEFAULT_CAPACITY,
            limits: ingestion::Limits::default(),
            notifiers: vec![Arc::new(notifier::ConsoleNotifier)],
        }
    }
}

/// phase0's five components over `clock`.
///
/// # Errors
/// [`StorageError`] when the data directory cannot be prepared.
pub fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Components, StorageError> {
    let store: Arc<dyn MetricStore> = Arc::new(storage::JsonlFileStore::open(&config.data_dir)?);
    Ok(build_with_store(config, clock, store))
}

/// phase0's components around another store (`platform --storage craft3`):
/// the scan query engine and the polling alert engine then read from it.
pub fn build_with_store(
    config: Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn MetricStore>,
) -> Components {
    let query: Arc<dyn QueryEngine> = Arc::new(query::ScanQueryEngine::new(store.clone()));
    let alerting = Arc::new(alerting::PollingAlertEngine::new(
        config.rules,
        query.clone(),
        config.notifiers,
        config.alert_interval,
    ));
    Components::new(
        Arc::new(ingestion::SingleThreadServer::new(config.limits)),
        Arc::new(queue::MutexQueue::new(config.queue_capacity)),
        store,
        query,
        alerting,
        clock,
    )
}

/// The pipeline options that reproduce the seed: the storage consumer takes
/// one metric at a time and logs each write.
pub fn seed_pipeline_options(log_writes: bool) -> pipeline::PipelineOptions {
    pipeline::PipelineOptions {
        consume_batch: 1,
        consume_wait: queue::POLL_INTERVAL,
        verbose: true,
        log_writes,
    }
}
