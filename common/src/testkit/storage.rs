//! The storage slot's conformance suite: append then select by name and
//! inclusive range, time order, unknown names, label matchers, last write
//! wins, label listings, and persistence across reopen.

use std::path::Path;
use std::sync::Arc;

use crate::testkit::metric;
use crate::{LabelMatcher, MatchOp, Metric, MetricStore, Sample, TimeRange};

/// Runs every storage check. `open(dir)` opens (or reopens) a store keeping
/// its files under `dir`.
pub fn run_all(open: &dyn Fn(&Path) -> Arc<dyn MetricStore>) {
    let dirs: Vec<tempfile::TempDir> = (0..10)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    select_by_name_and_inclusive_range(open(dirs[0].path()));
    unknown_name_is_empty(open(dirs[1].path()));
    labels_separate_series_and_matchers_filter(open(dirs[2].path()));
    last_write_wins_for_duplicate_timestamp(open(dirs[3].path()));
    data_survives_reopen(dirs[4].path(), open);
    concurrent_appends_and_selects(open(dirs[5].path()));
    non_finite_values_keep_their_bits(open(dirs[6].path()));
    non_finite_values_survive_reopen(dirs[7].path(), open);
    deletion_if_supported(dirs[8].path(), open);
}

/// A store that deletes (`delete` is optional: the default refuses with
/// `Unsupported`) deletes exactly the range asked, lists a series left
/// empty nowhere, keeps what is written afterwards, and still has done so
/// after a reopen.
pub fn deletion_if_supported(dir: &Path, open: &dyn Fn(&Path) -> Arc<dyn MetricStore>) {
    let store = open(dir);
    store
        .append(&[
            metric("gone", &[("host", "a")], 1.0, 10),
            metric("gone", &[("host", "a")], 2.0, 20),
            metric("kept", &[("host", "b")], 3.0, 10),
            metric("kept", &[("host", "b")], 4.0, 20),
            metric("kept", &[("host", "b")], 5.0, 30),
        ])
        .expect("append");
    let kept_middle = [LabelMatcher::metric_name("kept")];
    match store.delete(&kept_middle, TimeRange::new(15, 25)) {
        Err(crate::StorageError::Unsupported(_)) => return,
        Err(e) => panic!("delete: {e}"),
        Ok(deleted) => assert_eq!(deleted, 1, "only the sample at 20"),
    }
    let generation = store.deletions();
    assert!(generation > 0, "deletions() moves after a deletion");
    assert_eq!(
        store
            .delete(&[LabelMatcher::metric_name("gone")], TimeRange::ALL)
            .expect("delete"),
        2
    );
    store
        .append(&[metric("kept", &[("host", "b")], 6.0, 20)])
        .expect("append after");
    let check = |store: &dyn MetricStore, when: &str| {
        let kept = store.select(&kept_middle, TimeRange::ALL).expect("select");
        assert_eq!(
            kept[0].samples,
            samples(&[(10, 3.0), (20, 6.0), (30, 5.0)]),
            "{when}: the range went, the later write stayed"
        );
        assert!(
            store
                .select(&[LabelMatcher::metric_name("gone")], TimeRange::ALL)
                .expect("select")
                .is_empty(),
            "{when}"
        );
        assert_eq!(
            store.label_values("__name__").expect("names"),
            vec!["kept"],
            "{when}: a series left empty is listed nowhere"
        );
        assert_eq!(
            store.label_values("host").expect("hosts"),
            vec!["b"],
            "{when}"
        );
        assert!(
            store
                .series(&[LabelMatcher::metric_name("gone")], TimeRange::ALL)
                .expect("series")
                .is_empty(),
            "{when}"
        );
    };
    check(store.as_ref(), "before reopen");
    drop(store);
    check(open(dir).as_ref(), "after reopen");
}

/// The values a Prometheus sender writes that are not numbers to JSON:
/// NaN, ±Inf, and the stale marker, whose exact bits say "this series
/// ended here".
fn non_finite() -> Vec<Metric> {
    [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(crate::metric::STALE_NAN_BITS),
        -0.0,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, v)| metric("odd_values", &[("host", "a")], v, 1_000 * (i as i64 + 1)))
    .collect()
}

fn assert_same_bits(store: &dyn MetricStore, when: &str) {
    let got = store
        .select(&name("odd_values"), TimeRange::ALL)
        .expect("select");
    assert_eq!(got.len(), 1, "{when}: one series");
    let bits: Vec<(i64, u64)> = got[0]
        .samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value.to_bits()))
        .collect();
    let expected: Vec<(i64, u64)> = non_finite()
        .iter()
        .map(|m| (m.timestamp_ms, m.value.to_bits()))
        .collect();
    assert_eq!(
        bits, expected,
        "{when}: NaN, ±Inf, the stale marker and -0 come back bit for bit"
    );
}

/// NaN, ±Inf and the stale marker are stored and come back bit for bit.
pub fn non_finite_values_keep_their_bits(store: Arc<dyn MetricStore>) {
    store.append(&non_finite()).expect("append");
    assert_same_bits(store.as_ref(), "in memory");
}

/// ... and so they do after the store is reopened.
pub fn non_finite_values_survive_reopen(dir: &Path, open: &dyn Fn(&Path) -> Arc<dyn MetricStore>) {
    {
        let store = open(dir);
        store.append(&non_finite()).expect("append");
        store.flush().expect("flush");
    }
    assert_same_bits(open(dir).as_ref(), "after reopen");
}

fn name(n: &str) -> Vec<LabelMatcher> {
    vec![LabelMatcher::metric_name(n)]
}

fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
    points
        .iter()
        .map(|&(timestamp_ms, value)| Sample {
            timestamp_ms,
            value,
        })
        .collect()
}

/// Range ends are inclusive; samples come back in time order even when
/// appended out of order; other names are not returned.
pub fn select_by_name_and_inclusive_range(store: Arc<dyn MetricStore>) {
    store
        .append(&[
            metric("cpu_usage", &[], 30.0, 3_000),
            metric("cpu_usage", &[], 10.0, 1_000),
            metric("memory_usage", &[], 70.0, 2_000),
        ])
        .expect("append");
    store
        .append(&[
            metric("cpu_usage", &[], 20.0, 2_000),
            metric("cpu_usage", &[], 40.0, 4_000),
        ])
        .expect("append");
    let got = store
        .select(&name("cpu_usage"), TimeRange::new(2_000, 3_000))
        .expect("select");
    assert_eq!(got.len(), 1, "one series");
    assert_eq!(got[0].name, "cpu_usage");
    assert_eq!(
        got[0].samples,
        samples(&[(2_000, 20.0), (3_000, 30.0)]),
        "both ends inclusive, time order"
    );
    let all = store
        .select(&name("cpu_usage"), TimeRange::ALL)
        .expect("select all");
    assert_eq!(
        all[0].samples,
        samples(&[(1_000, 10.0), (2_000, 20.0), (3_000, 30.0), (4_000, 40.0)]),
        "out-of-order appends come back sorted"
    );
    let none = store
        .select(&name("cpu_usage"), TimeRange::new(4_001, 9_000))
        .expect("select");
    assert!(
        none.is_empty(),
        "a series with no sample in range is left out"
    );
    let single = store
        .select(&name("cpu_usage"), TimeRange::new(4_000, 4_000))
        .expect("select");
    assert_eq!(
        single[0].samples,
        samples(&[(4_000, 40.0)]),
        "a one-ms range includes its sample"
    );
}

/// An unknown name gives an empty result, not an error.
pub fn unknown_name_is_empty(store: Arc<dyn MetricStore>) {
    let got = store
        .select(&name("nothing_here"), TimeRange::ALL)
        .expect("select on empty store");
    assert!(got.is_empty());
    store
        .append(&[metric("cpu_usage", &[], 1.0, 1)])
        .expect("append");
    let got = store
        .select(&name("nothing_here"), TimeRange::ALL)
        .expect("select unknown");
    assert!(got.is_empty(), "an unknown name returns no series");
}

/// Labels make distinct series, ordered by labels; `=`, `!=`, `=~`, `!~`
/// filter them; a missing label matches `""`.
pub fn labels_separate_series_and_matchers_filter(store: Arc<dyn MetricStore>) {
    store
        .append(&[
            metric("cpu_usage", &[("host", "b"), ("region", "eu")], 2.0, 10),
            metric("cpu_usage", &[("host", "a"), ("region", "us")], 1.0, 10),
            metric("cpu_usage", &[], 0.0, 10),
            metric("cpu_usage", &[("host", "a"), ("region", "us")], 1.5, 20),
        ])
        .expect("append");
    let all = store
        .select(&name("cpu_usage"), TimeRange::ALL)
        .expect("select");
    let hosts: Vec<Option<&str>> = all.iter().map(|s| s.labels.get("host")).collect();
    assert_eq!(
        hosts,
        vec![None, Some("a"), Some("b")],
        "one entry per series, ordered by labels"
    );
    assert_eq!(all[1].samples, samples(&[(10, 1.0), (20, 1.5)]));

    let select = |matchers: Vec<LabelMatcher>| -> Vec<Option<String>> {
        store
            .select(&matchers, TimeRange::ALL)
            .expect("select")
            .into_iter()
            .map(|s| s.labels.get("host").map(str::to_string))
            .collect()
    };
    let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).expect("matcher");
    let cpu = || LabelMatcher::metric_name("cpu_usage");
    assert_eq!(
        select(vec![cpu(), m("host", MatchOp::Equal, "a")]),
        vec![Some("a".into())]
    );
    assert_eq!(
        select(vec![cpu(), m("host", MatchOp::NotEqual, "a")]),
        vec![None, Some("b".into())],
        "!= keeps series without the label"
    );
    assert_eq!(
        select(vec![cpu(), m("region", MatchOp::Regex, "e.")]),
        vec![Some("b".into())]
    );
    assert_eq!(
        select(vec![cpu(), m("region", MatchOp::Regex, "e")]),
        Vec::<Option<String>>::new(),
        "regexes are anchored"
    );
    assert_eq!(
        select(vec![cpu(), m("host", MatchOp::NotRegex, "a|b")]),
        vec![None]
    );
    assert_eq!(
        select(vec![cpu(), m("host", MatchOp::Equal, "")]),
        vec![None],
        "missing label equals \"\""
    );
    assert_eq!(
        select(vec![
            m("__name__", MatchOp::Regex, "cpu_.*"),
            m("host", MatchOp::Equal, "b")
        ]),
        vec![Some("b".into())]
    );

    // The identities alone: what select lists, without samples; a range
    // the store holds nothing in lists nothing.
    let keys = store
        .series(&[m("host", MatchOp::NotEqual, "b")], TimeRange::ALL)
        .expect("series");
    let listed: Vec<(&str, Option<&str>)> = keys
        .iter()
        .map(|k| (k.name.as_str(), k.labels.get("host")))
        .collect();
    assert_eq!(
        listed,
        vec![("cpu_usage", None), ("cpu_usage", Some("a"))],
        "series() lists each matching series once, ordered as select"
    );
    assert_eq!(keys[1].labels.get("region"), Some("us"));
    assert!(
        store
            .series(&[cpu()], TimeRange::new(1_000, 2_000))
            .expect("series")
            .is_empty(),
        "no data in range, no series"
    );
    assert_eq!(
        store
            .series(&[cpu()], TimeRange::new(15, 20))
            .expect("series")
            .len(),
        1,
        "only the series with data in range (samples at 10 only lie outside)"
    );

    assert_eq!(
        store.label_names().expect("label names"),
        vec!["__name__", "host", "region"]
    );
    assert_eq!(store.label_values("host").expect("values"), vec!["a", "b"]);
    assert_eq!(
        store.label_values("__name__").expect("names"),
        vec!["cpu_usage"]
    );
    assert!(
        store
            .label_values("nope")
            .expect("unknown label")
            .is_empty()
    );
}

/// The same series and timestamp appended twice keeps the last value, once.
pub fn last_write_wins_for_duplicate_timestamp(store: Arc<dyn MetricStore>) {
    store
        .append(&[metric("m", &[("k", "v")], 1.0, 100)])
        .expect("append");
    store
        .append(&[
            metric("m", &[("k", "v")], 2.0, 100),
            metric("m", &[("k", "v")], 3.0, 200),
        ])
        .expect("append");
    store
        .append(&[metric("m", &[("k", "v")], 4.0, 100)])
        .expect("append again");
    let got = store.select(&name("m"), TimeRange::ALL).expect("select");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].samples,
        samples(&[(100, 4.0), (200, 3.0)]),
        "last write wins, no duplicates"
    );
}

/// What was appended and flushed is there after the store is reopened.
pub fn data_survives_reopen(dir: &Path, open: &dyn Fn(&Path) -> Arc<dyn MetricStore>) {
    {
        let store = open(dir);
        store
            .append(&[
                metric("disk_io", &[("host", "a")], 120.0, 5_000),
                metric("disk_io", &[("host", "a")], 130.0, 6_000),
            ])
            .expect("append");
        store.flush().expect("flush");
    }
    let store = open(dir);
    let got = store
        .select(&name("disk_io"), TimeRange::ALL)
        .expect("select after reopen");
    assert_eq!(got.len(), 1, "the series survives reopen");
    assert_eq!(got[0].samples, samples(&[(5_000, 120.0), (6_000, 130.0)]));
}

/// Four writers append to their own series while a reader selects: every
/// read is well-formed (one entry per series, strictly increasing times) and
/// in the end every sample is there exactly once.
pub fn concurrent_appends_and_selects(store: Arc<dyn MetricStore>) {
    const WRITERS: usize = 4;
    const PER_WRITER: i64 = 250;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let series = store
                    .select(&name("concurrent"), TimeRange::ALL)
                    .expect("select while writing");
                let mut seen = std::collections::HashSet::new();
                for s in &series {
                    assert!(
                        seen.insert(s.labels.clone()),
                        "a series appears once per result"
                    );
                    assert!(
                        s.samples
                            .windows(2)
                            .all(|w| w[0].timestamp_ms < w[1].timestamp_ms),
                        "samples strictly increasing in time, even mid-write"
                    );
                }
                reads += 1;
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let writer = format!("w{w}");
                for chunk in (0..PER_WRITER).collect::<Vec<_>>().chunks(10) {
                    let batch: Vec<_> = chunk
                        .iter()
                        .map(|&i| metric("concurrent", &[("writer", &writer)], i as f64, 1_000 + i))
                        .collect();
                    store.append(&batch).expect("append from many threads");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.join().expect("reader thread");
    let series = store
        .select(&name("concurrent"), TimeRange::ALL)
        .expect("select");
    assert_eq!(series.len(), WRITERS, "one series per writer");
    for s in &series {
        assert_eq!(
            s.samples.len() as i64,
            PER_WRITER,
            "{}: every sample once",
            s.labels
        );
    }
}
