//! The step grid every node is evaluated over, and the two views of
//! series-major data the operators need: a per-step cursor and the merge of
//! series whose labels became equal.
//!
//! Why series-major: an instant query is a range query with one step, so
//! the evaluator evaluates each node *once* for all steps of the query —
//! a selector reads the store once, `rate` walks each series' samples
//! once with a sliding window — instead of re-running the tree per step
//! (which is what phase0's "one question, one scan" becomes when a
//! dashboard asks for 289 points). Each intermediate instant-vector result
//! is a list of series, each with at most one point per grid step. The
//! operators that are defined per step (aggregations, vector matching,
//! set operators) walk the steps with a [`StepCursor`], which costs one
//! comparison per series per step and no hashing. Docs chapter 4,
//! "Evaluating a tree over time".

use std::cmp::Ordering;

use super::EvalError;
use crate::value::{Point, RangeSeries, SeriesKey};

/// The evaluation times `start, start + step, …` (`count` of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    /// The first evaluation time, in ms.
    pub start: i64,
    /// The distance between evaluation times, in ms; > 0.
    pub step: i64,
    /// How many evaluation times; 0 for a subquery window that holds none.
    pub count: usize,
}

impl Grid {
    /// The single step of an instant query.
    pub(crate) fn instant(time_ms: i64) -> Self {
        Grid {
            start: time_ms,
            step: 1,
            count: 1,
        }
    }

    /// Every `step` from `start` to `end` inclusive (none when `start >
    /// end`).
    ///
    /// # Errors
    /// [`EvalError::BadQuery`] for `step <= 0`; [`EvalError::TooManySamples`]
    /// when there are more steps than `max_steps` (every step of a grid is a
    /// point somebody will hold, so a grid larger than the whole sample
    /// budget can only fail later, after a long loop).
    pub(crate) fn spanning(
        start: i64,
        end: i64,
        step: i64,
        max_steps: usize,
    ) -> Result<Self, EvalError> {
        if step <= 0 {
            return Err(EvalError::BadQuery(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        let count = if start > end {
            0
        } else {
            // i128: `end - start` overflows i64 for extreme (client-given)
            // times.
            (i128::from(end) - i128::from(start)) / i128::from(step) + 1
        };
        match usize::try_from(count) {
            Ok(count) if count <= max_steps => Ok(Grid { start, step, count }),
            _ => Err(EvalError::TooManySamples { limit: max_steps }),
        }
    }

    /// The `index`-th evaluation time (`index < count`).
    pub(crate) fn time(&self, index: usize) -> i64 {
        // Within [start, last], so it cannot overflow for index < count.
        self.start + index as i64 * self.step
    }

    /// The last evaluation time, if there is one.
    pub(crate) fn last(&self) -> Option<i64> {
        self.count.checked_sub(1).map(|index| self.time(index))
    }

    /// The index of evaluation time `t`, which must lie on the grid.
    pub(crate) fn index_of(&self, t: i64) -> usize {
        usize::try_from((t - self.start) / self.step).unwrap_or(0)
    }

    /// Every evaluation time, in order.
    pub(crate) fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.count).map(|index| self.time(index))
    }
}

/// Walks series-major data one step at a time: at each step, which series
/// have a point there and what its value is.
#[derive(Debug)]
pub(crate) struct StepCursor<'a> {
    series: &'a [RangeSeries],
    next: Vec<usize>,
}

impl<'a> StepCursor<'a> {
    /// A cursor positioned at the first point at or after `from_t` of each
    /// series (a binary search each, so a chunk of steps can start in the
    /// middle).
    pub(crate) fn starting_at(series: &'a [RangeSeries], from_t: i64) -> Self {
        let next = series
            .iter()
            .map(|s| s.points.partition_point(|p| p.t < from_t))
            .collect();
        StepCursor { series, next }
    }

    /// Fills `out` with `(series index, value)` for every series with a
    /// point at `t`, in series order, and moves past those points. Steps
    /// must be visited in increasing order.
    pub(crate) fn gather(&mut self, t: i64, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (index, (series, next)) in self.series.iter().zip(&mut self.next).enumerate() {
            // Points are on the grid, so at most one is skipped here; the
            // loop only guards against a point between two steps.
            while let Some(point) = series.points.get(*next)
                && point.t < t
            {
                *next += 1;
            }
            if let Some(point) = series.points.get(*next)
                && point.t == t
            {
                out.push((index, point.v));
                *next += 1;
            }
        }
    }
}

/// Prometheus' error when two series of one result would have the same
/// labels at the same time.
pub(crate) fn same_labelset_error() -> EvalError {
    EvalError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Total points held by `series`.
pub(crate) fn point_count(series: &[RangeSeries]) -> usize {
    series.iter().map(|s| s.points.len()).sum()
}

/// Sorts `series` by key and merges series whose keys became equal (after
/// an operator dropped the metric name): their points interleave in time,
/// as Prometheus collects a range query's output by label set. Series
/// without points are left out.
///
/// # Errors
/// "vector cannot contain metrics with the same labelset" when two of them
/// have a point at the same step.
pub(crate) fn merge_same_labelset(
    mut series: Vec<RangeSeries>,
) -> Result<Vec<RangeSeries>, EvalError> {
    series.retain(|s| !s.points.is_empty());
    sort_by_key(&mut series);
    let mut merged: Vec<RangeSeries> = Vec::with_capacity(series.len());
    for next in series {
        match merged.last_mut() {
            Some(last) if last.key == next.key => {
                let points = std::mem::take(&mut last.points);
                last.points = merge_points(points, next.points)?;
            }
            _ => merged.push(next),
        }
    }
    Ok(merged)
}

/// Sorts `series` by key and refuses equal keys outright, as Prometheus
/// does for the output of a function over a range vector (where two input
/// series that lose their names to the function always collide).
///
/// # Errors
/// "vector cannot contain metrics with the same labelset".
pub(crate) fn reject_same_labelset(
    mut series: Vec<RangeSeries>,
) -> Result<Vec<RangeSeries>, EvalError> {
    series.retain(|s| !s.points.is_empty());
    sort_by_key(&mut series);
    if series.windows(2).any(|pair| pair[0].key == pair[1].key) {
        return Err(same_labelset_error());
    }
    Ok(series)
}

/// Sorts by key unless already sorted (selectors hand series over in the
/// store's order, which is the key order).
pub(crate) fn sort_by_key(series: &mut [RangeSeries]) {
    if !series.is_sorted_by(|a, b| a.key <= b.key) {
        series.sort_by(|a, b| a.key.cmp(&b.key));
    }
}

/// The key of a series with no name and no labels (`vector(1)`, a scalar
/// range query's one series).
pub(crate) fn empty_key() -> SeriesKey {
    SeriesKey {
        name: None,
        labels: common::Labels::empty(),
    }
}

/// The key without its metric name.
pub(crate) fn drop_name(key: &mut SeriesKey) {
    key.name = None;
}

fn merge_points(left: Vec<Point>, right: Vec<Point>) -> Result<Vec<Point>, EvalError> {
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let next = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => match l.t.cmp(&r.t) {
                Ordering::Less => left.next(),
                Ordering::Greater => right.next(),
                Ordering::Equal => return Err(same_labelset_error()),
            },
            (Some(_), None) => left.next(),
            (None, Some(_)) => right.next(),
            (None, None) => return Ok(merged),
        };
        merged.extend(next);
    }
}

#[cfg(test)]
mod tests {
    use common::Labels;

    use super::*;

    fn series(name: Option<&str>, points: &[(i64, f64)]) -> RangeSeries {
        RangeSeries {
            key: SeriesKey {
                name: name.map(str::to_string),
                labels: Labels::from_pairs([("job", "a")]),
            },
            points: points.iter().map(|&(t, v)| Point { t, v }).collect(),
        }
    }

    #[test]
    fn grids_count_their_steps() {
        let grid = Grid::spanning(0, 10, 5, 100).unwrap();
        assert_eq!(grid.count, 3);
        assert_eq!(grid.times().collect::<Vec<_>>(), vec![0, 5, 10]);
        assert_eq!(grid.last(), Some(10));
        assert_eq!(grid.index_of(10), 2);
        assert_eq!(Grid::spanning(0, 9, 5, 100).unwrap().count, 2);
        let empty = Grid::spanning(10, 0, 5, 100).unwrap();
        assert_eq!((empty.count, empty.last()), (0, None));
        assert!(Grid::spanning(0, 10, 0, 100).is_err());
        assert!(matches!(
            Grid::spanning(i64::MIN, i64::MAX, 1, 100),
            Err(EvalError::TooManySamples { .. })
        ));
    }

    #[test]
    fn cursors_visit_each_point_at_its_step() {
        let data = vec![
            series(Some("a"), &[(0, 1.0), (10, 2.0)]),
            series(Some("b"), &[(5, 3.0), (10, 4.0)]),
        ];
        let mut cursor = StepCursor::starting_at(&data, 0);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for t in [0, 5, 10] {
            cursor.gather(t, &mut out);
            seen.push(out.clone());
        }
        assert_eq!(
            seen,
            vec![vec![(0, 1.0)], vec![(1, 3.0)], vec![(0, 2.0), (1, 4.0)]]
        );
        let mut late = StepCursor::starting_at(&data, 6);
        late.gather(10, &mut out);
        assert_eq!(out, vec![(0, 2.0), (1, 4.0)]);
    }

    #[test]
    fn equal_keys_merge_unless_they_collide() {
        let mut a = series(Some("a"), &[(0, 1.0)]);
        let mut b = series(Some("b"), &[(5, 2.0)]);
        drop_name(&mut a.key);
        drop_name(&mut b.key);
        let merged = merge_same_labelset(vec![b.clone(), a.clone()]).unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].points.len(), 2);
        assert!(reject_same_labelset(vec![a.clone(), b]).is_err());
        assert!(merge_same_labelset(vec![a.clone(), a]).is_err());
    }
}
