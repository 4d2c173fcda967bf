//! Sorting a rule's `expr` into the shapes a stream can answer and the ones
//! that need the query engine.
//!
//! A rule like `avg_over_time(cpu_usage[5m]) > 80` only ever looks at one
//! series' own recent samples, so it can be kept up to date sample by
//! sample (`window.rs`) the moment a batch is stored: that is what removes
//! phase0's "up to 10 s late, one full scan per rule per check". A rule
//! like `sum by (job) (rate(x[5m])) / on(job) y > 0.1` joins series and
//! needs a query engine; it is evaluated periodically instead, as an
//! instant query to the query slot. The parse itself is the `promql`
//! crate's (`promql::parse`, the language craft 4's `/api/v1/query`
//! speaks); this file only recognises shapes in the tree. Docs chapter 5, "Streaming or periodic".

use std::fmt;

use common::{LabelMatcher, Labels, matches_all};
use promql::{BinaryOp, Expr, VectorSelector};

/// How long a plain selector (`cpu_usage > 80`) looks back for the latest
/// sample: Prometheus' default lookback delta. A series silent for longer
/// has no value, so its alert resolves.
pub const INSTANT_LOOKBACK_MS: i64 = 5 * 60_000;

/// What a streaming rule computes over each series' trailing window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowFunction {
    /// A plain selector: the newest sample within the lookback.
    Last,
    /// `avg_over_time`
    Avg,
    /// `min_over_time`
    Min,
    /// `max_over_time`
    Max,
    /// `sum_over_time`
    Sum,
    /// `count_over_time`
    Count,
}

impl WindowFunction {
    fn from_function_name(name: &str) -> Option<Self> {
        Some(match name {
            "avg_over_time" => WindowFunction::Avg,
            "min_over_time" => WindowFunction::Min,
            "max_over_time" => WindowFunction::Max,
            "sum_over_time" => WindowFunction::Sum,
            "count_over_time" => WindowFunction::Count,
            _ => return None,
        })
    }
}

/// The six comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `>`
    Greater,
    /// `<`
    Less,
    /// `>=`
    GreaterOrEqual,
    /// `<=`
    LessOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Comparison {
    fn from_binary(op: BinaryOp) -> Option<Self> {
        Some(match op {
            BinaryOp::Gt => Comparison::Greater,
            BinaryOp::Lt => Comparison::Less,
            BinaryOp::Ge => Comparison::GreaterOrEqual,
            BinaryOp::Le => Comparison::LessOrEqual,
            BinaryOp::Eq => Comparison::Equal,
            BinaryOp::Ne => Comparison::NotEqual,
            _ => return None,
        })
    }

    /// `80 < x` is `x > 80`: the operator seen from the other side.
    fn mirrored(self) -> Self {
        match self {
            Comparison::Greater => Comparison::Less,
            Comparison::Less => Comparison::Greater,
            Comparison::GreaterOrEqual => Comparison::LessOrEqual,
            Comparison::LessOrEqual => Comparison::GreaterOrEqual,
            Comparison::Equal | Comparison::NotEqual => self,
        }
    }

    /// True when `value op threshold` holds. NaN never holds, as in PromQL.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Greater => value > threshold,
            Comparison::Less => value < threshold,
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::LessOrEqual => value <= threshold,
            Comparison::Equal => value == threshold,
            Comparison::NotEqual => value != threshold && !value.is_nan(),
        }
    }

    /// The operator's spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::Less => "<",
            Comparison::GreaterOrEqual => ">=",
            Comparison::LessOrEqual => "<=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}

/// `function(metric{matchers}[range]) op threshold`, or `metric op
/// threshold`: a condition on each matching series' own trailing window.
#[derive(Debug, Clone)]
pub struct StreamingCondition {
    /// The metric name; rules are indexed by it so a sample only touches
    /// the rules that name its metric.
    pub metric: String,
    /// The matchers in braces (the name is not among them).
    pub matchers: Vec<LabelMatcher>,
    /// What is computed over the window.
    pub function: WindowFunction,
    /// The window's length in ms (the lookback for a plain selector).
    pub range_ms: i64,
    /// The comparison.
    pub comparison: Comparison,
    /// The number compared against.
    pub threshold: f64,
}

impl StreamingCondition {
    /// True when a series of this metric with these labels feeds the rule.
    pub fn selects(&self, labels: &Labels) -> bool {
        matches_all(&self.matchers, &self.metric, labels)
    }
}

/// Equal means the same condition; the threshold compares by bits, so a
/// `NaN` threshold equals itself.
impl PartialEq for StreamingCondition {
    fn eq(&self, other: &Self) -> bool {
        self.metric == other.metric
            && self.matchers == other.matchers
            && self.function == other.function
            && self.range_ms == other.range_ms
            && self.comparison == other.comparison
            && self.threshold.to_bits() == other.threshold.to_bits()
    }
}

/// How a rule is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleExpr {
    /// On ingest, from per-series sliding windows.
    Streaming(StreamingCondition),
    /// Every group interval, as an instant query to the query slot
    /// (`evaluation/periodic.rs`); without one, loaded and reported as not
    /// evaluated.
    Periodic(Expr),
}

impl RuleExpr {
    /// Sorts a parsed, type-checked expression.
    pub fn classify(expr: Expr) -> RuleExpr {
        match streaming_shape(&expr) {
            Some(condition) => RuleExpr::Streaming(condition),
            None => RuleExpr::Periodic(expr),
        }
    }

    /// The streaming condition, if it is one.
    pub fn streaming(&self) -> Option<&StreamingCondition> {
        match self {
            RuleExpr::Streaming(condition) => Some(condition),
            RuleExpr::Periodic(_) => None,
        }
    }
}

impl fmt::Display for RuleExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleExpr::Streaming(_) => f.write_str("streaming"),
            RuleExpr::Periodic(_) => f.write_str("periodic"),
        }
    }
}

fn streaming_shape(expr: &Expr) -> Option<StreamingCondition> {
    let Expr::Binary(binary) = expr else {
        return None;
    };
    // `x > bool 80` yields 0 or 1 for every series, it does not filter:
    // it would "fire" for every series. Leave it to the query engine.
    if binary.return_bool {
        return None;
    }
    let comparison = Comparison::from_binary(binary.op)?;
    let (series_side, threshold, comparison) = match (binary.lhs.as_ref(), binary.rhs.as_ref()) {
        (side, Expr::Number(n)) => (side, *n, comparison),
        (Expr::Number(n), side) => (side, *n, comparison.mirrored()),
        _ => return None,
    };
    let (selector, function, range_ms) = match series_side {
        Expr::VectorSelector(selector) => (selector, WindowFunction::Last, INSTANT_LOOKBACK_MS),
        Expr::Call(call) => {
            let function = WindowFunction::from_function_name(call.function.name)?;
            match call.args.as_slice() {
                [Expr::MatrixSelector(matrix)] => (&matrix.selector, function, matrix.range_ms),
                _ => return None,
            }
        }
        _ => return None,
    };
    let metric = plain_selector_name(selector)?;
    Some(StreamingCondition {
        metric,
        matchers: selector.matchers.clone(),
        function,
        range_ms,
        comparison,
        threshold,
    })
}

/// The selector's metric name, when the stream can index it: a literal
/// name, no `offset` or `@` (both ask about another time than now, which a
/// stream has already moved past), no `__name__` matcher in the braces.
fn plain_selector_name(selector: &VectorSelector) -> Option<String> {
    if selector.offset_ms != 0 || selector.at.is_some() {
        return None;
    }
    if selector
        .matchers
        .iter()
        .any(|m| m.name == LabelMatcher::METRIC_NAME)
    {
        return None;
    }
    selector.name.clone()
}

/// True when evaluating `expr` may read series of metric `name`: a
/// selector names it, or a selector without a name does not rule it out
/// by its `__name__` matchers. Used to know which later rule of a group
/// reads an earlier recording rule's output (and must wait for it to be
/// stored); "may" errs towards yes, which costs only a wait.
pub fn may_read_metric(expr: &Expr, name: &str) -> bool {
    fn selector(selector: &VectorSelector, name: &str) -> bool {
        match &selector.name {
            Some(own) => own == name,
            None => selector
                .matchers
                .iter()
                .filter(|m| m.name == LabelMatcher::METRIC_NAME)
                .all(|m| m.matches_value(name)),
        }
    }
    match expr {
        Expr::Number(_) | Expr::String(_) => false,
        Expr::VectorSelector(s) => selector(s, name),
        Expr::MatrixSelector(m) => selector(&m.selector, name),
        Expr::Subquery(q) => may_read_metric(&q.expr, name),
        Expr::Call(call) => call.args.iter().any(|arg| may_read_metric(arg, name)),
        Expr::Aggregate(aggregate) => {
            aggregate
                .param
                .as_deref()
                .is_some_and(|param| may_read_metric(param, name))
                || may_read_metric(&aggregate.expr, name)
        }
        Expr::Negate(operand) => may_read_metric(operand, name),
        Expr::Binary(binary) => {
            may_read_metric(&binary.lhs, name) || may_read_metric(&binary.rhs, name)
        }
    }
}

#[cfg(test)]
mod tests {
    use promql::parse;

    use super::*;

    fn classify(text: &str) -> RuleExpr {
        RuleExpr::classify(parse(text).unwrap())
    }

    fn streaming(text: &str) -> StreamingCondition {
        match classify(text) {
            RuleExpr::Streaming(condition) => condition,
            RuleExpr::Periodic(expr) => panic!("{text} classified periodic: {expr}"),
        }
    }

    #[test]
    fn window_functions_are_streaming() {
        let condition = streaming("avg_over_time(cpu_usage{host=~\"web.*\"}[60s]) > 80");
        assert_eq!(condition.metric, "cpu_usage");
        assert_eq!(condition.function, WindowFunction::Avg);
        assert_eq!(condition.range_ms, 60_000);
        assert_eq!(condition.comparison, Comparison::Greater);
        assert_eq!(condition.threshold, 80.0);
        assert!(condition.selects(&Labels::from_pairs([("host", "web1")])));
        assert!(!condition.selects(&Labels::from_pairs([("host", "db1")])));
        for (text, function) in [
            ("min_over_time(x[1m]) < 1", WindowFunction::Min),
            ("max_over_time(x[1m]) >= 1", WindowFunction::Max),
            ("sum_over_time(x[1m]) <= 1", WindowFunction::Sum),
            ("count_over_time(x[1m]) == 1", WindowFunction::Count),
        ] {
            assert_eq!(streaming(text).function, function, "{text}");
        }
    }

    #[test]
    fn plain_selector_is_the_latest_sample_within_the_lookback() {
        let condition = streaming("disk_free != -1");
        assert_eq!(condition.function, WindowFunction::Last);
        assert_eq!(condition.range_ms, INSTANT_LOOKBACK_MS);
        assert_eq!(condition.comparison, Comparison::NotEqual);
        assert_eq!(condition.threshold, -1.0);
    }

    #[test]
    fn number_on_the_left_mirrors_the_operator() {
        let condition = streaming("80 < avg_over_time(cpu_usage[1m])");
        assert_eq!(condition.comparison, Comparison::Greater);
        assert_eq!(condition.threshold, 80.0);
    }

    #[test]
    fn everything_else_is_periodic() {
        for text in [
            "cpu_usage > bool 80",
            "cpu_usage offset 5m > 80",
            "avg_over_time(cpu_usage[1m] offset 1m) > 80",
            "{__name__=\"cpu_usage\"} > 80",
            "rate(requests_total[5m]) > 10",
            "sum(cpu_usage) > 80",
            "cpu_usage > memory_usage",
            "cpu_usage + 1 > 80",
            "cpu_usage",
            "quantile_over_time(0.9, x[5m]) > 1",
        ] {
            assert!(
                matches!(classify(text), RuleExpr::Periodic(_)),
                "{text} should be periodic"
            );
        }
    }

    #[test]
    fn comparisons_hold_strictly_and_nan_never_holds() {
        assert!(Comparison::Greater.holds(80.1, 80.0));
        assert!(!Comparison::Greater.holds(80.0, 80.0));
        assert!(Comparison::GreaterOrEqual.holds(80.0, 80.0));
        assert!(Comparison::LessOrEqual.holds(80.0, 80.0));
        assert!(Comparison::Equal.holds(1.0, 1.0));
        for comparison in [
            Comparison::Greater,
            Comparison::Less,
            Comparison::GreaterOrEqual,
            Comparison::LessOrEqual,
            Comparison::Equal,
            Comparison::NotEqual,
        ] {
            assert!(!comparison.holds(f64::NAN, 1.0), "{comparison:?}");
        }
    }

    #[test]
    fn which_expressions_may_read_a_recorded_metric() {
        let reads = |text: &str| may_read_metric(&parse(text).unwrap(), "job:x:rate1m");
        assert!(reads("sum(job:x:rate1m)"));
        assert!(reads("rate(job:x:rate1m[5m]) > 1"));
        assert!(reads("max_over_time(job:x:rate1m[5m:1m])"));
        assert!(reads("topk(scalar(job:x:rate1m), y)"));
        assert!(reads("{__name__=~\"job:.*\"}"));
        assert!(reads("{job=\"a\"}"), "no name: may match anything");
        assert!(!reads("{__name__=\"y\"}"));
        assert!(!reads("sum(rate(x[1m])) / y"));
        assert!(!reads("vector(1)"));
    }
}
