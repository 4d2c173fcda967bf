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
    let Expr::Call(Call { function, args, .. }) = expr else {
        return;
    };
    let descending = match function.name {
        "sort" | "sort_by_label" => false,
        "sort_desc" | "sort_by_label_desc" => true,
        _ => return,
    };
    if function.name.starts_with("sort_by_label") {
        let names: Vec<&str> = args
            .iter()
            .skip(1)
            .filter_map(|arg| match arg {
                Expr::String(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        samples.sort_by(|a, b| {
            let order = by_labels(&names, &a.key, &b.key);
            if descending { order.reverse() } else { order }
        });
        return;
    }
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

/// `sort_by_label`'s order: the named labels' values in natural order
/// (`a2` before `a10`), then the whole label sets, name included, as
/// Prometheus compares them (by label name, then value, bytewise).
fn by_labels(names: &[&str], a: &SeriesKey, b: &SeriesKey) -> std::cmp::Ordering {
    let value = |key: &'_ SeriesKey, name: &str| -> String {
        if name == "__name__" {
            key.name.clone().unwrap_or_default()
        } else {
            key.labels.get(name).unwrap_or("").to_string()
        }
    };
    for name in names {
        let (x, y) = (value(a, name), value(b, name));
        if x != y {
            return natural_order(&x, &y);
        }
    }
    full_label_set(a).cmp(&full_label_set(b))
}

/// Every label of `key`, `__name__` included, sorted by name.
fn full_label_set(key: &SeriesKey) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = key.labels.iter().collect();
    if let Some(name) = &key.name {
        pairs.push(("__name__", name));
    }
    pairs.sort_unstable();
    pairs
}

/// Natural order: runs of digits compare as numbers (`9` < `10`, leading
/// zeros ignored, fewer zeros first on a tie), everything else bytewise.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let run = |text: &[u8], from: usize| {
                from + text[from..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count()
            };
            let (end_a, end_b) = (run(a, i), run(b, j));
            let trim =
                |digits: &[u8]| -> usize { digits.iter().take_while(|&&c| c == b'0').count() };
            let (da, db) = (&a[i..end_a], &b[j..end_b]);
            let (na, nb) = (&da[trim(da)..], &db[trim(db)..]);
            let order = na
                .len()
                .cmp(&nb.len())
                .then_with(|| na.cmp(nb))
                .then_with(|| da.len().cmp(&db.len()));
            if order != Ordering::Equal {
                return order;
            }
            (i, j) = (end_a, end_b);
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_order("a2", "a10"), Less);
        assert_eq!(natural_order("a10", "a2"), Greater);
        assert_eq!(natural_order("node-9", "node-10"), Less);
        assert_eq!(natural_order("b", "a10"), Greater);
        assert_eq!(natural_order("a", "a1"), Less);
        assert_eq!(natural_order("a01", "a1"), Greater);
        assert_eq!(natural_order("x", "x"), Equal);
        assert_eq!(natural_order("", "0"), Less);
    }

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
