//! The craft 3 engine behind `common::MetricStore`, so `platform` and the
//! conformance suite can swap it in for phase0's JSONL file: [`Db`] (WAL,
//! head, blocks — what `platform --storage craft3` runs) and [`HeadStore`]
//! (the head alone, in memory: the append benchmarks' subject).
//!
//! The bottleneck they remove: phase0's store opens a file per sample and
//! scans the whole file per `select`; these append into the in-memory head
//! and answer from the inverted index, and `Db` reads only the blocks whose
//! time range a query overlaps (docs chapter 3).
//!
//! `HeadStore` keeps nothing across a restart ([`MetricStore::flush`] is a
//! no-op), so its tests leave out the suite's "data survives reopen";
//! `Db` passes the whole suite.

use common::{LabelMatcher, Metric, MetricStore, Series, SeriesKey, StorageError, TimeRange};

use crate::block::BlockError;
use crate::db::{Db, DbError};
use crate::head::{Head, HeadConfig, HeadError, SeriesSamples};
use crate::wal::WalError;

/// The craft 3 store: an in-memory head ([`Default`]: [`HeadConfig::default`]).
#[derive(Debug, Default)]
pub struct HeadStore {
    head: Head,
}

impl HeadStore {
    /// A store with `config`.
    ///
    /// # Errors
    /// [`HeadError::Config`] when `config` cannot work.
    pub fn new(config: HeadConfig) -> Result<Self, HeadError> {
        Ok(Self {
            head: Head::new(config)?,
        })
    }

    /// The head, for benches and the future WAL.
    pub fn head(&self) -> &Head {
        &self.head
    }
}

impl From<HeadError> for StorageError {
    fn from(error: HeadError) -> Self {
        match error {
            HeadError::SeriesLimit { .. } | HeadError::Config(_) => {
                StorageError::Limit(error.to_string())
            }
            HeadError::Chunk { .. } => StorageError::Corrupt {
                path: "head (memory)".into(),
                message: error.to_string(),
            },
        }
    }
}

fn to_series(found: Vec<SeriesSamples>) -> Vec<Series> {
    found
        .into_iter()
        .map(|series| Series {
            name: series.name,
            labels: series.labels,
            samples: series
                .samples
                .into_iter()
                .map(|s| common::Sample {
                    timestamp_ms: s.timestamp_ms,
                    value: s.value,
                })
                .collect(),
        })
        .collect()
}

impl From<DbError> for StorageError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Head(head) => head.into(),
            DbError::Refused { .. } | DbError::Config(_) => StorageError::Limit(error.to_string()),
            DbError::Wal(WalError::Io { path, source })
            | DbError::Block(BlockError::Io { path, source })
            | DbError::Io { path, source } => StorageError::Io { path, source },
            DbError::Wal(WalError::TooLarge(_)) => StorageError::Limit(error.to_string()),
            DbError::Block(BlockError::Corrupt { path, message }) => {
                StorageError::Corrupt { path, message }
            }
            DbError::Block(other) => StorageError::Corrupt {
                path: "block".into(),
                message: other.to_string(),
            },
        }
    }
}

impl MetricStore for Db {
    fn append(&self, metrics: &[Metric]) -> Result<(), StorageError> {
        Ok(Db::append(self, metrics)?)
    }

    fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StorageError> {
        Ok(to_series(Db::select(self, matchers, range)?))
    }

    /// From the indexes and chunk bounds: no sample read.
    fn series(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        Ok(Db::series(self, matchers, range))
    }

    fn label_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(Db::label_names(self))
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>, StorageError> {
        Ok(Db::label_values(self, name))
    }

    /// Fsyncs the WAL: everything appended so far survives power loss.
    fn flush(&self) -> Result<(), StorageError> {
        Ok(Db::flush(self)?)
    }

    /// Head samples and block rewrites; see [`Db::delete`].
    fn delete(&self, matchers: &[LabelMatcher], range: TimeRange) -> Result<u64, StorageError> {
        Ok(Db::delete(self, matchers, range)?)
    }

    /// Blocks deleted by retention, and deletions: a result cache drops
    /// what it holds when this moves.
    fn deletions(&self) -> u64 {
        Db::deletions(self)
    }

    fn name(&self) -> &'static str {
        "craft3"
    }

    fn describe(&self) -> String {
        let config = self.config();
        let stats = self.stats();
        format!(
            "craft3 engine in {} (WAL fsync {:?}, {} h blocks, {} blocks and {} head series at open, {} series max, retention {})",
            self.dir().display(),
            config.wal.fsync,
            config.block_range_ms / 3_600_000,
            stats.blocks,
            stats.head_series,
            config.head.series_limit,
            config.retention_ms.map_or_else(
                || "forever".to_string(),
                |ms| format!("{} h", ms / 3_600_000)
            ),
        )
    }
}

impl MetricStore for HeadStore {
    fn append(&self, metrics: &[Metric]) -> Result<(), StorageError> {
        Ok(self.head.append_batch(metrics)?)
    }

    fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StorageError> {
        Ok(to_series(self.head.select(matchers, range)?))
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        Ok(self.head.series_keys(matchers, range))
    }

    fn label_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.head.label_names())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.head.label_values(name))
    }

    /// Nothing to make durable yet: the WAL comes next.
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "craft3"
    }

    fn describe(&self) -> String {
        format!(
            "craft3 head in memory (Gorilla/decimal chunks, inverted index; {} series max; no WAL yet, nothing survives a restart)",
            self.head.config().series_limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Labels;

    #[test]
    fn default_config_is_valid_and_limit_maps_to_storage_limit() {
        let store = HeadStore::default();
        assert_eq!(store.name(), "craft3");
        let small = HeadStore::new(HeadConfig {
            series_limit: 0,
            ..HeadConfig::default()
        })
        .expect("valid");
        let error = small
            .append(&[Metric::new("cpu", 1.0, 1).with_labels(Labels::from_pairs([("h", "x")]))])
            .expect_err("over the limit");
        let message = error.to_string();
        assert!(matches!(error, StorageError::Limit(_)));
        assert!(message.contains("series limit of 0"), "{message}");
        assert!(message.contains("cpu{h=\"x\"}"), "{message}");
    }
}
