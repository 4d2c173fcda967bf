//! The result cache (`src/cache.rs`) through `Craft4QueryEngine::api`, as
//! the HTTP routes use it: hits and misses counted, only the mutable tail
//! re-evaluated, answers identical to an engine without a cache — over
//! random ranges, steps, tail appends and late writes — and a late write
//! reported through `observe_writes` making the next answer right again.
//! Docs chapter 4, "Caching".

use std::sync::Arc;

use common::{Clock, ManualClock, Metric, MetricStore};
use craft3_storage::HeadStore;
use craft4_query::api::{ApiCall, ApiEndpoint};
use craft4_query::cache::{CacheConfig, CacheStats};
use craft4_query::engine::Craft4QueryEngine;
use craft4_query::eval::EngineConfig;
use proptest::prelude::*;
use serde_json::Value as Json;

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;
const SCRAPE: i64 = 10_000;

/// A store, an engine with the cache and one without, on one manual clock.
struct Setup {
    store: Arc<dyn MetricStore>,
    clock: Arc<ManualClock>,
    cached: Craft4QueryEngine,
    uncached: Craft4QueryEngine,
}

fn setup(config: CacheConfig) -> Setup {
    let store: Arc<dyn MetricStore> = Arc::new(HeadStore::default());
    let clock = Arc::new(ManualClock::new(T0));
    let cached = Craft4QueryEngine::new(store.clone(), EngineConfig::default())
        .with_clock(clock.clone())
        .with_cache(config);
    let uncached =
        Craft4QueryEngine::new(store.clone(), EngineConfig::default()).with_clock(clock.clone());
    Setup {
        store,
        clock,
        cached,
        uncached,
    }
}

/// Two gauges and two counters, one sample per series every 10 s in
/// `[from, to)`; values a deterministic function of series and time (a
/// counter resets every 17 minutes).
fn samples(from: i64, to: i64) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut t = from.div_euclid(SCRAPE) * SCRAPE;
    if t < from {
        t += SCRAPE;
    }
    while t < to {
        let i = (t - T0) / SCRAPE;
        for (host, k) in [("a", 1), ("b", 2)] {
            let labels = [("host", host)];
            out.push(common::testkit::metric(
                "gauge",
                &labels,
                ((i * 7 * k) % 100) as f64 / 4.0,
                t,
            ));
            out.push(common::testkit::metric(
                "requests_total",
                &labels,
                ((i * k * 3) % (17 * 6 * 3 * k)) as f64,
                t,
            ));
        }
        t += SCRAPE;
    }
    out
}

impl Setup {
    fn append(&self, metrics: &[Metric]) {
        self.store.append(metrics).expect("append");
    }

    /// Stores a batch and reports it, as the pipeline's storage consumer
    /// would.
    fn write(&self, metrics: &[Metric]) {
        self.append(metrics);
        self.cached.observe_writes(metrics);
    }

    fn stats(&self) -> CacheStats {
        self.cached.cache().expect("cache on").stats()
    }

    /// The cached engine's answer, checked against the uncached one's.
    fn range(&self, query: &str, start: i64, end: i64, step: i64) -> Json {
        let cached = self.cached.api(&call(query, start, end, step));
        let uncached = self.uncached.api(&call(query, start, end, step));
        match (cached, uncached) {
            (Ok(cached), Ok(uncached)) => {
                assert_eq!(
                    cached, uncached,
                    "{query} over [{start}, {end}] step {step}: cached != uncached"
                );
                cached
            }
            (Err(cached), Err(uncached)) => {
                assert_eq!(cached.to_string(), uncached.to_string());
                Json::Null
            }
            (cached, uncached) => panic!("{query}: cached {cached:?}, uncached {uncached:?}"),
        }
    }
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn call(query: &str, start: i64, end: i64, step: i64) -> ApiCall {
    ApiCall {
        endpoint: ApiEndpoint::QueryRange,
        params: vec![
            ("query".into(), query.into()),
            ("start".into(), seconds(start)),
            ("end".into(), seconds(end)),
            ("step".into(), seconds(step)),
        ],
    }
}

#[test]
fn repeated_queries_over_old_data_hit() {
    let s = setup(CacheConfig::enabled());
    s.write(&samples(T0, T0 + 120 * MINUTE));
    s.clock.set(T0 + 120 * MINUTE);
    let query = "sum by (host) (rate(requests_total[5m]))";
    let (start, end) = (T0 + 10 * MINUTE, T0 + 60 * MINUTE);

    s.range(query, start, end, MINUTE);
    let first = s.stats();
    assert_eq!((first.misses, first.hits, first.partial_hits), (1, 0, 0));
    assert_eq!(first.steps_evaluated, 51);
    assert_eq!(first.entries, 1);

    // The same query: every step from the cache.
    s.range(query, start, end, MINUTE);
    let second = s.stats();
    assert_eq!((second.misses, second.hits), (1, 1));
    assert_eq!(second.steps_evaluated, 51, "nothing evaluated again");
    assert_eq!(second.steps_reused, 51);

    // Written differently, same canonical expression: the same entry.
    s.range("sum(rate(requests_total[5m]))by(host)", start, end, MINUTE);
    assert_eq!(s.stats().hits, 2);

    // A longer range: the held steps reused, only the new ones evaluated.
    s.range(query, start, end + 30 * MINUTE, MINUTE);
    let third = s.stats();
    assert_eq!(third.partial_hits, 1);
    assert_eq!(third.steps_evaluated, 51 + 30);
    // And one starting earlier, on the same alignment.
    s.range(query, start - 5 * MINUTE, end, MINUTE);
    let fourth = s.stats();
    assert_eq!(fourth.partial_hits, 2);
    assert_eq!(fourth.steps_evaluated, 51 + 30 + 5);
    assert_eq!(fourth.entries, 1, "the runs merged into one entry");

    // Another step or alignment is another entry.
    s.range(query, start, end, 2 * MINUTE);
    s.range(query, start + 1_000, end, MINUTE);
    let fifth = s.stats();
    assert_eq!(fifth.misses, 3);
    assert_eq!(fifth.entries, 3);
}

#[test]
fn nocache_bypasses_the_cache_and_a_bad_value_is_refused() {
    let s = setup(CacheConfig::enabled());
    s.write(&samples(T0, T0 + 120 * MINUTE));
    s.clock.set(T0 + 120 * MINUTE);
    let query = "sum by (host) (rate(requests_total[5m]))";
    let (start, end) = (T0 + 10 * MINUTE, T0 + 60 * MINUTE);
    s.range(query, start, end, MINUTE);
    let before = s.stats();
    let mut bypass = call(query, start, end, MINUTE);
    bypass.params.push(("nocache".into(), "1".into()));
    let answer = s.cached.api(&bypass).expect("answer");
    assert_eq!(
        answer,
        s.range(query, start, end, MINUTE),
        "the same answer"
    );
    let after = s.stats();
    assert_eq!(after.hits, before.hits + 1, "only the checked call hit");
    assert_eq!(after.steps_evaluated, before.steps_evaluated);
    let mut bad = call(query, start, end, MINUTE);
    bad.params.push(("nocache".into(), "maybe".into()));
    let error = s.cached.api(&bad).expect_err("refused");
    assert!(error.to_string().contains("nocache"), "{error}");
}

#[test]
fn only_the_mutable_tail_is_evaluated_again() {
    let s = setup(CacheConfig::enabled());
    let now = T0 + 120 * MINUTE;
    s.write(&samples(T0, now));
    s.clock.set(now);
    let query = "avg_over_time(gauge[10m])";
    let start = T0 + 60 * MINUTE;

    // Up to now: the last 5 minutes (the horizon) are not stored.
    s.range(query, start, now, MINUTE);
    s.range(query, start, now, MINUTE);
    let stats = s.stats();
    assert_eq!(stats.partial_hits, 1);
    // Steps t with t < now - 5 m are immutable: 55 of the 61.
    assert_eq!(stats.steps_reused, 55);
    assert_eq!(stats.steps_evaluated, 61 + 6);

    // Time passes, new samples arrive at the tail: the next refresh
    // evaluates the steps it has not stored, and agrees with no cache.
    for minute in 1..=10 {
        let later = now + minute * MINUTE;
        s.write(&samples(later - MINUTE, later));
        s.clock.set(later);
        s.range(query, start, later, MINUTE);
    }
    let stats = s.stats();
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.partial_hits, 11);
    // Each refresh a minute later evaluates the 7 steps after the last
    // one stored: the horizon's 5, the minute that passed, and `now`.
    assert_eq!(stats.steps_evaluated, 61 + 6 + 10 * 7, "{stats:?}");
}

#[test]
fn a_late_write_reported_to_the_cache_is_seen_by_the_next_query() {
    let s = setup(CacheConfig::enabled());
    let now = T0 + 120 * MINUTE;
    s.write(&samples(T0, now));
    s.clock.set(now);
    let query = "max by (host) (max_over_time(gauge[5m]))";
    let (start, end) = (T0, now);
    s.range(query, start, end, MINUTE);
    let late = vec![common::testkit::metric(
        "gauge",
        &[("host", "a")],
        1_000.0,
        T0 + 30 * MINUTE,
    )];

    // Stored but not reported: the cache cannot know, and answers stale.
    s.append(&late);
    let stale = s.cached.api(&call(query, start, end, MINUTE)).expect("ok");
    let fresh = s
        .uncached
        .api(&call(query, start, end, MINUTE))
        .expect("ok");
    assert_ne!(stale, fresh, "the cache held the steps the write changed");

    // Reported: the steps that may have read it are dropped, the earlier
    // ones kept.
    s.cached.observe_writes(&late);
    let before = s.stats();
    assert_eq!(before.invalidations, 1);
    s.range(query, start, end, MINUTE);
    let after = s.stats();
    assert_eq!(
        after.steps_reused - before.steps_reused,
        30,
        "steps before the write"
    );

    // A batch of recent samples invalidates nothing.
    s.write(&samples(now, now + MINUTE));
    assert_eq!(s.stats().invalidations, 1);

    // And everything can be dropped at once.
    s.cached.invalidate_all();
    assert_eq!(s.stats().entries, 0);
    s.range(query, start, end, MINUTE);
}

#[test]
fn samples_within_the_horizon_need_no_report() {
    let s = setup(CacheConfig::enabled());
    let now = T0 + 120 * MINUTE;
    s.write(&samples(T0, now));
    s.clock.set(now);
    s.range("gauge", T0 + 60 * MINUTE, now, 30_000);
    // 4 m 59 s old, a new series, not reported: no stored step saw its
    // time, so the next answer has it without any invalidation.
    s.append(&[common::testkit::metric(
        "gauge",
        &[("host", "c")],
        1.0,
        now - 5 * MINUTE + 1_000,
    )]);
    let answer = s.range("gauge", T0 + 60 * MINUTE, now, 30_000);
    assert_eq!(answer["result"].as_array().map(Vec::len), Some(3));
    assert_eq!(s.stats().invalidations, 0);
}

#[test]
fn offsets_that_read_ahead_keep_their_steps_mutable_longer() {
    let s = setup(CacheConfig::enabled());
    let now = T0 + 120 * MINUTE;
    s.write(&samples(T0, now));
    s.clock.set(now);
    // Each step reads 20 minutes ahead of itself.
    let query = "gauge offset -20m";
    s.range(query, T0 + 60 * MINUTE, now, MINUTE);
    s.range(query, T0 + 60 * MINUTE, now, MINUTE);
    // Stored: steps t + 20 m < now - 5 m, i.e. t < T0 + 95 m: 35 steps.
    assert_eq!(s.stats().steps_reused, 35);
}

#[test]
fn memory_stays_within_its_bounds() {
    let s = setup(CacheConfig {
        max_points: 1_000,
        max_entries: 3,
        ..CacheConfig::enabled()
    });
    let now = T0 + 120 * MINUTE;
    s.write(&samples(T0, now));
    s.clock.set(now);
    for step in 1..=6 {
        s.range("gauge", T0, now - 10 * MINUTE, step * 30_000);
        let stats = s.stats();
        assert!(stats.entries <= 3, "{stats:?}");
        assert!(stats.points <= 1_000, "{stats:?}");
    }
    assert!(s.stats().evictions > 0);
    // Larger than the whole cache: answered, not kept.
    s.range("gauge", T0, now - 10 * MINUTE, 10_000);
    assert!(s.stats().points <= 1_000);
}

#[test]
fn off_means_no_cache_at_all() {
    let s = setup(CacheConfig::default());
    assert!(s.cached.cache().is_none());
    s.write(&samples(T0, T0 + 10 * MINUTE));
    s.clock.set(T0 + 60 * MINUTE);
    s.range("gauge", T0, T0 + 10 * MINUTE, MINUTE);
}

#[test]
fn bad_queries_get_the_engine_s_errors() {
    let s = setup(CacheConfig::enabled());
    s.write(&samples(T0, T0 + 10 * MINUTE));
    s.clock.set(T0 + 60 * MINUTE);
    for (query, start, end, step) in [
        ("gauge", T0 + MINUTE, T0, MINUTE),
        ("gauge", T0, T0 + 10 * MINUTE, 1),
        ("gauge[5m]", T0, T0 + MINUTE, MINUTE),
        ("1 + 1", T0, T0 + MINUTE, MINUTE),
    ] {
        s.range(query, start, end, step);
    }
}

/// One thing that happens to the system in the property test.
#[derive(Clone, Debug)]
enum Event {
    /// A range query: start offset (minutes after T0), length (minutes),
    /// step (index into STEPS), expression (index into QUERIES).
    Query(i64, i64, usize, usize),
    /// Time passes by this many minutes; the new samples arrive.
    Advance(i64),
    /// A sample this many minutes after T0 is rewritten, and reported.
    LateWrite(i64, f64),
    /// A sample this many seconds old arrives, within the horizon, and is
    /// *not* reported: the cache must never have stored a step it changes.
    RecentWrite(i64, f64),
}

const STEPS: [i64; 5] = [10_000, 30_000, 60_000, 90_000, 300_000];
const QUERIES: [&str; 7] = [
    "gauge",
    "sum by (host) (rate(requests_total[5m]))",
    "avg_over_time(gauge[7m])",
    "gauge offset 3m - gauge offset -2m",
    "max(max_over_time(gauge[10m:1m]))",
    "topk(1, gauge) * 2",
    "increase(requests_total[90s]) > bool 10",
];

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (0..150i64, 1..120i64, 0..STEPS.len(), 0..QUERIES.len())
            .prop_map(|(s, l, st, q)| Event::Query(s, l, st, q)),
        2 => (1..8i64).prop_map(Event::Advance),
        1 => (0..150i64, -50.0..50.0f64).prop_map(|(m, v)| Event::LateWrite(m, v)),
        1 => (0..300i64, -50.0..50.0f64).prop_map(|(s, v)| Event::RecentWrite(s, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cached_answers_equal_uncached_ones(events in prop::collection::vec(event(), 1..40)) {
        let s = setup(CacheConfig::enabled());
        let mut now = T0 + 120 * MINUTE;
        s.write(&samples(T0, now));
        s.clock.set(now);
        for event in events {
            match event {
                Event::Query(start, length, step, query) => {
                    let start = T0 + start * MINUTE + (start % 3) * 7_000;
                    s.range(QUERIES[query], start, start + length * MINUTE, STEPS[step]);
                }
                Event::Advance(minutes) => {
                    let later = now + minutes * MINUTE;
                    s.write(&samples(now, later));
                    now = later;
                    s.clock.set(now);
                }
                Event::RecentWrite(seconds, value) => {
                    let t = now - seconds * 1_000 + 1;
                    // A new series: every step that can see it changes.
                    s.append(&[common::testkit::metric("gauge", &[("host", "c")], value, t)]);
                }
                Event::LateWrite(minute, value) => {
                    let host = if minute % 2 == 0 { "a" } else { "b" };
                    let t = T0 + minute * MINUTE;
                    s.write(&[
                        common::testkit::metric("gauge", &[("host", host)], value, t),
                        common::testkit::metric("requests_total", &[("host", host)], value.abs(), t + SCRAPE / 2),
                    ]);
                }
            }
        }
        let stats = s.stats();
        prop_assert!(stats.points <= CacheConfig::enabled().max_points);
        prop_assert_eq!(s.clock.now_ms(), now);
    }
}

/// A store whose retention can be triggered by hand: after
/// [`expire`](Expiring::expire) it answers nothing older than the horizon
/// and counts one deletion, as craft 3's `Db` does when it deletes a block.
struct Expiring {
    inner: HeadStore,
    horizon_ms: std::sync::atomic::AtomicI64,
    deletions: std::sync::atomic::AtomicU64,
}

impl Expiring {
    fn expire(&self, before_ms: i64) {
        use std::sync::atomic::Ordering;
        self.horizon_ms.store(before_ms, Ordering::SeqCst);
        self.deletions.fetch_add(1, Ordering::SeqCst);
    }
}

impl MetricStore for Expiring {
    fn append(&self, metrics: &[Metric]) -> Result<(), common::StorageError> {
        self.inner.append(metrics)
    }

    fn select(
        &self,
        matchers: &[common::LabelMatcher],
        range: common::TimeRange,
    ) -> Result<Vec<common::Series>, common::StorageError> {
        let horizon = self.horizon_ms.load(std::sync::atomic::Ordering::SeqCst);
        let range = common::TimeRange::new(range.start_ms.max(horizon), range.end_ms);
        if range.start_ms > range.end_ms {
            return Ok(Vec::new());
        }
        self.inner.select(matchers, range)
    }

    fn label_names(&self) -> Result<Vec<String>, common::StorageError> {
        self.inner.label_names()
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>, common::StorageError> {
        self.inner.label_values(name)
    }

    fn flush(&self) -> Result<(), common::StorageError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "expiring"
    }

    fn describe(&self) -> String {
        "a head store with retention by hand".into()
    }

    fn deletions(&self) -> u64 {
        self.deletions.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Retention deletes old data without any write to report it: the cache
/// notices the store's deletion count moved and answers from the store
/// again, never with a deleted sample.
#[test]
fn retention_empties_the_cache() {
    let store = Arc::new(Expiring {
        inner: HeadStore::default(),
        horizon_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
        deletions: std::sync::atomic::AtomicU64::new(0),
    });
    let clock = Arc::new(ManualClock::new(T0 + 120 * MINUTE));
    let dyn_store: Arc<dyn MetricStore> = store.clone();
    let s = Setup {
        store: dyn_store.clone(),
        clock: clock.clone(),
        cached: Craft4QueryEngine::new(dyn_store.clone(), EngineConfig::default())
            .with_clock(clock.clone())
            .with_cache(CacheConfig::enabled()),
        uncached: Craft4QueryEngine::new(dyn_store, EngineConfig::default()).with_clock(clock),
    };
    s.write(&samples(T0, T0 + 120 * MINUTE));
    let query = "sum(gauge)";
    let (start, end) = (T0, T0 + 60 * MINUTE);
    let before = s.range(query, start, end, MINUTE);
    s.range(query, start, end, MINUTE);
    assert_eq!(s.stats().hits, 1);

    store.expire(T0 + 30 * MINUTE);
    // `range` checks the cached answer against the uncached one.
    let after = s.range(query, start, end, MINUTE);
    assert_ne!(before, after, "the deleted half is gone from the answer");
    let stats = s.stats();
    assert_eq!(stats.hits, 1, "nothing reused after the deletion");
    assert!(stats.invalidations >= 1, "{stats:?}");
    // Until the next deletion, the new answer is cached again.
    s.range(query, start, end, MINUTE);
    assert_eq!(s.stats().hits, 2);
}

/// `GET /metrics` shows the cache's counters (the engine writes them, the
/// ingestion server serves them): hits, partial hits and misses.
#[test]
fn the_cache_counters_are_written_in_prometheus_text() {
    let s = setup(CacheConfig::enabled());
    s.write(&samples(T0, T0 + 120 * MINUTE));
    s.clock.set(T0 + 120 * MINUTE);
    s.range("sum(gauge)", T0, T0 + 60 * MINUTE, MINUTE);
    s.range("sum(gauge)", T0, T0 + 60 * MINUTE, MINUTE);
    s.range("sum(gauge)", T0, T0 + 70 * MINUTE, MINUTE);
    let mut text = String::new();
    s.cached.write_metrics(&mut text);
    for line in [
        "# TYPE craft4_query_cache_requests_total counter",
        "craft4_query_cache_requests_total{result=\"hit\"} 1",
        "craft4_query_cache_requests_total{result=\"partial\"} 1",
        "craft4_query_cache_requests_total{result=\"miss\"} 1",
        "craft4_query_cache_steps_total{source=\"cache\"} 122",
        "craft4_query_cache_steps_total{source=\"evaluated\"} 71",
        "# TYPE craft4_query_cache_entries gauge",
        "craft4_query_cache_entries 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in\n{text}"
        );
    }
    // Without a cache there is nothing to show.
    let mut none = String::new();
    s.uncached.write_metrics(&mut none);
    assert_eq!(none, "");
}
