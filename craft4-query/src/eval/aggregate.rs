//! Aggregation operators: `sum avg min max count stddev stdvar group
//! quantile` reduce
//! each group to one series, `topk bottomk` keep up to k input series per
//! group, with groups from `by (…)` / `without (…)`.
//!
//! Streaming, bounded memory: each input series' group is computed *once*
//! (a hash of its grouping labels), then the steps are walked with a
//! cursor and every value is folded into its group's accumulator as it
//! passes — one accumulator per group, reused step after step, instead of
//! a per-step vector of inputs per group. The steps are split into chunks
//! that rayon reduces in parallel (each chunk positions its own cursor by
//! binary search), and the chunks' outputs are concatenated in order, so
//! the result does not depend on the thread count.
//!
//! Accumulators follow Prometheus' arithmetic: Kahan–Neumaier sums, a
//! mean that falls back to an incremental update instead of overflowing,
//! Welford's population variance, and for `topk`/`bottomk` Go's binary
//! heap, so that ties keep the same series Prometheus keeps. Results have
//! no metric name, except `topk`/`bottomk` (the input series as they
//! were) and `by (__name__)`.
//!
//! Fused with a range function: `sum by (le) (rate(x_bucket[5m]))` does
//! not hold the rate of every input series at every step and then walk it
//! again. A task per group (split by steps when there are fewer groups
//! than cores) slides each member series' window over the steps and
//! folds every value straight into the group's accumulator for that step,
//! so what is held is groups × steps accumulators, not series × steps
//! points.
//! Series are folded in the order the unfused path would fold them, so
//! the sums are the same to the bit. Docs chapter 4, "Parallel
//! aggregation".

use std::collections::HashMap;
use std::ops::Range;

use common::{LabelMatcher, Labels};
use promql::{AggregateExpr, AggregateOp, Expr, Grouping};
use rayon::prelude::*;

use super::functions::{RangeFunction, range_function};
use super::numeric::{kahan_sum_inc, quantile};
use super::steps::{Grid, StepCursor, point_count};
use super::{EvalError, Evaluator};
use crate::value::{Point, RangeSeries, SeriesKey};

/// The fewest steps per parallel chunk: enough work per task to amortise
/// rayon's scheduling.
const MIN_STEPS_PER_CHUNK: usize = 8;

/// Chunks per worker thread: a few, so that an uneven chunk does not leave
/// the other threads idle, and not more, because each chunk holds one
/// accumulator and one output buffer per group (or per series for `topk`).
const CHUNKS_PER_THREAD: usize = 4;

/// Go's `maxInt64` and `minInt64` as floats, for `topk`'s parameter check.
const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

/// Evaluates `aggregate` at every step of `grid`.
pub(crate) fn aggregate(
    evaluator: &Evaluator<'_>,
    aggregate: &AggregateExpr,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    if aggregate.op == AggregateOp::CountValues {
        return count_values(evaluator, aggregate, grid);
    }
    let params = match &aggregate.param {
        Some(param) => Some(evaluator.eval_scalar(param, grid)?),
        None => None,
    };
    let input = match &*aggregate.expr {
        Expr::Call(call) if !matches!(aggregate.op, AggregateOp::Topk | AggregateOp::Bottomk) => {
            match range_function(evaluator, call, grid)? {
                Some(function) => {
                    return fold_range_function(
                        evaluator,
                        aggregate,
                        params.as_deref(),
                        function,
                        grid,
                    );
                }
                None => evaluator.eval_vector(&aggregate.expr, grid)?,
            }
        }
        _ => evaluator.eval_vector(&aggregate.expr, grid)?,
    };
    let held = point_count(&input);
    let (group_of, group_keys) = assign_groups(input.iter().map(|s| &s.key), &aggregate.grouping);
    let output = match aggregate.op {
        AggregateOp::Topk | AggregateOp::Bottomk => select_k(
            evaluator,
            aggregate.op,
            params.as_deref(),
            &input,
            &group_of,
            group_keys.len(),
            grid,
        )?,
        op => reduce(
            evaluator,
            op,
            params.as_deref(),
            &input,
            &group_of,
            group_keys,
            grid,
        )?,
    };
    evaluator.limits.release(held);
    Ok(output)
}

/// `count_values("label", v)`: per step and group, one output series per
/// distinct value, labelled with the group's labels plus `label` = the
/// value as Prometheus writes it (`"0.5"`, `"+Inf"`, `"NaN"`), whose value
/// is how many input series had it.
///
/// # Errors
/// Prometheus' execution error for a label name that is not one.
fn count_values(
    evaluator: &Evaluator<'_>,
    aggregate: &AggregateExpr,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let label = match aggregate.param.as_deref() {
        Some(param) => match evaluator.eval(param, grid)? {
            super::Evaluated::String(label) => label,
            _ => {
                return Err(EvalError::BadQuery(
                    "count_values needs a string parameter".into(),
                ));
            }
        },
        None => {
            return Err(EvalError::BadQuery(
                "count_values needs a label name".into(),
            ));
        }
    };
    if !common::metric::is_valid_label_name(&label) {
        return Err(EvalError::Execution(format!(
            "invalid label name {label:?}"
        )));
    }
    let input = evaluator.eval_vector(&aggregate.expr, grid)?;
    let held = point_count(&input);
    let (group_of, group_keys) = assign_groups(input.iter().map(|s| &s.key), &aggregate.grouping);
    let mut counts: HashMap<(usize, String), std::collections::BTreeMap<i64, f64>> = HashMap::new();
    for (series, &group) in input.iter().zip(&group_of) {
        evaluator.limits.check_deadline()?;
        for point in &series.points {
            let value = crate::api::format::format_sample_value(point.v);
            *counts
                .entry((group, value))
                .or_default()
                .entry(point.t)
                .or_insert(0.0) += 1.0;
        }
    }
    evaluator.limits.release(held);
    let mut output: Vec<RangeSeries> = counts
        .into_iter()
        .map(|((group, value), by_time)| {
            let group_key = &group_keys[group];
            let labels = Labels::from_pairs(
                group_key
                    .labels
                    .iter()
                    .filter(|(name, _)| *name != label)
                    .chain(std::iter::once((label.as_str(), value.as_str()))),
            );
            RangeSeries {
                key: SeriesKey {
                    name: group_key.name.clone(),
                    labels,
                },
                points: by_time.into_iter().map(|(t, v)| Point { t, v }).collect(),
            }
        })
        .collect();
    evaluator.limits.charge(point_count(&output))?;
    output.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(output)
}

/// Each input series' group index, and each group's output key.
fn assign_groups<'k>(
    input: impl Iterator<Item = &'k SeriesKey>,
    grouping: &Grouping,
) -> (Vec<usize>, Vec<SeriesKey>) {
    let mut index: HashMap<SeriesKey, usize> = HashMap::new();
    let mut keys = Vec::new();
    let group_of = input
        .map(|series_key| {
            let key = group_key(series_key, grouping);
            *index.entry(key).or_insert_with_key(|key| {
                keys.push(key.clone());
                keys.len() - 1
            })
        })
        .collect();
    (group_of, keys)
}

/// The labels a series is grouped by: the `by` labels it has, or all but
/// the `without` labels; the metric name only for `by (__name__)`.
fn group_key(key: &SeriesKey, grouping: &Grouping) -> SeriesKey {
    match grouping {
        Grouping::By(names) => SeriesKey {
            name: if names.iter().any(|n| n == LabelMatcher::METRIC_NAME) {
                key.name.clone()
            } else {
                None
            },
            labels: Labels::from_sorted(
                key.labels
                    .iter()
                    .filter(|(name, _)| names.iter().any(|n| n == name))
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            ),
        },
        Grouping::Without(names) => SeriesKey {
            name: None,
            labels: Labels::from_sorted(
                key.labels
                    .iter()
                    .filter(|(name, _)| !names.iter().any(|n| n == name))
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            ),
        },
    }
}

/// The step ranges the parallel loops split a grid into.
fn step_chunks(grid: Grid) -> Vec<Range<usize>> {
    split_steps(
        grid.count,
        rayon::current_num_threads().max(1) * CHUNKS_PER_THREAD,
    )
}

/// `0..count` in about `pieces` ranges of at least
/// [`MIN_STEPS_PER_CHUNK`] steps.
fn split_steps(count: usize, pieces: usize) -> Vec<Range<usize>> {
    let length = count.div_ceil(pieces.max(1)).max(MIN_STEPS_PER_CHUNK);
    (0..count)
        .step_by(length)
        .map(|start| start..(start + length).min(count))
        .collect()
}

/// One group's running state at one step.
#[derive(Debug, Default, Clone)]
struct Accumulator {
    seen: bool,
    value: f64,
    mean: f64,
    compensation: f64,
    count: f64,
    incremental_mean: bool,
    /// `quantile`'s values at this step.
    values: Vec<f64>,
}

impl Accumulator {
    fn start(&mut self, op: AggregateOp, v: f64) {
        self.seen = true;
        self.value = v;
        self.mean = v;
        self.compensation = 0.0;
        self.count = 1.0;
        self.incremental_mean = false;
        match op {
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                self.value = if v.is_nan() || v.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            AggregateOp::Quantile => {
                self.values.clear();
                self.values.push(v);
            }
            _ => {}
        }
    }

    fn add(&mut self, op: AggregateOp, v: f64) {
        match op {
            AggregateOp::Sum => {
                (self.value, self.compensation) = kahan_sum_inc(v, self.value, self.compensation);
            }
            AggregateOp::Avg => {
                self.count += 1.0;
                if !self.incremental_mean {
                    let (sum, compensation) = kahan_sum_inc(v, self.value, self.compensation);
                    if !sum.is_infinite() {
                        (self.value, self.compensation) = (sum, compensation);
                        return;
                    }
                    // The sum would overflow: continue with the mean.
                    self.incremental_mean = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.compensation /= self.count - 1.0;
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.compensation) =
                    kahan_sum_inc(v / self.count, q * self.mean, q * self.compensation);
            }
            AggregateOp::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggregateOp::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggregateOp::Count => self.count += 1.0,
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            AggregateOp::Quantile => self.values.push(v),
            AggregateOp::Group
            | AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::CountValues => {}
        }
    }

    fn finish(&mut self, op: AggregateOp, param: f64) -> f64 {
        self.seen = false;
        match op {
            AggregateOp::Sum => self.value + self.compensation,
            AggregateOp::Avg if self.incremental_mean => self.mean + self.compensation,
            AggregateOp::Avg => self.value / self.count + self.compensation / self.count,
            AggregateOp::Count => self.count,
            AggregateOp::Stddev => (self.value / self.count).sqrt(),
            AggregateOp::Stdvar => self.value / self.count,
            AggregateOp::Group => 1.0,
            AggregateOp::Quantile => quantile(param, &mut self.values),
            AggregateOp::Min
            | AggregateOp::Max
            | AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::CountValues => self.value,
        }
    }
}

/// The reducing aggregations: one output series per group.
fn reduce(
    evaluator: &Evaluator<'_>,
    op: AggregateOp,
    params: Option<&[f64]>,
    input: &[RangeSeries],
    group_of: &[usize],
    group_keys: Vec<SeriesKey>,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let groups = group_keys.len();
    let limits = &evaluator.limits;
    let chunks: Vec<Vec<Vec<Point>>> = step_chunks(grid)
        .into_par_iter()
        .map(|steps| {
            limits.check_deadline()?;
            let mut accumulators = vec![Accumulator::default(); groups];
            let mut output: Vec<Vec<Point>> = vec![Vec::new(); groups];
            let mut cursor = StepCursor::starting_at(input, grid.time(steps.start));
            let mut present = Vec::new();
            let mut touched = Vec::new();
            let mut produced = 0;
            for step in steps {
                limits.check_deadline_every(step + 1)?;
                let t = grid.time(step);
                cursor.gather(t, &mut present);
                for &(series, v) in &present {
                    let group = group_of[series];
                    let accumulator = &mut accumulators[group];
                    if accumulator.seen {
                        accumulator.add(op, v);
                    } else {
                        accumulator.start(op, v);
                        touched.push(group);
                    }
                }
                let param = params
                    .and_then(|p| p.get(step))
                    .copied()
                    .unwrap_or(f64::NAN);
                for &group in &touched {
                    let v = accumulators[group].finish(op, param);
                    output[group].push(Point { t, v });
                }
                produced += touched.len();
                touched.clear();
            }
            limits.charge(produced)?;
            Ok(output)
        })
        .collect::<Result<_, EvalError>>()?;
    Ok(join_chunks(group_keys, chunks))
}

/// One series per group from the chunks' points (chunks in step order,
/// each with one list per group), without the empty ones, sorted by key.
fn join_chunks(group_keys: Vec<SeriesKey>, chunks: Vec<Vec<Vec<Point>>>) -> Vec<RangeSeries> {
    let mut series: Vec<RangeSeries> = group_keys
        .into_iter()
        .map(|key| RangeSeries {
            key,
            points: Vec::new(),
        })
        .collect();
    for chunk in chunks {
        for (group, points) in chunk.into_iter().enumerate() {
            series[group].points.extend(points);
        }
    }
    series.retain(|s| !s.points.is_empty());
    series.sort_by(|a, b| a.key.cmp(&b.key));
    series
}

/// A reducing aggregation of a range function, fused (see the module):
/// per group (and range of steps, when groups are fewer than cores),
/// every member series' windows folded into the group's accumulators,
/// series in the order of their output keys — the order in which the
/// unfused path folds them.
///
/// # Errors
/// As the range function and [`reduce`].
fn fold_range_function(
    evaluator: &Evaluator<'_>,
    aggregate: &AggregateExpr,
    params: Option<&[f64]>,
    function: RangeFunction,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let keys: Vec<SeriesKey> = function
        .series()
        .iter()
        .map(|s| function.output_key(s))
        .collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    if order.windows(2).any(|pair| keys[pair[0]] == keys[pair[1]]) {
        // Two inputs lose their names to one label set: the unfused path
        // says whether that is an error (it is, unless one has no value).
        let input = function.materialize(evaluator, grid)?;
        let held = point_count(&input);
        let (group_of, group_keys) =
            assign_groups(input.iter().map(|s| &s.key), &aggregate.grouping);
        let output = reduce(
            evaluator,
            aggregate.op,
            params,
            &input,
            &group_of,
            group_keys,
            grid,
        )?;
        evaluator.limits.release(held);
        return Ok(output);
    }
    let (group_of, group_keys) =
        assign_groups(order.iter().map(|&i| &keys[i]), &aggregate.grouping);
    let groups = group_keys.len();
    // Markers are taken out (or left for the kind to skip) once per series,
    // not once per task.
    let points: Vec<_> = order
        .par_iter()
        .map(|&i| function.points(&function.series()[i]))
        .collect();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (position, &group) in group_of.iter().enumerate() {
        members[group].push(position);
    }
    // A task per group and range of steps: few groups (`sum`, `sum by
    // (le)`) are split by steps so every core works; many are not, so
    // each series' window slides once over the whole query.
    let pieces = (rayon::current_num_threads().max(1) * CHUNKS_PER_THREAD).div_ceil(groups.max(1));
    let ranges = split_steps(grid.count, pieces);
    let tasks: Vec<(usize, Range<usize>)> = (0..groups)
        .flat_map(|group| ranges.iter().map(move |steps| (group, steps.clone())))
        .collect();
    let (op, limits) = (aggregate.op, &evaluator.limits);
    let outputs: Vec<Vec<Point>> = tasks
        .par_iter()
        .map(|(group, steps)| {
            limits.check_deadline()?;
            let mut accumulators = vec![Accumulator::default(); steps.len()];
            for &position in &members[*group] {
                function.each_value(
                    evaluator,
                    &points[position],
                    grid,
                    steps.clone(),
                    |step, v| {
                        let accumulator = &mut accumulators[step - steps.start];
                        if accumulator.seen {
                            accumulator.add(op, v);
                        } else {
                            accumulator.start(op, v);
                        }
                    },
                )?;
            }
            let mut output = Vec::new();
            for (offset, accumulator) in accumulators.iter_mut().enumerate() {
                if !accumulator.seen {
                    continue;
                }
                let step = steps.start + offset;
                let param = params
                    .and_then(|p| p.get(step))
                    .copied()
                    .unwrap_or(f64::NAN);
                let v = accumulator.finish(op, param);
                output.push(Point {
                    t: grid.time(step),
                    v,
                });
            }
            limits.charge(output.len())?;
            Ok(output)
        })
        .collect::<Result<_, EvalError>>()?;
    let mut series: Vec<RangeSeries> = group_keys
        .into_iter()
        .map(|key| RangeSeries {
            key,
            points: Vec::new(),
        })
        .collect();
    for ((group, _), points) in tasks.iter().zip(outputs) {
        series[*group].points.extend(points);
    }
    function.release(evaluator);
    series.retain(|s| !s.points.is_empty());
    series.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(series)
}

/// `topk` / `bottomk`: up to k input series per group and step, unchanged.
fn select_k(
    evaluator: &Evaluator<'_>,
    op: AggregateOp,
    params: Option<&[f64]>,
    input: &[RangeSeries],
    group_of: &[usize],
    groups: usize,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let Some(params) = params else {
        return Err(EvalError::BadQuery(format!(
            "{}() needs a parameter",
            op.as_str()
        )));
    };
    // Prometheus' checks over all steps, in its order.
    let finite = params.iter().copied().filter(|p| !p.is_nan());
    let largest = finite.clone().fold(f64::NEG_INFINITY, f64::max);
    let smallest = finite.fold(f64::INFINITY, f64::min);
    if params.is_empty() || (params.iter().any(|p| !p.is_nan()) && largest < 1.0) {
        return Ok(Vec::new());
    }
    if params.iter().any(|p| p.is_nan()) {
        return Err(EvalError::Execution("Parameter value is NaN".into()));
    }
    if smallest <= MIN_INT64 {
        return Err(EvalError::Execution(format!(
            "Scalar value {smallest} underflows int64"
        )));
    }
    if largest >= MAX_INT64 {
        return Err(EvalError::Execution(format!(
            "Scalar value {largest} overflows int64"
        )));
    }
    let less: fn(f64, f64) -> bool = if op == AggregateOp::Topk {
        // A min-heap of the k largest: NaN is the smallest.
        |a, b| a.is_nan() || a < b
    } else {
        |a, b| a.is_nan() || a > b
    };
    let limits = &evaluator.limits;
    let chunks: Vec<Vec<Vec<Point>>> = step_chunks(grid)
        .into_par_iter()
        .map(|steps| {
            limits.check_deadline()?;
            let mut heaps: Vec<GoHeap> = vec![GoHeap::default(); groups];
            let mut output: Vec<Vec<Point>> = vec![Vec::new(); input.len()];
            let mut cursor = StepCursor::starting_at(input, grid.time(steps.start));
            let mut present = Vec::new();
            let mut touched = Vec::new();
            let mut produced = 0;
            for step in steps {
                limits.check_deadline_every(step + 1)?;
                let t = grid.time(step);
                cursor.gather(t, &mut present);
                // Truncated towards zero as Go's int64() does; the checks
                // above keep it in range.
                let k = (params.get(step).copied().unwrap_or(0.0) as i64)
                    .min(i64::try_from(input.len()).unwrap_or(i64::MAX));
                if k < 1 {
                    continue;
                }
                let k = usize::try_from(k).unwrap_or(usize::MAX);
                for &(series, v) in &present {
                    let heap = &mut heaps[group_of[series]];
                    if heap.items.is_empty() {
                        touched.push(group_of[series]);
                    }
                    if heap.items.len() < k {
                        heap.push((series, v), less);
                    } else if let Some(&(_, top)) = heap.items.first()
                        && replaces(top, v, less)
                    {
                        heap.items[0] = (series, v);
                        if k > 1 {
                            heap.fix_top(less);
                        }
                    }
                }
                for &group in &touched {
                    for (series, v) in heaps[group].items.drain(..) {
                        output[series].push(Point { t, v });
                        produced += 1;
                    }
                }
                touched.clear();
            }
            limits.charge(produced)?;
            Ok(output)
        })
        .collect::<Result<_, EvalError>>()?;
    let mut series: Vec<RangeSeries> = input
        .iter()
        .map(|s| RangeSeries {
            key: s.key.clone(),
            points: Vec::new(),
        })
        .collect();
    for chunk in chunks {
        for (index, points) in chunk.into_iter().enumerate() {
            series[index].points.extend(points);
        }
    }
    series.retain(|s| !s.points.is_empty());
    Ok(series)
}

/// Whether `v` displaces the heap's top `top`: it beats it, or the top is
/// NaN and `v` is not.
fn replaces(top: f64, v: f64, less: fn(f64, f64) -> bool) -> bool {
    if top.is_nan() {
        !v.is_nan()
    } else {
        less(top, v)
    }
}

/// Go's `container/heap` over `(series index, value)`, with its exact
/// sift order: which of several equal values survives depends on it, and
/// Prometheus' answer is Go's.
#[derive(Debug, Default, Clone)]
struct GoHeap {
    items: Vec<(usize, f64)>,
}

impl GoHeap {
    fn push(&mut self, item: (usize, f64), less: fn(f64, f64) -> bool) {
        self.items.push(item);
        self.up(self.items.len() - 1, less);
    }

    /// `heap.Fix(h, 0)`.
    fn fix_top(&mut self, less: fn(f64, f64) -> bool) {
        if !self.down(0, less) {
            self.up(0, less);
        }
    }

    fn up(&mut self, mut child: usize, less: fn(f64, f64) -> bool) {
        while child > 0 {
            let parent = (child - 1) / 2;
            if !less(self.items[child].1, self.items[parent].1) {
                break;
            }
            self.items.swap(parent, child);
            child = parent;
        }
    }

    fn down(&mut self, start: usize, less: fn(f64, f64) -> bool) -> bool {
        let n = self.items.len();
        let mut parent = start;
        loop {
            let left = 2 * parent + 1;
            if left >= n {
                break;
            }
            let mut child = left;
            if left + 1 < n && less(self.items[left + 1].1, self.items[left].1) {
                child = left + 1;
            }
            if !less(self.items[child].1, self.items[parent].1) {
                break;
            }
            self.items.swap(parent, child);
            parent = child;
        }
        parent > start
    }
}
