//! Functions about a series being there, when, and in what order:
//! `absent` and `absent_over_time` (the alert for a target that stopped
//! reporting), `timestamp`, and the order `sort` and `sort_desc` give an
//! instant query's answer.
//!
//! `absent` answers 1 at the steps where its argument is empty, with the
//! labels its selector pins by equality (`absent(up{job="node"})` →
//! `{job="node"}`), as Prometheus: a label matched twice, or matched any
//! other way, is left out. Docs chapter 4, "Functions".

use common::{LabelMatcher, Labels, MatchOp};
use promql::{Call, Expr, VectorSelector};

use super::super::selector::{Reading, is_stale, select_latest};
use super::super::steps::{Grid, drop_name, merge_same_labelset};
use super::super::{EvalError, Evaluator};
use super::map_values;
use crate::value::{InstantSample, Point, RangeSeries, SeriesKey};

/// `absent(v)`.
pub(super) fn absent(
    evaluator: &Evaluator<'_>,
    arg: &Expr,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let input = evaluator.eval_vector(arg, grid)?;
    let mut present = vec![false; grid.count];
    for point in input.iter().flat_map(|s| &s.points) {
        if let Some(step) = present.get_mut(grid.index_of(point.t)) {
            *step = true;
        }
    }
    let selector = match arg {
        Expr::VectorSelector(selector) => Some(selector),
        _ => None,
    };
    absent_series(evaluator, &present, selector, grid)
}

/// `absent_over_time(v[range])`.
pub(super) fn absent_over_time(
    evaluator: &Evaluator<'_>,
    arg: &Expr,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let input = evaluator.eval_range(arg, grid)?;
    let mut present = vec![false; grid.count];
    for series in &input.series {
        for (step, t) in grid.times().enumerate() {
            let (start, end) = input.bounds(t);
            let from = series.points.partition_point(|p| p.t <= start);
            let any = series.points[from..]
                .iter()
                .take_while(|p| p.t <= end)
                .any(|p| !is_stale(p.v));
            if any && let Some(slot) = present.get_mut(step) {
                *slot = true;
            }
        }
    }
    evaluator.limits.release(input.point_count());
    let selector = match arg {
        Expr::MatrixSelector(matrix) => Some(&matrix.selector),
        _ => None,
    };
    absent_series(evaluator, &present, selector, grid)
}

/// One series of 1s at the steps not `present`.
fn absent_series(
    evaluator: &Evaluator<'_>,
    present: &[bool],
    selector: Option<&VectorSelector>,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let points: Vec<Point> = grid
        .times()
        .zip(present)
        .filter(|(_, present)| !**present)
        .map(|(t, _)| Point { t, v: 1.0 })
        .collect();
    evaluator.limits.charge(points.len())?;
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let labels = selector.map_or_else(Labels::empty, |s| pinned_labels(&s.matchers));
    Ok(vec![RangeSeries {
        key: SeriesKey { name: None, labels },
        points,
    }])
}

/// The labels a selector's matchers pin to one value, in Prometheus' way:
/// in order, an `=` matcher on a label not yet set sets it, any other
/// matcher of that label removes it; the name is never among them.
fn pinned_labels(matchers: &[LabelMatcher]) -> Labels {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for matcher in matchers {
        let name = matcher.name.as_str();
        if name == LabelMatcher::METRIC_NAME {
            continue;
        }
        let set = pairs.iter().any(|(n, _)| *n == name);
        if matcher.op == MatchOp::Equal && !set {
            pairs.push((name, matcher.value.as_str()));
        } else {
            pairs.retain(|(n, _)| *n != name);
        }
    }
    Labels::from_pairs(pairs)
}

/// `timestamp(v)`: each sample's timestamp in seconds — for a selector,
/// the sample's own time, otherwise the evaluation time.
pub(super) fn timestamp(
    evaluator: &Evaluator<'_>,
    arg: &Expr,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    if let Expr::VectorSelector(selector) = arg {
        let mut series = select_latest(evaluator, selector, grid, Reading::SampleTime)?;
        for s in &mut series {
            drop_name(&mut s.key);
        }
        return merge_same_labelset(series);
    }
    let series = evaluator.eval_vector(arg, grid)?;
    map_values(series, grid, |_, step| grid.time(step) as f64 / 1000.0)
}

/// How an instant query's answer is ordered: by labels, unless the
/// expression is `sort(…)` (ascending value) or `sort_desc(…)`
/// (descending), where NaN comes first, as in Prometheus.
pub(crate) fn sort_order(expr: &Expr, samples: &mut [InstantSample]) {
    let Expr::Call(Call { function, .. }) = expr else {
        return;
    };
    let descending = match function.name {
        "sort" => false,
        "sort_desc" => true,
        _ => return,
    };
    samples.sort_by(|a, b| {
        let (x, y) = (a.point.v, b.point.v);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ if descending => y.total_cmp(&x),
            _ => x.total_cmp(&y),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_keeps_the_labels_pinned_once_by_equality() {
        let matchers = vec![
            LabelMatcher::new(LabelMatcher::METRIC_NAME, MatchOp::Equal, "up").unwrap(),
            LabelMatcher::new("job", MatchOp::Equal, "node").unwrap(),
            LabelMatcher::new("env", MatchOp::Equal, "a").unwrap(),
            LabelMatcher::new("env", MatchOp::Equal, "b").unwrap(),
            LabelMatcher::new("dc", MatchOp::Regex, "x.*").unwrap(),
        ];
        assert_eq!(
            pinned_labels(&matchers),
            Labels::from_pairs([("job", "node")])
        );
    }
}
