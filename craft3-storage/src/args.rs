//! Craft 3's command-line flags, as a clap `Args` struct the platform
//! flattens into its own, and the engine opened from them under
//! `<data-dir>/tsdb`, with the replay it did said in the startup log.
//! Docs chapter 3.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use common::duration::parse_positive_duration;

use crate::db::{Db, DbConfig, DbError, compaction_ranges};
use crate::head::DEFAULT_SERIES_LIMIT;
use crate::wal::WalFsync;

/// Craft 3's flags.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Craft 3 storage: most series stored; samples of new series beyond
    /// it are refused (and reported) instead of exhausting memory.
    #[arg(long, default_value_t = DEFAULT_SERIES_LIMIT)]
    pub series_limit: usize,
    /// Craft 3 storage: when the WAL is fsynced — `every-batch`, an
    /// interval such as `1s`, or `never`. (A 202 is already durable in the
    /// log queue; this bounds what a power loss can take from storage.)
    #[arg(long, default_value = "1s")]
    pub wal_fsync: WalFsync,
    /// Craft 3 storage: the time range of a block cut from the head.
    #[arg(long, default_value = "2h", value_parser = parse_positive_duration)]
    pub block_range: Duration,
    /// Craft 3 storage: delete blocks whose newest sample is this much
    /// older than the newest sample stored (e.g. 15d); off by default.
    #[arg(long, value_parser = parse_positive_duration)]
    pub storage_retention: Option<Duration>,
}

impl StorageArgs {
    /// The engine's configuration the flags describe.
    pub fn config(&self) -> DbConfig {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let block_range_ms = millis(self.block_range);
        let defaults = DbConfig::default();
        DbConfig {
            head: crate::HeadConfig {
                series_limit: self.series_limit,
                ..defaults.head
            },
            wal: crate::wal::WalConfig {
                fsync: self.wal_fsync,
                ..defaults.wal
            },
            block_range_ms,
            compaction_ranges_ms: compaction_ranges(block_range_ms),
            retention_ms: self.storage_retention.map(millis),
            ..defaults
        }
    }

    /// The engine under `data_dir/tsdb`, the WAL replayed.
    ///
    /// # Errors
    /// [`DbError`] when the directory cannot be opened.
    pub fn open(&self, data_dir: &Path) -> Result<Db, DbError> {
        let dir = data_dir.join("tsdb");
        let db = Db::open(&dir, self.config())?;
        let replay = db.stats().replay;
        if replay.samples > 0 || !replay.damage.is_empty() {
            common::say!(
                "[Storage] Replayed {} samples from the WAL in {} ({} damaged records skipped, {} bytes of torn tail cut)",
                replay.samples,
                dir.display(),
                replay.corrupt_records,
                replay.lost_bytes
            );
        }
        Ok(db)
    }
}
