//! Functions of a range vector: each series' window at each step reduced
//! to one value — the counter functions (`rate`, `increase`, `irate`,
//! `resets`), the gauge ones (`delta`, `idelta`, `deriv`,
//! `predict_linear`, `holt_winters`, `changes`) and the `*_over_time`
//! aggregations.
//!
//! They run in parallel across series with rayon: each series is
//! independent, and each worker slides one window forward over that
//! series' samples for all steps, so a window is never re-searched from
//! scratch. That is the heavy part of most dashboards (`rate` over every
//! series), and it is what scales with cores. Docs chapter 4, "Functions".

use std::borrow::Cow;

use promql::Expr;
use rayon::prelude::*;

use super::super::numeric::{kahan_sum_inc, quantile};
use super::super::selector::{RangeInput, SlidingWindow, is_stale, live_points};
use super::super::steps::{Grid, drop_name, reject_same_labelset};
use super::super::{Compat, EvalError, Evaluator};
use crate::value::{Point, RangeSeries, SeriesKey};

/// The functions of one range vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OverRange {
    Rate,
    Irate,
    Increase,
    Delta,
    Idelta,
    Resets,
    Changes,
    Deriv,
    /// `predict_linear(v, t)`: scalar 0 is `t`, in seconds.
    PredictLinear,
    /// `holt_winters(v, sf, tf)`: scalars 0 and 1 are the factors.
    HoltWinters,
    Present,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Stddev,
    Stdvar,
    Quantile,
    /// `mad_over_time`: the median of the distances to the median.
    Mad,
    Last,
}

impl OverRange {
    /// Kinds that read only the values in a window: they skip staleness
    /// markers themselves while they aggregate.
    fn skips_markers_itself(self) -> bool {
        matches!(
            self,
            OverRange::Avg
                | OverRange::Min
                | OverRange::Max
                | OverRange::Sum
                | OverRange::Count
                | OverRange::Stddev
                | OverRange::Stdvar
                | OverRange::Quantile
                | OverRange::Mad
                | OverRange::Last
        )
    }
}

/// A function of one range vector and of `scalar_args` (one value per
/// step each: φ, `predict_linear`'s horizon, `holt_winters`' factors), in
/// parallel across series.
pub(super) fn over_range(
    evaluator: &Evaluator<'_>,
    kind: OverRange,
    range_arg: &Expr,
    scalar_args: &[&Expr],
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    RangeFunction::prepare(evaluator, kind, range_arg, scalar_args, grid)?
        .materialize(evaluator, grid)
}

/// A range function with its arguments evaluated: the range vector's
/// series and the scalars' values per step. Evaluated by
/// [`RangeFunction::materialize`] into one series per input, or, under an
/// aggregation, window by window into the aggregation's accumulators
/// (`aggregate.rs`), so that `sum by (le) (rate(x[5m]))` never holds the
/// rate of every bucket series at every step.
pub(crate) struct RangeFunction {
    kind: OverRange,
    compat: Compat,
    input: RangeInput,
    scalars: Vec<Vec<f64>>,
}

impl RangeFunction {
    /// Evaluates the arguments (the range vector's samples are charged to
    /// the budget until [`RangeFunction::release`]).
    pub(super) fn prepare(
        evaluator: &Evaluator<'_>,
        kind: OverRange,
        range_arg: &Expr,
        scalar_args: &[&Expr],
        grid: Grid,
    ) -> Result<Self, EvalError> {
        let scalars: Vec<Vec<f64>> = scalar_args
            .iter()
            .map(|expr| evaluator.eval_scalar(expr, grid))
            .collect::<Result<_, _>>()?;
        let input = evaluator.eval_range(range_arg, grid)?;
        Ok(RangeFunction {
            kind,
            compat: evaluator.config.compat,
            input,
            scalars,
        })
    }

    /// The input series, in the store's order.
    pub(crate) fn series(&self) -> &[RangeSeries] {
        &self.input.series
    }

    /// The key of the output for input `series`: the metric name dropped,
    /// except by `last_over_time`.
    pub(crate) fn output_key(&self, series: &RangeSeries) -> SeriesKey {
        let mut key = series.key.clone();
        if self.kind != OverRange::Last {
            drop_name(&mut key);
        }
        key
    }

    /// What the windows of `series` are cut from: the kinds that only read
    /// values skip staleness markers as they aggregate; the others (rates
    /// read times and first/last samples) get the series without markers
    /// first. (A separate pass over every sample to look for markers cost
    /// as much as `avg_over_time`'s own sum over a day.)
    pub(crate) fn points<'s>(&self, series: &'s RangeSeries) -> Cow<'s, [Point]> {
        if self.kind.skips_markers_itself() {
            Cow::Borrowed(series.points.as_slice())
        } else {
            live_points(&series.points)
        }
    }

    /// Gives back the input samples' budget.
    pub(crate) fn release(&self, evaluator: &Evaluator<'_>) {
        evaluator.limits.release(self.input.point_count());
    }

    /// Calls `each(step, value)` for every step in `steps` at which the
    /// window of `points` (from [`RangeFunction::points`]) has a value.
    ///
    /// # Errors
    /// `holt_winters`' factor errors; the deadline.
    pub(crate) fn each_value(
        &self,
        evaluator: &Evaluator<'_>,
        points: &[Point],
        grid: Grid,
        steps: std::ops::Range<usize>,
        mut each: impl FnMut(usize, f64),
    ) -> Result<(), EvalError> {
        let scalar = |index: usize, step: usize| {
            self.scalars
                .get(index)
                .and_then(|values| values.get(step))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let (input, kind, compat) = (&self.input, self.kind, self.compat);
        let mut window = SlidingWindow::default();
        // Reused by quantile_over_time, which must sort a copy.
        let mut scratch = Vec::new();
        for step in steps {
            evaluator.limits.check_deadline_every(step + 1)?;
            let t = grid.time(step);
            let (start, end) = input.bounds(t);
            let samples = window.advance(points, start, end);
            if samples.is_empty() {
                continue;
            }
            // Extrapolation reaches for the window's nominal start,
            // `end - range`, whether or not a sample there is in it.
            let from = end.saturating_sub(input.range_ms);
            let value = match kind {
                OverRange::Rate => extrapolated_rate(samples, from, end, true, true, compat),
                OverRange::Increase => extrapolated_rate(samples, from, end, true, false, compat),
                OverRange::Delta => extrapolated_rate(samples, from, end, false, false, compat),
                OverRange::Irate => instant_rate(samples),
                OverRange::Idelta => match samples {
                    [.., previous, last] => Some(last.v - previous.v),
                    _ => None,
                },
                OverRange::Resets => Some(
                    samples
                        .windows(2)
                        .filter(|pair| pair[1].v < pair[0].v)
                        .count() as f64,
                ),
                OverRange::Changes => Some(
                    samples
                        .windows(2)
                        .filter(|pair| {
                            let (a, b) = (pair[0].v, pair[1].v);
                            a != b && !(a.is_nan() && b.is_nan())
                        })
                        .count() as f64,
                ),
                OverRange::Deriv => {
                    (samples.len() >= 2).then(|| linear_regression(samples, samples[0].t).0)
                }
                OverRange::PredictLinear => (samples.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(samples, t);
                    slope * scalar(0, step) + intercept
                }),
                OverRange::HoltWinters => holt_winters(samples, scalar(0, step), scalar(1, step))?,
                OverRange::Present => Some(1.0),
                OverRange::Avg => average(samples),
                OverRange::Min => extreme(samples, |current, best| current < best),
                OverRange::Max => extreme(samples, |current, best| current > best),
                OverRange::Sum => sum(samples),
                OverRange::Count => {
                    let live = live_values(samples).count();
                    (live > 0).then_some(live as f64)
                }
                OverRange::Stddev => variance(samples).map(f64::sqrt),
                OverRange::Stdvar => variance(samples),
                OverRange::Last => live_values(samples).next_back(),
                OverRange::Quantile => {
                    scratch.clear();
                    scratch.extend(live_values(samples));
                    (!scratch.is_empty()).then(|| quantile(scalar(0, step), &mut scratch))
                }
                OverRange::Mad => {
                    scratch.clear();
                    scratch.extend(live_values(samples));
                    (!scratch.is_empty()).then(|| median_absolute_deviation(&mut scratch))
                }
            };
            if let Some(v) = value {
                each(step, v);
            }
        }
        Ok(())
    }

    /// One output series per input series, in parallel across series.
    ///
    /// # Errors
    /// As [`RangeFunction::each_value`]; the budget; two outputs with one
    /// label set.
    pub(crate) fn materialize(
        self,
        evaluator: &Evaluator<'_>,
        grid: Grid,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let limits = &evaluator.limits;
        let results: Vec<RangeSeries> = self
            .series()
            .par_iter()
            .map(|series| {
                limits.check_deadline()?;
                let mut points = Vec::new();
                self.each_value(
                    evaluator,
                    &self.points(series),
                    grid,
                    0..grid.count,
                    |step, v| {
                        points.push(Point {
                            t: grid.time(step),
                            v,
                        });
                    },
                )?;
                limits.charge(points.len())?;
                Ok(RangeSeries {
                    key: self.output_key(series),
                    points,
                })
            })
            .collect::<Result<_, EvalError>>()?;
        self.release(evaluator);
        reject_same_labelset(results)
    }
}

/// `mad_over_time`: the median of `|v - median|`, both medians Prometheus'
/// φ = 0.5 quantile (so an even count averages the middle two), NaN
/// sorting first as in every Prometheus quantile.
fn median_absolute_deviation(values: &mut [f64]) -> f64 {
    let median = quantile(0.5, values);
    for value in values.iter_mut() {
        *value = (*value - median).abs();
    }
    quantile(0.5, values)
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
    compat: Compat,
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
    // A counter cannot go below zero: extrapolation stops where the slope
    // says it was zero. Prometheus 3 applies that after the half-interval
    // rule; 2.x applied it first, so a zero point within 1.1 intervals was
    // reached in full.
    let to_zero =
        (is_counter && result > 0.0 && first.v >= 0.0).then(|| sampled * (first.v / result));
    match compat {
        Compat::Prometheus3 => {
            if to_start >= threshold {
                to_start = average_interval / 2.0;
            }
            if let Some(to_zero) = to_zero
                && to_zero < to_start
            {
                to_start = to_zero;
            }
        }
        Compat::Prometheus2 => {
            if let Some(to_zero) = to_zero
                && to_zero < to_start
            {
                to_start = to_zero;
            }
            if to_start >= threshold {
                to_start = average_interval / 2.0;
            }
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

/// The least-squares line through `samples` (at least two), with time in
/// seconds from `intercept_ms`: `(slope per second, value at
/// intercept_ms)`. Sums are Kahan-compensated; a constant series has slope
/// 0 exactly (an infinite one, NaN), as in Prometheus.
fn linear_regression(samples: &[Point], intercept_ms: i64) -> (f64, f64) {
    let first = samples[0].v;
    if samples.iter().all(|p| p.v == first) {
        return if first.is_infinite() {
            (f64::NAN, f64::NAN)
        } else {
            (0.0, first)
        };
    }
    let (mut x, mut y, mut xy, mut x2) = ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0));
    for point in samples {
        let seconds = seconds_between(intercept_ms, point.t);
        x = kahan_sum_inc(seconds, x.0, x.1);
        y = kahan_sum_inc(point.v, y.0, y.1);
        xy = kahan_sum_inc(seconds * point.v, xy.0, xy.1);
        x2 = kahan_sum_inc(seconds * seconds, x2.0, x2.1);
    }
    let n = samples.len() as f64;
    let (sum_x, sum_y, sum_xy, sum_x2) = (x.0 + x.1, y.0 + y.1, xy.0 + xy.1, x2.0 + x2.1);
    let covariance = sum_xy - sum_x * sum_y / n;
    let variance = sum_x2 - sum_x * sum_x / n;
    let slope = covariance / variance;
    (slope, sum_y / n - slope * sum_x / n)
}

/// `holt_winters(v, sf, tf)`: double exponential smoothing of the window,
/// the smoothed value at its last sample. `Ok(None)` for fewer than two
/// samples.
///
/// # Errors
/// A factor outside (0, 1), with Prometheus' message.
fn holt_winters(samples: &[Point], smoothing: f64, trend: f64) -> Result<Option<f64>, EvalError> {
    for (what, factor) in [("smoothing", smoothing), ("trend", trend)] {
        // As Prometheus: a NaN factor is not refused (and smooths to NaN).
        if factor <= 0.0 || factor >= 1.0 {
            return Err(EvalError::Execution(format!(
                "invalid {what} factor. Expected: 0 < {} < 1, got: {factor:.6}",
                if what == "smoothing" { "sf" } else { "tf" }
            )));
        }
    }
    let [first, second, ..] = samples else {
        return Ok(None);
    };
    let (mut previous, mut level) = (0.0, first.v);
    let mut slope = second.v - first.v;
    for (index, point) in samples.iter().enumerate().skip(1) {
        if index > 1 {
            slope = trend * (level - previous) + (1.0 - trend) * slope;
        }
        let next = smoothing * point.v + (1.0 - smoothing) * (level + slope);
        (previous, level) = (level, next);
    }
    Ok(Some(level))
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

/// `to - from` in seconds. In i64 when it fits, which is always but for a
/// window edge saturated at the end of i64 by an extreme (client-given)
/// time; that one takes i128. (Converting every difference from i128 cost
/// a tenth of a histogram panel's time: there is no hardware instruction
/// for it.)
fn seconds_between(from: i64, to: i64) -> f64 {
    match to.checked_sub(from) {
        Some(ms) => ms as f64 / 1000.0,
        None => (i128::from(to) - i128::from(from)) as f64 / 1000.0,
    }
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

/// `stdvar_over_time` (and, its square root, `stddev_over_time`): the
/// population variance, by Welford's running mean with Kahan
/// compensation. `None` without a value.
fn variance(samples: &[Point]) -> Option<f64> {
    let (mut count, mut mean, mut mean_c, mut aux, mut aux_c) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for value in live_values(samples) {
        count += 1.0;
        let delta = value - (mean + mean_c);
        (mean, mean_c) = kahan_sum_inc(delta / count, mean, mean_c);
        (aux, aux_c) = kahan_sum_inc(delta * (value - (mean + mean_c)), aux, aux_c);
    }
    (count > 0.0).then(|| (aux + aux_c) / count)
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
        let increase =
            extrapolated_rate(&samples, 0, 60_000, true, false, Compat::Prometheus3).unwrap();
        // 5 over 50 s, extrapolated to 60 s; the zero point (10 s before
        // the first sample) caps the start at exactly 10 s anyway.
        assert!((increase - 6.0).abs() < 1e-12);
        assert_eq!(
            extrapolated_rate(&samples[..1], 0, 60_000, true, false, Compat::Prometheus3),
            None
        );
    }

    #[test]
    fn a_counter_that_starts_inside_the_window_extrapolates_as_each_prometheus_does() {
        // 1, 2, …, 8 every 5 s from 25 s in the window (0, 60]: 35 s
        // sampled, 25 s short of the start, the zero point 5 s before the
        // first sample.
        let samples: Vec<Point> = (0..8)
            .map(|i| Point {
                t: 25_000 + i * 5_000,
                v: (i + 1) as f64,
            })
            .collect();
        // Prometheus 3: 25 s is past 1.1 intervals, so half an interval
        // (2.5 s); the zero point, farther, does not shorten it.
        let three = extrapolated_rate(&samples, 0, 60_000, true, false, Compat::Prometheus3);
        assert!((three.unwrap() - 7.0 * 37.5 / 35.0).abs() < 1e-12);
        // Prometheus 2.x: the zero point first (5 s), which is within
        // 1.1 intervals (5.5 s), so all of it.
        let two = extrapolated_rate(&samples, 0, 60_000, true, false, Compat::Prometheus2);
        assert!((two.unwrap() - 8.0).abs() < 1e-12);
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
        assert_eq!(variance(&samples).map(f64::sqrt), Some(2.0));
        assert_eq!(variance(&samples), Some(4.0));
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
                prop_assert!(same(variance(&raw), variance(&live)));
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
