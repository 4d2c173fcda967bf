//! The evaluator against hand-computed expectations: selectors (lookback,
//! offsets, windows), every function, range queries, subqueries and the
//! limits. Operators and aggregations are in `eval_operators.rs`.

mod support;

use std::time::Duration;

use craft4_query::eval::{EngineConfig, EvalError};
use craft4_query::value::Value;
use support::*;

/// A counter and a gauge sampled every 15 s; times in seconds.
fn counters() -> Fixture {
    load(&[
        // 1 per second, no reset.
        (
            "steady_total",
            &[],
            every(0, 15, &[0.0, 15.0, 30.0, 45.0, 60.0]),
        ),
        // A reset between 30 s and 45 s.
        (
            "reset_total",
            &[],
            at(&[(15, 10.0), (30, 20.0), (45, 5.0), (60, 15.0)]),
        ),
        // Starts late and ends early in the window (0, 60].
        ("partial_total", &[], at(&[(30, 1.0), (40, 2.0), (50, 3.0)])),
        // Extrapolating to the window's start would go below zero.
        ("young_total", &[], every(15, 15, &[1.0, 11.0, 21.0, 31.0])),
        // The same values as reset_total, as a gauge.
        (
            "gauge",
            &[],
            at(&[(15, 10.0), (30, 20.0), (45, 5.0), (60, 15.0)]),
        ),
    ])
}

// --- selectors ---------------------------------------------------------

#[test]
fn lookback_window_is_left_open() {
    let fixture = load(&[("x", &[], at(&[(0, 1.0)]))]);
    // Exactly at the evaluation time: included.
    assert_vector(&fixture.vector_ms("x", 0), &[("x", 1.0)]);
    // One millisecond short of five minutes old: included.
    assert_vector(&fixture.vector_ms("x", 299_999), &[("x", 1.0)]);
    // Exactly five minutes old: gone.
    assert_vector(&fixture.vector_ms("x", 300_000), &[]);
    // Before the sample: nothing yet.
    assert_vector(&fixture.vector_ms("x", -1), &[]);
}

#[test]
fn lookback_comes_from_the_config() {
    let series: [SeriesSpec<'_>; 1] = [("x", &[], at(&[(0, 1.0)]))];
    let short = load_with(
        &series,
        EngineConfig {
            lookback_ms: 60_000,
            ..EngineConfig::default()
        },
    );
    assert_vector(&short.vector_ms("x", 59_999), &[("x", 1.0)]);
    assert_vector(&short.vector_ms("x", 60_000), &[]);
    // Zero means Prometheus' default, five minutes.
    let zero = load_with(
        &series,
        EngineConfig {
            lookback_ms: 0,
            ..EngineConfig::default()
        },
    );
    assert_vector(&zero.vector("x", 299), &[("x", 1.0)]);
}

#[test]
fn staleness_markers_end_a_series() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let fixture = load(&[("x", &[], at(&[(0, 1.0), (60, stale)]))]);
    assert_vector(&fixture.vector("x", 30), &[("x", 1.0)]);
    // The latest sample is the marker: no value, not NaN.
    assert_vector(&fixture.vector("x", 90), &[]);
    // Range windows skip markers.
    assert_vector(
        &fixture.vector("count_over_time(x[2m])", 90),
        &[("{}", 1.0)],
    );
    // An ordinary NaN is a value.
    let nan = load(&[("y", &[], at(&[(0, f64::NAN)]))]);
    assert_vector(&nan.vector("y", 30), &[("y", f64::NAN)]);
}

#[test]
fn instant_selector_takes_the_latest_sample_and_keeps_the_name() {
    let fixture = load(&[
        ("x", &[("job", "a")], at(&[(0, 1.0), (60, 2.0)])),
        ("x", &[("job", "b")], at(&[(30, 7.0)])),
    ]);
    assert_vector(
        &fixture.vector("x", 90),
        &[(r#"x{job="a"}"#, 2.0), (r#"x{job="b"}"#, 7.0)],
    );
    assert_vector(
        &fixture.vector("x", 59),
        &[(r#"x{job="a"}"#, 1.0), (r#"x{job="b"}"#, 7.0)],
    );
}

#[test]
fn matchers_are_applied() {
    let fixture = load(&[
        ("x", &[("job", "api")], at(&[(0, 1.0)])),
        ("x", &[("job", "db")], at(&[(0, 2.0)])),
        ("x", &[("job", "web")], at(&[(0, 3.0)])),
        ("y", &[("job", "api")], at(&[(0, 4.0)])),
    ]);
    assert_vector(
        &fixture.vector(r#"x{job="db"}"#, 0),
        &[(r#"x{job="db"}"#, 2.0)],
    );
    assert_vector(
        &fixture.vector(r#"x{job!="db"}"#, 0),
        &[(r#"x{job="api"}"#, 1.0), (r#"x{job="web"}"#, 3.0)],
    );
    assert_vector(
        &fixture.vector(r#"x{job=~"a.*|w.*"}"#, 0),
        &[(r#"x{job="api"}"#, 1.0), (r#"x{job="web"}"#, 3.0)],
    );
    assert_vector(
        &fixture.vector(r#"x{job!~"a.*|w.*"}"#, 0),
        &[(r#"x{job="db"}"#, 2.0)],
    );
    assert_vector(
        &fixture.vector(r#"{job="api"}"#, 0),
        &[(r#"x{job="api"}"#, 1.0), (r#"y{job="api"}"#, 4.0)],
    );
}

#[test]
fn unknown_metric_is_an_empty_vector() {
    let fixture = load(&[("x", &[], at(&[(0, 1.0)]))]);
    assert_vector(&fixture.vector("nope", 0), &[]);
    assert_vector(&fixture.vector("sum(nope)", 0), &[]);
    assert_vector(&fixture.vector("rate(nope[5m])", 0), &[]);
    assert_eq!(fixture.matrix(fixture.instant("nope[5m]", 0)), vec![]);
}

#[test]
fn offset_shifts_the_window_both_ways() {
    let fixture = load(&[("x", &[], every(0, 60, &[1.0, 2.0, 3.0]))]);
    assert_vector(&fixture.vector("x offset 1m", 120), &[("x", 2.0)]);
    assert_vector(&fixture.vector("x offset 2m", 120), &[("x", 1.0)]);
    assert_vector(&fixture.vector("x offset -1m", 60), &[("x", 3.0)]);
    // 1 m offset at 30 s looks at -30 s: nothing.
    assert_vector(&fixture.vector("x offset 1m", 30), &[]);
}

#[test]
fn range_selector_returns_raw_samples_of_a_left_open_window() {
    let fixture = load(&[("x", &[("job", "a")], every(0, 60, &[1.0, 2.0, 3.0]))]);
    let matrix = fixture.matrix(fixture.instant("x[2m]", 120));
    // (0, 120]: the sample at 0 is exactly on the open edge.
    assert_matrix(&matrix, &[(r#"x{job="a"}"#, &[(60.0, 2.0), (120.0, 3.0)])]);
    let shifted = fixture.matrix(fixture.instant("x[1m] offset 1m", 180));
    assert_matrix(&shifted, &[(r#"x{job="a"}"#, &[(120.0, 3.0)])]);
}

#[test]
fn closed_windows_take_the_left_edge_as_prometheus_2_does() {
    let config = EngineConfig {
        compat: craft4_query::eval::Compat::Prometheus2,
        ..EngineConfig::default()
    };
    let fixture = load_with(
        &[("x", &[("job", "a")], every(0, 60, &[1.0, 2.0, 3.0]))],
        config,
    );
    // [0, 120]: the sample at 0 is on the closed edge, so it is in.
    let matrix = fixture.matrix(fixture.instant("x[2m]", 120));
    assert_matrix(
        &matrix,
        &[(r#"x{job="a"}"#, &[(0.0, 1.0), (60.0, 2.0), (120.0, 3.0)])],
    );
    assert_vector(
        &fixture.vector("count_over_time(x[2m])", 120),
        &[(r#"{job="a"}"#, 3.0)],
    );
    // The lookback too: a sample exactly five minutes old still counts.
    assert_vector(&fixture.vector("x", 420), &[(r#"x{job="a"}"#, 3.0)]);
    assert_vector(&fixture.vector_ms("x", 420_001), &[]);
    // A subquery's inner steps start on the edge as well: [0, 120] at
    // 60 s steps is three inner points.
    assert_vector(
        &fixture.vector("count_over_time(x[2m:1m])", 120),
        &[(r#"{job="a"}"#, 3.0)],
    );
}

// --- functions over range vectors ---------------------------------------

#[test]
fn rate_and_increase_extrapolate_to_the_window_edges() {
    let fixture = counters();
    // Samples 15..60 s in (0, 60]: 45 over 45 s, extrapolated 15 s to the
    // start (within 1.1 intervals) -> 60 over 60 s.
    assert_vector(
        &fixture.vector("increase(steady_total[1m])", 60),
        &[("{}", 60.0)],
    );
    assert_vector(
        &fixture.vector("rate(steady_total[1m])", 60),
        &[("{}", 1.0)],
    );
}

#[test]
fn counter_resets_add_back_the_value_before_the_drop() {
    let fixture = counters();
    // 10, 20, 5, 15: 5 + 20 (the reset) = 25 over 45 s; to the start 15 s
    // (the zero point, 18 s back, is farther) -> 25 * 60/45.
    let increase = 25.0 * 60.0 / 45.0;
    assert_vector(
        &fixture.vector("increase(reset_total[1m])", 60),
        &[("{}", increase)],
    );
    assert_vector(
        &fixture.vector("rate(reset_total[1m])", 60),
        &[("{}", increase / 60.0)],
    );
    // delta treats the same values as a gauge: no reset, 5 * 60/45.
    assert_vector(
        &fixture.vector("delta(gauge[1m])", 60),
        &[("{}", 5.0 * 60.0 / 45.0)],
    );
}

#[test]
fn extrapolation_stops_half_an_interval_past_a_series_that_starts_late() {
    let fixture = counters();
    // Samples at 30, 40, 50 in (0, 60]: average interval 10 s; the start is
    // 30 s away (> 11 s) -> only 5 s; the end 10 s away (< 11 s) -> all.
    // 2 * (20 + 5 + 10) / 20 = 3.5.
    assert_vector(
        &fixture.vector("increase(partial_total[1m])", 60),
        &[("{}", 3.5)],
    );
    assert_vector(
        &fixture.vector("rate(partial_total[1m])", 60),
        &[("{}", 3.5 / 60.0)],
    );
}

#[test]
fn counters_are_not_extrapolated_below_zero() {
    let fixture = counters();
    // 1, 11, 21, 31 at 15..60 s: the slope reaches zero 1.5 s before the
    // first sample, closer than the 15 s to the window start.
    // 30 * (45 + 1.5) / 45 = 31.
    assert_vector(
        &fixture.vector("increase(young_total[1m])", 60),
        &[("{}", 31.0)],
    );
}

#[test]
fn rate_needs_two_samples() {
    let fixture = counters();
    // (15, 30]: one sample of steady_total.
    assert_vector(&fixture.vector("rate(steady_total[15s])", 30), &[]);
    assert_vector(&fixture.vector("irate(steady_total[15s])", 30), &[]);
}

#[test]
fn irate_uses_the_last_two_samples_and_counter_resets() {
    let fixture = counters();
    assert_vector(
        &fixture.vector("irate(reset_total[1m])", 60),
        &[("{}", 10.0 / 15.0)],
    );
    // At 45 s the last two are 20 -> 5: a reset, so 5 over 15 s.
    assert_vector(
        &fixture.vector("irate(reset_total[1m])", 45),
        &[("{}", 5.0 / 15.0)],
    );
}

#[test]
fn over_time_functions() {
    let fixture = counters();
    // gauge in (0, 60]: 10, 20, 5, 15.
    let cases = [
        ("avg_over_time(gauge[1m])", 12.5),
        ("min_over_time(gauge[1m])", 5.0),
        ("max_over_time(gauge[1m])", 20.0),
        ("sum_over_time(gauge[1m])", 50.0),
        ("count_over_time(gauge[1m])", 4.0),
        // Population: deviations ±2.5, ±7.5 -> variance 31.25.
        ("stddev_over_time(gauge[1m])", 31.25f64.sqrt()),
        // Sorted 5, 10, 15, 20: rank 1.5 -> 12.5; rank 2.25 -> 16.25.
        ("quantile_over_time(0.5, gauge[1m])", 12.5),
        ("quantile_over_time(0.75, gauge[1m])", 16.25),
        ("quantile_over_time(0, gauge[1m])", 5.0),
        ("quantile_over_time(1, gauge[1m])", 20.0),
        ("quantile_over_time(-1, gauge[1m])", f64::NEG_INFINITY),
        ("quantile_over_time(2, gauge[1m])", f64::INFINITY),
    ];
    for (query, expected) in cases {
        assert_vector(&fixture.vector(query, 60), &[("{}", expected)]);
    }
    // last_over_time returns a sample unchanged: the name stays.
    assert_vector(
        &fixture.vector("last_over_time(gauge[1m])", 60),
        &[("gauge", 15.0)],
    );
    // A window with nothing in it: no result.
    assert_vector(&fixture.vector("avg_over_time(gauge[1m])", 200), &[]);
}

#[test]
fn functions_that_merge_names_into_one_labelset_fail() {
    let fixture = load(&[
        ("a_total", &[("job", "x")], every(0, 15, &[1.0, 2.0, 3.0])),
        ("b_total", &[("job", "x")], every(0, 15, &[1.0, 2.0, 3.0])),
    ]);
    let error = fixture.error(r#"rate({__name__=~"a_total|b_total"}[1m])"#, 30);
    assert_eq!(
        error.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
    assert!(matches!(error, EvalError::Execution(_)));
    // last_over_time keeps the names, so nothing collides.
    assert_eq!(
        fixture
            .vector(r#"last_over_time({__name__=~"a_total|b_total"}[1m])"#, 30)
            .len(),
        2
    );
}

// --- per-sample functions and conversions --------------------------------

#[test]
fn per_sample_functions_drop_the_name() {
    let fixture = load(&[
        ("m", &[("i", "a")], at(&[(0, -1.5)])),
        ("m", &[("i", "b")], at(&[(0, 2.5)])),
        ("m", &[("i", "c")], at(&[(0, 2.3)])),
    ]);
    let cases: [(&str, [f64; 3]); 9] = [
        ("abs(m)", [1.5, 2.5, 2.3]),
        ("ceil(m)", [-1.0, 3.0, 3.0]),
        ("floor(m)", [-2.0, 2.0, 2.0]),
        // Half rounds up, as in Prometheus: -1.5 -> -1, 2.5 -> 3.
        ("round(m)", [-1.0, 3.0, 2.0]),
        ("round(m, 0.5)", [-1.5, 2.5, 2.5]),
        ("round(m, 10)", [0.0, 0.0, 0.0]),
        ("clamp_min(m, 0)", [0.0, 2.5, 2.3]),
        ("clamp_max(m, 0)", [-1.5, 0.0, 0.0]),
        ("-m", [1.5, -2.5, -2.3]),
    ];
    for (query, [a, b, c]) in cases {
        assert_vector(
            &fixture.vector(query, 0),
            &[(r#"{i="a"}"#, a), (r#"{i="b"}"#, b), (r#"{i="c"}"#, c)],
        );
    }
}

#[test]
fn time_vector_and_scalar() {
    let fixture = load(&[
        ("m", &[("i", "a")], at(&[(0, 4.0)])),
        ("m", &[("i", "b")], at(&[(0, 5.0)])),
    ]);
    assert_eq!(fixture.scalar("time()", 100), 100.0);
    assert_eq!(fixture.scalar("time() + 1", 100), 101.0);
    assert_vector(&fixture.vector("vector(3)", 0), &[("{}", 3.0)]);
    assert_vector(&fixture.vector("vector(time())", 7), &[("{}", 7.0)]);
    assert_eq!(fixture.scalar(r#"scalar(m{i="a"})"#, 0), 4.0);
    // Two elements, or none: NaN.
    assert!(fixture.scalar("scalar(m)", 0).is_nan());
    assert!(fixture.scalar("scalar(nope)", 0).is_nan());
    assert_eq!(fixture.scalar("-time()", 2), -2.0);
    match fixture.instant(r#""text""#, 5) {
        Value::String { t, v } => assert_eq!((t, v.as_str()), (5000, "text")),
        other => panic!("{other:?}"),
    }
}

// --- range queries --------------------------------------------------------

#[test]
fn range_query_steps_are_aligned_to_start() {
    let fixture = load(&[
        ("x", &[], at(&[(0, 1.0), (60, 2.0)])),
        ("y", &[], at(&[(0, 9.0)])),
    ]);
    let result = fixture.range("x", 0, 120, 30);
    assert_matrix(
        &result,
        &[(
            "x",
            &[
                (0.0, 1.0),
                (30.0, 1.0),
                (60.0, 2.0),
                (90.0, 2.0),
                (120.0, 2.0),
            ],
        )],
    );
    // y's only sample goes stale after five minutes: 300 s is excluded.
    assert_matrix(
        &fixture.range("y", 0, 600, 100),
        &[("y", &[(0.0, 9.0), (100.0, 9.0), (200.0, 9.0)])],
    );
    // A start between samples: steps at 10, 40, 70.
    assert_matrix(
        &fixture.range("x", 10, 80, 30),
        &[("x", &[(10.0, 1.0), (40.0, 1.0), (70.0, 2.0)])],
    );
    // Series without points are left out; an end off the grid stops
    // before it.
    assert_matrix(
        &fixture.range("x + y", 0, 60, 45),
        &[("{}", &[(0.0, 10.0), (45.0, 10.0)])],
    );
}

#[test]
fn range_query_of_a_scalar_is_one_unlabelled_series() {
    let fixture = load(&[]);
    assert_matrix(
        &fixture.range("time() * 2", 0, 20, 10),
        &[("{}", &[(0.0, 0.0), (10.0, 20.0), (20.0, 40.0)])],
    );
}

#[test]
fn range_query_of_rate_matches_instant_queries() {
    let fixture = counters();
    let range = fixture.range("rate(reset_total[1m])", 30, 60, 15);
    let instants: Vec<(f64, f64)> = [30, 45, 60]
        .into_iter()
        .filter_map(|t| {
            fixture
                .vector("rate(reset_total[1m])", t)
                .first()
                .map(|(_, v)| (t as f64, *v))
        })
        .collect();
    assert_eq!(range.len(), 1);
    assert_eq!(range[0].1, instants);
    assert_eq!(instants.len(), 3);
}

#[test]
fn range_query_parameters_are_checked() {
    let fixture = load(&[("x", &[], at(&[(0, 1.0)]))]);
    let message = |result: Result<Value, EvalError>| match result {
        Err(EvalError::BadQuery(message)) => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        message(fixture.range_result("x", 0, 10, 0)),
        "zero or negative query resolution step widths are not accepted. Try a positive integer"
    );
    assert_eq!(
        message(fixture.range_result("x", 0, 10, -5)),
        "zero or negative query resolution step widths are not accepted. Try a positive integer"
    );
    assert_eq!(
        message(fixture.range_result("x", 10, 0, 1)),
        "end timestamp must not be before start time"
    );
    // Prometheus counts intervals: 11,000 are fine, 11,001 are not.
    assert!(fixture.range_result("x", 0, 11_000, 1).is_ok());
    assert_eq!(
        message(fixture.range_result("x", 0, 11_001, 1)),
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    );
    assert!(fixture.range_result("x", i64::MIN, i64::MAX, 1).is_err());
    assert_eq!(
        message(fixture.range_result("x[5m]", 0, 10, 1)),
        r#"invalid expression type "range vector" for range query, must be Scalar or instant Vector"#
    );
    assert_eq!(
        message(fixture.range_result(r#""text""#, 0, 10, 1)),
        r#"invalid expression type "string" for range query, must be Scalar or instant Vector"#
    );
}

// --- subqueries -------------------------------------------------------------

#[test]
fn subqueries_evaluate_at_aligned_steps() {
    let fixture = load(&[("x", &[], at(&[(0, 1.0), (60, 5.0), (120, 3.0)]))]);
    // (30, 150]: inner steps at 60 and 120 (multiples of 1 m).
    let matrix = fixture.matrix(fixture.instant("x[2m:1m]", 150));
    assert_matrix(&matrix, &[("x", &[(60.0, 5.0), (120.0, 3.0)])]);
    assert_vector(
        &fixture.vector("max_over_time(x[2m:1m])", 150),
        &[("{}", 5.0)],
    );
    // (70, 130]: only 120.
    assert_vector(
        &fixture.vector("max_over_time(x[1m:1m])", 130),
        &[("{}", 3.0)],
    );
    // A step that is not given uses the one-minute default.
    assert_vector(
        &fixture.vector("count_over_time(x[3m:])", 180),
        &[("{}", 3.0)],
    );
    // Offset moves the window: (-30, 90] -> 0 and 60.
    assert_vector(
        &fixture.vector("min_over_time(x[2m:1m] offset 1m)", 150),
        &[("{}", 1.0)],
    );
    // Inside a range query, each step windows the same inner points.
    assert_matrix(
        &fixture.range("max_over_time(x[1m:1m])", 60, 180, 60),
        &[("{}", &[(60.0, 5.0), (120.0, 3.0), (180.0, 3.0)])],
    );
    // Rate over a subquery of a gauge.
    assert_vector(
        &fixture.vector("sum_over_time((x * 2)[2m:1m])", 120),
        &[("{}", 16.0)],
    );
}

// --- limits ------------------------------------------------------------------

#[test]
fn a_query_over_the_sample_budget_stops() {
    let fixture = load_with(
        &[("x", &[], every(0, 10, &[1.0; 20]))],
        config(10, Duration::from_secs(60)),
    );
    // 20 samples loaded at once.
    let error = fixture.error("count_over_time(x[10m])", 190);
    assert!(
        matches!(error, EvalError::TooManySamples { limit: 10 }),
        "{error:?}"
    );
    // A small window fits.
    assert_vector(
        &fixture.vector("count_over_time(x[30s])", 190),
        &[("{}", 3.0)],
    );
    // The points of a range query count too.
    let result = fixture.range_result("x", 0, 190_000, 10_000);
    assert!(
        matches!(result, Err(EvalError::TooManySamples { .. })),
        "{result:?}"
    );
}

#[test]
fn a_query_past_its_deadline_stops() {
    let fixture = load_with(&[("x", &[], at(&[(0, 1.0)]))], config(1000, Duration::ZERO));
    assert!(matches!(fixture.error("x", 0), EvalError::Timeout(_)));
    let result = fixture.range_result("sum(x)", 0, 10_000, 1_000);
    assert!(matches!(result, Err(EvalError::Timeout(_))));
}

#[test]
fn a_huge_subquery_grid_is_refused_before_it_runs() {
    let fixture = load_with(
        &[("x", &[], at(&[(0, 1.0)]))],
        config(1000, Duration::from_secs(60)),
    );
    let error = fixture.error("max_over_time(x[1y:1ms])", 0);
    assert!(
        matches!(error, EvalError::TooManySamples { .. }),
        "{error:?}"
    );
}

// --- both stores -------------------------------------------------------------

#[test]
fn the_same_answers_from_the_indexed_and_the_scanned_store() {
    let series: Vec<SeriesSpec<'_>> = vec![
        (
            "req_total",
            &[("job", "a")],
            every(0, 15, &[0.0, 15.0, 30.0, 45.0, 60.0]),
        ),
        (
            "req_total",
            &[("job", "b")],
            at(&[(15, 10.0), (30, 20.0), (45, 5.0), (60, 15.0)]),
        ),
        ("other", &[("job", "a")], at(&[(0, 1.0)])),
    ];
    let queries = [
        "req_total",
        "rate(req_total[1m])",
        "sum by (job) (increase(req_total[1m]))",
        "req_total offset 15s",
        "max_over_time(req_total[30s:15s])",
        "req_total > 20",
        "nope",
    ];
    let head = load_into(StoreKind::Head, &series, EngineConfig::default());
    let jsonl = load_into(StoreKind::Jsonl, &series, EngineConfig::default());
    for query in queries {
        assert_eq!(head.vector(query, 60), jsonl.vector(query, 60), "{query}");
        assert_eq!(
            head.range(query, 0, 60, 15),
            jsonl.range(query, 0, 60, 15),
            "{query}"
        );
    }
    assert_vector(
        &jsonl.vector("rate(req_total[1m])", 60),
        &[(r#"{job="a"}"#, 1.0), (r#"{job="b"}"#, 25.0 / 45.0)],
    );
}

#[test]
fn the_at_modifier_fixes_the_time_whatever_the_step() {
    let fixture = load(&[("x", &[], every(0, 60, &[1.0, 2.0, 3.0]))]);
    let flat = |value: f64, times: &[f64]| -> Vec<(String, Vec<(f64, f64)>)> {
        vec![("x".to_string(), times.iter().map(|&t| (t, value)).collect())]
    };
    assert_eq!(
        fixture.range("x @ 60", 0, 600, 120),
        flat(2.0, &[0.0, 120.0, 240.0, 360.0, 480.0, 600.0])
    );
    assert_vector(&fixture.vector("x @ 120 offset 1m", 0), &[("x", 2.0)]);
    assert_eq!(
        fixture.range("x @ end()", 0, 120, 60),
        flat(3.0, &[0.0, 60.0, 120.0])
    );
    assert_eq!(
        fixture.range("x @ start()", 60, 120, 60),
        flat(2.0, &[60.0, 120.0])
    );
    // A range selector and a subquery under @: the same window each step.
    assert_eq!(
        fixture.range("count_over_time(x[2m] @ 120)", 0, 120, 60),
        vec![(
            "{}".to_string(),
            vec![(0.0, 2.0), (60.0, 2.0), (120.0, 2.0)]
        )]
    );
    assert_eq!(
        fixture.range("max_over_time(x[3m:1m] @ end())", 0, 120, 60),
        vec![(
            "{}".to_string(),
            vec![(0.0, 3.0), (60.0, 3.0), (120.0, 3.0)]
        )]
    );
    // Before any sample: nothing at any step.
    assert_eq!(fixture.range("x @ -600", 0, 120, 60), vec![]);
}
