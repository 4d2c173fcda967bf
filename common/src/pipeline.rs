//! `Pipeline`: wires any five slot implementations into one running system.
//!
//! It binds nothing itself (the caller hands it a listener, so tests use port
//! 0), starts the storage consumer thread (queue → store, ack after append),
//! the alert loop, and the ingestion server; and on shutdown stops them in
//! the order that loses nothing: stop accepting, finish in-flight requests,
//! close the queue, drain it into storage, flush. Story: docs chapter 0.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

use crate::http::Routes;
use crate::{AlertEngine, Clock, IngestionServer, MetricQueue, MetricStore, QueryEngine, Shutdown};

/// The five slots (plus the clock) a pipeline runs.
#[derive(Clone)]
pub struct Components {
    /// Slot 1.
    pub ingestion: Arc<dyn IngestionServer>,
    /// Slot 2.
    pub queue: Arc<dyn MetricQueue>,
    /// Slot 3.
    pub store: Arc<dyn MetricStore>,
    /// Slot 4 (usually built over `store`).
    pub query: Arc<dyn QueryEngine>,
    /// Slot 5 (usually built over `query`).
    pub alerting: Arc<dyn AlertEngine>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

/// Knobs of the pipeline itself.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Most metrics the storage consumer takes per delivery (phase0: 1, the
    /// seed pops one at a time).
    pub consume_batch: usize,
    /// How long one `consume` call may wait for data.
    pub consume_wait: Duration,
    /// Print the seed's startup banner and per-write log lines.
    pub verbose: bool,
    /// Log each stored batch (`[Storage] wrote …`), as the seed's video shows.
    pub log_writes: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            consume_batch: 1000,
            consume_wait: Duration::from_millis(100),
            verbose: true,
            log_writes: false,
        }
    }
}

/// Why the pipeline could not start or stop cleanly.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// A thread could not be spawned or the listener inspected.
    #[error("pipeline I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A component thread panicked (a bug; reported, not propagated).
    #[error("the {0} thread panicked")]
    ThreadPanicked(&'static str),
    /// The ingestion server stopped with an error.
    #[error(transparent)]
    Ingestion(#[from] crate::IngestionError),
    /// Some accepted metrics could not be stored before exit.
    #[error("{lost} accepted metrics could not be stored: {last_error}")]
    Lost {
        /// How many.
        lost: u64,
        /// The last storage error seen.
        last_error: String,
    },
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Metrics the storage consumer stored over the pipeline's life.
    pub stored: u64,
    /// Metrics still in the queue when the drain ended (0 unless storage failed).
    pub left_in_queue: usize,
}

#[derive(Default)]
struct ConsumerStats {
    stored: AtomicU64,
    lost: AtomicU64,
    last_error: parking_lot::Mutex<String>,
}

/// A started pipeline.
pub struct RunningPipeline {
    components: Components,
    local_addr: SocketAddr,
    shutdown: Shutdown,
    draining: Arc<AtomicBool>,
    stats: Arc<ConsumerStats>,
    server: Option<JoinHandle<Result<(), crate::IngestionError>>>,
    consumer: Option<JoinHandle<()>>,
    alert_loop: Option<JoinHandle<()>>,
}

/// Starts pipelines.
pub struct Pipeline;

impl Pipeline {
    /// Starts the storage consumer, the alert loop and the ingestion server on
    /// `listener`, printing the seed's startup log when `options.verbose`.
    ///
    /// # Errors
    /// [`PipelineError::Io`] when a thread cannot be spawned.
    pub fn start(
        components: Components,
        listener: TcpListener,
        options: PipelineOptions,
    ) -> Result<RunningPipeline, PipelineError> {
        Self::start_with_shutdown(components, listener, options, Shutdown::new())
    }

    /// As [`start`](Self::start), watching a shutdown signal the caller made
    /// earlier — so signal handlers can be installed before the port opens,
    /// and tests can see the moment shutdown begins.
    ///
    /// # Errors
    /// [`PipelineError::Io`] when a thread cannot be spawned.
    pub fn start_with_shutdown(
        components: Components,
        listener: TcpListener,
        options: PipelineOptions,
        shutdown: Shutdown,
    ) -> Result<RunningPipeline, PipelineError> {
        let local_addr = listener.local_addr()?;
        let draining = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ConsumerStats::default());
        let verbose = options.verbose;

        let consumer = {
            let queue = components.queue.clone();
            let store = components.store.clone();
            let alerting = components.alerting.clone();
            let query = components.query.clone();
            let draining = draining.clone();
            let stats = stats.clone();
            let options = options.clone();
            let guard = TriggerOnPanic(shutdown.clone(), "storage consumer");
            std::thread::Builder::new()
                .name("storage-consumer".into())
                .spawn(move || {
                    let _guard = guard;
                    run_storage_consumer(
                        &*queue, &*store, &*query, &*alerting, &draining, &stats, &options,
                    )
                })?
        };
        if verbose {
            crate::say!(
                "[Queue] {}: a 202 means {}",
                components.queue.name(),
                components.queue.guarantee()
            );
            crate::say!(
                "[Storage] Storage consumer started: {}",
                components.store.describe()
            );
        }

        let rules = components.alerting.rules();
        if verbose {
            crate::say!("[Alerting] Loaded {} alert rules:", rules.len());
            for rule in &rules {
                crate::say!("  - {} {}", rule.metric, rule.describe_condition());
            }
        }
        let alert_loop = {
            let alerting = components.alerting.clone();
            let clock = components.clock.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("alert-loop".into())
                .spawn(move || run_alert_loop(&*alerting, &*clock, &shutdown))?
        };
        if verbose {
            crate::say!(
                "[Alerting] Alerting engine started, checking every {} ({})",
                describe_interval(components.alerting.interval()),
                components.alerting.name()
            );
        }

        let routes = Arc::new(Routes::new(
            components.queue.clone(),
            &components.store,
            components.query.clone(),
            &components.alerting,
            components.clock.clone(),
            components.ingestion.name(),
        ));
        let server = {
            let ingestion = components.ingestion.clone();
            let shutdown = shutdown.clone();
            let guard = TriggerOnPanic(shutdown.clone(), "ingestion");
            std::thread::Builder::new()
                .name("ingestion".into())
                .spawn(move || {
                    let _guard = guard;
                    let result = ingestion.serve(listener, routes, shutdown.clone());
                    // A server that dies on its own takes the pipeline down
                    // cleanly rather than leaving a process that accepts nothing.
                    shutdown.trigger();
                    result
                })?
        };
        if verbose {
            crate::say!(
                "[Ingestion] Server listening on {local_addr} ({})",
                components.ingestion.describe()
            );
            crate::say!("\nEndpoints:");
            crate::say!(
                "  POST /metrics   {{\"name\":\"cpu_usage\",\"value\":85}}  -> 202 {{\"status\":\"accepted\"}}"
            );
            crate::say!(
                "  GET  /query?name=cpu_usage&start=<ms>&end=<ms>  (inclusive, both optional)"
            );
            crate::say!("  GET  /health");
            crate::say!("\nTry:");
            crate::say!(
                "  curl -X POST http://localhost:{}/metrics -H \"Content-Type: application/json\" -d '{{\"name\":\"cpu_usage\",\"value\":85}}'",
                local_addr.port()
            );
            crate::say!("\nPress Ctrl-C to stop (the queue is drained into storage first).");
        }

        Ok(RunningPipeline {
            components,
            local_addr,
            shutdown,
            draining,
            stats,
            server: Some(server),
            consumer: Some(consumer),
            alert_loop: Some(alert_loop),
        })
    }
}

impl RunningPipeline {
    /// The address the ingestion server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shutdown signal: trigger it to stop the pipeline.
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Metrics stored so far.
    pub fn stored(&self) -> u64 {
        self.stats.stored.load(Ordering::Relaxed)
    }

    /// Blocks until the shutdown signal is triggered (Ctrl-C, SIGTERM, a
    /// failed server), then stops.
    ///
    /// # Errors
    /// As [`stop`](Self::stop).
    pub fn run_until_shutdown(self) -> Result<ShutdownReport, PipelineError> {
        self.shutdown.wait();
        self.stop()
    }

    /// Stops accepting, finishes in-flight requests, drains the queue into
    /// storage, flushes and joins every thread. Every step runs even when an
    /// earlier one failed (a panicked server must not cost the backlog).
    ///
    /// # Errors
    /// The first of: [`PipelineError::ThreadPanicked`],
    /// [`PipelineError::Ingestion`] if the server had failed,
    /// [`PipelineError::Lost`] if accepted metrics could not be stored.
    pub fn stop(mut self) -> Result<ShutdownReport, PipelineError> {
        self.shutdown.trigger();
        // A blocking accept() only notices the flag when a connection arrives.
        let _ = TcpStream::connect_timeout(&wake_address(self.local_addr), Duration::from_secs(1));
        let mut first_error: Option<PipelineError> = None;
        match self.server.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => {
                first_error.get_or_insert(e.into());
            }
            Some(Err(_)) => {
                first_error.get_or_insert(PipelineError::ThreadPanicked("ingestion"));
            }
            Some(Ok(Ok(()))) | None => {}
        }

        self.components.queue.close();
        self.draining.store(true, Ordering::SeqCst);
        if let Some(Err(_)) = self.consumer.take().map(JoinHandle::join) {
            first_error.get_or_insert(PipelineError::ThreadPanicked("storage consumer"));
        }
        if let Some(Err(_)) = self.alert_loop.take().map(JoinHandle::join) {
            first_error.get_or_insert(PipelineError::ThreadPanicked("alert loop"));
        }
        let flush = self.components.store.flush();

        let left_in_queue = self.components.queue.len();
        let lost = self.stats.lost.load(Ordering::Relaxed) + left_in_queue as u64;
        if lost > 0 {
            first_error.get_or_insert(PipelineError::Lost {
                lost,
                last_error: self.stats.last_error.lock().clone(),
            });
        }
        if let Err(e) = flush {
            first_error.get_or_insert(PipelineError::Lost {
                lost: 0,
                last_error: format!("final flush failed: {e}"),
            });
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(ShutdownReport {
                stored: self.stats.stored.load(Ordering::Relaxed),
                left_in_queue,
            }),
        }
    }
}

/// Triggers shutdown if the thread holding it unwinds: a dead component
/// takes the pipeline down (and `stop` still drains) instead of leaving a
/// process that answers 202 into the void.
struct TriggerOnPanic(Shutdown, &'static str);

impl Drop for TriggerOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::say_err!("[Pipeline] the {} thread panicked; shutting down", self.1);
            self.0.trigger();
        }
    }
}

impl Drop for RunningPipeline {
    fn drop(&mut self) {
        // Dropped without stop(): still end the threads rather than leak them.
        if self.server.is_some() {
            self.shutdown.trigger();
            let _ =
                TcpStream::connect_timeout(&wake_address(self.local_addr), Duration::from_secs(1));
            self.components.queue.close();
            self.draining.store(true, Ordering::SeqCst);
        }
    }
}

fn wake_address(local: SocketAddr) -> SocketAddr {
    let mut addr = local;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// How many times a failing append is retried while draining for shutdown
/// before the batch is counted as lost (in normal running it retries forever:
/// giving up would silently drop accepted data). Once one batch is lost in
/// the drain the store is evidently down, and the rest get one try each, so
/// a dead disk cannot stretch shutdown to hours.
const DRAIN_RETRIES: u32 = 5;

fn run_storage_consumer(
    queue: &dyn MetricQueue,
    store: &dyn MetricStore,
    query: &dyn QueryEngine,
    alerting: &dyn AlertEngine,
    draining: &AtomicBool,
    stats: &ConsumerStats,
    options: &PipelineOptions,
) {
    loop {
        let delivery = match queue.consume(options.consume_batch.max(1), options.consume_wait) {
            Ok(Some(delivery)) => delivery,
            Ok(None) => {
                if draining.load(Ordering::SeqCst) && queue.is_empty() {
                    return;
                }
                continue;
            }
            Err(e) => {
                crate::say_err!("[Storage] consume failed: {e}");
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
                        crate::say_err!("[Storage] ack failed: {e}");
                    }
                    query.observe(&delivery.metrics);
                    alerting.observe(&delivery.metrics);
                    break;
                }
                Err(e @ crate::StorageError::Limit(_)) => {
                    // A limit refuses the same batch every time: retrying
                    // would stall the pipeline for good. The store kept
                    // what the limit allowed; the refusal is reported and
                    // counted in the last error, and the batch acked.
                    crate::say_err!("[Storage] {e}");
                    *stats.last_error.lock() = e.to_string();
                    if let Err(e) = queue.ack(delivery.ack) {
                        crate::say_err!("[Storage] ack failed: {e}");
                    }
                    query.observe(&delivery.metrics);
                    alerting.observe(&delivery.metrics);
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    crate::say_err!(
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

fn log_write(metrics: &[crate::Metric], store: &dyn MetricStore) {
    match metrics {
        [one] => crate::say!(
            "[Storage] Wrote {}{}={} @ {} ({})",
            one.name,
            one.labels,
            one.value,
            one.timestamp_ms,
            store.name()
        ),
        many => crate::say!("[Storage] Wrote {} metrics ({})", many.len(), store.name()),
    }
}

fn run_alert_loop(alerting: &dyn AlertEngine, clock: &dyn Clock, shutdown: &Shutdown) {
    let interval = alerting.interval().max(Duration::from_millis(1));
    while !shutdown.wait_timeout(interval) {
        // A bug in one evaluation must not end alerting for good: report it
        // and try again at the next tick.
        let evaluation = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            alerting.evaluate(clock.now_ms())
        }));
        match evaluation {
            Ok(evaluation) => {
                for error in evaluation.errors {
                    crate::say_err!("[Alerting] {error}");
                }
            }
            Err(_) => crate::say_err!("[Alerting] evaluation panicked; retrying at the next check"),
        }
    }
}

fn describe_interval(interval: Duration) -> String {
    let ms = interval.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} seconds", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}
