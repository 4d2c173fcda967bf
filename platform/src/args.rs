//! The platform's command line: one choice per slot, the pipeline's own
//! knobs, and every craft's flags flattened in from its `args.rs`, so a
//! craft's flags live beside the code they configure.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use common::duration::parse_positive_duration;

/// Slot 1: `phase0` (one thread, one request per connection), the
/// staircase's `threads` and `pool`, or `craft1` (hyper + tokio, every
/// protocol and limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ingestion {
    Phase0,
    Threads,
    Pool,
    Craft1,
}

/// Slot 2: `phase0` (a mutex, in memory), `crossbeam` (lock-free, in
/// memory), `log` (the durable partitioned log under <data-dir>/queue) or
/// `nats` (JetStream, --nats-url).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Queue {
    Phase0,
    Crossbeam,
    Log,
    Nats,
}

/// Slot 3: `phase0` (JSON lines in <data-dir>/phase0_metrics.jsonl) or
/// `craft3` (WAL, compressed head, index and blocks under <data-dir>/tsdb).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Storage {
    Phase0,
    Craft3,
}

/// Slot 4: `phase0` (the seed's one question, a scan per request; the
/// Prometheus API answers 501) or `craft4` (PromQL and the Prometheus API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Query {
    Phase0,
    Craft4,
}

/// Slot 5: `phase0` (poll every interval, print every time a rule holds) or
/// `craft5` (streaming evaluation, state machine, routing, durable outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Alerting {
    Phase0,
    Craft5,
}

/// The monitoring platform, composed from one implementation per slot.
#[derive(Debug, Parser)]
#[command(name = "platform", version, about)]
pub struct Args {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// Directory for every slot's files.
    #[arg(long, default_value = ".")]
    pub data_dir: PathBuf,
    /// Slot 1: the ingestion server.
    #[arg(long, value_enum, default_value_t = Ingestion::Craft1)]
    pub ingestion: Ingestion,
    /// Slot 2: the queue.
    #[arg(long, value_enum, default_value_t = Queue::Log)]
    pub queue: Queue,
    /// Slot 3: the store.
    #[arg(long, value_enum, default_value_t = Storage::Craft3)]
    pub storage: Storage,
    /// Slot 4: the query engine.
    #[arg(long, value_enum, default_value_t = Query::Craft4)]
    pub query: Query,
    /// Slot 5: the alerting engine.
    #[arg(long, value_enum, default_value_t = Alerting::Craft5)]
    pub alerting: Alerting,
    /// Most metrics the queue holds before writes answer 503.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub queue_capacity: u64,
    /// Most metrics the storage consumer takes per delivery.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub consume_batch: u64,
    /// Log each stored batch.
    #[arg(long)]
    pub log_writes: bool,
    /// How often the alerting engine checks its rules: phase0 re-queries
    /// every window (default 10s); craft5 evaluates on ingest and only
    /// advances time-driven transitions at this interval (default 1s).
    #[arg(long, value_parser = parse_positive_duration)]
    pub alert_interval: Option<Duration>,
    /// Rules replacing the three default rules: a JSON file of the seed's
    /// rules (both engines), or a YAML file of Prometheus rule groups
    /// (craft5).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// A Prometheus configuration file (`prometheus.yml`): its
    /// `scrape_configs` are scraped into the queue, beside the pushes.
    /// Keys this server does not support are named in a warning.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub ingestion_args: craft1_ingestion::args::IngestionArgs,
    #[command(flatten)]
    pub queue_args: craft2_queue::args::QueueArgs,
    #[command(flatten)]
    pub storage_args: craft3_storage::args::StorageArgs,
    #[command(flatten)]
    pub query_args: craft4_query::args::QueryArgs,
    #[command(flatten)]
    pub alerting_args: craft5_alerting::args::AlertingArgs,
}
