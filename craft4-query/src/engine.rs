//! `Craft4QueryEngine`: craft 4 in slot 4 — the seed's question, the
//! query language and the Prometheus HTTP API behind `common::QueryEngine`,
//! over any `MetricStore`.
//!
//! The bottleneck it removes: phase0's engine (`phase0/src/query.rs`)
//! knows one question and answers every Prometheus API call with 501.
//! This one answers the seed's `/query` the same way (through the store's
//! `select`, so craft 3's index serves it instead of a file scan) and the
//! whole API through `api/` and the evaluator in `eval/`, range queries
//! optionally through the result cache (`cache.rs`, [`with_cache`]).
//! `platform --query craft4` puts it in the pipeline. Docs chapter 4.
//!
//! [`with_cache`]: Craft4QueryEngine::with_cache

use std::sync::Arc;

use common::{
    ApiCall, Clock, LabelMatcher, Metric, MetricStore, QueryEngine, QueryError, SystemClock,
    TimeRange,
};

use crate::api;
use crate::cache::{CacheConfig, ResultCache};
use crate::eval::{Engine, EngineConfig};

/// The craft 4 query engine.
pub struct Craft4QueryEngine {
    engine: Engine,
    clock: Arc<dyn Clock>,
    cache: Option<Arc<ResultCache>>,
}

impl std::fmt::Debug for Craft4QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Craft4QueryEngine")
            .field("engine", &self.engine)
            .field("cache", &self.cache.as_ref().map(|c| c.config()))
            .finish_non_exhaustive()
    }
}

impl Craft4QueryEngine {
    /// An engine over `store` with `config`'s limits, on the wall clock,
    /// without a result cache.
    pub fn new(store: Arc<dyn MetricStore>, config: EngineConfig) -> Self {
        Craft4QueryEngine {
            engine: Engine::new(store, config),
            clock: Arc::new(SystemClock),
            cache: None,
        }
    }

    /// The same engine answering range queries through a result cache
    /// (`cache.rs`), when `config.enabled`.
    ///
    /// Whoever stores samples must then report each stored batch to
    /// [`Craft4QueryEngine::observe_writes`] (or to the cache's
    /// [`ResultCache::observe`]): a sample older than what the cache holds
    /// would otherwise be missing from its answers.
    pub fn with_cache(mut self, config: CacheConfig) -> Self {
        self.cache = config.enabled.then(|| Arc::new(ResultCache::new(config)));
        self
    }

    /// The result cache, when there is one: the pipeline can keep it to
    /// report writes to.
    pub fn cache(&self) -> Option<&Arc<ResultCache>> {
        self.cache.as_ref()
    }

    /// Reports a batch just stored: cached steps it may change are dropped
    /// (see [`ResultCache::observe`]). A no-op without a cache; cheap for
    /// a batch of recent samples.
    pub fn observe_writes(&self, metrics: &[Metric]) {
        if let Some(cache) = &self.cache {
            cache.observe(metrics);
        }
    }

    /// Drops every cached step that may have read a sample at or after
    /// `timestamp_ms` (see [`ResultCache::invalidate_from`]).
    pub fn invalidate_from(&self, timestamp_ms: i64) {
        if let Some(cache) = &self.cache {
            cache.invalidate_from(timestamp_ms);
        }
    }

    /// Empties the result cache (see [`ResultCache::invalidate_all`]).
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// The same engine telling the time by `clock`: an instant query
    /// without `time` runs at `clock.now_ms()` (tests pass a
    /// `ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The evaluator, for callers that hold an expression already.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl QueryEngine for Craft4QueryEngine {
    /// Every stored batch: late samples invalidate cached steps.
    fn observe(&self, metrics: &[Metric]) {
        self.observe_writes(metrics);
    }

    fn samples(&self, name: &str, range: TimeRange) -> Result<Vec<Metric>, QueryError> {
        if range.start_ms > range.end_ms {
            return Ok(Vec::new());
        }
        let series = self
            .engine
            .store()
            .select(&[LabelMatcher::metric_name(name)], range)?;
        let mut metrics: Vec<Metric> =
            Vec::with_capacity(series.iter().map(|s| s.samples.len()).sum());
        for series in series {
            metrics.extend(series.samples.iter().map(|sample| Metric {
                name: series.name.clone(),
                labels: series.labels.clone(),
                value: sample.value,
                timestamp_ms: sample.timestamp_ms,
            }));
        }
        // The store hands series over ordered by labels; a stable sort by
        // time keeps that order among equal timestamps, which is the
        // trait's "by timestamp, then labels".
        metrics.sort_by_key(|metric| metric.timestamp_ms);
        Ok(metrics)
    }

    fn api(&self, call: &ApiCall) -> Result<serde_json::Value, QueryError> {
        api::answer_cached(
            &self.engine,
            self.cache.as_deref(),
            self.clock.as_ref(),
            call,
        )
    }

    fn name(&self) -> &'static str {
        "craft4"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetricStore> =
            Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).unwrap());
        common::testkit::query::run_all(store, &|store| {
            Arc::new(Craft4QueryEngine::new(store, EngineConfig::default()))
        });
    }
}
