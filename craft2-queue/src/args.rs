//! Craft 2's command-line flags, as a clap `Args` struct the platform
//! flattens into its own, and the queues built from them: the durable log
//! under `<data-dir>/queue` (with what recovery did said in the startup
//! log) and NATS JetStream. Docs chapter 2.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use common::MetricQueue;
use common::duration::parse_positive_duration;
use thiserror::Error;

use crate::{
    FsyncPolicy, Log, LogConfig, LogError, LogQueue, NatsConfig, NatsQueue, NatsQueueError,
};

/// Why a queue could not be built from the flags.
#[derive(Debug, Error)]
pub enum ArgsError {
    /// A flag is missing or cannot work.
    #[error("{0}")]
    Invalid(String),
    /// The log could not be opened.
    #[error("cannot open the queue log in {dir}: {source}")]
    Log {
        /// Its directory.
        dir: String,
        /// Why.
        source: LogError,
    },
    /// The broker could not be reached or set up.
    #[error(transparent)]
    Nats(#[from] NatsQueueError),
}

/// Craft 2's flags.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Log queue: partitions (fixed when the log is created).
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Log queue: when a 202 reaches the disk — `every-batch` (fsync before
    /// answering), a group-commit interval such as `10ms`, or `never`.
    #[arg(long, default_value = "10ms")]
    pub fsync: FsyncPolicy,
    /// Log queue: a segment file rolls at this many bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub segment_bytes: u64,
    /// Log queue: delete a partition's oldest segments while it is larger
    /// (bytes per partition); off by default.
    #[arg(long)]
    pub retention_bytes: Option<u64>,
    /// Log queue: delete segments last written longer ago (e.g. 24h); off by
    /// default.
    #[arg(long, value_parser = parse_positive_duration)]
    pub retention_age: Option<Duration>,
    /// NATS queue: server URL(s), comma-separated for a cluster.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// NATS queue: the JetStream stream holding the metrics.
    #[arg(long, default_value = "METRICS")]
    pub nats_stream: String,
}

impl QueueArgs {
    /// The durable log under `data_dir/queue`, holding at most `capacity`
    /// unconsumed metrics.
    ///
    /// # Errors
    /// [`ArgsError::Log`] when the log cannot be opened or recovered.
    pub fn log(&self, data_dir: &Path, capacity: usize) -> Result<LogQueue, ArgsError> {
        let dir = data_dir.join("queue");
        let failed = |source| ArgsError::Log {
            dir: dir.display().to_string(),
            source,
        };
        let config = LogConfig {
            partitions: self.partitions,
            segment_bytes: self.segment_bytes,
            fsync: self.fsync,
            retention_bytes: self.retention_bytes,
            retention_age: self.retention_age,
            ..LogConfig::new(&dir)
        };
        let (log, report) = Log::open(config).map_err(failed)?;
        if report.truncated_bytes > 0
            || report.indexes_rebuilt > 0
            || !report.corruptions.is_empty()
        {
            common::say!(
                "[Queue] Recovered {}: cut a torn tail of {} bytes, rebuilt {} indexes, {} damaged records reported",
                dir.display(),
                report.truncated_bytes,
                report.indexes_rebuilt,
                report.corruptions.len()
            );
        }
        let queue = LogQueue::new(log, capacity).map_err(failed)?;
        let backlog = queue.len();
        if backlog > 0 {
            common::say!(
                "[Queue] {backlog} metrics accepted before the restart are waiting for storage"
            );
        }
        Ok(queue)
    }

    /// A JetStream-backed queue on `--nats-url`.
    ///
    /// # Errors
    /// [`ArgsError::Invalid`] without a URL; [`ArgsError::Nats`] when the
    /// broker cannot be reached or the stream set up.
    pub fn nats(&self, capacity: usize) -> Result<NatsQueue, ArgsError> {
        let Some(url) = self.nats_url.clone() else {
            return Err(ArgsError::Invalid(
                "--queue nats needs --nats-url (or NATS_URL), e.g. nats://127.0.0.1:4222".into(),
            ));
        };
        let config = NatsConfig {
            url,
            stream: self.nats_stream.clone(),
            // Streams may not share subjects, so each stream gets its own.
            subject_prefix: self.nats_stream.to_lowercase(),
            partitions: self.partitions,
            capacity,
            ..NatsConfig::default()
        };
        Ok(NatsQueue::connect(config)?)
    }
}
