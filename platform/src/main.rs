//! `platform`: the composer. One flag per pipeline slot, each defaulting to
//! the best implementation available, so the same binary is the learner's
//! swap switch (`--ingestion phase0` to feel the old bottleneck) and the
//! product (`platform` alone). Each craft adds its choices to its slot.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

/// mimalloc instead of glibc's malloc: every metric carries a few small
/// strings (name, label pairs) allocated by the decoder and freed by the
/// storage consumer on another thread — the pattern thread-caching
/// allocators are built for. Chapter 3, "Measured", has the before/after.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, ValueEnum};
use common::duration::parse_positive_duration;
use common::{
    Components, IngestionServer, Pipeline, PipelineOptions, QueryEngine, Shutdown, SystemClock,
};
use craft1_ingestion::{AsyncServer, ServerConfig, ThreadPerConnectionServer, ThreadPoolServer};
use craft2_queue::{CrossbeamQueue, FsyncPolicy, Log, LogConfig, LogQueue, NatsConfig, NatsQueue};
use craft4_query::engine::Craft4QueryEngine;
use craft4_query::eval::EngineConfig;
use craft5_alerting::{AlertingService, RoutingConfig, RuleSet, ServiceOptions};

/// Slot 1 choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Ingestion {
    /// phase0: one thread, one request per connection, hand-written HTTP.
    Phase0,
    /// Staircase step 1: a thread per connection, keep-alive.
    Threads,
    /// Staircase step 2: a fixed thread pool, keep-alive.
    Pool,
    /// Craft 1: hyper + tokio, every protocol and limit (default).
    Craft1,
}

/// Slot 2 choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Queue {
    /// phase0: Mutex<VecDeque> polled every 100 ms, in memory.
    Phase0,
    /// Craft 2 step 1: a lock-free crossbeam channel, in memory.
    Crossbeam,
    /// Craft 2: the durable partitioned log under <data-dir>/queue (default).
    Log,
    /// Craft 2: NATS JetStream (--nats-url), for more than one machine.
    Nats,
}

/// Slot 3 choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Storage {
    /// phase0: one JSON line per metric in <data-dir>/phase0_metrics.jsonl.
    Phase0,
    /// Craft 3: WAL, compressed head, inverted index and blocks under
    /// <data-dir>/tsdb (default).
    Craft3,
}

/// Slot 4 choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Query {
    /// phase0: the seed's one question, a scan per request; the Prometheus
    /// API answers 501.
    Phase0,
    /// Craft 4: the query language and the Prometheus HTTP API
    /// (/api/v1/query, query_range, series, labels, …) over the store
    /// (default).
    Craft4,
}

/// Slot 5 choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Alerting {
    /// phase0: poll every interval through the query slot, print every
    /// time a rule holds.
    Phase0,
    /// Craft 5: streaming evaluation on ingest, an alert state machine,
    /// routing, grouping, silences, receivers behind a durable outbox
    /// (default).
    Craft5,
}

/// The monitoring platform, composed from one implementation per slot.
#[derive(Debug, Parser)]
#[command(name = "platform", version, about)]
struct Args {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Directory for every slot's files.
    #[arg(long, default_value = ".")]
    data_dir: PathBuf,

    /// Slot 1: the ingestion server.
    #[arg(long, value_enum, default_value_t = Ingestion::Craft1)]
    ingestion: Ingestion,
    /// Slot 2: the queue.
    #[arg(long, value_enum, default_value_t = Queue::Log)]
    queue: Queue,
    /// Slot 3: the store.
    #[arg(long, value_enum, default_value_t = Storage::Craft3)]
    storage: Storage,
    /// Slot 4: the query engine.
    #[arg(long, value_enum, default_value_t = Query::Craft4)]
    query: Query,
    /// Slot 5: the alerting engine.
    #[arg(long, value_enum, default_value_t = Alerting::Craft5)]
    alerting: Alerting,

    /// How often the alerting engine checks its rules: phase0 re-queries
    /// every window (default 10s); craft5 evaluates on ingest and only
    /// advances time-driven transitions (`for`, emptied windows) at this
    /// interval (default 1s).
    #[arg(long, value_parser = parse_positive_duration)]
    alert_interval: Option<Duration>,
    /// Rules replacing the three default rules: a JSON file of the seed's
    /// rules (both engines), or a YAML file of Prometheus rule groups
    /// (craft5).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Craft 5: the routing config (alertmanager.yml-shaped: route tree,
    /// receivers, delivery); default: every alert to the console.
    #[arg(long)]
    alertmanager_config: Option<PathBuf>,
    /// Craft 5: the alert state file; silences.json and outbox.jsonl go
    /// beside it. Default: <data-dir>/alerts/state.json.
    #[arg(long)]
    alert_state: Option<PathBuf>,
    /// Most metrics the queue holds before writes answer 503.
    #[arg(long, default_value_t = 1_000_000)]
    queue_capacity: usize,
    /// Log queue: partitions (fixed when the log is created).
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Log queue: when a 202 reaches the disk — `every-batch` (fsync before
    /// answering), a group-commit interval such as `10ms`, or `never`.
    #[arg(long, default_value = "10ms")]
    fsync: FsyncPolicy,
    /// Log queue: a segment file rolls at this many bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    segment_bytes: u64,
    /// Log queue: delete a partition's oldest segments while it is larger
    /// (bytes per partition); off by default.
    #[arg(long)]
    retention_bytes: Option<u64>,
    /// Log queue: delete segments last written longer ago (e.g. 24h); off by
    /// default.
    #[arg(long, value_parser = parse_positive_duration)]
    retention_age: Option<Duration>,
    /// NATS queue: server URL(s), comma-separated for a cluster.
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// NATS queue: the JetStream stream holding the metrics.
    #[arg(long, default_value = "METRICS")]
    nats_stream: String,
    /// Most metrics the storage consumer takes per delivery.
    #[arg(long, default_value_t = 1000)]
    consume_batch: usize,
    /// Craft 3 storage: most series stored; samples of new series beyond
    /// it are refused (and reported) instead of exhausting memory.
    #[arg(long, default_value_t = craft3_storage::head::DEFAULT_SERIES_LIMIT)]
    series_limit: usize,
    /// Craft 3 storage: when the WAL is fsynced — `every-batch`, an
    /// interval such as `1s`, or `never`. (A 202 is already durable in the
    /// log queue; this bounds what a power loss can take from storage.)
    #[arg(long, default_value = "1s")]
    wal_fsync: craft3_storage::wal::WalFsync,
    /// Craft 3 storage: the time range of a block cut from the head.
    #[arg(long, default_value = "2h", value_parser = parse_positive_duration)]
    block_range: Duration,
    /// Craft 3 storage: delete blocks whose newest sample is this much
    /// older than the newest sample stored (e.g. 15d); off by default.
    #[arg(long, value_parser = parse_positive_duration)]
    storage_retention: Option<Duration>,
    /// Log each stored batch.
    #[arg(long)]
    log_writes: bool,
    /// Craft 4 query: most samples one query may load before it is stopped
    /// with an error (422) instead of exhausting memory.
    #[arg(long, default_value_t = EngineConfig::default().max_samples)]
    query_max_samples: usize,
    /// Craft 4 query: longest a query may run before it is stopped; a
    /// request's `timeout` parameter can only shorten it.
    #[arg(long, default_value = "2m", value_parser = parse_positive_duration)]
    query_timeout: Duration,
    /// Craft 4 query: keep the steps of range queries that can no longer
    /// change and evaluate only the new tail on a repeat (`on`/`off`).
    /// Late samples reported by the storage consumer invalidate it.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    query_cache: String,

    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most labels per series (400 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_labels_per_series)]
    max_labels: usize,
    /// Most samples one request may carry (413 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_samples_per_request)]
    max_samples: usize,
    /// Request headers must arrive within this long.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    header_timeout: Duration,
    /// Idle keep-alive connections are closed after this long.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    idle_timeout: Duration,
    /// Most open connections (503 beyond).
    #[arg(long, default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// Per-client sustained requests per second (429 beyond); off by default.
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Requests a client may burst above --rate-limit.
    #[arg(long, default_value_t = 100.0)]
    rate_burst: f64,
    /// Require `Authorization: Bearer <token>` on everything but /health.
    /// Also read from the PLATFORM_AUTH_TOKEN environment variable.
    #[arg(long, env = "PLATFORM_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Worker threads of the async runtime; default: one per core.
    #[arg(long)]
    workers: Option<usize>,
    /// Threads of the `pool` step: at most this many keep-alive clients are
    /// served at once, the rest wait for a free thread.
    #[arg(long, default_value_t = 32)]
    pool_size: usize,
}

fn server_config(args: &Args) -> anyhow::Result<ServerConfig> {
    let defaults = ServerConfig::default();
    if args.max_connections == 0 {
        anyhow::bail!("--max-connections must be at least 1");
    }
    if let Some(rate) = args.rate_limit
        && !(rate.is_finite() && rate > 0.0)
    {
        anyhow::bail!("--rate-limit {rate} must be a positive number of requests per second");
    }
    if !(args.rate_burst.is_finite() && args.rate_burst >= 1.0) {
        anyhow::bail!("--rate-burst {} must be at least 1", args.rate_burst);
    }
    if args.auth_token.as_deref().is_some_and(str::is_empty) {
        anyhow::bail!("--auth-token must not be empty");
    }
    Ok(ServerConfig {
        max_body_bytes: args.max_body_bytes,
        max_decompressed_bytes: defaults.max_decompressed_bytes.max(args.max_body_bytes),
        max_labels_per_series: args.max_labels,
        max_samples_per_request: args.max_samples.max(1),
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
        rate_limit_per_client: args.rate_limit,
        rate_limit_burst: args.rate_burst,
        auth_token: args.auth_token.clone(),
        worker_threads: args.workers.unwrap_or(defaults.worker_threads).max(1),
    })
}

/// True for a rules file written as YAML rule groups (craft 5's form).
fn is_yaml(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
}

/// Craft 5's rules: YAML rule groups, the seed's JSON, or the defaults.
fn craft5_rules(args: &Args) -> anyhow::Result<RuleSet> {
    Ok(match &args.rules {
        Some(path) if is_yaml(path) => craft5_alerting::load_rule_files(&[path])?,
        Some(path) => RuleSet::from_seed_rules(&common::load_rules(path)?)?,
        None => RuleSet::defaults()?,
    })
}

/// Craft 5 assembled over its files, its threads started; periodic rules
/// are queried through craft 4's evaluator over `store`, the pipeline's.
fn craft5_service(
    args: &Args,
    store: Arc<dyn common::MetricStore>,
) -> anyhow::Result<Arc<AlertingService>> {
    let rules = craft5_rules(args)?;
    let routing = match &args.alertmanager_config {
        Some(path) => RoutingConfig::load(path)?,
        None => RoutingConfig::console_default(),
    };
    let state_file = args
        .alert_state
        .clone()
        .unwrap_or_else(|| args.data_dir.join("alerts").join("state.json"));
    let mut options = ServiceOptions::new(Arc::new(SystemClock))
        .with_state_file(&state_file)
        .with_metric_store(store);
    if let Some(interval) = args.alert_interval {
        options.interval = interval;
    }
    // An alert query holds up the evaluation tick while it runs: it gets
    // craft 5's tighter limits, or the query API's if those are tighter.
    options.query_config.max_samples = options
        .query_config
        .max_samples
        .min(args.query_max_samples.max(1));
    options.query_config.timeout = options.query_config.timeout.min(args.query_timeout);
    let receivers: Vec<&str> = routing.receivers.names().collect();
    common::say!(
        "[Alerting] craft5: routing {} (receivers: {}), state in {}",
        routing.source,
        receivers.join(", "),
        state_file.display()
    );
    let service = AlertingService::new(rules, routing, options)?;
    let periodic = service
        .engine()
        .rule_set()
        .rules()
        .filter(|r| r.streaming().is_none())
        .count();
    if periodic > 0 {
        common::say!(
            "[Alerting] {periodic} periodic rules evaluated through craft 4's evaluator at their group interval (default {}s); /api/v1/rules shows their health",
            craft5_alerting::periodic::DEFAULT_GROUP_INTERVAL.as_secs()
        );
    }
    let report = service.outbox_report();
    if report.pending > 0 || report.torn_bytes > 0 || report.damaged_lines > 0 {
        common::say!(
            "[Alerting] Outbox: {} notifications from before the restart will be sent ({} damaged lines skipped, {} bytes of torn tail cut)",
            report.pending,
            report.damaged_lines,
            report.torn_bytes
        );
    }
    service.start()?;
    Ok(Arc::new(service))
}

fn components(args: &Args) -> anyhow::Result<(Components, Option<Arc<AlertingService>>)> {
    let rules = match (&args.rules, args.alerting) {
        (Some(path), Alerting::Phase0) if is_yaml(path) => anyhow::bail!(
            "--rules {}: YAML rule groups need --alerting craft5; phase0 reads the seed's JSON rules",
            path.display()
        ),
        (Some(path), Alerting::Phase0) => common::load_rules(path)?,
        // craft5 reads its own rules (craft5_rules); phase0's engine is
        // built below only to be replaced.
        _ => phase0::alerting::default_rules(),
    };
    if args.alerting == Alerting::Phase0 {
        if args.alertmanager_config.is_some() {
            anyhow::bail!("--alertmanager-config needs --alerting craft5");
        }
        if args.alert_state.is_some() {
            anyhow::bail!("--alert-state needs --alerting craft5 (phase0 keeps no alert state)");
        }
    }
    let config = phase0::Config {
        data_dir: args.data_dir.clone(),
        rules,
        alert_interval: args.alert_interval.unwrap_or(Duration::from_secs(10)),
        queue_capacity: args.queue_capacity,
        ..Default::default()
    };
    let mut components = match args.storage {
        Storage::Phase0 => phase0::build(config.clone(), Arc::new(SystemClock))
            .with_context(|| format!("cannot use data directory {}", args.data_dir.display()))?,
        Storage::Craft3 => phase0::build_with_store(
            config.clone(),
            Arc::new(SystemClock),
            Arc::new(craft3_db(args)?),
        ),
    };
    match args.query {
        Query::Phase0 => {}
        Query::Craft4 => {
            if args.query_max_samples == 0 {
                anyhow::bail!("--query-max-samples must be at least 1");
            }
            let engine_config = EngineConfig {
                max_samples: args.query_max_samples,
                timeout: args.query_timeout,
                ..EngineConfig::default()
            };
            let mut engine = Craft4QueryEngine::new(components.store.clone(), engine_config);
            if args.query_cache == "on" {
                engine = engine.with_cache(craft4_query::cache::CacheConfig::enabled());
            }
            let query: Arc<dyn QueryEngine> = Arc::new(engine);
            // The alerting engine asks its questions through slot 4, so it
            // is rebuilt over the new engine rather than left on the old.
            components.alerting = Arc::new(phase0::alerting::PollingAlertEngine::new(
                config.rules,
                query.clone(),
                config.notifiers,
                config.alert_interval,
            ));
            components.query = query;
        }
    }
    components.queue = match args.queue {
        Queue::Phase0 => components.queue,
        Queue::Crossbeam => Arc::new(CrossbeamQueue::new(args.queue_capacity)),
        Queue::Log => Arc::new(log_queue(args)?),
        Queue::Nats => {
            let Some(url) = args.nats_url.clone() else {
                anyhow::bail!(
                    "--queue nats needs --nats-url (or NATS_URL), e.g. nats://127.0.0.1:4222"
                );
            };
            let config = NatsConfig {
                url,
                stream: args.nats_stream.clone(),
                // Streams may not share subjects, so each stream gets its own.
                subject_prefix: args.nats_stream.to_lowercase(),
                partitions: args.partitions,
                capacity: args.queue_capacity,
                ..NatsConfig::default()
            };
            Arc::new(NatsQueue::connect(config)?)
        }
    };
    let server = server_config(args)?;
    components.ingestion = match args.ingestion {
        Ingestion::Phase0 => components.ingestion,
        Ingestion::Threads => {
            Arc::new(ThreadPerConnectionServer::new(server)) as Arc<dyn IngestionServer>
        }
        Ingestion::Pool => Arc::new(ThreadPoolServer::new(server, args.pool_size)),
        Ingestion::Craft1 => Arc::new(AsyncServer::new(server)),
    };
    let alerting = match args.alerting {
        Alerting::Phase0 => None,
        Alerting::Craft5 => {
            let service = craft5_service(args, components.store.clone())?;
            components.alerting = service.clone();
            Some(service)
        }
    };
    Ok((components, alerting))
}

fn craft3_db(args: &Args) -> anyhow::Result<craft3_storage::db::Db> {
    use craft3_storage::db::{Db, DbConfig};
    let dir = args.data_dir.join("tsdb");
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let block_range_ms = millis(args.block_range);
    let defaults = DbConfig::default();
    let config = DbConfig {
        head: craft3_storage::HeadConfig {
            series_limit: args.series_limit,
            ..defaults.head
        },
        wal: craft3_storage::wal::WalConfig {
            fsync: args.wal_fsync,
            ..defaults.wal
        },
        block_range_ms,
        compaction_ranges_ms: vec![
            block_range_ms.saturating_mul(3),
            block_range_ms.saturating_mul(9),
        ],
        retention_ms: args.storage_retention.map(millis),
        ..defaults
    };
    let db = Db::open(&dir, config)
        .with_context(|| format!("cannot open the craft3 storage in {}", dir.display()))?;
    let stats = db.stats();
    if stats.replay.samples > 0 || !stats.replay.damage.is_empty() {
        common::say!(
            "[Storage] Replayed {} samples from the WAL in {} ({} damaged records skipped, {} bytes of torn tail cut)",
            stats.replay.samples,
            dir.display(),
            stats.replay.corrupt_records,
            stats.replay.lost_bytes
        );
    }
    Ok(db)
}

fn log_queue(args: &Args) -> anyhow::Result<LogQueue> {
    let dir = args.data_dir.join("queue");
    let config = LogConfig {
        partitions: args.partitions,
        segment_bytes: args.segment_bytes,
        fsync: args.fsync,
        retention_bytes: args.retention_bytes,
        retention_age: args.retention_age,
        ..LogConfig::new(&dir)
    };
    let (log, report) = Log::open(config)
        .with_context(|| format!("cannot open the queue log in {}", dir.display()))?;
    if report.truncated_bytes > 0 || report.indexes_rebuilt > 0 || !report.corruptions.is_empty() {
        common::say!(
            "[Queue] Recovered {}: cut a torn tail of {} bytes, rebuilt {} indexes, {} damaged records reported",
            dir.display(),
            report.truncated_bytes,
            report.indexes_rebuilt,
            report.corruptions.len()
        );
    }
    let queue = LogQueue::new(log, args.queue_capacity)?;
    let backlog = common::MetricQueue::len(&queue);
    if backlog > 0 {
        common::say!(
            "[Queue] {backlog} metrics accepted before the restart are waiting for storage"
        );
    }
    Ok(queue)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.queue_capacity == 0 {
        anyhow::bail!("--queue-capacity must be at least 1");
    }
    if args.consume_batch == 0 {
        anyhow::bail!("--consume-batch must be at least 1");
    }
    let shutdown = Shutdown::new();
    shutdown
        .trigger_on_signals()
        .context("cannot install signal handlers")?;

    common::say!("=== Systems Craft — platform ===");
    common::say!(
        "[Platform] ingestion={:?} queue={:?} storage={:?} query={:?} alerting={:?}",
        args.ingestion,
        args.queue,
        args.storage,
        args.query,
        args.alerting
    );
    let (components, alerting) = components(&args)?;
    let address = format!("{}:{}", args.host, args.port);
    let listener =
        TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;
    let options = PipelineOptions {
        consume_batch: args.consume_batch,
        log_writes: args.log_writes,
        ..Default::default()
    };
    let running = Pipeline::start_with_shutdown(components, listener, options, shutdown)?;
    let report = running.run_until_shutdown();
    // Stops the dispatcher and the delivery worker; what is not delivered
    // yet stays in the outbox for the next start.
    if let Some(alerting) = alerting {
        alerting.stop();
    }
    let report = report?;
    common::say!(
        "[Shutdown] Queue drained: {} metrics stored this run, {} left. Bye.",
        report.stored,
        report.left_in_queue
    );
    Ok(())
}
