//! phase0's query engine: answers the seed's one question — samples of one
//! name in `[start, end]` — by asking the store, which reads the whole file.
//!
//! Bottleneck, on purpose: O(file size) per request, no index, no cache;
//! and since phase0's ingestion is single-threaded, a slow query also stalls
//! every write behind it. Chapter 0 measures latency against file size;
//! craft 4 replaces this. Story: docs chapter 0, "The query API".

use std::sync::Arc;

use common::{LabelMatcher, Metric, MetricStore, QueryEngine, QueryError, TimeRange};

/// Scans the store for every request.
pub struct ScanQueryEngine {
    store: Arc<dyn MetricStore>,
}

impl ScanQueryEngine {
    /// An engine over `store`.
    pub fn new(store: Arc<dyn MetricStore>) -> Self {
        ScanQueryEngine { store }
    }
}

impl QueryEngine for ScanQueryEngine {
    fn samples(&self, name: &str, range: TimeRange) -> Result<Vec<Metric>, QueryError> {
        if range.start_ms > range.end_ms {
            return Ok(Vec::new());
        }
        let series = self
            .store
            .select(&[LabelMatcher::metric_name(name)], range)?;
        let mut metrics: Vec<Metric> = series
            .into_iter()
            .flat_map(|s| {
                let (name, labels) = (s.name, s.labels);
                s.samples.into_iter().map(move |sample| Metric {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: sample.value,
                    timestamp_ms: sample.timestamp_ms,
                })
            })
            .collect();
        // Series come ordered by labels; a stable sort by time keeps that
        // order among equal timestamps.
        metrics.sort_by_key(|m| m.timestamp_ms);
        Ok(metrics)
    }

    fn name(&self) -> &'static str {
        "phase0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::JsonlFileStore;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetricStore> = Arc::new(JsonlFileStore::open(dir.path()).unwrap());
        common::testkit::query::run_all(store, &|store| Arc::new(ScanQueryEngine::new(store)));
    }
}
