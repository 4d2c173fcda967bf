//! The evaluator: an expression tree (`promql::Expr`) in, a [`Value`] out,
//! reading samples through `common::MetricStore`.
//!
//! ```text
//! Engine::range(expr, start, end, step)          Engine::instant(expr, t)
//!        │ validate, one Grid of steps                  │ a Grid of one step
//!        ▼                                              ▼
//!   Evaluator::eval(node, grid) ── recursive, each node once for all steps
//!        ├── selector.rs   one store select per selector, windows in memory
//!        ├── subquery.rs   the inner expression on its own aligned grid
//!        ├── functions/    rate, *_over_time, histograms, labels: rayon across series
//!        ├── aggregate.rs  sum by (…), topk, …: streaming per step chunk
//!        └── binary.rs     arithmetic, comparisons, and/or/unless, matching
//!   steps.rs  the grid, per-step cursors, merging of equal label sets
//!   limits.rs the sample budget and the deadline, checked as it goes
//!   numeric.rs Prometheus' float arithmetic (Kahan sums, quantiles, Go max)
//! ```
//!
//! The bottleneck it removes: phase0 answers one question by re-reading
//! the whole file per request and leaves every computation to the client.
//! Here every node of the tree is evaluated *once* for all the steps of a
//! query (an instant query being a range query of one step), over series
//! the store's index found, in parallel where the work is independent.
//! What it keeps: `MetricStore::select` returns every sample of a range at
//! once, so memory is bounded by the sample budget, not by streaming.
//! Semantics are Prometheus' (lookback, left-open windows, counter resets,
//! extrapolation, name dropping, matching errors); where Prometheus'
//! answer is an "execution" error (HTTP 422) we return
//! [`EvalError::BadQuery`] with its message. Docs chapter 4.

use std::sync::Arc;
use std::time::Duration;

use common::{MetricStore, StorageError};
use promql::{Expr, ValueType};
use thiserror::Error;

use crate::value::{InstantSample, Point, RangeSeries, Value};

mod aggregate;
mod binary;
mod functions;
mod limits;
mod numeric;
mod selector;
mod steps;
mod subquery;

use limits::QueryLimits;
use selector::RangeInput;
use steps::{Grid, drop_name, empty_key, merge_same_labelset};

pub use selector::Windows;
pub use subquery::DEFAULT_SUBQUERY_STEP_MS;

/// Prometheus' default lookback: an instant selector takes a series' latest
/// sample at most this old.
pub const DEFAULT_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Limits and knobs of one engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// How far back an instant selector looks for a series' latest sample;
    /// 0 (or less) means [`DEFAULT_LOOKBACK_MS`], as in Prometheus.
    pub lookback_ms: i64,
    /// Most samples and points one query may hold at once — samples loaded
    /// from the store, points its operators produced, given back as
    /// intermediate results are consumed — before it is stopped with
    /// [`EvalError::TooManySamples`].
    pub max_samples: usize,
    /// Longest a query may run before it is stopped with
    /// [`EvalError::Timeout`].
    pub timeout: Duration,
    /// Most steps a range query may span, counted as Prometheus counts
    /// them: intervals, `(end - start) / step`, so at most one point more
    /// per series. Prometheus' limit is 11,000.
    pub max_points_per_series: usize,
    /// Which Prometheus the answers follow where 2.x and 3.x differ.
    pub compat: Compat,
}

/// Where Prometheus 2.x and 3.x answer differently on the same samples,
/// which one to follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compat {
    /// Prometheus 3: left-open windows, `(t - r, t]`; `rate` first limits
    /// its extrapolation to half an interval, then to the counter's zero.
    #[default]
    Prometheus3,
    /// Prometheus 2.x: windows closed on the left, `[t - r, t]`; `rate`
    /// extrapolates to the counter's zero first, and then lets that reach
    /// up to 1.1 intervals (a counter that started inside the window).
    Prometheus2,
}

impl Compat {
    /// Which samples sit on a window's left edge.
    pub fn windows(self) -> Windows {
        match self {
            Compat::Prometheus3 => Windows::LeftOpen,
            Compat::Prometheus2 => Windows::Closed,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lookback_ms: DEFAULT_LOOKBACK_MS,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
            compat: Compat::Prometheus3,
        }
    }
}

/// Why a query could not be answered.
#[derive(Debug, Error)]
pub enum EvalError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The query loaded more samples than its budget allows.
    #[error("query processing would load too many samples into memory (limit {limit})")]
    TooManySamples {
        /// The budget.
        limit: usize,
    },
    /// The query ran longer than its timeout.
    #[error("query timed out after {0:?}")]
    Timeout(Duration),
    /// The parameters cannot work (step ≤ 0, end before start, too many
    /// points per series, …), with Prometheus' message.
    #[error("{0}")]
    BadQuery(String),
    /// The expression is valid but failed on this data — one of
    /// Prometheus' execution errors (many-to-many matching, two series
    /// with one label set, a NaN or out-of-range `topk` parameter), with
    /// Prometheus' message.
    #[error("{0}")]
    Execution(String),
    /// Evaluation reached something not implemented.
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// The query engine over a store.
pub struct Engine {
    store: Arc<dyn MetricStore>,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store.name())
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    /// An engine reading from `store`.
    pub fn new(store: Arc<dyn MetricStore>, config: EngineConfig) -> Self {
        Self { store, config }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn MetricStore> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Evaluates `expr` at `time_ms`: a scalar, a string, an instant vector
    /// (ordered by series key) or, for a range selector or subquery, a
    /// matrix of the raw points in its window.
    ///
    /// # Errors
    /// [`EvalError`]: the store failing, the budget or deadline exceeded,
    /// or a Prometheus execution error (many-to-many matching, duplicate
    /// label sets, a NaN `topk` parameter) as [`EvalError::BadQuery`].
    pub fn instant(&self, expr: &Expr, time_ms: i64) -> Result<Value, EvalError> {
        let evaluator = self.evaluator(time_ms, time_ms);
        evaluator.limits.check_deadline()?;
        let grid = Grid::instant(time_ms);
        if matches!(expr, Expr::MatrixSelector(_) | Expr::Subquery(_)) {
            let input = evaluator.eval_range(expr, grid)?;
            return Ok(Value::Matrix(input.window_at(time_ms)));
        }
        Ok(match evaluator.eval(expr, grid)? {
            Evaluated::Scalar(values) => Value::Scalar(Point {
                t: time_ms,
                v: values.first().copied().unwrap_or(f64::NAN),
            }),
            Evaluated::String(text) => Value::String {
                t: time_ms,
                v: text,
            },
            Evaluated::Vector(series) => {
                let mut samples: Vec<InstantSample> = series
                    .into_iter()
                    .filter_map(|s| {
                        let point = *s.points.first()?;
                        Some(InstantSample { key: s.key, point })
                    })
                    .collect();
                functions::sort_order(expr, &mut samples);
                Value::Vector(samples)
            }
        })
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms` (both
    /// included): always a [`Value::Matrix`] (a scalar expression becomes
    /// one series without labels), series ordered by key, series without
    /// points left out.
    ///
    /// # Errors
    /// [`EvalError::BadQuery`] for `step_ms <= 0`, `end_ms < start_ms`,
    /// more than `max_points_per_series` intervals, or an expression that
    /// is not a scalar or instant vector; others as [`Engine::instant`].
    pub fn range(
        &self,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, EvalError> {
        if step_ms <= 0 {
            return Err(EvalError::BadQuery(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if end_ms < start_ms {
            return Err(EvalError::BadQuery(
                "end timestamp must not be before start time".into(),
            ));
        }
        let max_points = self.config.max_points_per_series;
        let intervals = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms);
        if intervals > max_points as i128 {
            return Err(EvalError::BadQuery(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                with_thousands_separators(max_points)
            )));
        }
        let value_type = expr.value_type();
        if !matches!(value_type, ValueType::Scalar | ValueType::InstantVector) {
            return Err(EvalError::BadQuery(format!(
                "invalid expression type \"{value_type}\" for range query, must be Scalar or instant Vector"
            )));
        }
        let evaluator = self.evaluator(start_ms, end_ms);
        evaluator.limits.check_deadline()?;
        let grid = Grid::spanning(start_ms, end_ms, step_ms, usize::MAX)?;
        let series = match evaluator.eval(expr, grid)? {
            Evaluated::Scalar(values) => vec![RangeSeries {
                key: empty_key(),
                points: grid
                    .times()
                    .zip(values)
                    .map(|(t, v)| Point { t, v })
                    .collect(),
            }],
            Evaluated::Vector(mut series) => {
                series.retain(|s| !s.points.is_empty());
                series.sort_by(|a, b| a.key.cmp(&b.key));
                series
            }
            Evaluated::String(_) => {
                return Err(EvalError::BadQuery(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector"
                        .into(),
                ));
            }
        };
        Ok(Value::Matrix(series))
    }

    /// An evaluation of a query over `[start_ms, end_ms]` (an instant
    /// query's one time twice): the bounds `@ start()` and `@ end()` read.
    fn evaluator(&self, start_ms: i64, end_ms: i64) -> Evaluator<'_> {
        Evaluator {
            store: self.store.as_ref(),
            config: &self.config,
            limits: QueryLimits::new(self.config.max_samples, self.config.timeout),
            query_start_ms: start_ms,
            query_end_ms: end_ms,
        }
    }
}

/// `11000` as `11,000`, as Prometheus' message prints it.
fn with_thousands_separators(number: usize) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// What a node evaluates to over a grid. Range vectors never appear here:
/// they only exist as a function's argument ([`RangeInput`]) or as an
/// instant query's answer.
#[derive(Debug)]
pub(crate) enum Evaluated {
    /// One value per step.
    Scalar(Vec<f64>),
    /// A string literal.
    String(String),
    /// Series ordered by key, keys unique, at most one point per step, at
    /// the step times.
    Vector(Vec<RangeSeries>),
}

/// One query's evaluation: the store, the configuration and the limits
/// shared by every node and every rayon worker.
pub(crate) struct Evaluator<'a> {
    store: &'a dyn MetricStore,
    config: &'a EngineConfig,
    limits: QueryLimits,
    /// The query's bounds, for `@ start()` and `@ end()`.
    query_start_ms: i64,
    query_end_ms: i64,
}

impl Evaluator<'_> {
    /// The time an `@` modifier names.
    pub(crate) fn resolve_at(&self, at: promql::AtModifier) -> i64 {
        at.resolve(self.query_start_ms, self.query_end_ms)
    }
}

impl Evaluator<'_> {
    /// Evaluates a scalar, string or instant-vector expression over `grid`.
    pub(crate) fn eval(&self, expr: &Expr, grid: Grid) -> Result<Evaluated, EvalError> {
        self.limits.check_deadline()?;
        match expr {
            Expr::Number(value) => {
                // Charged like points: a subquery's grid can be long.
                self.limits.charge(grid.count)?;
                Ok(Evaluated::Scalar(vec![*value; grid.count]))
            }
            Expr::String(text) => Ok(Evaluated::String(text.clone())),
            Expr::VectorSelector(selector) => {
                selector::instant_selector(self, selector, grid).map(Evaluated::Vector)
            }
            Expr::Call(call) => functions::call(self, call, grid),
            Expr::Aggregate(aggregate) => {
                aggregate::aggregate(self, aggregate, grid).map(Evaluated::Vector)
            }
            Expr::Negate(operand) => match self.eval(operand, grid)? {
                Evaluated::Scalar(values) => {
                    Ok(Evaluated::Scalar(values.into_iter().map(|v| -v).collect()))
                }
                Evaluated::Vector(mut series) => {
                    for s in &mut series {
                        drop_name(&mut s.key);
                        for point in &mut s.points {
                            point.v = -point.v;
                        }
                    }
                    merge_same_labelset(series).map(Evaluated::Vector)
                }
                Evaluated::String(_) => Err(type_error("a scalar or instant vector", "a string")),
            },
            Expr::Binary(binary) => binary::binary(self, binary, grid),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                Err(type_error("a scalar or instant vector", "a range vector"))
            }
        }
    }

    /// Evaluates an instant-vector expression.
    pub(crate) fn eval_vector(
        &self,
        expr: &Expr,
        grid: Grid,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        match self.eval(expr, grid)? {
            Evaluated::Vector(series) => Ok(series),
            Evaluated::Scalar(_) => Err(type_error("an instant vector", "a scalar")),
            Evaluated::String(_) => Err(type_error("an instant vector", "a string")),
        }
    }

    /// Evaluates a scalar expression: one value per step.
    pub(crate) fn eval_scalar(&self, expr: &Expr, grid: Grid) -> Result<Vec<f64>, EvalError> {
        match self.eval(expr, grid)? {
            Evaluated::Scalar(values) => Ok(values),
            Evaluated::Vector(_) => Err(type_error("a scalar", "an instant vector")),
            Evaluated::String(_) => Err(type_error("a scalar", "a string")),
        }
    }

    /// Evaluates a range selector or subquery for every window of `grid`.
    pub(crate) fn eval_range(&self, expr: &Expr, grid: Grid) -> Result<RangeInput, EvalError> {
        self.limits.check_deadline()?;
        match expr {
            Expr::MatrixSelector(matrix) => selector::range_selector(self, matrix, grid),
            Expr::Subquery(sub) => subquery::subquery(self, sub, grid),
            _ => Err(type_error("a range vector", "another expression")),
        }
    }
}

/// A tree the parser would have refused (built by hand): an error, never
/// a panic.
fn type_error(expected: &str, found: &str) -> EvalError {
    EvalError::BadQuery(format!("expected {expected}, found {found}"))
}
