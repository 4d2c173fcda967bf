//! What a query evaluates to, in Prometheus' four result types: scalar,
//! string, instant vector, range vector (matrix). The HTTP API (`api.rs`)
//! turns these into Prometheus' JSON (`resultType` + `result`); the
//! evaluator (`eval/`) produces them. Docs chapter 4.
//!
//! Times are milliseconds since the epoch throughout, as in the store.

use common::Labels;

/// A series' identity in a result: the metric name, when it is kept
/// (functions and most operators drop it, as in Prometheus), and the other
/// labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// `__name__`, when kept.
    pub name: Option<String>,
    /// Every other label, sorted.
    pub labels: Labels,
}

/// One value at one time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub t: i64,
    /// The value (NaN and ±Inf allowed).
    pub v: f64,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    /// Which series.
    pub key: SeriesKey,
    /// Its value at the evaluation time.
    pub point: Point,
}

/// One series of a range vector (matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    /// Which series.
    pub key: SeriesKey,
    /// Strictly increasing in time.
    pub points: Vec<Point>,
}

/// A query's result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number at a time.
    Scalar(Point),
    /// A string at a time.
    String {
        /// Evaluation time.
        t: i64,
        /// The string.
        v: String,
    },
    /// One sample per series, at the evaluation time.
    Vector(Vec<InstantSample>),
    /// Points per series: a range query's result, or a range selector's.
    Matrix(Vec<RangeSeries>),
}
