//! `Pipeline`: wires any five slot implementations into one running system.
//!
//! It binds nothing itself (the caller hands it a listener, so tests use port
//! 0), starts the storage consumer thread (`consumer.rs`), the alert loop,
//! and the ingestion server with the router (`router.rs`) assembled from
//! every slot's routes; and on shutdown stops them in the order that loses
//! nothing: stop accepting, finish in-flight requests, close the queue,
//! drain it into storage, flush. Story: docs chapter 0.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

use common::http::RouteSet;
use common::{
    AlertEngine, AppendObserver, Clock, IngestionServer, Ingress, MetadataRegistry, MetricQueue,
    MetricStore, QueryEngine, Shutdown, WriteBarrier,
};

use crate::consumer::{self, ConsumerStats, run_storage_consumer};
use crate::router::{Router, RouterError};

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
    /// The HTTP routes the slots contribute beyond the runtime's own
    /// (`/health`, the seed's `/query`): craft 4's Prometheus API, craft
    /// 5's alerting API.
    pub routes: Vec<Arc<dyn RouteSet>>,
    /// Who sees each stored batch besides the alert engine (craft 4's
    /// result cache).
    pub observers: Vec<Arc<dyn AppendObserver>>,
    /// Metric types and help heard by the write paths (handed to slot 1
    /// in its `Ingress`), read by whoever answers `/api/v1/metadata`: give
    /// the query slot the same registry.
    pub metadata: Arc<MetadataRegistry>,
    /// "Every write accepted so far is stored": the runtime answers it
    /// once its storage consumer runs. Give a slot that deletes (craft 4's
    /// admin API) the same barrier.
    pub barrier: Arc<WriteBarrier>,
}

impl Components {
    /// The five slots on `clock`, with no extra routes or observers.
    pub fn new(
        ingestion: Arc<dyn IngestionServer>,
        queue: Arc<dyn MetricQueue>,
        store: Arc<dyn MetricStore>,
        query: Arc<dyn QueryEngine>,
        alerting: Arc<dyn AlertEngine>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Components {
            ingestion,
            queue,
            store,
            query,
            alerting,
            clock,
            routes: Vec::new(),
            observers: Vec::new(),
            metadata: Arc::new(MetadataRegistry::new()),
            barrier: Arc::new(WriteBarrier::new()),
        }
    }

    /// The same components with `routes` added to the HTTP surface.
    pub fn with_routes(mut self, routes: Arc<dyn RouteSet>) -> Self {
        self.routes.push(routes);
        self
    }

    /// The same components with `observer` seeing every stored batch.
    pub fn with_observer(mut self, observer: Arc<dyn AppendObserver>) -> Self {
        self.observers.push(observer);
        self
    }
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
    Ingestion(#[from] common::IngestionError),
    /// Two slots claimed one route.
    #[error(transparent)]
    Router(#[from] RouterError),
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

/// A started pipeline.
pub struct RunningPipeline {
    components: Components,
    local_addr: SocketAddr,
    shutdown: Shutdown,
    draining: Arc<AtomicBool>,
    stats: Arc<ConsumerStats>,
    server: Option<JoinHandle<Result<(), common::IngestionError>>>,
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
        // Assembled first: a route two slots claim refuses the start
        // before any thread runs.
        let router = Arc::new(Router::new(&components)?);
        let route_summary = router.summary();
        let draining = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ConsumerStats::default());
        let verbose = options.verbose;

        let consumer = {
            let queue = components.queue.clone();
            let store = components.store.clone();
            let alerting = components.alerting.clone();
            let observers = components.observers.clone();
            let draining = draining.clone();
            let stats = stats.clone();
            let options = options.clone();
            let guard = TriggerOnPanic(shutdown.clone(), "storage consumer");
            std::thread::Builder::new()
                .name("storage-consumer".into())
                .spawn(move || {
                    let _guard = guard;
                    run_storage_consumer(
                        &*queue, &*store, &observers, &*alerting, &draining, &stats, &options,
                    )
                })?
        };
        {
            let queue = components.queue.clone();
            let stats = stats.clone();
            components
                .barrier
                .install(move |timeout| consumer::settle(&*queue, &stats, timeout));
        }
        if verbose {
            common::say!(
                "[Queue] {}: a 202 means {}",
                components.queue.name(),
                components.queue.guarantee()
            );
            common::say!(
                "[Storage] Storage consumer started: {}",
                components.store.describe()
            );
        }

        let rules = components.alerting.rules();
        if verbose {
            common::say!("[Alerting] Loaded {} alert rules:", rules.len());
            for rule in &rules {
                common::say!("  - {} {}", rule.metric, rule.describe_condition());
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
            common::say!(
                "[Alerting] Alerting engine started, checking every {} ({})",
                describe_interval(components.alerting.interval()),
                components.alerting.name()
            );
        }

        let ingress = Ingress {
            queue: components.queue.clone(),
            clock: components.clock.clone(),
            routes: router,
            metadata: components.metadata.clone(),
        };
        let server = {
            let ingestion = components.ingestion.clone();
            let shutdown = shutdown.clone();
            let guard = TriggerOnPanic(shutdown.clone(), "ingestion");
            std::thread::Builder::new()
                .name("ingestion".into())
                .spawn(move || {
                    let _guard = guard;
                    let result = ingestion.serve(listener, ingress, shutdown.clone());
                    // A server that dies on its own takes the pipeline down
                    // cleanly rather than leaving a process that accepts nothing.
                    shutdown.trigger();
                    result
                })?
        };
        if verbose {
            common::say!(
                "[Ingestion] Server listening on {local_addr} ({})",
                components.ingestion.describe()
            );
            for line in &route_summary {
                common::say!("[Router] {line}");
            }
            common::say!("\nEndpoints:");
            common::say!(
                "  POST /metrics   {{\"name\":\"cpu_usage\",\"value\":85}}  -> 202 {{\"status\":\"accepted\"}}"
            );
            common::say!(
                "  GET  /query?name=cpu_usage&start=<ms>&end=<ms>  (inclusive, both optional)"
            );
            common::say!("  GET  /health");
            common::say!("\nTry:");
            common::say!(
                "  curl -X POST http://localhost:{}/metrics -H \"Content-Type: application/json\" -d '{{\"name\":\"cpu_usage\",\"value\":85}}'",
                local_addr.port()
            );
            common::say!("\nPress Ctrl-C to stop (the queue is drained into storage first).");
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

    /// The components running.
    pub fn components(&self) -> &Components {
        &self.components
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
            common::say_err!("[Pipeline] the {} thread panicked; shutting down", self.1);
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
                    common::say_err!("[Alerting] {error}");
                }
            }
            Err(_) => {
                common::say_err!("[Alerting] evaluation panicked; retrying at the next check")
            }
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
