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
}

impl Function {
    /// The fewest arguments a call may pass.
    pub fn min_args(&self) -> usize {
        self.arg_types.len() - self.optional_args
    }

    /// The most arguments a call may pass.
    pub fn max_args(&self) -> usize {
        self.arg_types.len()
    }
}

use ValueType::{InstantVector, RangeVector, Scalar};

/// `name(range vector) → instant vector`: the window functions.
const fn over_range(name: &'static str) -> Function {
    Function {
        name,
        arg_types: &[RangeVector],
        optional_args: 0,
        return_type: InstantVector,
    }
}

/// `name(instant vector) → instant vector`: the per-sample maths.
const fn per_sample(name: &'static str) -> Function {
    Function {
        name,
        arg_types: &[InstantVector],
        optional_args: 0,
        return_type: InstantVector,
    }
}

/// `name(instant vector, scalar) → instant vector`.
const fn with_bound(name: &'static str) -> Function {
    Function {
        name,
        arg_types: &[InstantVector, Scalar],
        optional_args: 0,
        return_type: InstantVector,
    }
}

/// Every function, in the order of the language reference.
pub static FUNCTIONS: &[Function] = &[
    // Counters: per-second rate, last-two-samples rate, increase, and the
    // gauge difference.
    over_range("rate"),
    over_range("irate"),
    over_range("increase"),
    over_range("delta"),
    // Aggregations over each series' window.
    over_range("avg_over_time"),
    over_range("min_over_time"),
    over_range("max_over_time"),
    over_range("sum_over_time"),
    over_range("count_over_time"),
    over_range("stddev_over_time"),
    Function {
        name: "quantile_over_time",
        arg_types: &[Scalar, RangeVector],
        optional_args: 0,
        return_type: InstantVector,
    },
    over_range("last_over_time"),
    // Per-sample maths.
    per_sample("abs"),
    per_sample("ceil"),
    per_sample("floor"),
    Function {
        name: "round",
        arg_types: &[InstantVector, Scalar],
        optional_args: 1,
        return_type: InstantVector,
    },
    with_bound("clamp_min"),
    with_bound("clamp_max"),
    // Conversions and the clock.
    Function {
        name: "time",
        arg_types: &[],
        optional_args: 0,
        return_type: Scalar,
    },
    Function {
        name: "vector",
        arg_types: &[Scalar],
        optional_args: 0,
        return_type: InstantVector,
    },
    Function {
        name: "scalar",
        arg_types: &[InstantVector],
        optional_args: 0,
        return_type: Scalar,
    },
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
        assert_eq!(names.len(), 21);
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
        for function in FUNCTIONS {
            assert!(
                function.optional_args <= function.arg_types.len(),
                "{}",
                function.name
            );
        }
    }
}
