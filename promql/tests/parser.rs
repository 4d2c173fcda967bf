//! The language front end from the outside: every construct parses and
//! prints canonically, printing and parsing round-trip (on a table and on
//! random trees), bad queries fail at the right position with a useful
//! message, and no input — however hostile — panics. Docs chapter 4.

use common::{LabelMatcher, MatchOp};
use promql::lexer::Keyword;
use promql::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Expr, GroupModifier,
    Grouping, MAX_DEPTH, MatchingLabels, MatrixSelector, SubqueryExpr, ValueType, VectorMatching,
    VectorSelector, lookup_function, parse,
};
use proptest::prelude::*;

fn parse_ok(input: &str) -> Expr {
    parse(input).unwrap_or_else(|error| panic!("{input:?} did not parse: {error}"))
}

/// (query, canonical form): every construct of the language at least once.
const VALID: &[(&str, &str)] = &[
    // Selectors.
    ("cpu_usage", "cpu_usage"),
    ("x @ 100", "x @ 100.000"),
    ("x @ 1700000000.5 offset 1m", "x @ 1700000000.500 offset 1m"),
    ("x offset 1m @ 1700000000", "x @ 1700000000.000 offset 1m"),
    ("rate(x[5m] @ end())", "rate(x[5m] @ end())"),
    ("x[5m] @ start() offset -1m", "x[5m] @ start() offset -1m"),
    (
        "max_over_time(x[1h:5m] @ 100)",
        "max_over_time(x[1h:5m] @ 100.000)",
    ),
    ("x @ -10", "x @ -10.000"),
    ("  cpu_usage  # a comment\n", "cpu_usage"),
    ("job:http_requests:rate5m", "job:http_requests:rate5m"),
    (":leading_colon", ":leading_colon"),
    (
        r#"http_requests_total{job="api"}"#,
        r#"http_requests_total{job="api"}"#,
    ),
    (
        r#"x{job='api',code!="500"}"#,
        r#"x{job="api", code!="500"}"#,
    ),
    ("x{a=~\"a.*\", b!~`b|c`,}", r#"x{a=~"a.*", b!~"b|c"}"#),
    (r#"{__name__="up"}"#, r#"{__name__="up"}"#),
    (r#"{job="api"}"#, r#"{job="api"}"#),
    (
        r#"x{by="1",on="2",bool="3",inf="4"}"#,
        r#"x{by="1", on="2", bool="3", inf="4"}"#,
    ),
    (r#"x{s="tab\there"}"#, r#"x{s="tab\there"}"#),
    (r"x{s='\u00e9\x41\101\''}", r#"x{s="éAA'"}"#),
    ("x{}", "x"),
    // Offsets and ranges.
    ("x offset 5m", "x offset 5m"),
    ("x offset -1h30m", "x offset -1h30m"),
    ("x OFFSET 90m", "x offset 1h30m"),
    ("x[5m]", "x[5m]"),
    (r#"x{a="b"}[1h] offset 1d"#, r#"x{a="b"}[1h] offset 1d"#),
    ("x[100ms]", "x[100ms]"),
    ("x[120s]", "x[2m]"),
    ("x[1y2w3d]", "x[382d]"),
    // Subqueries.
    ("rate(x[5m])[30m:1m]", "rate(x[5m])[30m:1m]"),
    (
        "max_over_time(rate(x[5m])[1h:])",
        "max_over_time(rate(x[5m])[1h:])",
    ),
    ("x[1h:5m] offset 1d", "x[1h:5m] offset 1d"),
    ("(a + b)[5m:]", "(a + b)[5m:]"),
    ("(x)[5m:]", "x[5m:]"),
    // Literals.
    ("42", "42"),
    ("-1.5", "-1.5"),
    ("1e3", "1000"),
    ("0x1F", "31"),
    ("Inf", "Inf"),
    ("-inf", "-Inf"),
    ("nan", "NaN"),
    (".5", "0.5"),
    ("1e-7", "1e-7"),
    ("1e300", "1e300"),
    (r#""hello""#, r#""hello""#),
    (r"`raw\d`", r#""raw\\d""#),
    // Functions.
    ("time()", "time()"),
    ("vector(1)", "vector(1)"),
    ("scalar(x)", "scalar(x)"),
    ("rate(x[5m])", "rate(x[5m])"),
    (
        "irate(x[1m]) + increase(x[1h]) + delta(x[10m])",
        "irate(x[1m]) + increase(x[1h]) + delta(x[10m])",
    ),
    (
        "quantile_over_time(0.9, x[5m])",
        "quantile_over_time(0.9, x[5m])",
    ),
    (
        "last_over_time(x[5m] offset 1m)",
        "last_over_time(x[5m] offset 1m)",
    ),
    ("round(x)", "round(x)"),
    ("round(x, 0.5)", "round(x, 0.5)"),
    (
        "clamp_max(clamp_min(x, 0), 100,)",
        "clamp_max(clamp_min(x, 0), 100)",
    ),
    ("abs(ceil(floor(x)))", "abs(ceil(floor(x)))"),
    // Aggregations.
    ("sum(x)", "sum(x)"),
    ("SUM(x)", "sum(x)"),
    ("sum by (job) (x)", "sum by (job) (x)"),
    ("sum(x) by (job, instance)", "sum by (job, instance) (x)"),
    ("avg without(instance)(x)", "avg without (instance) (x)"),
    ("count by () (x)", "count(x)"),
    ("max without () (x)", "max without () (x)"),
    ("topk(5, x)", "topk(5, x)"),
    ("bottomk by (job) (3, x)", "bottomk by (job) (3, x)"),
    (
        "quantile(0.99, rate(x[5m])) by (le)",
        "quantile by (le) (0.99, rate(x[5m]))",
    ),
    ("stddev(x) + min(x)", "stddev(x) + min(x)"),
    ("sum by (on, bool) (x)", "sum by (on, bool) (x)"),
    // Unary minus and precedence.
    ("-x", "-x"),
    ("-(1)", "-(1)"),
    ("- -x", "- -x"),
    ("---x", "- - -x"),
    ("+x", "x"),
    ("-2 ^ 2", "-2 ^ 2"),
    ("(-2) ^ 2", "(-2) ^ 2"),
    ("(-x) ^ 2", "(-x) ^ 2"),
    ("2 ^ 3 ^ 2", "2 ^ 3 ^ 2"),
    ("(2 ^ 3) ^ 2", "(2 ^ 3) ^ 2"),
    ("1 + 2 * 3", "1 + 2 * 3"),
    ("((1 + 2)) * 3", "(1 + 2) * 3"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a - b) - c", "a - b - c"),
    ("a / b % c", "a / b % c"),
    ("-(a + b)", "-(a + b)"),
    // Comparisons.
    ("x > 0", "x > 0"),
    ("x >= bool 0", "x >= bool 0"),
    ("1 < bool 2", "1 < bool 2"),
    ("x == y != z", "x == y != z"),
    ("x <= 1 + 2", "x <= 1 + 2"),
    // Vector matching.
    ("a + on (job) b", "a + on (job) b"),
    (
        "a+on(job)group_left(instance)b",
        "a + on (job) group_left (instance) b",
    ),
    (
        "a * ignoring (code) group_right b",
        "a * ignoring (code) group_right b",
    ),
    (
        "a * on (x) group_left () (b + c)",
        "a * on (x) group_left () (b + c)",
    ),
    ("a + ignoring () b", "a + b"),
    ("a > bool on (x) b", "a > bool on (x) b"),
    (
        "sum(rate(x[5m])) by (job) / ignoring (code) group_left sum(y) by (job)",
        "sum by (job) (rate(x[5m])) / ignoring (code) group_left sum by (job) (y)",
    ),
    // Set operators.
    ("a and b", "a and b"),
    ("a or b unless c", "a or b unless c"),
    ("(a or b) and c", "(a or b) and c"),
    ("a AND on (x) b", "a and on (x) b"),
    ("a unless ignoring (y) b", "a unless ignoring (y) b"),
    // Prometheus 3: numbers as durations (seconds) and durations as numbers.
    ("rate(x[300])", "rate(x[5m])"),
    ("x[1.5]", "x[1s500ms]"),
    ("x offset 60", "x offset 1m"),
    ("x offset -90", "x offset -1m30s"),
    ("max_over_time(x[3600:60])", "max_over_time(x[1h:1m])"),
    ("expiry - time() < 15d", "expiry - time() < 1296000"),
    ("predict_linear(x[1h], 4h)", "predict_linear(x[1h], 14400)"),
];

#[test]
fn valid_queries_print_canonically() {
    for (input, canonical) in VALID {
        assert_eq!(parse_ok(input).to_string(), *canonical, "{input:?}");
    }
}

#[test]
fn valid_queries_round_trip() {
    for (input, _) in VALID {
        let expr = parse_ok(input);
        let printed = expr.to_string();
        assert_eq!(parse_ok(&printed), expr, "{input:?} printed as {printed:?}");
        assert_eq!(parse_ok(&printed).to_string(), printed, "{input:?}");
    }
}

#[test]
fn trees_have_the_expected_shape_and_types() {
    let expr = parse_ok(r#"sum by (job) (rate(http_requests_total{code=~"5.."}[5m] offset 1m))"#);
    let Expr::Aggregate(aggregate) = &expr else {
        panic!("{expr:?}")
    };
    assert_eq!(aggregate.op, AggregateOp::Sum);
    assert_eq!(aggregate.grouping, Grouping::By(vec!["job".into()]));
    let Expr::Call(call) = aggregate.expr.as_ref() else {
        panic!("{expr:?}")
    };
    assert_eq!(call.function.name, "rate");
    let Expr::MatrixSelector(matrix) = &call.args[0] else {
        panic!("{expr:?}")
    };
    assert_eq!(
        (matrix.range_ms, matrix.selector.offset_ms),
        (300_000, 60_000)
    );
    let store_matchers = matrix.selector.store_matchers();
    assert_eq!(store_matchers[0].name, "__name__");
    assert_eq!(store_matchers[0].value, "http_requests_total");
    assert_eq!(store_matchers[1].op, MatchOp::Regex);
    assert!(store_matchers[1].matches_value("503"));
    assert!(!store_matchers[1].matches_value("200"));

    for (input, value_type) in [
        ("1 + 2", ValueType::Scalar),
        ("time() > bool 5", ValueType::Scalar),
        ("scalar(x) * 2", ValueType::Scalar),
        ("x * 2", ValueType::InstantVector),
        ("x[5m]", ValueType::RangeVector),
        ("rate(x[5m])[1h:]", ValueType::RangeVector),
        ("'s'", ValueType::String),
        ("-vector(1)", ValueType::InstantVector),
    ] {
        assert_eq!(parse_ok(input).value_type(), value_type, "{input}");
    }
}

/// (query, byte position, phrase of the message).
const INVALID: &[(&str, usize, &str)] = &[
    ("", 0, "expected an expression, found end of input"),
    ("   # only a comment", 19, "expected an expression"),
    (
        r#"x{a="b""#,
        7,
        r#"expected "," or "}" after a label matcher, found end of input"#,
    ),
    (r#"x{a="b" c="d"}"#, 8, r#"expected "," or "}""#),
    ("x{a}", 3, "matcher operator"),
    ("x{a=b}", 4, "quoted label value"),
    ("x{a:b=\"c\"}", 2, "label name"),
    ("x[5x]", 2, "a number or a duration"),
    ("x[1.5m]", 2, "a number or a duration"),
    ("rate(x[])", 7, "expected a range duration"),
    (
        "rate(x[5m,",
        9,
        r#"1:10: expected "]" after the range duration, found ",""#,
    ),
    ("x[0s]", 2, "range greater than 0"),
    ("x[5m:0s]", 5, "step greater than 0"),
    ("foo(x)", 0, r#"unknown function "foo""#),
    ("Rate(x[5m])", 0, r#"unknown function "Rate""#),
    (
        "rate(cpu)",
        5,
        "expected range vector argument in call to rate(), found instant vector",
    ),
    ("abs(x[5m])", 4, "instant vector argument in call to abs()"),
    ("vector(x)", 7, "scalar argument in call to vector()"),
    (
        "rate(x[5m], 1)",
        0,
        "1 argument in call to rate(), found 2 arguments",
    ),
    ("time(1)", 0, "0 arguments in call to time()"),
    ("round()", 0, "1 to 2 arguments"),
    (
        "sum(x[5m])",
        4,
        "instant vector argument to aggregate with sum, found range vector",
    ),
    ("topk(x)", 0, "2 arguments in topk(parameter, vector)"),
    ("topk(x, y)", 5, "scalar parameter to topk"),
    ("sum(1, x)", 0, "1 argument in sum(vector)"),
    ("sum", 3, r#"expected "(" to start the arguments of sum"#),
    (
        "a + group_left b",
        4,
        "on (…) or ignoring (…) before group_left",
    ),
    (
        "a and on (x) group_left b",
        13,
        "set operators are many-to-many",
    ),
    (
        "a + on (x) group_left (x) b",
        11,
        r#"label "x" in on (…) or in group_left (…), not both"#,
    ),
    ("1 > 2", 2, "comparisons between scalars must use bool"),
    ("x + bool y", 4, "bool only follows a comparison operator"),
    ("1 + on (x) y", 4, "instant vectors on both sides"),
    (
        "x and 1",
        6,
        "instant vector operands for the set operator \"and\"",
    ),
    ("x[5m] + 1", 0, "scalar or instant vector operand"),
    ("-x[5m]", 1, "scalar or instant vector after unary"),
    (
        "x y",
        2,
        r#"expected an operator or the end of the query, found "y""#,
    ),
    (
        "sum(x) by (job) foo",
        16,
        "an operator or the end of the query",
    ),
    (
        "(x",
        2,
        r#"expected an operator or ")", found end of input"#,
    ),
    ("x)", 1, "an operator or the end of the query"),
    ("by", 0, r#"expected an expression, found keyword "by""#),
    ("x + ", 4, "expected an expression, found end of input"),
    (r#"x{a="unterminated}"#, 4, "unterminated string"),
    (
        r#"x{a=~"(unclosed"}"#,
        5,
        "expected a valid regular expression",
    ),
    (r#"x{a=~"a{2,1}"}"#, 5, "valid regular expression"),
    (
        r#"{a=""}"#,
        0,
        "matcher that does not match the empty string",
    ),
    ("{}", 0, "metric name or a matcher"),
    (r#"x{__name__="y"}"#, 2, "the name set twice"),
    ("sum(x) offset 5m", 7, "before offset"),
    (
        "(x) offset 5m",
        4,
        "found offset after a parenthesised expression",
    ),
    ("x offset 5m offset 1m", 12, "at most one offset"),
    ("x offset 5m [10m]", 12, "the range before the offset"),
    ("(x)[5m]", 3, "a vector selector before a range"),
    ("rate(x[5m])[5m]", 11, "a range after a call to rate()"),
    ("x[5m][5m:]", 0, "an instant vector before a subquery"),
    ("x @ 100 @ 200", 8, "at most one @"),
    ("x @ 100 [5m]", 8, "the range before @"),
    ("(x) @ 100", 4, "@ after a parenthesised expression"),
    ("x @ later()", 4, "a timestamp, start() or end() after @"),
    ("x @ start", 9, "\"(\" after start or end"),
    ("x offset", 8, "a duration after offset"),
    ("x[0]", 2, "a range greater than 0"),
    (
        "x[Inf]",
        2,
        "a duration in seconds within the range of time",
    ),
    (
        "x offset NaN",
        9,
        "a duration in seconds within the range of time",
    ),
];

#[test]
fn invalid_queries_fail_at_the_right_place() {
    for (input, position, phrase) in INVALID {
        match parse(input) {
            Ok(expr) => panic!("{input:?} parsed as {expr}"),
            Err(error) => {
                let message = error.to_string();
                assert_eq!(error.position, *position, "{input:?}: {message}");
                assert!(message.contains(phrase), "{input:?}: {message}");
                assert!(
                    message.starts_with(&format!("{}:{}: expected ", error.line, error.column)),
                    "{message}"
                );
            }
        }
    }
}

#[test]
fn errors_on_later_lines_give_line_and_column() {
    let error = parse("sum(\n  rate(x[5m)\n)").unwrap_err();
    assert_eq!((error.line, error.column, error.position), (2, 12, 16));
}

/// Just under the nesting cap, every recursive construct parses, prints and
/// drops without exhausting a test thread's stack (debug builds use the
/// most stack per frame).
#[test]
fn deep_nesting_below_the_cap_is_fine() {
    let depth = MAX_DEPTH - 2;
    let queries = [
        format!("{}x{}", "(".repeat(depth), ")".repeat(depth)),
        format!("{}x{}", "abs(".repeat(depth), ")".repeat(depth)),
        format!("{}x{}", "sum(".repeat(depth), ")".repeat(depth)),
        format!("{}x{}", "topk(1, ".repeat(depth), ")".repeat(depth)),
        format!("{}x{}", "-".repeat(depth), ""),
        format!("{}x{}", "x + (".repeat(depth / 2), ")".repeat(depth / 2)),
        vec!["x"; depth].join(" ^ "),
        vec!["x"; depth].join(" / "),
        format!(
            "{}1{}",
            "scalar(vector(".repeat(depth / 2),
            "))".repeat(depth / 2)
        ),
    ];
    for query in queries {
        let expr = parse_ok(&query);
        assert_eq!(parse_ok(&expr.to_string()), expr);
    }
}

#[test]
fn nesting_beyond_the_cap_is_an_error() {
    let depth = MAX_DEPTH + 1;
    for query in [
        format!("{}x{}", "(".repeat(100 * depth), ")".repeat(100 * depth)),
        format!("{}x", "-".repeat(100 * depth)),
        vec!["x"; 100 * depth].join(" + "),
        vec!["x"; depth].join(" ^ "),
        format!("{}x{}", "abs(".repeat(depth), ")".repeat(depth)),
    ] {
        let error = parse(&query).unwrap_err();
        assert!(error.expected.contains("levels deep"), "{error}");
    }
}

// ---------------------------------------------------------------------------
// Random trees: print, parse, compare.
// ---------------------------------------------------------------------------

/// Words the printer cannot use as a metric name: they parse as something
/// else (`sum`, `offset`, `inf`).
fn is_reserved(word: &str) -> bool {
    Keyword::from_word(word).is_some()
        || AggregateOp::from_word(word).is_some()
        || word.eq_ignore_ascii_case("inf")
        || word.eq_ignore_ascii_case("nan")
}

fn metric_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_:][a-zA-Z0-9_:]{0,6}".prop_filter("reserved word", |name| !is_reserved(name))
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,5}",
        // Keywords and `inf` are valid label names.
        Just("by".to_string()),
        Just("offset".to_string()),
        Just("inf".to_string()),
    ]
    .prop_filter("the metric name label", |name| name != "__name__")
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,6}",
        prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
        Just("quote\" back\\slash ' `".to_string()),
    ]
}

fn matcher() -> impl Strategy<Value = LabelMatcher> {
    let plain = (label_name(), prop::bool::ANY, label_value()).prop_map(|(name, equal, value)| {
        let op = if equal {
            MatchOp::Equal
        } else {
            MatchOp::NotEqual
        };
        LabelMatcher::new(name, op, value).expect("plain matchers always build")
    });
    let regex = (
        label_name(),
        prop::bool::ANY,
        prop::sample::select(vec!["a.*", "b|c", "", ".+", r"x\d{2}", "(?i)api", "é+"]),
    )
        .prop_map(|(name, matching, pattern)| {
            let op = if matching {
                MatchOp::Regex
            } else {
                MatchOp::NotRegex
            };
            LabelMatcher::new(name, op, pattern).expect("the patterns compile")
        });
    prop_oneof![plain, regex]
}

fn duration() -> impl Strategy<Value = i64> {
    prop_oneof![
        1..1_000i64,
        (1..120i64).prop_map(|minutes| minutes * 60_000),
        1..1_000_000_000_000i64,
    ]
}

fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), duration(), duration().prop_map(|d| -d)]
}

fn at() -> impl Strategy<Value = Option<AtModifier>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(AtModifier::Start)),
        1 => Just(Some(AtModifier::End)),
        1 => (-2_000_000_000_000i64..4_000_000_000_000).prop_map(|ms| Some(AtModifier::Time(ms))),
    ]
}

fn vector_selector() -> impl Strategy<Value = VectorSelector> {
    (
        prop::option::of(metric_name()),
        prop::collection::vec(matcher(), 0..3),
        label_name(),
        "[a-z]{1,4}",
        offset(),
        at(),
    )
        .prop_map(
            |(name, mut matchers, anchor_label, anchor_value, offset_ms, at)| {
                if name.is_none() {
                    // A selector without a name needs a matcher that rejects "".
                    let anchor = LabelMatcher::new(anchor_label, MatchOp::Equal, anchor_value)
                        .expect("plain matchers always build");
                    matchers.insert(0, anchor);
                }
                VectorSelector {
                    name,
                    matchers,
                    offset_ms,
                    at,
                }
            },
        )
}

fn labels() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(label_name(), 0..3)
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    let function = lookup_function(name).expect("the generator names known functions");
    Expr::Call(Call { function, args })
}

fn binary(op: BinaryOp, lhs: Expr, rhs: Expr, return_bool: bool, matching: VectorMatching) -> Expr {
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool,
        matching,
    })
}

fn arithmetic_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(
        BinaryOp::ALL
            .into_iter()
            .filter(|op| !op.is_comparison() && !op.is_set_operator())
            .collect::<Vec<_>>(),
    )
}

fn comparison_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(
        BinaryOp::ALL
            .into_iter()
            .filter(|op| op.is_comparison())
            .collect::<Vec<_>>(),
    )
}

fn set_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(vec![BinaryOp::And, BinaryOp::Or, BinaryOp::Unless])
}

fn vector_matching(allow_group: bool) -> impl Strategy<Value = VectorMatching> {
    let group = prop::option::of((prop::bool::ANY, labels()));
    (prop::bool::ANY, labels(), group).prop_map(move |(on, matching_labels, group)| {
        let group = group.filter(|_| allow_group).map(|(left, mut included)| {
            if on {
                // A label may not be in both `on (…)` and `group_x (…)`.
                included.retain(|label| !matching_labels.contains(label));
            }
            if left {
                GroupModifier::Left(included)
            } else {
                GroupModifier::Right(included)
            }
        });
        let labels = if on {
            MatchingLabels::On(matching_labels)
        } else {
            MatchingLabels::Ignoring(matching_labels)
        };
        VectorMatching { labels, group }
    })
}

/// Well-typed trees, one strategy per type, `depth` levels of operators.
#[derive(Clone)]
struct Trees {
    scalar: BoxedStrategy<Expr>,
    vector: BoxedStrategy<Expr>,
    range: BoxedStrategy<Expr>,
}

fn trees(depth: u32) -> Trees {
    let matrix = (vector_selector(), duration()).prop_map(|(selector, range_ms)| {
        Expr::MatrixSelector(MatrixSelector { selector, range_ms })
    });
    if depth == 0 {
        let number = any::<f64>().prop_map(Expr::Number);
        return Trees {
            scalar: prop_oneof![4 => number.clone(), 1 => Just(call("time", vec![]))].boxed(),
            vector: prop_oneof![
                4 => vector_selector().prop_map(Expr::VectorSelector),
                1 => number.prop_map(|n| call("vector", vec![n])),
            ]
            .boxed(),
            range: matrix.boxed(),
        };
    }
    let sub = trees(depth - 1);
    let (s, v, r) = (sub.scalar.clone(), sub.vector.clone(), sub.range.clone());

    let scalar = prop_oneof![
        s.clone(),
        s.clone().prop_map(|e| Expr::Negate(Box::new(e))),
        (arithmetic_op(), s.clone(), s.clone()).prop_map(|(op, a, b)| binary(
            op,
            a,
            b,
            false,
            VectorMatching::default()
        )),
        (comparison_op(), s.clone(), s.clone()).prop_map(|(op, a, b)| binary(
            op,
            a,
            b,
            true,
            VectorMatching::default()
        )),
        v.clone().prop_map(|e| call("scalar", vec![e])),
    ]
    .boxed();

    let over_range = prop::sample::select(vec![
        "rate",
        "irate",
        "increase",
        "delta",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "stddev_over_time",
        "last_over_time",
    ]);
    let per_sample = prop::sample::select(vec!["abs", "ceil", "floor", "round"]);
    let bounded = prop::sample::select(vec!["clamp_min", "clamp_max", "round"]);
    let grouping = prop_oneof![
        labels().prop_map(Grouping::By),
        labels().prop_map(Grouping::Without)
    ];
    let aggregate = (
        prop::sample::select(AggregateOp::ALL.to_vec()),
        s.clone(),
        v.clone(),
        grouping,
    )
        .prop_map(|(op, param, body, grouping)| {
            let param = match op {
                AggregateOp::CountValues => Expr::String("value".into()),
                _ => param,
            };
            Expr::Aggregate(AggregateExpr {
                op,
                param: op.has_parameter().then(|| Box::new(param)),
                expr: Box::new(body),
                grouping,
            })
        });
    let vector = prop_oneof![
        v.clone(),
        (over_range, r.clone()).prop_map(|(name, arg)| call(name, vec![arg])),
        (s.clone(), r.clone()).prop_map(|(q, arg)| call("quantile_over_time", vec![q, arg])),
        (per_sample, v.clone()).prop_map(|(name, arg)| call(name, vec![arg])),
        (bounded, v.clone(), s.clone()).prop_map(|(name, a, b)| call(name, vec![a, b])),
        s.clone().prop_map(|e| call("vector", vec![e])),
        aggregate,
        v.clone().prop_map(|e| Expr::Negate(Box::new(e))),
        (arithmetic_op(), v.clone(), v.clone(), vector_matching(true))
            .prop_map(|(op, a, b, m)| binary(op, a, b, false, m)),
        (
            comparison_op(),
            v.clone(),
            v.clone(),
            prop::bool::ANY,
            vector_matching(true)
        )
            .prop_map(|(op, a, b, bool, m)| binary(op, a, b, bool, m)),
        (set_op(), v.clone(), v.clone(), vector_matching(false))
            .prop_map(|(op, a, b, m)| binary(op, a, b, false, m)),
        (arithmetic_op(), s.clone(), v.clone(), prop::bool::ANY).prop_map(|(op, a, b, flip)| {
            let (lhs, rhs) = if flip { (b, a) } else { (a, b) };
            binary(op, lhs, rhs, false, VectorMatching::default())
        }),
        (
            comparison_op(),
            s.clone(),
            v.clone(),
            prop::bool::ANY,
            prop::bool::ANY
        )
            .prop_map(|(op, a, b, flip, bool)| {
                let (lhs, rhs) = if flip { (b, a) } else { (a, b) };
                binary(op, lhs, rhs, bool, VectorMatching::default())
            }),
    ]
    .boxed();

    let range = prop_oneof![
        r,
        matrix,
        (v, duration(), prop::option::of(duration()), offset(), at()).prop_map(
            |(inner, range_ms, step_ms, offset_ms, at)| {
                Expr::Subquery(SubqueryExpr {
                    expr: Box::new(inner),
                    range_ms,
                    step_ms,
                    offset_ms,
                    at,
                })
            }
        ),
    ]
    .boxed();

    Trees {
        scalar,
        vector,
        range,
    }
}

fn any_tree() -> impl Strategy<Value = Expr> {
    let trees = trees(3);
    prop_oneof![
        3 => trees.vector,
        2 => trees.scalar,
        1 => trees.range,
        1 => label_value().prop_map(Expr::String),
    ]
}

/// Tokens, good and bad, to glue into query-shaped nonsense.
const TOKEN_SOUP: &[&str] = &[
    "x",
    "cpu_usage",
    "job:rate5m",
    "rate",
    "sum",
    "topk",
    "time",
    "foo",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "=",
    "==",
    "!=",
    "=~",
    "!~",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "@",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "5m",
    "1h30m",
    "0s",
    "5x",
    "1",
    "-1",
    "0x1F",
    "1e3",
    "Inf",
    "NaN",
    "\"a\"",
    "'b'",
    "`c`",
    "\"",
    "'",
    "`",
    "\\",
    "job",
    "__name__",
    "#",
    "\n",
    "é",
    "\"\\u00e9\"",
    "\"\\q\"",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_print_and_parse_back(expr in any_tree()) {
        let printed = expr.to_string();
        match parse(&printed) {
            Ok(parsed) => prop_assert_eq!(parsed, expr, "printed: {}", printed),
            Err(error) => prop_assert!(false, "{} did not parse: {}", printed, error),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        if let Ok(expr) = parse(&input) {
            prop_assert_eq!(parse(&expr.to_string()), Ok(expr));
        }
    }

    #[test]
    fn token_soup_never_panics(
        tokens in prop::collection::vec(prop::sample::select(TOKEN_SOUP), 0..24),
        glue in prop::sample::select(vec!["", " "]),
    ) {
        let input = tokens.join(glue);
        if let Ok(expr) = parse(&input) {
            // Whatever parses prints canonically and parses back the same.
            prop_assert_eq!(parse(&expr.to_string()), Ok(expr));
        }
    }

    #[test]
    fn mutated_valid_queries_never_panic(
        index in 0..VALID.len(),
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select(TOKEN_SOUP),
    ) {
        let query = VALID[index].0;
        let boundaries: Vec<usize> = query
            .char_indices()
            .map(|(at, _)| at)
            .chain([query.len()])
            .collect();
        let at = boundaries[cut.index(boundaries.len())];
        let input = format!("{}{}{}", &query[..at], insert, &query[at..]);
        if let Ok(expr) = parse(&input) {
            prop_assert_eq!(parse(&expr.to_string()), Ok(expr));
        }
    }
}
