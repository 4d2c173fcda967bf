//! `HeadStore`: the head behind `common::MetricStore`, so `platform` and the
//! conformance suite can swap craft 3 in for phase0's JSONL file.
//!
//! The bottleneck it removes: phase0's store opens a file per sample and
//! scans the whole file per `select`; this one appends into the in-memory
//! head and answers from the inverted index (docs chapter 3).
//!
//! Memory only, for now: [`MetricStore::flush`] is a no-op that returns
//! `Ok`, and nothing survives a restart — the WAL (then blocks) is the next
//! increment of issue 5, and until it lands this store does not pass the
//! suite's "data survives reopen" check, which its tests leave out.

use common::{LabelMatcher, Metric, MetricStore, Series, StorageError, TimeRange};

use crate::head::{Head, HeadConfig, HeadError};

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

impl MetricStore for HeadStore {
    fn append(&self, metrics: &[Metric]) -> Result<(), StorageError> {
        Ok(self.head.append_batch(metrics)?)
    }

    fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StorageError> {
        Ok(self
            .head
            .select(matchers, range)?
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
            .collect())
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
