//! The functions of the table in `promql/src/functions.rs`, with Prometheus'
//! semantics to the bit where it matters.
//!
//! # Layout
//!
//! - `mod.rs` — the dispatch by name, and the per-sample functions (`abs`,
//!   `round`, `clamp`, `ln`, the trigonometry, …), which rewrite values in
//!   place;
//! - `range.rs` — functions of a range vector (`rate`, `deriv`,
//!   `*_over_time`, …), in parallel across series;
//! - `calendar.rs` — `hour`, `day_of_week`, `days_in_month`, … in UTC;
//! - `labels.rs` — `label_replace` and `label_join`;
//! - `histogram.rs` — `histogram_quantile` over classic `le` buckets;
//! - `presence.rs` — `absent`, `absent_over_time`, `timestamp`, `sort`.
//!
//! Counters: `rate`, `increase` and `irate` treat a drop as a reset (the
//! counter restarted from zero, so the value before the drop is added
//! back); `rate`, `increase` and `delta` extrapolate to the window's edges
//! as Prometheus' `extrapolatedRate` does — all the way when the first or
//! last sample is within 1.1 average intervals of the edge, otherwise by
//! half an interval, and never below zero for a counter.
//!
//! Names: every function drops the metric name except those that return
//! a series' own samples or labels: `last_over_time` (like an offset),
//! `label_replace`, `label_join`, `sort` and `sort_desc`, as Prometheus.
//! Docs chapter 4, "Functions".

mod calendar;
mod histogram;
mod labels;
mod presence;
mod range;

use promql::{Call, Expr};
use rayon::prelude::*;

use self::range::{OverRange, over_range};

pub(crate) use self::range::RangeFunction;
use super::numeric::{go_max, go_min};
use super::steps::{Grid, drop_name, empty_key, merge_same_labelset};
use super::{EvalError, Evaluated, Evaluator};
use crate::value::{Point, RangeSeries};

pub(crate) use self::presence::sort_order;

/// `call`'s arguments evaluated when it is a function of one range vector
/// (`rate`, `*_over_time`, …), for an aggregation to fold window by window
/// (`aggregate.rs`); `None` for the other functions.
///
/// # Errors
/// The arguments' errors.
pub(crate) fn range_function(
    evaluator: &Evaluator<'_>,
    call: &Call,
    grid: Grid,
) -> Result<Option<RangeFunction>, EvalError> {
    let Some(spec) = range_call(call) else {
        return Ok(None);
    };
    let (kind, range_arg, scalars) = spec?;
    RangeFunction::prepare(evaluator, kind, range_arg, &scalars, grid).map(Some)
}

/// Which range function `call` is, its range vector and its scalar
/// arguments; `None` for the functions that are not of one range vector.
#[allow(clippy::type_complexity)]
fn range_call(call: &Call) -> Option<Result<(OverRange, &Expr, Vec<&Expr>), EvalError>> {
    let kind = match call.function.name {
        "rate" => OverRange::Rate,
        "irate" => OverRange::Irate,
        "increase" => OverRange::Increase,
        "delta" => OverRange::Delta,
        "idelta" => OverRange::Idelta,
        "resets" => OverRange::Resets,
        "changes" => OverRange::Changes,
        "deriv" => OverRange::Deriv,
        "predict_linear" => OverRange::PredictLinear,
        "holt_winters" | "double_exponential_smoothing" => OverRange::HoltWinters,
        "avg_over_time" => OverRange::Avg,
        "min_over_time" => OverRange::Min,
        "max_over_time" => OverRange::Max,
        "sum_over_time" => OverRange::Sum,
        "count_over_time" => OverRange::Count,
        "stddev_over_time" => OverRange::Stddev,
        "stdvar_over_time" => OverRange::Stdvar,
        "mad_over_time" => OverRange::Mad,
        "last_over_time" => OverRange::Last,
        "present_over_time" => OverRange::Present,
        "quantile_over_time" => OverRange::Quantile,
        _ => return None,
    };
    let spec = (|| {
        Ok(match kind {
            // quantile_over_time(φ, v): the range vector comes second.
            OverRange::Quantile => (kind, argument(call, 1)?, vec![argument(call, 0)?]),
            OverRange::PredictLinear => (kind, argument(call, 0)?, vec![argument(call, 1)?]),
            OverRange::HoltWinters => (
                kind,
                argument(call, 0)?,
                vec![argument(call, 1)?, argument(call, 2)?],
            ),
            _ => (kind, argument(call, 0)?, Vec::new()),
        })
    })();
    Some(spec)
}

/// Evaluates `call` at every step of `grid`.
pub(crate) fn call(
    evaluator: &Evaluator<'_>,
    call: &Call,
    grid: Grid,
) -> Result<Evaluated, EvalError> {
    let args = &call.args;
    if let Some(spec) = range_call(call) {
        let (kind, range_arg, scalars) = spec?;
        let series = over_range(evaluator, kind, range_arg, &scalars, grid)?;
        return Ok(Evaluated::Vector(series));
    }
    let math = |map: fn(f64) -> f64| per_sample(evaluator, argument(call, 0)?, grid, |v, _| map(v));
    let series = match call.function.name {
        "absent_over_time" => presence::absent_over_time(evaluator, argument(call, 0)?, grid)?,
        "abs" => math(f64::abs)?,
        "ceil" => math(f64::ceil)?,
        "floor" => math(f64::floor)?,
        "sqrt" => math(f64::sqrt)?,
        "exp" => math(f64::exp)?,
        "ln" => math(f64::ln)?,
        "log2" => math(f64::log2)?,
        "log10" => math(f64::log10)?,
        "sin" => math(f64::sin)?,
        "cos" => math(f64::cos)?,
        "tan" => math(f64::tan)?,
        "asin" => math(f64::asin)?,
        "acos" => math(f64::acos)?,
        "atan" => math(f64::atan)?,
        "sinh" => math(f64::sinh)?,
        "cosh" => math(f64::cosh)?,
        "tanh" => math(f64::tanh)?,
        "asinh" => math(f64::asinh)?,
        "acosh" => math(f64::acosh)?,
        "atanh" => math(f64::atanh)?,
        "deg" => math(|v| v * 180.0 / std::f64::consts::PI)?,
        "rad" => math(|v| v * std::f64::consts::PI / 180.0)?,
        // Zero and NaN are their own sign, as in Prometheus.
        "sgn" => math(|v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        })?,
        "round" => {
            let to_nearest = match args.get(1) {
                Some(expr) => evaluator.eval_scalar(expr, grid)?,
                None => vec![1.0; grid.count],
            };
            per_sample(evaluator, argument(call, 0)?, grid, |v, step| {
                // Prometheus rounds half up, via the inverse ("fewer
                // floating point accuracy issues"); `f64::round` would
                // round half away from zero.
                let inverse = 1.0 / to_nearest.get(step).copied().unwrap_or(f64::NAN);
                (v * inverse + 0.5).floor() / inverse
            })?
        }
        "clamp" => {
            let low = evaluator.eval_scalar(argument(call, 1)?, grid)?;
            let high = evaluator.eval_scalar(argument(call, 2)?, grid)?;
            let mut series = evaluator.eval_vector(argument(call, 0)?, grid)?;
            // A maximum below the minimum empties the step, as Prometheus.
            for s in &mut series {
                s.points.retain(|p| {
                    let step = grid.index_of(p.t);
                    let (low, high) = (at(&low, step), at(&high, step));
                    high.partial_cmp(&low) != Some(std::cmp::Ordering::Less)
                });
            }
            map_values(series, grid, |v, step| {
                go_max(at(&low, step), go_min(at(&high, step), v))
            })?
        }
        "clamp_min" => {
            let bound = evaluator.eval_scalar(argument(call, 1)?, grid)?;
            per_sample(evaluator, argument(call, 0)?, grid, |v, step| {
                go_max(at(&bound, step), v)
            })?
        }
        "clamp_max" => {
            let bound = evaluator.eval_scalar(argument(call, 1)?, grid)?;
            per_sample(evaluator, argument(call, 0)?, grid, |v, step| {
                go_min(at(&bound, step), v)
            })?
        }
        "histogram_quantile" => {
            let phi = evaluator.eval_scalar(argument(call, 0)?, grid)?;
            let buckets = evaluator.eval_vector(argument(call, 1)?, grid)?;
            histogram::histogram_quantile(&phi, buckets, grid)?
        }
        "label_replace" => labels::label_replace(evaluator, call, grid)?,
        "label_join" => labels::label_join(evaluator, call, grid)?,
        "absent" => presence::absent(evaluator, argument(call, 0)?, grid)?,
        // The order shows in an instant query's answer (`sort_order`); a
        // range query's series have none.
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            evaluator.eval_vector(argument(call, 0)?, grid)?
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" | "histogram_fraction" => {
            return Err(EvalError::Unsupported(format!(
                "native histograms are not supported: {}() reads native histogram samples, \
                 which this platform does not store; classic `_bucket` series work with \
                 histogram_quantile(), and `_count`/`_sum` series with rate()",
                call.function.name
            )));
        }
        "timestamp" => presence::timestamp(evaluator, argument(call, 0)?, grid)?,
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            let part = calendar::Part::from_name(call.function.name).ok_or_else(|| {
                EvalError::BadQuery(format!("unknown calendar function {}", call.function.name))
            })?;
            let input = match args.first() {
                Some(expr) => evaluator.eval_vector(expr, grid)?,
                None => time_vector(evaluator, grid)?,
            };
            map_values(input, grid, |v, _| part.of_seconds(v))?
        }
        "pi" => {
            evaluator.limits.charge(grid.count)?;
            return Ok(Evaluated::Scalar(vec![std::f64::consts::PI; grid.count]));
        }
        "time" => {
            evaluator.limits.charge(grid.count)?;
            return Ok(Evaluated::Scalar(
                grid.times().map(|t| t as f64 / 1000.0).collect(),
            ));
        }
        "vector" => {
            let values = evaluator.eval_scalar(argument(call, 0)?, grid)?;
            evaluator.limits.charge(values.len())?;
            let points: Vec<Point> = grid
                .times()
                .zip(values)
                .map(|(t, v)| Point { t, v })
                .collect();
            let mut series = Vec::new();
            if !points.is_empty() {
                series.push(RangeSeries {
                    key: empty_key(),
                    points,
                });
            }
            series
        }
        "scalar" => {
            let input = evaluator.eval_vector(argument(call, 0)?, grid)?;
            return Ok(Evaluated::Scalar(to_scalar(&input, grid)));
        }
        other => {
            return Err(EvalError::Unsupported(format!(
                "the function {other}() has no evaluator"
            )));
        }
    };
    Ok(Evaluated::Vector(series))
}

/// The `index`-th argument; the parser checked the count, a hand-built
/// tree may not have.
fn argument(call: &Call, index: usize) -> Result<&Expr, EvalError> {
    call.args.get(index).ok_or_else(|| {
        EvalError::BadQuery(format!(
            "{}() is missing argument {}",
            call.function.name,
            index + 1
        ))
    })
}

/// `scalar(v)`: at each step, the value of the only element, or NaN when
/// there is none or more than one.
fn to_scalar(input: &[RangeSeries], grid: Grid) -> Vec<f64> {
    let mut counts = vec![0u32; grid.count];
    let mut values = vec![f64::NAN; grid.count];
    for point in input.iter().flat_map(|s| &s.points) {
        let step = grid.index_of(point.t);
        if let (Some(count), Some(value)) = (counts.get_mut(step), values.get_mut(step)) {
            *count = count.saturating_add(1);
            *value = point.v;
        }
    }
    counts
        .into_iter()
        .zip(values)
        .map(|(count, value)| if count == 1 { value } else { f64::NAN })
        .collect()
}

/// Rewrites each value of the instant vector `arg` with `map(value, step
/// index)`, dropping the metric name.
fn per_sample(
    evaluator: &Evaluator<'_>,
    arg: &Expr,
    grid: Grid,
    map: impl Fn(f64, usize) -> f64 + Sync,
) -> Result<Vec<RangeSeries>, EvalError> {
    let series = evaluator.eval_vector(arg, grid)?;
    map_values(series, grid, map)
}

/// Rewrites every value of `series` with `map(value, step index)`,
/// dropping the metric name; series that now share labels merge.
fn map_values(
    mut series: Vec<RangeSeries>,
    grid: Grid,
    map: impl Fn(f64, usize) -> f64 + Sync,
) -> Result<Vec<RangeSeries>, EvalError> {
    series.par_iter_mut().for_each(|s| {
        drop_name(&mut s.key);
        for point in &mut s.points {
            point.v = map(point.v, grid.index_of(point.t));
        }
    });
    merge_same_labelset(series)
}

/// A per-step scalar's value at `step` (NaN past the end).
fn at(values: &[f64], step: usize) -> f64 {
    values.get(step).copied().unwrap_or(f64::NAN)
}

/// `vector(time())`: the evaluation time in seconds, one series without
/// labels (what the calendar functions read when given no argument).
fn time_vector(evaluator: &Evaluator<'_>, grid: Grid) -> Result<Vec<RangeSeries>, EvalError> {
    evaluator.limits.charge(grid.count)?;
    let points: Vec<Point> = grid
        .times()
        .map(|t| Point {
            t,
            v: t as f64 / 1000.0,
        })
        .collect();
    Ok(if points.is_empty() {
        Vec::new()
    } else {
        vec![RangeSeries {
            key: empty_key(),
            points,
        }]
    })
}
