//! Aggregations and binary operators against hand-computed expectations:
//! grouping, ties, arithmetic, comparisons with and without `bool`,
//! vector matching and its errors, set operators.

mod support;

use craft4_query::eval::EvalError;
use support::*;

/// Four series at t = 0: values 1, 3 (job api) and 5, 7 (job db).
fn jobs() -> Fixture {
    load(&[
        ("m", &[("job", "api"), ("inst", "1")], at(&[(0, 1.0)])),
        ("m", &[("job", "api"), ("inst", "2")], at(&[(0, 3.0)])),
        ("m", &[("job", "db"), ("inst", "1")], at(&[(0, 5.0)])),
        ("m", &[("job", "db"), ("inst", "2")], at(&[(0, 7.0)])),
    ])
}

// --- aggregations --------------------------------------------------------

#[test]
fn aggregations_by_and_without() {
    let fixture = jobs();
    let api = r#"{job="api"}"#;
    let db = r#"{job="db"}"#;
    let cases: [(&str, &[(&str, f64)]); 14] = [
        ("sum(m)", &[("{}", 16.0)]),
        ("sum by (job) (m)", &[(api, 4.0), (db, 12.0)]),
        ("sum without (inst) (m)", &[(api, 4.0), (db, 12.0)]),
        ("avg by (job) (m)", &[(api, 2.0), (db, 6.0)]),
        ("min by (job) (m)", &[(api, 1.0), (db, 5.0)]),
        ("max by (job) (m)", &[(api, 3.0), (db, 7.0)]),
        ("count by (job) (m)", &[(api, 2.0), (db, 2.0)]),
        ("count without (job, inst) (m)", &[("{}", 4.0)]),
        ("stddev by (job) (m)", &[(api, 1.0), (db, 1.0)]),
        // 1, 3, 5, 7: mean 4, squared deviations 9 + 1 + 1 + 9 = 20.
        ("stddev(m)", &[("{}", 5f64.sqrt())]),
        ("quantile(0.5, m)", &[("{}", 4.0)]),
        ("quantile by (job) (0.25, m)", &[(api, 1.5), (db, 5.5)]),
        (
            "sum by (inst) (m)",
            &[(r#"{inst="1"}"#, 6.0), (r#"{inst="2"}"#, 10.0)],
        ),
        // Grouping by a label nobody has: one group.
        ("avg by (zone) (m)", &[("{}", 4.0)]),
    ];
    for (query, expected) in cases {
        assert_vector(&fixture.vector(query, 0), expected);
    }
    // `by (__name__)` keeps the name.
    assert_vector(&fixture.vector("sum by (__name__) (m)", 0), &[("m", 16.0)]);
    assert_vector(
        &fixture.vector("quantile(2, m)", 0),
        &[("{}", f64::INFINITY)],
    );
}

#[test]
fn topk_and_bottomk_keep_the_series_as_they_were() {
    let fixture = jobs();
    assert_vector(
        &fixture.vector("topk(2, m)", 0),
        &[
            (r#"m{inst="1",job="db"}"#, 5.0),
            (r#"m{inst="2",job="db"}"#, 7.0),
        ],
    );
    assert_vector(
        &fixture.vector("topk by (job) (1, m)", 0),
        &[
            (r#"m{inst="2",job="api"}"#, 3.0),
            (r#"m{inst="2",job="db"}"#, 7.0),
        ],
    );
    assert_vector(
        &fixture.vector("bottomk(1, m)", 0),
        &[(r#"m{inst="1",job="api"}"#, 1.0)],
    );
    // k is truncated; k < 1 selects nothing; k larger than the input, all.
    assert_eq!(fixture.vector("topk(1.9, m)", 0).len(), 1);
    assert_vector(&fixture.vector("topk(0, m)", 0), &[]);
    assert_eq!(fixture.vector("bottomk(100, m)", 0).len(), 4);
    let error = fixture.error("topk(NaN, m)", 0);
    assert_eq!(error.to_string(), "Parameter value is NaN");
}

#[test]
fn topk_ties_follow_go_heap_order() {
    let fixture = load(&[
        ("t", &[("i", "a")], at(&[(0, 1.0)])),
        ("t", &[("i", "b")], at(&[(0, 1.0)])),
        ("t", &[("i", "c")], at(&[(0, 2.0)])),
        ("u", &[("i", "a")], at(&[(0, 2.0)])),
        ("u", &[("i", "b")], at(&[(0, 2.0)])),
        ("u", &[("i", "c")], at(&[(0, 1.0)])),
    ]);
    // Equal values: the first one seen stays.
    assert_vector(
        &fixture.vector(r#"topk(1, t{i!="c"})"#, 0),
        &[(r#"t{i="a"}"#, 1.0)],
    );
    // Heap [a, b]; c displaces the top (a), so b survives, as in
    // Prometheus.
    assert_vector(
        &fixture.vector("topk(2, t)", 0),
        &[(r#"t{i="b"}"#, 1.0), (r#"t{i="c"}"#, 2.0)],
    );
    assert_vector(
        &fixture.vector("bottomk(2, u)", 0),
        &[(r#"u{i="b"}"#, 2.0), (r#"u{i="c"}"#, 1.0)],
    );
}

#[test]
fn aggregations_over_a_range_query_stream_per_step() {
    let fixture = load(&[
        ("g", &[("job", "a")], every(0, 60, &[1.0, 2.0, 3.0])),
        ("g", &[("job", "b")], at(&[(60, 10.0)])),
    ]);
    assert_matrix(
        &fixture.range("sum(g)", 0, 120, 60),
        &[("{}", &[(0.0, 1.0), (60.0, 12.0), (120.0, 13.0)])],
    );
    assert_matrix(
        &fixture.range("count(g)", 0, 600, 60),
        &[(
            "{}",
            &[
                (0.0, 1.0),
                (60.0, 2.0),
                (120.0, 2.0),
                (180.0, 2.0),
                (240.0, 2.0),
                (300.0, 2.0),
                (360.0, 1.0),
            ],
        )],
    );
    // topk over a range query: per step, each series keeps its own points.
    assert_matrix(
        &fixture.range("topk(1, g)", 0, 120, 60),
        &[
            (r#"g{job="a"}"#, &[(0.0, 1.0)]),
            (r#"g{job="b"}"#, &[(60.0, 10.0), (120.0, 10.0)]),
        ],
    );
    // More steps than one parallel chunk holds: the chunks join in order.
    let long = fixture.range("sum(g)", 0, 6000, 10);
    assert_eq!(long.len(), 1);
    assert_eq!(long[0].1.len(), 42);
    assert!(long[0].1.windows(2).all(|w| w[0].0 < w[1].0));
}

// --- binary operators ------------------------------------------------------

#[test]
fn scalar_arithmetic_and_comparisons() {
    let fixture = load(&[]);
    let cases = [
        ("1 + 2 * 3", 7.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("-2 ^ 2", -4.0),
        ("7 % 3", 1.0),
        ("-7 % 3", -1.0),
        ("10 / 4", 2.5),
        ("1 / 0", f64::INFINITY),
        ("-1 / 0", f64::NEG_INFINITY),
        ("0 / 0", f64::NAN),
        ("5 % 0", f64::NAN),
        ("1 == bool 1", 1.0),
        ("1 != bool 1", 0.0),
        ("2 < bool 1", 0.0),
        ("2 > bool 1", 1.0),
        ("2 >= bool 2", 1.0),
        ("2 <= bool 1", 0.0),
    ];
    for (query, expected) in cases {
        let actual = fixture.scalar(query, 0);
        assert!(close(actual, expected), "{query}: {actual} != {expected}");
    }
}

#[test]
fn vector_scalar_operators() {
    let fixture = jobs();
    let keys = [
        r#"{inst="1",job="api"}"#,
        r#"{inst="1",job="db"}"#,
        r#"{inst="2",job="api"}"#,
        r#"{inst="2",job="db"}"#,
    ];
    let with =
        |values: [f64; 4]| -> Vec<(&str, f64)> { keys.iter().copied().zip(values).collect() };
    assert_vector(&fixture.vector("m * 2", 0), &with([2.0, 10.0, 6.0, 14.0]));
    assert_vector(&fixture.vector("10 - m", 0), &with([9.0, 5.0, 7.0, 3.0]));
    assert_vector(&fixture.vector("m / 0", 0), &with([f64::INFINITY; 4]));
    assert_vector(&fixture.vector("m ^ 2", 0), &with([1.0, 25.0, 9.0, 49.0]));
    assert_vector(&fixture.vector("m % 2", 0), &with([1.0; 4]));
    assert_vector(
        &fixture.vector("m > bool 3", 0),
        &with([0.0, 1.0, 0.0, 1.0]),
    );
    // Comparisons filter and keep the name and the vector's value, on
    // either side.
    let above_three = [
        (r#"m{inst="1",job="db"}"#, 5.0),
        (r#"m{inst="2",job="db"}"#, 7.0),
    ];
    assert_vector(&fixture.vector("m > 3", 0), &above_three);
    assert_vector(&fixture.vector("3 < m", 0), &above_three);
    assert_vector(
        &fixture.vector("m == 3", 0),
        &[(r#"m{inst="2",job="api"}"#, 3.0)],
    );
    assert_vector(
        &fixture.vector("m != 3", 0),
        &[
            (r#"m{inst="1",job="api"}"#, 1.0),
            (r#"m{inst="1",job="db"}"#, 5.0),
            (r#"m{inst="2",job="db"}"#, 7.0),
        ],
    );
    assert_vector(
        &fixture.vector("m <= 1", 0),
        &[(r#"m{inst="1",job="api"}"#, 1.0)],
    );
    assert_vector(
        &fixture.vector("m >= 7", 0),
        &[(r#"m{inst="2",job="db"}"#, 7.0)],
    );
    assert_vector(&fixture.vector("m < 0", 0), &[]);
}

/// `a` and `b` match one-to-one; `info` is one series per job.
fn matching() -> Fixture {
    load(&[
        ("a", &[("job", "x"), ("inst", "1")], at(&[(0, 10.0)])),
        ("a", &[("job", "x"), ("inst", "2")], at(&[(0, 20.0)])),
        ("b", &[("job", "x"), ("inst", "1")], at(&[(0, 2.0)])),
        ("b", &[("job", "x"), ("inst", "2")], at(&[(0, 5.0)])),
        ("info", &[("job", "x"), ("version", "v1")], at(&[(0, 1.0)])),
        ("z", &[("job", "x"), ("inst", "1")], at(&[(0, 0.0)])),
        ("other", &[("job", "y")], at(&[(0, 9.0)])),
    ])
}

#[test]
fn one_to_one_matching_on_all_labels() {
    let fixture = matching();
    let one = r#"{inst="1",job="x"}"#;
    let two = r#"{inst="2",job="x"}"#;
    assert_vector(&fixture.vector("a / b", 0), &[(one, 5.0), (two, 4.0)]);
    assert_vector(&fixture.vector("a + b", 0), &[(one, 12.0), (two, 25.0)]);
    assert_vector(&fixture.vector("a - b", 0), &[(one, 8.0), (two, 15.0)]);
    assert_vector(&fixture.vector("a % b", 0), &[(one, 0.0), (two, 0.0)]);
    assert_vector(&fixture.vector("b ^ b", 0), &[(one, 4.0), (two, 3125.0)]);
    // Comparisons keep the left side's name and value.
    assert_vector(
        &fixture.vector("a > b * 3", 0),
        &[
            (r#"a{inst="1",job="x"}"#, 10.0),
            (r#"a{inst="2",job="x"}"#, 20.0),
        ],
    );
    assert_vector(&fixture.vector("a < b * 3", 0), &[]);
    assert_vector(
        &fixture.vector("a == bool b * 5", 0),
        &[(one, 1.0), (two, 0.0)],
    );
    // Division by zero between vectors.
    assert_vector(&fixture.vector("a / z", 0), &[(one, f64::INFINITY)]);
    assert_vector(&fixture.vector("z / z", 0), &[(one, f64::NAN)]);
    // No match, no result.
    assert_vector(&fixture.vector("a + other", 0), &[]);
}

#[test]
fn on_and_ignoring_choose_the_matching_labels() {
    let fixture = matching();
    // One-to-one with on: the result has only the on labels.
    assert_vector(
        &fixture.vector("a + on (inst) b", 0),
        &[(r#"{inst="1"}"#, 12.0), (r#"{inst="2"}"#, 25.0)],
    );
    // Many-to-one with on: the many side's labels stay.
    assert_vector(
        &fixture.vector(r#"a / on (job) group_left b{inst="2"}"#, 0),
        &[
            (r#"{inst="1",job="x"}"#, 2.0),
            (r#"{inst="2",job="x"}"#, 4.0),
        ],
    );
    // ignoring(inst): both a series share a signature with info's job...
    let error = fixture.error("a * ignoring (inst, version) info", 0);
    assert_eq!(
        error.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    // ...which group_left allows.
    assert_vector(
        &fixture.vector("a * ignoring (inst, version) group_left info", 0),
        &[
            (r#"{inst="1",job="x"}"#, 10.0),
            (r#"{inst="2",job="x"}"#, 20.0),
        ],
    );
}

#[test]
fn group_left_and_group_right_copy_labels_from_the_one_side() {
    let fixture = matching();
    let expected = [
        (r#"{inst="1",job="x",version="v1"}"#, 10.0),
        (r#"{inst="2",job="x",version="v1"}"#, 20.0),
    ];
    assert_vector(
        &fixture.vector("a * on (job) group_left (version) info", 0),
        &expected,
    );
    assert_vector(
        &fixture.vector("info * on (job) group_right (version) a", 0),
        &expected,
    );
    // Comparisons keep the many side's name.
    assert_vector(
        &fixture.vector("a > on (job) group_left (version) info", 0),
        &[
            (r#"a{inst="1",job="x",version="v1"}"#, 10.0),
            (r#"a{inst="2",job="x",version="v1"}"#, 20.0),
        ],
    );
    // group_right: the value is still left op right.
    assert_vector(
        &fixture.vector("info - on (job) group_right a", 0),
        &[
            (r#"{inst="1",job="x"}"#, -9.0),
            (r#"{inst="2",job="x"}"#, -19.0),
        ],
    );
}

#[test]
fn many_to_many_matching_is_an_error() {
    let fixture = matching();
    let error = fixture.error("a + on (job) b", 0);
    let message = error.to_string();
    assert!(matches!(error, EvalError::Execution(_)));
    assert!(
        message.starts_with(
            r#"found duplicate series for the match group {job="x"} on the right hand-side of the operation: [{__name__="b", inst="#
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            ";many-to-many matching not allowed: matching labels must be unique on one side"
        ),
        "{message}"
    );
    let left = fixture.error("a * on (job) group_right b", 0).to_string();
    assert!(left.contains("on the left hand-side"), "{left}");
    // group_left where two "many" series give the same result labels.
    let fixture = load(&[
        ("p", &[("job", "x")], at(&[(0, 1.0)])),
        ("p2", &[("job", "x")], at(&[(0, 2.0)])),
        ("q", &[("job", "x")], at(&[(0, 3.0)])),
    ]);
    let error = fixture.error(r#"{__name__=~"p|p2"} + on (job) group_left q"#, 0);
    assert_eq!(
        error.to_string(),
        "multiple matches for labels: grouping labels must ensure unique matches"
    );
    assert_vector(
        &fixture.vector("p + on (job) group_left q", 0),
        &[(r#"{job="x"}"#, 4.0)],
    );
}

#[test]
fn set_operators() {
    let fixture = matching();
    assert_vector(
        &fixture.vector("a and b", 0),
        &[
            (r#"a{inst="1",job="x"}"#, 10.0),
            (r#"a{inst="2",job="x"}"#, 20.0),
        ],
    );
    assert_vector(
        &fixture.vector("a and z", 0),
        &[(r#"a{inst="1",job="x"}"#, 10.0)],
    );
    assert_vector(
        &fixture.vector(r#"a and on (job) b{inst="2"}"#, 0),
        &[
            (r#"a{inst="1",job="x"}"#, 10.0),
            (r#"a{inst="2",job="x"}"#, 20.0),
        ],
    );
    assert_vector(&fixture.vector("a and other", 0), &[]);
    // `or`: all of the left, and the right where the left has no match.
    assert_vector(
        &fixture.vector("a or b", 0),
        &[
            (r#"a{inst="1",job="x"}"#, 10.0),
            (r#"a{inst="2",job="x"}"#, 20.0),
        ],
    );
    assert_vector(
        &fixture.vector("z or other", 0),
        &[(r#"other{job="y"}"#, 9.0), (r#"z{inst="1",job="x"}"#, 0.0)],
    );
    assert_vector(
        &fixture.vector("nope or other", 0),
        &[(r#"other{job="y"}"#, 9.0)],
    );
    assert_vector(
        &fixture.vector("a unless z", 0),
        &[(r#"a{inst="2",job="x"}"#, 20.0)],
    );
    assert_vector(&fixture.vector("a unless on (job) info", 0), &[]);
    assert_eq!(fixture.vector("a unless nope", 0).len(), 2);
}

#[test]
fn set_operators_decide_per_step() {
    let fixture = load(&[
        ("l", &[], every(0, 60, &[1.0, 2.0, 3.0])),
        ("r", &[], at(&[(60, 10.0)])),
    ]);
    // r exists from 60 s to 355 s (lookback).
    assert_matrix(
        &fixture.range("l and r", 0, 120, 60),
        &[("l", &[(60.0, 2.0), (120.0, 3.0)])],
    );
    assert_matrix(
        &fixture.range("l unless r", 0, 120, 60),
        &[("l", &[(0.0, 1.0)])],
    );
    assert_matrix(
        &fixture.range("r or l", 0, 120, 60),
        &[("l", &[(0.0, 1.0)]), ("r", &[(60.0, 10.0), (120.0, 10.0)])],
    );
}

#[test]
fn unary_minus_and_arithmetic_drop_names_and_may_collide() {
    let fixture = load(&[
        ("a_total", &[("job", "x")], at(&[(0, 1.0)])),
        ("b_total", &[("job", "x")], at(&[(0, 2.0)])),
    ]);
    let error = fixture.error(r#"-{__name__=~".+_total"}"#, 0);
    assert_eq!(
        error.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
    let error = fixture.error(r#"{__name__=~".+_total"} * 2"#, 0);
    assert_eq!(
        error.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
    // Comparisons keep names, so nothing collides.
    assert_eq!(fixture.vector(r#"{__name__=~".+_total"} > 0"#, 0).len(), 2);
}

// --- an aggregation fused with a range function ---------------------------

/// 24 counters in three groups, scraped every 10 s ± 3 s for 40 min, with
/// resets, a NaN, a stale marker ending one series, and one series that
/// starts late; plus `other`, whose label sets equal some of `req`'s.
fn jittered() -> Fixture {
    use std::sync::Arc;
    let mut metrics = Vec::new();
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    for i in 0..24 {
        let group = ["a", "b", "c"][i % 3];
        let instance = i.to_string();
        let labels = [("g", group), ("i", instance.as_str())];
        let mut value = (next() % 100) as f64;
        let first = if i == 5 { 1200 } else { 0 };
        for tick in first..240 {
            let t_ms = tick * 10_000 + (next() % 6_000) as i64 - 3_000;
            value += (next() % 1000) as f64 / 7.0;
            if next() % 97 == 0 {
                value = (next() % 10) as f64; // a reset
            }
            let v = match (i, tick) {
                (3, 100) => f64::NAN,
                (4, 180) => f64::from_bits(common::metric::STALE_NAN_BITS),
                (4, 181..) => break,
                _ => value,
            };
            metrics.push(common::testkit::metric("req", &labels, v, t_ms.max(0)));
            if i < 2 {
                metrics.push(common::testkit::metric(
                    "other",
                    &labels,
                    v * 2.0,
                    t_ms.max(0),
                ));
            }
        }
    }
    let store = Arc::new(craft3_storage::HeadStore::default());
    common::MetricStore::append(&*store, &metrics).unwrap();
    Fixture::new(store)
}

/// `sum by (g) (rate(req[5m]))` is evaluated fused (no per-series rates
/// held); `… * 1` forces the unfused path. Both must agree to the bit, for
/// every reducing aggregation and range function, or fail alike.
#[test]
fn fused_aggregations_of_range_functions_equal_the_unfused_path_bit_for_bit() {
    let fixture = jittered();
    let functions = [
        "rate(req[5m])",
        "increase(req[90s])",
        "delta(req[5m])",
        "irate(req[1m])",
        "deriv(req[3m])",
        "resets(req[10m])",
        "avg_over_time(req[2m])",
        "max_over_time(req[2m])",
        "count_over_time(req[30s])",
        "stddev_over_time(req[5m])",
        "quantile_over_time(0.9, req[5m])",
        "last_over_time(req[1m])",
        "predict_linear(req[5m], 60)",
    ];
    let aggregations = [
        "sum by (g)",
        "sum",
        "avg by (g)",
        "min without (i)",
        "max by (g)",
        "count by (g)",
        "group by (g)",
        "stddev by (g)",
        "stdvar",
        "quantile by (g) (0.75,",
    ];
    let mut compared = 0;
    for function in functions {
        for aggregation in aggregations {
            // `quantile by (g) (0.75,` takes the function as its second argument.
            let (fused, unfused) = if aggregation.ends_with(',') {
                (
                    format!("{aggregation} {function})"),
                    format!("{aggregation} {function} * 1)"),
                )
            } else {
                (
                    format!("{aggregation} ({function})"),
                    format!("{aggregation} ({function} * 1)"),
                )
            };
            for (start, end, step) in [(0, 2_400_000, 60_000), (1_234, 2_399_999, 17_000)] {
                let a = fixture.range_result(&fused, start, end, step).unwrap();
                let b = fixture.range_result(&unfused, start, end, step).unwrap();
                let (a, b) = (fixture.matrix(a), fixture.matrix(b));
                assert!(!a.is_empty(), "{fused}");
                assert_eq!(a.len(), b.len(), "{fused}");
                for (x, y) in a.iter().zip(&b) {
                    assert_eq!(x.0, y.0, "{fused}");
                    let bits = |s: &[(f64, f64)]| -> Vec<(u64, u64)> {
                        s.iter().map(|(t, v)| (t.to_bits(), v.to_bits())).collect()
                    };
                    assert_eq!(bits(&x.1), bits(&y.1), "{fused} at {}", x.0);
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, functions.len() * aggregations.len() * 2);
    // Two inputs that lose their names to one label set: the same error.
    for query in [
        r#"sum by (g) (rate({__name__=~"req|other"}[5m]))"#,
        r#"sum by (g) (rate({__name__=~"req|other"}[5m]) * 1)"#,
    ] {
        let error = fixture
            .range_result(query, 0, 2_400_000, 60_000)
            .expect_err(query);
        assert!(
            error.to_string().contains("same labelset"),
            "{query}: {error}"
        );
    }
}
