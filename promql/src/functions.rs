//! The function table: every function the language knows, with the types
//! of its arguments and of its result, so the parser can reject
//! `rate(cpu_usage)` before anything reads a sample.
//!
//! Prometheus keeps the same table (`promql/parser/functions.go`) and the
//! same rule: a call whose arguments have the wrong types is a *parse*
//! error, found in microseconds, not an evaluation error found after
//! reading a million samples. Craft 4's evaluator implements exactly
//! these. Docs: `docs/src/ch04-query.md`, "Types".

use crate::ast::ValueType;

/// One function's signature.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    /// Its name, case-sensitive as in Prometheus.
    pub name: &'static str,
    /// The type of each argument, in order.
    pub arg_types: &'static [ValueType],
    /// How many trailing arguments may be left out (`round(x)` =
    /// `round(x, 1)`).
    pub optional_args: usize,
    /// What a call evaluates to.
    pub return_type: ValueType,
    /// The last argument type may repeat any number of times
    /// (`label_join(v, dst, sep, src…)`).
    pub variadic: bool,
}

impl Function {
    /// The fewest arguments a call may pass.
    pub fn min_args(&self) -> usize {
        self.arg_types.len() - self.optional_args
    }

    /// The most arguments a call may pass (`usize::MAX` when variadic).
    pub fn max_args(&self) -> usize {
        if self.variadic {
            usize::MAX
        } else {
            self.arg_types.len()
        }
    }

    /// The type argument `index` must have, repeating the last for a
    /// variadic function; `None` past the end.
    pub fn arg_type(&self, index: usize) -> Option<ValueType> {
        match self.arg_types.get(index) {
            Some(&wanted) => Some(wanted),
            None if self.variadic => self.arg_types.last().copied(),
            None => None,
        }
    }
}

use ValueType::String as Text;
use ValueType::{InstantVector, RangeVector, Scalar};

/// A function of fixed arguments.
const fn function(
    name: &'static str,
    arg_types: &'static [ValueType],
    optional_args: usize,
    return_type: ValueType,
) -> Function {
    Function {
        name,
        arg_types,
        optional_args,
        return_type,
        variadic: false,
    }
}

/// `name(range vector) → instant vector`: the window functions.
const fn over_range(name: &'static str) -> Function {
    function(name, &[RangeVector], 0, InstantVector)
}

/// `name(instant vector) → instant vector`: the per-sample maths.
const fn per_sample(name: &'static str) -> Function {
    function(name, &[InstantVector], 0, InstantVector)
}

/// `name([instant vector]) → instant vector`: the calendar of each
/// sample's value, or of the evaluation time when called without one.
const fn calendar(name: &'static str) -> Function {
    function(name, &[InstantVector], 1, InstantVector)
}

/// Every function, in the order of the language reference.
pub static FUNCTIONS: &[Function] = &[
    // Counters: per-second rate, last-two-samples rate, increase, and the
    // gauge differences.
    over_range("rate"),
    over_range("irate"),
    over_range("increase"),
    over_range("delta"),
    over_range("idelta"),
    over_range("resets"),
    over_range("changes"),
    // Gauges: the slope and where it leads.
    over_range("deriv"),
    function("predict_linear", &[RangeVector, Scalar], 0, InstantVector),
    function(
        "holt_winters",
        &[RangeVector, Scalar, Scalar],
        0,
        InstantVector,
    ),
    // Prometheus 3's name for `holt_winters`: the same smoothing.
    function(
        "double_exponential_smoothing",
        &[RangeVector, Scalar, Scalar],
        0,
        InstantVector,
    ),
    // Aggregations over each series' window.
    over_range("avg_over_time"),
    over_range("min_over_time"),
    over_range("max_over_time"),
    over_range("sum_over_time"),
    over_range("count_over_time"),
    over_range("stddev_over_time"),
    over_range("stdvar_over_time"),
    function(
        "quantile_over_time",
        &[Scalar, RangeVector],
        0,
        InstantVector,
    ),
    over_range("mad_over_time"),
    over_range("last_over_time"),
    over_range("present_over_time"),
    over_range("absent_over_time"),
    // Per-sample maths.
    per_sample("abs"),
    per_sample("ceil"),
    per_sample("floor"),
    function("round", &[InstantVector, Scalar], 1, InstantVector),
    function("clamp", &[InstantVector, Scalar, Scalar], 0, InstantVector),
    function("clamp_min", &[InstantVector, Scalar], 0, InstantVector),
    function("clamp_max", &[InstantVector, Scalar], 0, InstantVector),
    per_sample("sgn"),
    per_sample("sqrt"),
    per_sample("exp"),
    per_sample("ln"),
    per_sample("log2"),
    per_sample("log10"),
    // Trigonometry, in radians.
    per_sample("sin"),
    per_sample("cos"),
    per_sample("tan"),
    per_sample("asin"),
    per_sample("acos"),
    per_sample("atan"),
    per_sample("sinh"),
    per_sample("cosh"),
    per_sample("tanh"),
    per_sample("asinh"),
    per_sample("acosh"),
    per_sample("atanh"),
    per_sample("deg"),
    per_sample("rad"),
    function("pi", &[], 0, Scalar),
    // Histograms (classic `_bucket` series with an `le` label).
    function(
        "histogram_quantile",
        &[Scalar, InstantVector],
        0,
        InstantVector,
    ),
    // Native histograms: named so a query using them is understood, and
    // refused at evaluation with why (no native histogram is stored).
    per_sample("histogram_count"),
    per_sample("histogram_sum"),
    per_sample("histogram_avg"),
    per_sample("histogram_stddev"),
    per_sample("histogram_stdvar"),
    function(
        "histogram_fraction",
        &[Scalar, Scalar, InstantVector],
        0,
        InstantVector,
    ),
    // Labels.
    function(
        "label_replace",
        &[InstantVector, Text, Text, Text, Text],
        0,
        InstantVector,
    ),
    Function {
        name: "label_join",
        arg_types: &[InstantVector, Text, Text, Text],
        optional_args: 1,
        return_type: InstantVector,
        variadic: true,
    },
    // Presence and order.
    per_sample("absent"),
    per_sample("sort"),
    per_sample("sort_desc"),
    Function {
        name: "sort_by_label",
        arg_types: &[InstantVector, Text],
        optional_args: 1,
        return_type: InstantVector,
        variadic: true,
    },
    Function {
        name: "sort_by_label_desc",
        arg_types: &[InstantVector, Text],
        optional_args: 1,
        return_type: InstantVector,
        variadic: true,
    },
    // Time: the clock, each sample's own timestamp, and the calendar (UTC).
    function("time", &[], 0, Scalar),
    per_sample("timestamp"),
    calendar("minute"),
    calendar("hour"),
    calendar("day_of_week"),
    calendar("day_of_month"),
    calendar("day_of_year"),
    calendar("days_in_month"),
    calendar("month"),
    calendar("year"),
    // Conversions.
    function("vector", &[Scalar], 0, InstantVector),
    function("scalar", &[InstantVector], 0, Scalar),
];

/// The function called `name` (case-sensitive), if there is one.
pub fn lookup_function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|function| function.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_is_listed_once() {
        let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), 77);
        for name in &names {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name}");
        }
        assert_eq!(
            lookup_function("rate").map(|f| f.arg_types),
            Some(&[RangeVector][..])
        );
        assert_eq!(lookup_function("Rate"), None);
        assert_eq!(lookup_function("time").map(|f| f.return_type), Some(Scalar));
    }

    #[test]
    fn optional_arguments_are_trailing_and_counted() {
        let round = lookup_function("round").unwrap();
        assert_eq!((round.min_args(), round.max_args()), (1, 2));
        let join = lookup_function("label_join").unwrap();
        assert_eq!((join.min_args(), join.max_args()), (3, usize::MAX));
        assert_eq!(join.arg_type(7), Some(Text));
        assert_eq!(round.arg_type(2), None);
        for function in FUNCTIONS {
            assert!(
                function.optional_args <= function.arg_types.len(),
                "{}",
                function.name
            );
        }
    }
}
