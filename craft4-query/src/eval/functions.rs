//! The functions of the table in `promql/src/functions.rs`, with Prometheus'
//! semantics to the bit where it matters.
//!
//! Functions over a range vector (`rate`, `*_over_time`, …) run in
//! parallel across series with rayon: each series is independent, and
//! each worker slides one window forward over that series' samples for
//! all steps, so a window is never re-searched from scratch. That is the
//! heavy part of most dashboards (`rate` over every series), and it is
//! what scales with cores. Per-sample functions (`abs`, `round`, …)
//! rewrite values in place.
//!
//! Counters: `rate`, `increase` and `irate` treat a drop as a reset (the
//! counter restarted from zero, so the value before the drop is added
//! back); `rate`, `increase` and `delta` extrapolate to the window's edges
//! as Prometheus' `extrapolatedRate` does — all the way when the first or
//! last sample is within 1.1 average intervals of the edge, otherwise by
//! half an interval, and never below zero for a counter.
//!
//! Names: every function drops the metric name except `last_over_time`,
//! which, like an offset, returns a sample of the series unchanged (so
//! Prometheus keeps the name). Docs chapter 4, "Functions".

use std::borrow::Cow;

use promql::{Call, Expr};
use rayon::prelude::*;

use super::numeric::{go_max, go_min, kahan_sum_inc, quantile};
use super::selector::{SlidingWindow, is_stale, live_points};
use super::steps::{Grid, drop_name, empty_key, merge_same_labelset, reject_same_labelset};
use super::{EvalError, Evaluated, Evaluator};
use crate::value::{Point, RangeSeries};

/// The functions of one range vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OverRange {
    Rate,
    Irate,
    Increase,
    Delta,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Stddev,
    Quantile,
    Last,
}

impl OverRange {
    /// Kinds that read only the values in a window: they skip staleness
    /// markers themselves while they aggregate.
    fn skips_markers_itself(self) -> bool {
        !matches!(
            self,
            OverRange::Rate | OverRange::Irate | OverRange::Increase | OverRange::Delta
        )
    }
}

/// Evaluates `call` at every step of `grid`.
pub(crate) fn call(
    evaluator: &Evaluator<'_>,
    call: &Call,
    grid: Grid,
) -> Result<Evaluated, EvalError> {
    let args = &call.args;
    let over = |kind| over_range(evaluator, kind, argument(call, 0)?, None, grid);
    let series = match call.function.name {
        "rate" => over(OverRange::Rate)?,
        "irate" => over(OverRange::Irate)?,
        "increase" => over(OverRange::Increase)?,
        "delta" => over(OverRange::Delta)?,
        "avg_over_time" => over(OverRange::Avg)?,
        "min_over_time" => over(OverRange::Min)?,
        "max_over_time" => over(OverRange::Max)?,
        "sum_over_time" => over(OverRange::Sum)?,
        "count_over_time" => over(OverRange::Count)?,
        "stddev_over_time" => over(OverRange::Stddev)?,
        "last_over_time" => over(OverRange::Last)?,
        "quantile_over_time" => over_range(
            evaluator,
            OverRange::Quantile,
            argument(call, 1)?,
            Some(argument(call, 0)?),
            grid,
        )?,
        "abs" => per_sample(evaluator, argument(call, 0)?, grid, |v, _| v.abs())?,
        "ceil" => per_sample(evaluator, argument(call, 0)?, grid, |v, _| v.ceil())?,
        "floor" => per_sample(evaluator, argument(call, 0)?, grid, |v, _| v.floor())?,
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
        "clamp_min" => {
            let bound = evaluator.eval_scalar(argument(call, 1)?, grid)?;
            per_sample(evaluator, argument(call, 0)?, grid, |v, step| {
                go_max(bound.get(step).copied().unwrap_or(f64::NAN), v)
            })?
        }
        "clamp_max" => {
            let bound = evaluator.eval_scalar(argument(call, 1)?, grid)?;
            per_sample(evaluator, argument(call, 0)?, grid, |v, step| {
                go_min(bound.get(step).copied().unwrap_or(f64::NAN), v)
            })?
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
    let mut series = evaluator.eval_vector(arg, grid)?;
    series.par_iter_mut().for_each(|s| {
        drop_name(&mut s.key);
        for point in &mut s.points {
            point.v = map(point.v, grid.index_of(point.t));
        }
    });
    merge_same_labelset(series)
}

/// A function of one range vector (and, for `quantile_over_time`, a
/// scalar φ per step), in parallel across series.
fn over_range(
    evaluator: &Evaluator<'_>,
    kind: OverRange,
    range_arg: &Expr,
    phi_arg: Option<&Expr>,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let phi = phi_arg
        .map(|expr| evaluator.eval_scalar(expr, grid))
        .transpose()?;
    let input = evaluator.eval_range(range_arg, grid)?;
    let limits = &evaluator.limits;
    let results: Vec<RangeSeries> = input
        .series
        .par_iter()
        .map(|series| {
            limits.check_deadline()?;
            // The kinds that only read values skip staleness markers as
            // they aggregate; the others (rates read times and first/last
            // samples) get the series without markers first. A separate
            // pass over every sample to look for markers cost as much as
            // `avg_over_time`'s own sum over a day.
            let series_points = if kind.skips_markers_itself() {
                Cow::Borrowed(series.points.as_slice())
            } else {
                live_points(&series.points)
            };
            let mut window = SlidingWindow::default();
            let mut points = Vec::new();
            // Reused by quantile_over_time, which must sort a copy.
            let mut scratch = Vec::new();
            for (step, t) in grid.times().enumerate() {
                limits.check_deadline_every(step + 1)?;
                let (start, end) = input.bounds(t);
                let samples = window.advance(&series_points, start, end);
                if samples.is_empty() {
                    continue;
                }
                let value = match kind {
                    OverRange::Rate => extrapolated_rate(samples, start, end, true, true),
                    OverRange::Increase => extrapolated_rate(samples, start, end, true, false),
                    OverRange::Delta => extrapolated_rate(samples, start, end, false, false),
                    OverRange::Irate => instant_rate(samples),
                    OverRange::Avg => average(samples),
                    OverRange::Min => extreme(samples, |current, best| current < best),
                    OverRange::Max => extreme(samples, |current, best| current > best),
                    OverRange::Sum => sum(samples),
                    OverRange::Count => {
                        let live = live_values(samples).count();
                        (live > 0).then_some(live as f64)
                    }
                    OverRange::Stddev => stddev(samples),
                    OverRange::Last => live_values(samples).next_back(),
                    OverRange::Quantile => {
                        scratch.clear();
                        scratch.extend(live_values(samples));
                        let phi = phi.as_ref().and_then(|phi| phi.get(step)).copied();
                        (!scratch.is_empty())
                            .then(|| quantile(phi.unwrap_or(f64::NAN), &mut scratch))
                    }
                };
                if let Some(v) = value {
                    points.push(Point { t, v });
                }
            }
            limits.charge(points.len())?;
            let mut key = series.key.clone();
            if kind != OverRange::Last {
                drop_name(&mut key);
            }
            Ok(RangeSeries { key, points })
        })
        .collect::<Result<_, EvalError>>()?;
    limits.release(input.point_count());
    reject_same_labelset(results)
}

/// Prometheus' `extrapolatedRate`: the increase over `(start, end]`
/// (counter resets added back when `is_counter`), extrapolated towards the
/// window's edges, per second when `is_rate`. `None` for fewer than two
/// samples.
fn extrapolated_rate(
    samples: &[Point],
    start: i64,
    end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (first, last) = match samples {
        [first, .., last] => (*first, *last),
        _ => return None,
    };
    let mut result = last.v - first.v;
    if is_counter {
        for pair in samples.windows(2) {
            if pair[1].v < pair[0].v {
                result += pair[0].v;
            }
        }
    }
    let mut to_start = seconds_between(start, first.t);
    let mut to_end = seconds_between(last.t, end);
    let sampled = seconds_between(first.t, last.t);
    let average_interval = sampled / (samples.len() - 1) as f64;
    // A sample farther than 1.1 average intervals from an edge means the
    // series starts or ends inside the window: extrapolate only half an
    // interval, our guess at where it really starts or ends.
    let threshold = average_interval * 1.1;
    if to_start >= threshold {
        to_start = average_interval / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter cannot go below zero: stop extrapolating at the point
        // where the slope says it was zero.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_interval / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= seconds_between(start, end);
    }
    Some(result * factor)
}

/// `irate`: the per-second rate between the last two samples, a drop
/// counting as a reset from zero.
fn instant_rate(samples: &[Point]) -> Option<f64> {
    let [.., previous, last] = samples else {
        return None;
    };
    let interval = seconds_between(previous.t, last.t);
    if interval == 0.0 {
        return None;
    }
    let increase = if last.v < previous.v {
        last.v
    } else {
        last.v - previous.v
    };
    Some(increase / interval)
}

/// `to - from` in seconds; i128 because a window edge may have saturated
/// at the end of i64 for an extreme (client-given) time.
fn seconds_between(from: i64, to: i64) -> f64 {
    (i128::from(to) - i128::from(from)) as f64 / 1000.0
}

/// The values of `samples` that are not staleness markers (a window of
/// the kinds that read only values holds the markers; see `over_range`).
fn live_values(samples: &[Point]) -> impl DoubleEndedIterator<Item = f64> + '_ {
    samples.iter().map(|p| p.v).filter(|&v| !is_stale(v))
}

/// `avg_over_time`: Kahan-compensated sum over count, switching to an
/// incremental mean if the sum would overflow. `None` without a value.
fn average(samples: &[Point]) -> Option<f64> {
    let mut values = live_values(samples);
    let first = values.next()?;
    let (mut sum, mut compensation) = (first, 0.0);
    let mut mean = 0.0;
    let mut count = 1.0;
    let mut incremental = false;
    for value in values {
        count += 1.0;
        if !incremental {
            let (new_sum, new_compensation) = kahan_sum_inc(value, sum, compensation);
            if !new_sum.is_infinite() {
                (sum, compensation) = (new_sum, new_compensation);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            compensation /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, compensation) = kahan_sum_inc(value / count, q * mean, q * compensation);
    }
    Some(if incremental {
        mean + compensation
    } else {
        sum / count + compensation / count
    })
}

/// `min_over_time` / `max_over_time`: NaN is replaced by any later value.
/// `None` without a value.
fn extreme(samples: &[Point], better: impl Fn(f64, f64) -> bool) -> Option<f64> {
    let mut values = live_values(samples);
    let mut best = values.next()?;
    for value in values {
        if better(value, best) || best.is_nan() {
            best = value;
        }
    }
    Some(best)
}

/// `sum_over_time`, Kahan-compensated. `None` without a value.
fn sum(samples: &[Point]) -> Option<f64> {
    let mut any = false;
    let (sum, compensation) = live_values(samples).fold((0.0, 0.0), |(s, c), v| {
        any = true;
        kahan_sum_inc(v, s, c)
    });
    any.then_some(if sum.is_infinite() {
        sum
    } else {
        sum + compensation
    })
}

/// `stddev_over_time`: the population standard deviation, by Welford's
/// running mean with Kahan compensation. `None` without a value.
fn stddev(samples: &[Point]) -> Option<f64> {
    let (mut count, mut mean, mut mean_c, mut aux, mut aux_c) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for value in live_values(samples) {
        count += 1.0;
        let delta = value - (mean + mean_c);
        (mean, mean_c) = kahan_sum_inc(delta / count, mean, mean_c);
        (aux, aux_c) = kahan_sum_inc(delta * (value - (mean + mean_c)), aux, aux_c);
    }
    (count > 0.0).then(|| ((aux + aux_c) / count).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(i64, f64)]) -> Vec<Point> {
        values.iter().map(|&(t, v)| Point { t, v }).collect()
    }

    #[test]
    fn a_full_window_extrapolates_to_its_edges() {
        // Samples every 10 s at 10..=60 in the window (0, 60]: 5 s short of
        // the start is within 1.1 intervals, so all the way to 0.
        let samples = points(&[(10_000, 1.0), (20_000, 2.0), (60_000, 6.0)]);
        let increase = extrapolated_rate(&samples, 0, 60_000, true, false).unwrap();
        // 5 over 50 s, extrapolated to 60 s; the zero point (10 s before
        // the first sample) caps the start at exactly 10 s anyway.
        assert!((increase - 6.0).abs() < 1e-12);
        assert_eq!(
            extrapolated_rate(&samples[..1], 0, 60_000, true, false),
            None
        );
    }

    #[test]
    fn irate_uses_the_last_two_samples() {
        let samples = points(&[(0, 1.0), (10_000, 5.0), (20_000, 2.0)]);
        assert_eq!(instant_rate(&samples), Some(0.2));
        assert_eq!(instant_rate(&samples[..2]), Some(0.4));
        assert_eq!(instant_rate(&samples[..1]), None);
    }

    #[test]
    fn window_aggregates() {
        let samples = points(&[
            (0, 2.0),
            (1, 4.0),
            (2, 4.0),
            (3, 4.0),
            (4, 5.0),
            (5, 5.0),
            (6, 7.0),
            (7, 9.0),
        ]);
        assert_eq!(average(&samples), Some(5.0));
        assert_eq!(stddev(&samples), Some(2.0));
        assert_eq!(sum(&samples), Some(40.0));
        assert_eq!(extreme(&samples, |a, b| a < b), Some(2.0));
        let with_nan = points(&[(0, f64::NAN), (1, 3.0), (2, 1.0)]);
        assert_eq!(extreme(&with_nan, |a, b| a < b), Some(1.0));
        let huge = points(&[(0, f64::MAX), (1, f64::MAX), (2, 0.0)]);
        assert!((average(&huge).unwrap() - f64::MAX / 1.5).abs() / f64::MAX < 1e-12);
    }

    mod markers {
        use super::super::*;
        use crate::eval::selector::live_points;
        use proptest::prelude::*;

        const STALE: u64 = 0x7ff0_0000_0000_0002;

        fn same(a: Option<f64>, b: Option<f64>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                (None, None) => true,
                _ => false,
            }
        }

        proptest! {
            /// Skipping markers inside the aggregation gives exactly what
            /// the aggregation gives over the series without markers.
            #[test]
            fn skipping_markers_inline_equals_filtering_first(
                values in proptest::collection::vec(
                    prop_oneof![
                        6 => -1e6f64..1e6,
                        1 => Just(f64::from_bits(STALE)),
                        1 => Just(f64::NAN),
                        1 => Just(f64::MAX),
                    ],
                    0..40,
                )
            ) {
                let raw: Vec<Point> = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| Point { t: i as i64, v })
                    .collect();
                let live = live_points(&raw).into_owned();
                prop_assert!(same(average(&raw), average(&live)));
                prop_assert!(same(sum(&raw), sum(&live)));
                prop_assert!(same(stddev(&raw), stddev(&live)));
                prop_assert!(same(extreme(&raw, |a, b| a < b), extreme(&live, |a, b| a < b)));
                prop_assert!(same(extreme(&raw, |a, b| a > b), extreme(&live, |a, b| a > b)));
                prop_assert!(same(
                    live_values(&raw).next_back(),
                    live.last().map(|p| p.v)
                ));
                prop_assert_eq!(live_values(&raw).count(), live.len());
                prop_assert_eq!(average(&raw).is_some(), !live.is_empty());
            }
        }
    }
}
