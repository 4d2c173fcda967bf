//! The functions beyond rates and `*_over_time` against hand-computed
//! values and Prometheus' documented edge cases: gauge slopes and
//! forecasts, counts of changes and resets, per-sample maths, the
//! calendar, labels, presence, order, and classic histograms. (The same
//! functions run against a real Prometheus in `platform/tests/differential.rs`.)

mod support;

use craft4_query::eval::EvalError;
use craft4_query::value::Value;
use support::*;

/// `gauge` 10, 20, 5, 15 at 15 s steps; `line` rising 2 per second.
fn gauges() -> Fixture {
    load(&[
        (
            "gauge",
            &[("job", "api")],
            at(&[(15, 10.0), (30, 20.0), (45, 5.0), (60, 15.0)]),
        ),
        ("line", &[], every(0, 10, &[0.0, 20.0, 40.0, 60.0])),
        ("flat", &[], every(0, 10, &[7.0, 7.0, 7.0])),
        (
            "nan_gauge",
            &[],
            at(&[(10, 1.0), (20, f64::NAN), (30, f64::NAN), (40, 1.0)]),
        ),
    ])
}

#[test]
fn changes_resets_and_the_last_difference() {
    let fixture = gauges();
    // 10 → 20 → 5 → 15: three changes, one drop.
    assert_vector(
        &fixture.vector("changes(gauge[1m])", 60),
        &[("{job=\"api\"}", 3.0)],
    );
    assert_vector(
        &fixture.vector("resets(gauge[1m])", 60),
        &[("{job=\"api\"}", 1.0)],
    );
    assert_vector(
        &fixture.vector("idelta(gauge[1m])", 60),
        &[("{job=\"api\"}", 10.0)],
    );
    // One sample: no change, no reset, no idelta.
    assert_vector(
        &fixture.vector("changes(gauge[10s])", 60),
        &[("{job=\"api\"}", 0.0)],
    );
    assert_vector(&fixture.vector("idelta(gauge[10s])", 60), &[]);
    // NaN to NaN is no change; 1 → NaN and NaN → 1 are.
    assert_vector(
        &fixture.vector("changes(nan_gauge[1m])", 40),
        &[("{}", 2.0)],
    );
}

#[test]
fn deriv_and_predict_linear_fit_a_least_squares_line() {
    let fixture = gauges();
    // An exact line: slope 2/s, 60 at 30 s, 120 at 60 s.
    assert_vector(&fixture.vector("deriv(line[1m])", 30), &[("{}", 2.0)]);
    assert_vector(
        &fixture.vector("predict_linear(line[1m], 30)", 30),
        &[("{}", 120.0)],
    );
    assert_vector(
        &fixture.vector("predict_linear(line[1m], -30)", 30),
        &[("{}", 0.0)],
    );
    // A constant has slope 0 exactly.
    assert_vector(&fixture.vector("deriv(flat[1m])", 20), &[("{}", 0.0)]);
    // gauge at 15, 30, 45, 60 s: x̄ = 37.5, ȳ = 12.5,
    // Σ(x-x̄)(y-ȳ) = (-22.5)(-2.5) + (-7.5)(7.5) + 7.5(-7.5) + 22.5(2.5) = 0.
    assert_vector(
        &fixture.vector("deriv(gauge[1m])", 60),
        &[("{job=\"api\"}", 0.0)],
    );
    // One sample: no slope.
    assert_vector(&fixture.vector("deriv(line[5s])", 30), &[]);
}

#[test]
fn holt_winters_smooths_and_refuses_bad_factors() {
    let fixture = gauges();
    // A line is its own smoothing: the last value.
    assert_vector(
        &fixture.vector("holt_winters(line[1m], 0.5, 0.5)", 30),
        &[("{}", 60.0)],
    );
    // By hand, sf = tf = 0.5 over 10, 20, 5, 15: level 10, trend 10;
    // 20: level 0.5·20 + 0.5·(10+10) = 20; 5: trend 0.5·10 + 0.5·10 = 10,
    // level 0.5·5 + 0.5·30 = 17.5; 15: trend 0.5·(-2.5) + 0.5·10 = 3.75,
    // level 0.5·15 + 0.5·21.25 = 18.125.
    assert_vector(
        &fixture.vector("holt_winters(gauge[1m], 0.5, 0.5)", 60),
        &[("{job=\"api\"}", 18.125)],
    );
    match fixture.error("holt_winters(gauge[1m], 1, 0.5)", 60) {
        EvalError::Execution(message) => assert_eq!(
            message,
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
        ),
        other => panic!("{other:?}"),
    }
    match fixture.error("holt_winters(gauge[1m], 0.5, 0)", 60) {
        EvalError::Execution(message) => assert!(message.contains("trend factor"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn per_sample_maths() {
    let fixture = load(&[
        ("v", &[], every(0, 10, &[-2.0])),
        ("z", &[], every(0, 10, &[0.0])),
    ]);
    let cases: &[(&str, f64)] = &[
        ("sgn(v)", -1.0),
        ("sgn(z)", 0.0),
        ("sqrt(v)", f64::NAN),
        ("sqrt(-v)", 2f64.sqrt()),
        ("exp(z)", 1.0),
        ("ln(z)", f64::NEG_INFINITY),
        ("log2(-v)", 1.0),
        ("log10(-v * 50)", 2.0),
        ("deg(v)", -2.0 * 180.0 / std::f64::consts::PI),
        ("rad(v * 90)", -std::f64::consts::PI),
        ("cos(z)", 1.0),
        ("acosh(z)", f64::NAN),
        ("atanh(-v / 2)", f64::INFINITY),
        ("clamp(v, -1, 1)", -1.0),
        ("clamp(v, -5, 5)", -2.0),
    ];
    for (query, expected) in cases {
        assert_vector(&fixture.vector(query, 0), &[("{}", *expected)]);
    }
    // A maximum below the minimum: nothing.
    assert_vector(&fixture.vector("clamp(v, 1, -1)", 0), &[]);
    match fixture.instant("pi()", 0) {
        Value::Scalar(point) => assert_eq!(point.v, std::f64::consts::PI),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_calendar_in_utc() {
    // 2024-02-29T13:45:30Z, a Thursday.
    let t = 1_709_214_330;
    let fixture = load(&[("when", &[], at(&[(0, t as f64)]))]);
    let cases = [
        ("minute(when)", 45.0),
        ("hour(when)", 13.0),
        ("day_of_week(when)", 4.0),
        ("day_of_month(when)", 29.0),
        ("day_of_year(when)", 60.0),
        ("days_in_month(when)", 29.0),
        ("month(when)", 2.0),
        ("year(when)", 2024.0),
    ];
    for (query, expected) in cases {
        assert_vector(&fixture.vector(query, 0), &[("{}", expected)]);
    }
    // Without an argument: the evaluation time.
    assert_vector(&fixture.vector("hour()", t), &[("{}", 13.0)]);
    assert_vector(&fixture.vector("year()", 0), &[("{}", 1970.0)]);
}

#[test]
fn timestamp_is_the_sample_s_own_time() {
    let fixture = gauges();
    // At 50 s the latest sample of gauge is the one at 45 s.
    assert_vector(
        &fixture.vector("timestamp(gauge)", 50),
        &[("{job=\"api\"}", 45.0)],
    );
    // Of anything else: the evaluation time.
    assert_vector(
        &fixture.vector("timestamp(gauge * 2)", 50),
        &[("{job=\"api\"}", 50.0)],
    );
}

#[test]
fn label_replace_and_label_join() {
    let fixture = load(&[(
        "up",
        &[("instance", "web-1:9100"), ("job", "node")],
        every(0, 10, &[1.0]),
    )]);
    assert_vector(
        &fixture.vector(
            r#"label_replace(up, "host", "$1", "instance", "(.*):\\d+")"#,
            0,
        ),
        &[(
            "up{host=\"web-1\",instance=\"web-1:9100\",job=\"node\"}",
            1.0,
        )],
    );
    // No match: unchanged. An empty result removes the label.
    assert_vector(
        &fixture.vector(r#"label_replace(up, "host", "$1", "instance", "x(.*)")"#, 0),
        &[("up{instance=\"web-1:9100\",job=\"node\"}", 1.0)],
    );
    assert_vector(
        &fixture.vector(r#"label_replace(up, "job", "", "job", ".*")"#, 0),
        &[("up{instance=\"web-1:9100\"}", 1.0)],
    );
    // Named groups, and the name itself as source and destination.
    assert_vector(
        &fixture.vector(
            r#"label_replace(up, "__name__", "${kind}_up", "job", "(?P<kind>.*)")"#,
            0,
        ),
        &[("node_up{instance=\"web-1:9100\",job=\"node\"}", 1.0)],
    );
    assert_vector(
        &fixture.vector(r#"label_join(up, "both", "/", "job", "instance")"#, 0),
        &[(
            "up{both=\"node/web-1:9100\",instance=\"web-1:9100\",job=\"node\"}",
            1.0,
        )],
    );
    // Bad regex and bad label names fail the query, naming them.
    for (query, needle) in [
        (
            r#"label_replace(up, "x", "y", "job", "(")"#,
            "invalid regular expression in label_replace(): (",
        ),
        (
            r#"label_replace(up, "1x", "y", "job", ".*")"#,
            "invalid destination label name in label_replace(): 1x",
        ),
        (
            r#"label_join(up, "x", ",", "a-b")"#,
            "invalid source label name in label_join(): a-b",
        ),
        (
            r#"label_replace(nothing, "x", "y", "job", "(")"#,
            "invalid regular expression",
        ),
    ] {
        let message = fixture.error(query, 0).to_string();
        assert!(message.contains(needle), "{query}: {message}");
    }
}

#[test]
fn absent_names_the_labels_its_selector_pins() {
    let fixture = gauges();
    assert_vector(&fixture.vector("absent(gauge)", 60), &[]);
    assert_vector(
        &fixture.vector(r#"absent(nope{job="api",env=~"p.*"})"#, 60),
        &[("{job=\"api\"}", 1.0)],
    );
    assert_vector(&fixture.vector("absent(sum(nope))", 60), &[("{}", 1.0)]);
    assert_vector(
        &fixture.vector(r#"absent_over_time(nope{job="x"}[1m])"#, 60),
        &[("{job=\"x\"}", 1.0)],
    );
    assert_vector(&fixture.vector("absent_over_time(gauge[1m])", 60), &[]);
    // gauge's last sample is at 60 s: absent from 5 min later on.
    assert_vector(
        &fixture.vector(r#"absent_over_time(gauge[1m])"#, 200),
        &[("{}", 1.0)],
    );
    assert_vector(
        &fixture.vector("present_over_time(gauge[1m])", 60),
        &[("{job=\"api\"}", 1.0)],
    );
    // Range: absent only at the steps with nothing — before the first
    // sample, and once the last (60 s) is out of the left-open lookback
    // (t - 5m, t].
    assert_eq!(
        fixture.range("absent(gauge)", 0, 420, 60),
        vec![(
            "{}".to_string(),
            vec![(0.0, 1.0), (360.0, 1.0), (420.0, 1.0)]
        )]
    );
}

#[test]
fn sort_orders_an_instant_answer_by_value() {
    let fixture = load(&[
        ("m", &[("i", "a")], every(0, 10, &[3.0])),
        ("m", &[("i", "b")], every(0, 10, &[1.0])),
        ("m", &[("i", "c")], every(0, 10, &[f64::NAN])),
        ("m", &[("i", "d")], every(0, 10, &[2.0])),
    ]);
    let order = |query: &str| -> Vec<String> {
        fixture
            .vector(query, 0)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        order("sort(m)"),
        ["m{i=\"c\"}", "m{i=\"b\"}", "m{i=\"d\"}", "m{i=\"a\"}"]
    );
    assert_eq!(
        order("sort_desc(m)"),
        ["m{i=\"c\"}", "m{i=\"a\"}", "m{i=\"d\"}", "m{i=\"b\"}"]
    );
}

#[test]
fn histogram_quantile_over_classic_buckets() {
    // 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, all ≤ 1, per job.
    let bucket = |le: &'static str, count: f64, job: &'static str| -> SeriesSpec<'static> {
        let labels: &'static [(&str, &str)] = Box::leak(Box::new([("job", job), ("le", le)]));
        ("req_bucket", labels, every(0, 10, &[count]))
    };
    let fixture = load(&[
        bucket("0.1", 50.0, "a"),
        bucket("0.5", 90.0, "a"),
        bucket("1", 100.0, "a"),
        bucket("+Inf", 100.0, "a"),
        bucket("0.1", 5.0, "no-inf"),
        bucket("1", 10.0, "no-inf"),
        (
            "req_bucket",
            &[("job", "a"), ("le", "fast")],
            every(0, 10, &[7.0]),
        ),
    ]);
    assert_vector(
        &fixture.vector(r#"histogram_quantile(0.7, req_bucket{job="a"})"#, 0),
        &[("{job=\"a\"}", 0.3)],
    );
    assert_vector(
        &fixture.vector(r#"histogram_quantile(0.99, req_bucket{job="a"})"#, 0),
        &[("{job=\"a\"}", 0.95)],
    );
    assert_vector(
        &fixture.vector(r#"histogram_quantile(0.5, req_bucket{job="no-inf"})"#, 0),
        &[("{job=\"no-inf\"}", f64::NAN)],
    );
    assert_vector(
        &fixture.vector(r#"histogram_quantile(0.5, sum by (le) (req_bucket))"#, 0),
        &[("{}", 0.1 * (55.0 / 55.0))],
    );
}

#[test]
fn variance_and_group() {
    let fixture = gauges();
    // gauge in (0, 60]: 10, 20, 5, 15 — deviations ±2.5, ±7.5: 31.25.
    assert_vector(
        &fixture.vector("stdvar_over_time(gauge[1m])", 60),
        &[("{job=\"api\"}", 31.25)],
    );
    let fleet = load(&[
        ("m", &[("job", "api"), ("i", "1")], every(0, 10, &[1.0])),
        ("m", &[("job", "api"), ("i", "2")], every(0, 10, &[3.0])),
        ("m", &[("job", "db"), ("i", "3")], every(0, 10, &[5.0])),
        ("m", &[("job", "db"), ("i", "4")], every(0, 10, &[7.0])),
    ]);
    // 1, 3, 5, 7: mean 4, squared deviations 9 + 1 + 1 + 9 = 20, over 4.
    assert_vector(&fleet.vector("stdvar(m)", 0), &[("{}", 5.0)]);
    assert_vector(
        &fleet.vector("stdvar by (job) (m)", 0),
        &[("{job=\"api\"}", 1.0), ("{job=\"db\"}", 1.0)],
    );
    assert_vector(
        &fleet.vector("group by (job) (m)", 0),
        &[("{job=\"api\"}", 1.0), ("{job=\"db\"}", 1.0)],
    );
    assert_vector(&fleet.vector("group(m)", 0), &[("{}", 1.0)]);
    assert_vector(&fleet.vector("group(nothing)", 0), &[]);
}

#[test]
fn count_values_makes_a_label_of_each_value() {
    let fleet = load(&[
        (
            "version",
            &[("job", "api"), ("i", "1")],
            every(0, 10, &[1.5]),
        ),
        (
            "version",
            &[("job", "api"), ("i", "2")],
            every(0, 10, &[1.5]),
        ),
        (
            "version",
            &[("job", "db"), ("i", "3")],
            every(0, 10, &[2.0]),
        ),
    ]);
    assert_vector(
        &fleet.vector(r#"count_values("v", version)"#, 0),
        &[("{v=\"1.5\"}", 2.0), ("{v=\"2\"}", 1.0)],
    );
    assert_vector(
        &fleet.vector(r#"count_values by (job) ("v", version)"#, 0),
        &[
            ("{job=\"api\",v=\"1.5\"}", 2.0),
            ("{job=\"db\",v=\"2\"}", 1.0),
        ],
    );
    match fleet.error(r#"count_values("1x", version)"#, 0) {
        EvalError::Execution(message) => assert_eq!(message, "invalid label name \"1x\""),
        other => panic!("{other:?}"),
    }
}

#[test]
fn double_exponential_smoothing_is_holt_winters_under_prometheus_3_s_name() {
    let fixture = gauges();
    assert_vector(
        &fixture.vector("double_exponential_smoothing(gauge[1m], 0.5, 0.5)", 60),
        &[("{job=\"api\"}", 18.125)],
    );
    match fixture.error("double_exponential_smoothing(gauge[1m], 0, 0.5)", 60) {
        EvalError::Execution(message) => assert!(message.contains("smoothing factor"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mad_over_time_is_the_median_distance_to_the_median() {
    let fixture = gauges();
    // 10, 20, 5, 15: median 12.5; distances 2.5, 7.5, 7.5, 2.5 → 5.
    assert_vector(
        &fixture.vector("mad_over_time(gauge[1m])", 60),
        &[("{job=\"api\"}", 5.0)],
    );
    // 10, 20, 5: median 10; distances 0, 10, 5 → 5.
    assert_vector(
        &fixture.vector("mad_over_time(gauge[1m])", 45),
        &[("{job=\"api\"}", 5.0)],
    );
    // One sample, and a constant: no deviation.
    assert_vector(
        &fixture.vector("mad_over_time(gauge[1m])", 15),
        &[("{job=\"api\"}", 0.0)],
    );
    assert_vector(
        &fixture.vector("mad_over_time(flat[1m])", 20),
        &[("{}", 0.0)],
    );
    // An empty window answers nothing.
    assert_vector(&fixture.vector("mad_over_time(gauge[5s])", 10), &[]);
}

#[test]
fn sort_by_label_orders_naturally_then_by_the_whole_label_set() {
    let fixture = load(&[
        (
            "m",
            &[("host", "node10"), ("dc", "b")],
            every(0, 10, &[1.0]),
        ),
        ("m", &[("host", "node9"), ("dc", "a")], every(0, 10, &[2.0])),
        ("m", &[("host", "node9"), ("dc", "b")], every(0, 10, &[3.0])),
        ("m", &[("host", "node2"), ("dc", "c")], every(0, 10, &[4.0])),
    ]);
    let order = |query: &str| -> Vec<String> {
        fixture
            .vector(query, 0)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        order("sort_by_label(m, \"host\")"),
        [
            "m{dc=\"c\",host=\"node2\"}",
            "m{dc=\"a\",host=\"node9\"}",
            "m{dc=\"b\",host=\"node9\"}",
            "m{dc=\"b\",host=\"node10\"}",
        ]
    );
    assert_eq!(
        order("sort_by_label_desc(m, \"dc\", \"host\")"),
        [
            "m{dc=\"c\",host=\"node2\"}",
            "m{dc=\"b\",host=\"node10\"}",
            "m{dc=\"b\",host=\"node9\"}",
            "m{dc=\"a\",host=\"node9\"}",
        ]
    );
    // No label given: the whole label sets decide.
    assert_eq!(order("sort_by_label(m)")[0], "m{dc=\"a\",host=\"node9\"}");
}

#[test]
fn native_histogram_functions_say_why_they_answer_nothing() {
    let fixture = gauges();
    for query in [
        "histogram_count(gauge)",
        "histogram_sum(gauge)",
        "histogram_avg(gauge)",
        "histogram_stddev(gauge)",
        "histogram_stdvar(gauge)",
        "histogram_fraction(0, 0.1, gauge)",
    ] {
        match fixture.error(query, 60) {
            EvalError::Unsupported(message) => {
                assert!(
                    message.starts_with("native histograms are not supported"),
                    "{message}"
                );
                assert!(message.contains("histogram_quantile"), "{message}");
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}
