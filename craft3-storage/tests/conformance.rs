//! The storage slot's conformance suite (`common::testkit::storage`) run
//! against `HeadStore`, plus head-specific checks through the trait:
//! out-of-order and duplicate samples, matchers, the series limit, and
//! concurrent appends and selects. Chapter 3, "The head".
//!
//! The suite's `data_survives_reopen` is left out on purpose: `HeadStore`
//! is the head alone, in memory (the WAL and blocks are `Db`'s, which runs
//! the whole suite in `tests/db.rs`), so `run_all` would fail on it. Every
//! other check of the suite runs, one by one.

use std::sync::Arc;

use common::testkit::{metric, storage};
use common::{LabelMatcher, MatchOp, MetricStore, Sample, StorageError, TimeRange};
use craft3_storage::head::ChunkPolicy;
use craft3_storage::{HeadConfig, HeadStore};

fn store() -> Arc<dyn MetricStore> {
    Arc::new(HeadStore::default())
}

#[test]
fn conformance_without_persistence() {
    storage::select_by_name_and_inclusive_range(store());
    storage::unknown_name_is_empty(store());
    storage::labels_separate_series_and_matchers_filter(store());
    storage::last_write_wins_for_duplicate_timestamp(store());
    storage::concurrent_appends_and_selects(store());
    storage::non_finite_values_keep_their_bits(store());
}

fn values(store: &dyn MetricStore, name: &str, range: TimeRange) -> Vec<(i64, f64)> {
    let series = store
        .select(&[LabelMatcher::metric_name(name)], range)
        .expect("select");
    assert!(series.len() <= 1);
    series
        .into_iter()
        .flat_map(|s| s.samples)
        .map(|s| (s.timestamp_ms, s.value))
        .collect()
}

/// Small chunks and a small out-of-order buffer, so every path (sealed,
/// open, buffered, early cut) is crossed by a few hundred samples.
fn small_chunks() -> HeadStore {
    HeadStore::new(HeadConfig {
        chunks: ChunkPolicy {
            samples_per_chunk: 8,
            ooo_capacity: 4,
            ..ChunkPolicy::default()
        },
        ..HeadConfig::default()
    })
    .expect("valid config")
}

#[test]
fn out_of_order_and_duplicates_match_a_reference_map() {
    let store = small_chunks();
    let mut reference = std::collections::BTreeMap::new();
    // A deterministic shuffle of 0..300 with every third timestamp written
    // twice more, values telling the writes apart.
    let mut write = 0.0;
    for round in 0..3 {
        for i in 0..300i64 {
            let t = (i * 7919) % 300 * 10;
            if round > 0 && i % 3 != 0 {
                continue;
            }
            write += 1.0;
            store
                .append(&[metric("m", &[("k", "v")], write, t)])
                .expect("append");
            reference.insert(t, write);
        }
    }
    let expected: Vec<(i64, f64)> = reference.iter().map(|(&t, &v)| (t, v)).collect();
    assert_eq!(values(&store, "m", TimeRange::ALL), expected);
    let window: Vec<(i64, f64)> = reference
        .range(500..=1_500)
        .map(|(&t, &v)| (t, v))
        .collect();
    assert_eq!(values(&store, "m", TimeRange::new(500, 1_500)), window);
}

#[test]
fn matchers_through_the_trait() {
    let store = store();
    store
        .append(&[
            metric(
                "http_requests_total",
                &[("code", "200"), ("path", "/")],
                1.0,
                1,
            ),
            metric(
                "http_requests_total",
                &[("code", "500"), ("path", "/")],
                1.0,
                1,
            ),
            metric("http_requests_total", &[("path", "/health")], 1.0, 1),
            metric("up", &[("job", "node")], 1.0, 1),
        ])
        .expect("append");
    let codes = |matchers: Vec<LabelMatcher>| -> Vec<Option<String>> {
        store
            .select(&matchers, TimeRange::ALL)
            .expect("select")
            .into_iter()
            .map(|s| s.labels.get("code").map(str::to_string))
            .collect()
    };
    let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).expect("matcher");
    let http = || LabelMatcher::metric_name("http_requests_total");
    assert_eq!(
        codes(vec![http(), m("code", MatchOp::Regex, "2..")]),
        vec![Some("200".into())]
    );
    assert_eq!(
        codes(vec![http(), m("code", MatchOp::NotRegex, "2..")]),
        vec![Some("500".into()), None],
        "!~ keeps the series without `code` (ordered by labels: code < path)"
    );
    assert_eq!(
        codes(vec![http(), m("code", MatchOp::Regex, "5..|")]).len(),
        2
    );
    assert_eq!(codes(vec![m("job", MatchOp::Equal, "node")]), vec![None]);
    assert_eq!(
        codes(vec![m("path", MatchOp::NotEqual, "/")]).len(),
        2,
        "/health and up"
    );
    assert!(
        LabelMatcher::new("code", MatchOp::Regex, "(").is_err(),
        "a bad regex is an error, not a panic"
    );
}

#[test]
fn the_series_limit_is_a_storage_limit_error() {
    let store = HeadStore::new(HeadConfig {
        series_limit: 3,
        ..HeadConfig::default()
    })
    .expect("valid");
    let batch: Vec<_> = (0..5)
        .map(|i| metric("m", &[("id", &i.to_string())], 1.0, 1))
        .collect();
    // A batch is applied shard by shard, so which three of the five get in
    // is not batch order; that three do, and the error names a fourth, is.
    let refused = match store.append(&batch) {
        Err(StorageError::Limit(message)) => {
            assert!(message.contains("limit of 3"), "{message}");
            message
        }
        other => panic!("expected a limit error, got {other:?}"),
    };
    let admitted = store.label_values("id").expect("values");
    assert_eq!(admitted.len(), 3);
    let named: Vec<String> = (0..5)
        .map(|i| i.to_string())
        .filter(|id| refused.contains(&format!("m{{id=\"{id}\"}}")))
        .collect();
    assert_eq!(named.len(), 1, "{refused}");
    assert!(!admitted.contains(&named[0]));
    store
        .append(&[metric("m", &[("id", &admitted[0])], 2.0, 2)])
        .expect("admitted series still take samples");
}

#[test]
fn concurrent_out_of_order_writers_and_readers() {
    const WRITERS: i64 = 4;
    const PER_WRITER: i64 = 400;
    let store: Arc<dyn MetricStore> = Arc::new(small_chunks());
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let store = store.clone();
            scope.spawn(move || {
                // Every writer writes one shared series (interleaved times)
                // and its own, each out of order in batches.
                for start in (0..PER_WRITER / 20).rev().map(|k| k * 20) {
                    let batch: Vec<_> = (start..start + 20)
                        .flat_map(|i| {
                            [
                                metric("shared", &[], i as f64, i * WRITERS + w),
                                metric("own", &[("w", &w.to_string())], i as f64, i),
                            ]
                        })
                        .collect();
                    store.append(&batch).expect("append");
                }
            });
        }
        for _ in 0..2 {
            let store = store.clone();
            scope.spawn(move || {
                for _ in 0..50 {
                    for series in store
                        .select(&[m_regex("__name__", "shared|own")], TimeRange::ALL)
                        .expect("select")
                    {
                        assert!(
                            series
                                .samples
                                .windows(2)
                                .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
                        );
                    }
                }
            });
        }
    });
    let shared = store
        .select(&[LabelMatcher::metric_name("shared")], TimeRange::ALL)
        .expect("select");
    let expected: Vec<Sample> = (0..PER_WRITER * WRITERS)
        .map(|t| Sample {
            timestamp_ms: t,
            value: (t / WRITERS) as f64,
        })
        .collect();
    assert_eq!(shared[0].samples, expected);
    let own = store
        .select(&[LabelMatcher::metric_name("own")], TimeRange::ALL)
        .expect("select");
    assert_eq!(own.len(), WRITERS as usize);
    assert!(own.iter().all(|s| s.samples.len() == PER_WRITER as usize));
}

fn m_regex(name: &str, pattern: &str) -> LabelMatcher {
    LabelMatcher::new(name, MatchOp::Regex, pattern).expect("matcher")
}
