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

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The store's [`MetricStore::deletions`] when the cache last checked:
    /// retention deleting a block changes answers about its time, which no
    /// write reports.
    seen_deletions: AtomicU64,
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
            seen_deletions: AtomicU64::new(0),
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

    /// One API call, through the cache when there is one.
    fn answer(&self, call: &ApiCall) -> Result<api::Answer, QueryError> {
        self.drop_cache_after_deletions();
        api::answer_cached(
            &self.engine,
            self.cache.as_deref(),
            self.clock.as_ref(),
            call,
        )
    }

    /// Empties the cache when the store deleted data (retention) since the
    /// last look. Checked before each call, so a query never reuses a step
    /// that read a deleted block; a deletion racing with a query is caught
    /// by the next one.
    fn drop_cache_after_deletions(&self) {
        let Some(cache) = &self.cache else {
            return;
        };
        let deletions = self.engine.store().deletions();
        if self.seen_deletions.swap(deletions, Ordering::AcqRel) != deletions {
            cache.invalidate_all();
        }
    }

    /// The cache's counters in Prometheus' text format, for `GET /metrics`.
    fn write_cache_metrics(cache: &ResultCache, out: &mut String) {
        let stats = cache.stats();
        let counters: [Family<'_>; 4] = [
            (
                "craft4_query_cache_requests_total",
                "Range queries that went through the result cache, by how much they reused.",
                &[
                    ("result=\"hit\"", stats.hits),
                    ("result=\"partial\"", stats.partial_hits),
                    ("result=\"miss\"", stats.misses),
                ],
            ),
            (
                "craft4_query_cache_steps_total",
                "Steps of cached range queries, answered from the cache or evaluated.",
                &[
                    ("source=\"cache\"", stats.steps_reused),
                    ("source=\"evaluated\"", stats.steps_evaluated),
                ],
            ),
            (
                "craft4_query_cache_invalidations_total",
                "Invalidations (late samples, retention) that dropped cached steps.",
                &[("", stats.invalidations)],
            ),
            (
                "craft4_query_cache_evictions_total",
                "Entries dropped to stay within the cache's bounds.",
                &[("", stats.evictions)],
            ),
        ];
        for (name, help, samples) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        for (name, help, value) in [
            (
                "craft4_query_cache_entries",
                "Range queries held by the result cache.",
                stats.entries,
            ),
            (
                "craft4_query_cache_points",
                "Points held by the result cache (series overhead included).",
                stats.points,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
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
        self.answer(call).map(api::Answer::into_json)
    }

    /// A query's matrix or vector written as JSON text directly, without
    /// the `serde_json::Value` tree (see `api/format.rs`).
    fn api_json(&self, call: &ApiCall) -> Result<Vec<u8>, QueryError> {
        self.answer(call).map(|answer| answer.to_bytes())
    }

    fn write_metrics(&self, out: &mut String) {
        if let Some(cache) = &self.cache {
            Self::write_cache_metrics(cache, out);
        }
    }

    fn name(&self) -> &'static str {
        "craft4"
    }
}

/// A counter family for `GET /metrics`: name, help, and `(labels, value)`
/// samples (labels as written between the braces, empty for none).
type Family<'a> = (&'a str, &'a str, &'a [(&'a str, u64)]);

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
