//! `Craft4QueryEngine`: craft 4 in slot 4 — the seed's question and
//! instant queries behind `common::QueryEngine`, the Prometheus HTTP API
//! for `api/routes.rs` to serve, over any `MetricStore`.
//!
//! The bottleneck it removes: phase0's engine (`phase0/src/query.rs`)
//! knows one question and answers every Prometheus API call with 501.
//! This one answers the seed's `/query` the same way (through the store's
//! `select`, so craft 3's index serves it instead of a file scan) and the
//! whole API through `api/` and the evaluator in `eval/`, range queries
//! optionally through the result cache (`cache.rs`, [`with_cache`]).
//! [`Craft4QueryEngine::slot`] hands the platform all three faces: the
//! engine, its routes and its cache's write observer. Docs chapter 4.
//!
//! [`with_cache`]: Craft4QueryEngine::with_cache

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::http::RouteSet;
use common::{
    AppendObserver, Clock, InstantQuery, InstantSample, LabelMatcher, MetadataRegistry, Metric,
    MetricStore, QueryEngine, QueryError, SystemClock, TargetRegistry, TimeRange, WriteBarrier,
};

use crate::api::{self, ApiCall};
use crate::cache::{CacheConfig, ResultCache};
use crate::eval::{Engine, EngineConfig};
use crate::value::Value;

/// The craft 4 query engine.
pub struct Craft4QueryEngine {
    engine: Engine,
    clock: Arc<dyn Clock>,
    cache: Option<Arc<ResultCache>>,
    /// When it was built (ms since the epoch, by `clock`).
    started_ms: i64,
    /// Metric types and help the write paths heard.
    metadata: Arc<MetadataRegistry>,
    /// Whether the admin endpoints (deleting series) answer.
    admin_api: bool,
    /// Settled before a deletion, so no write accepted before it is
    /// stored after it (or delivered again after a crash).
    barrier: Arc<WriteBarrier>,
    /// The scraper's targets (`/api/v1/targets`).
    targets: Arc<TargetRegistry>,
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
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Craft4QueryEngine {
            engine: Engine::new(store, config),
            started_ms: clock.now_ms(),
            clock,
            cache: None,
            metadata: Arc::new(MetadataRegistry::new()),
            admin_api: false,
            barrier: Arc::new(WriteBarrier::new()),
            targets: Arc::new(TargetRegistry::new()),
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
        self.started_ms = clock.now_ms();
        self.clock = clock;
        self
    }

    /// The same engine with the admin endpoints
    /// (`/api/v1/admin/tsdb/delete_series`) on or off (off by default, as
    /// Prometheus without `--web.enable-admin-api`). A deletion first
    /// settles `barrier`: give it the pipeline's
    /// (`pipeline::Components::barrier`).
    pub fn with_admin_api(mut self, enabled: bool, barrier: Arc<WriteBarrier>) -> Self {
        self.admin_api = enabled;
        self.barrier = barrier;
        self
    }

    /// Whether the admin endpoints answer.
    pub fn admin_api(&self) -> bool {
        self.admin_api
    }

    /// The same engine answering `/api/v1/targets` from `targets`: the
    /// registry the scraper reports to.
    pub fn with_targets(mut self, targets: Arc<TargetRegistry>) -> Self {
        self.targets = targets;
        self
    }

    /// The same engine answering `/api/v1/metadata` from `metadata`: the
    /// registry the pipeline's write paths record into
    /// (`pipeline::Components::metadata`).
    pub fn with_metadata(mut self, metadata: Arc<MetadataRegistry>) -> Self {
        self.metadata = metadata;
        self
    }

    /// The engine in slot 4 with everything it offers beside the trait:
    /// the Prometheus API's routes and the cache's write observer, for the
    /// runtime to mount and to call after each stored batch.
    pub fn slot(self) -> QuerySlot {
        let engine = Arc::new(self);
        QuerySlot {
            engine: engine.clone(),
            routes: Arc::new(api::routes::PrometheusApi::new(engine.clone())),
            observer: engine,
        }
    }

    /// One Prometheus API call: the `data` member of the success answer.
    ///
    /// # Errors
    /// As [`api::answer`].
    pub fn api(&self, call: &ApiCall) -> Result<serde_json::Value, QueryError> {
        self.answer(call).map(api::Answer::into_json)
    }

    /// [`api`](Self::api)'s answer as JSON text, a query's matrix or
    /// vector written directly without the `serde_json::Value` tree (see
    /// `api/format.rs`): what the routes send.
    ///
    /// # Errors
    /// As [`api::answer`].
    pub fn api_json(&self, call: &ApiCall) -> Result<Vec<u8>, QueryError> {
        self.answer(call).map(|answer| answer.to_bytes())
    }

    /// The result cache's counters in Prometheus' text format, for
    /// `GET /metrics`; nothing without a cache.
    pub fn write_metrics(&self, out: &mut String) {
        if let Some(cache) = &self.cache {
            Self::write_cache_metrics(cache, out);
        }
    }

    /// The evaluator, for callers that hold an expression already.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// One API call, through the cache when there is one.
    fn answer(&self, call: &ApiCall) -> Result<api::Answer, QueryError> {
        self.drop_cache_after_deletions();
        let context = api::ApiContext {
            engine: &self.engine,
            cache: self.cache.as_deref(),
            clock: self.clock.as_ref(),
            started_ms: self.started_ms,
            metadata: &self.metadata,
            barrier: &self.barrier,
            targets: &self.targets,
        };
        api::answer(&context, call)
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

/// Craft 4 as the platform mounts it (see [`Craft4QueryEngine::slot`]).
pub struct QuerySlot {
    /// Slot 4.
    pub engine: Arc<Craft4QueryEngine>,
    /// `/api/v1/query`, `query_range`, `series`, `labels`, …
    pub routes: Arc<dyn RouteSet>,
    /// Drops cached steps that a late sample changes.
    pub observer: Arc<dyn AppendObserver>,
}

impl AppendObserver for Craft4QueryEngine {
    /// Every stored batch: late samples invalidate cached steps.
    fn appended(&self, metrics: &[Metric]) {
        self.observe_writes(metrics);
    }
}

impl QueryEngine for Craft4QueryEngine {
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

    /// The expression parsed and evaluated at `query.time_ms`, under the
    /// tighter of the engine's limits and the query's.
    fn instant(&self, query: &InstantQuery) -> Result<Vec<InstantSample>, QueryError> {
        let expr = promql::parse(&query.expr).map_err(|e| QueryError::BadRequest(e.to_string()))?;
        let own = self.engine.config();
        let config = EngineConfig {
            max_samples: query
                .max_samples
                .map_or(own.max_samples, |limit| limit.min(own.max_samples)),
            timeout: query
                .timeout
                .map_or(own.timeout, |limit| limit.min(own.timeout)),
            ..own.clone()
        };
        let engine = Engine::new(self.engine.store().clone(), config);
        let value = engine
            .instant(&expr, query.time_ms)
            .map_err(api::query::eval_error)?;
        match value {
            Value::Vector(samples) => Ok(samples
                .into_iter()
                .map(|sample| InstantSample {
                    name: sample.key.name,
                    labels: sample.key.labels,
                    value: sample.point.v,
                })
                .collect()),
            Value::Scalar(point) => Ok(vec![InstantSample {
                name: None,
                labels: common::Labels::empty(),
                value: point.v,
            }]),
            Value::String { .. } | Value::Matrix(_) => Err(QueryError::Execution(format!(
                "{:?} is not a vector or scalar expression",
                query.expr
            ))),
        }
    }

    fn name(&self) -> &'static str {
        "craft4"
    }
}

/// A counter family for `GET /metrics`: name, help, and `(labels, value)`
/// samples (labels as written between the braces, empty for none).
type Family<'a> = (&'a str, &'a str, &'a [(&'a str, u64)]);
