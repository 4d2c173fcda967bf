//! Binary operators: arithmetic (`+ - * / % ^`) and comparisons
//! (`== != > < >= <=`, filtering or, with `bool`, 0/1) between scalars and
//! instant vectors, and the set operators `and or unless` between instant
//! vectors.
//!
//! Vector matching is Prometheus': two series pair up when their
//! *signatures* — the `on (…)` labels, or every label but the `ignoring
//! (…)` ones and the metric name — are equal; one-to-one by default,
//! many-to-one with `group_left`, one-to-many with `group_right`, copying
//! the listed labels from the "one" side. Each series' signature is
//! computed and interned to a small integer once, so matching at each
//! step is an array lookup rather than a hash of label strings, and the
//! result key of each pair is built once and reused at every step.
//!
//! The errors are Prometheus' word for word ("found duplicate series for
//! the match group …", "multiple matches for labels: …"), because users
//! search for them. Division by zero is IEEE: ±Inf, or NaN for 0/0.
//! Docs chapter 4, "Vector matching".

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use common::{LabelMatcher, Labels};
use promql::{BinaryExpr, BinaryOp, GroupModifier, MatchingLabels};
use rayon::prelude::*;

use super::steps::{Grid, StepCursor, drop_name, merge_same_labelset, same_labelset_error};
use super::{EvalError, Evaluated, Evaluator};
use crate::value::{Point, RangeSeries, SeriesKey};

/// Evaluates `binary` at every step of `grid`.
pub(crate) fn binary(
    evaluator: &Evaluator<'_>,
    binary: &BinaryExpr,
    grid: Grid,
) -> Result<Evaluated, EvalError> {
    let lhs = evaluator.eval(&binary.lhs, grid)?;
    let rhs = evaluator.eval(&binary.rhs, grid)?;
    let op = binary.op;
    match (lhs, rhs) {
        (Evaluated::Scalar(lhs), Evaluated::Scalar(rhs)) => lhs
            .iter()
            .zip(&rhs)
            .map(|(&l, &r)| scalar_binop(op, l, r))
            .collect::<Result<_, _>>()
            .map(Evaluated::Scalar),
        (Evaluated::Vector(vector), Evaluated::Scalar(scalar)) => {
            vector_scalar(binary, vector, &scalar, false, grid).map(Evaluated::Vector)
        }
        (Evaluated::Scalar(scalar), Evaluated::Vector(vector)) => {
            vector_scalar(binary, vector, &scalar, true, grid).map(Evaluated::Vector)
        }
        (Evaluated::Vector(lhs), Evaluated::Vector(rhs)) => {
            let lhs_points = super::steps::point_count(&lhs);
            let rhs_points = super::steps::point_count(&rhs);
            let result = if op.is_set_operator() {
                set_operation(evaluator, binary, lhs, rhs, grid)
            } else {
                vector_vector(evaluator, binary, lhs, rhs, grid)
            };
            evaluator.limits.release(lhs_points + rhs_points);
            result.map(Evaluated::Vector)
        }
        _ => Err(EvalError::BadQuery(format!(
            "operator {:?} needs scalar or instant vector operands",
            op.as_str()
        ))),
    }
}

/// Arithmetic operators drop the metric name (the result is no longer
/// that metric); comparisons without `bool` keep it (they filter).
fn drops_name(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Mod
            | BinaryOp::Atan2
            | BinaryOp::Pow
    )
}

/// Prometheus' `vectorElemBinop` for floats: the value and whether to keep
/// the element. A comparison keeps the left value when it holds. `None`
/// for the set operators, which are not element-wise.
fn element(op: BinaryOp, l: f64, r: f64) -> Option<(f64, bool)> {
    Some(match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        // Rust's `%` on floats is C's fmod, as Go's math.Mod: the sign of
        // the dividend, NaN for x % 0.
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Eq => (l, l == r),
        BinaryOp::Ne => (l, l != r),
        BinaryOp::Gt => (l, l > r),
        BinaryOp::Lt => (l, l < r),
        BinaryOp::Ge => (l, l >= r),
        BinaryOp::Le => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => return None,
    })
}

fn not_elementwise(op: BinaryOp) -> EvalError {
    EvalError::BadQuery(format!(
        "set operator {:?} not allowed in binary scalar expression",
        op.as_str()
    ))
}

/// Between two scalars a comparison (always with `bool`) gives 0 or 1.
fn scalar_binop(op: BinaryOp, l: f64, r: f64) -> Result<f64, EvalError> {
    let (value, keep) = element(op, l, r).ok_or_else(|| not_elementwise(op))?;
    Ok(if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        value
    })
}

/// `vector op scalar`, or `scalar op vector` when `scalar_on_left`; in
/// parallel across series.
fn vector_scalar(
    binary: &BinaryExpr,
    vector: Vec<RangeSeries>,
    scalar: &[f64],
    scalar_on_left: bool,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let op = binary.op;
    if op.is_set_operator() {
        return Err(not_elementwise(op));
    }
    let drop = drops_name(op) || binary.return_bool;
    let result: Vec<RangeSeries> = vector
        .into_par_iter()
        .map(|mut series| {
            series.points.retain_mut(|point| {
                let s = scalar
                    .get(grid.index_of(point.t))
                    .copied()
                    .unwrap_or(f64::NAN);
                let (l, r) = if scalar_on_left {
                    (s, point.v)
                } else {
                    (point.v, s)
                };
                let Some((mut value, mut keep)) = element(op, l, r) else {
                    return false;
                };
                if op.is_comparison() && scalar_on_left {
                    // A comparison keeps the vector's value, whichever side
                    // it was on.
                    value = r;
                }
                if binary.return_bool {
                    value = if keep { 1.0 } else { 0.0 };
                    keep = true;
                }
                point.v = value;
                keep
            });
            if drop {
                drop_name(&mut series.key);
            }
            series
        })
        .collect();
    if drop {
        merge_same_labelset(result)
    } else {
        Ok(result
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect())
    }
}

/// How the two sides of a vector operation pair up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cardinality {
    OneToOne,
    ManyToOne,
    OneToMany,
}

/// Interns signatures: equal label sets get the same small integer.
#[derive(Debug, Default)]
struct Signatures {
    index: HashMap<Vec<(String, String)>, usize>,
}

impl Signatures {
    fn of(&mut self, key: &SeriesKey, matching: &MatchingLabels) -> usize {
        let signature = signature(key, matching);
        let next = self.index.len();
        *self.index.entry(signature).or_insert(next)
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

/// The labels two series must share to match: the `on` labels the series
/// has (the metric name included when listed), or all labels except the
/// `ignoring` ones and the metric name.
fn signature(key: &SeriesKey, matching: &MatchingLabels) -> Vec<(String, String)> {
    match matching {
        MatchingLabels::On(names) => {
            let mut names: Vec<&String> = names.iter().collect();
            names.sort();
            names.dedup();
            names
                .into_iter()
                .filter_map(|name| {
                    let value = if name == LabelMatcher::METRIC_NAME {
                        key.name.as_deref()
                    } else {
                        key.labels.get(name)
                    };
                    value
                        .filter(|v| !v.is_empty())
                        .map(|v| (name.clone(), v.to_string()))
                })
                .collect()
        }
        MatchingLabels::Ignoring(names) => key
            .labels
            .iter()
            .filter(|(name, _)| !names.iter().any(|n| n == name))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

/// Prometheus' text form of a label set, `{__name__="x", job="a"}`, the
/// name sorted among the labels as Prometheus stores it.
fn format_labels(name: Option<&str>, labels: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = labels.to_vec();
    if let Some(name) = name {
        pairs.push((LabelMatcher::METRIC_NAME, name));
    }
    pairs.sort();
    let body: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", body.join(", "))
}

fn format_series(key: &SeriesKey) -> String {
    let labels: Vec<(&str, &str)> = key.labels.iter().collect();
    format_labels(key.name.as_deref(), &labels)
}

/// Two series on the "one" side share a signature at one step.
fn duplicate_on_one_side(
    matching: &MatchingLabels,
    series: &SeriesKey,
    duplicate: &SeriesKey,
    swapped: bool,
) -> EvalError {
    let matched = signature(series, matching);
    let matched: Vec<(&str, &str)> = matched
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .filter(|(n, _)| *n != LabelMatcher::METRIC_NAME)
        .collect();
    let name = match matching {
        MatchingLabels::On(names) if names.iter().any(|n| n == LabelMatcher::METRIC_NAME) => {
            series.name.as_deref()
        }
        _ => None,
    };
    let side = if swapped { "left" } else { "right" };
    EvalError::Execution(format!(
        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
        format_labels(name, &matched),
        format_series(series),
        format_series(duplicate),
    ))
}

/// The labels of `many op one`: the "many" side's labels, without the
/// name for arithmetic; for one-to-one only the `on` labels / without the
/// `ignoring` ones; plus the `group_x (…)` labels copied from the "one"
/// side (removed when it lacks them); never a name with `bool`.
fn result_key(
    many: &SeriesKey,
    one: &SeriesKey,
    binary: &BinaryExpr,
    include: &[String],
    cardinality: Cardinality,
) -> SeriesKey {
    let is_metric_name = |n: &String| n == LabelMatcher::METRIC_NAME;
    let mut name = many.name.clone();
    let mut labels: Vec<(String, String)> = many
        .labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if drops_name(binary.op) {
        name = None;
    }
    if cardinality == Cardinality::OneToOne {
        match &binary.matching.labels {
            MatchingLabels::On(names) => {
                labels.retain(|(n, _)| names.contains(n));
                if !names.iter().any(is_metric_name) {
                    name = None;
                }
            }
            MatchingLabels::Ignoring(names) => {
                labels.retain(|(n, _)| !names.contains(n));
                if names.iter().any(is_metric_name) {
                    name = None;
                }
            }
        }
    }
    for label in include {
        if is_metric_name(label) {
            name = one.name.clone();
            continue;
        }
        labels.retain(|(n, _)| n != label);
        if let Some(value) = one.labels.get(label) {
            labels.push((label.clone(), value.to_string()));
        }
    }
    if binary.return_bool {
        name = None;
    }
    SeriesKey {
        name,
        labels: Labels::from_pairs(labels),
    }
}

/// Arithmetic and comparison between two instant vectors, step by step.
fn vector_vector(
    evaluator: &Evaluator<'_>,
    binary: &BinaryExpr,
    lhs: Vec<RangeSeries>,
    rhs: Vec<RangeSeries>,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let op = binary.op;
    let matching = &binary.matching;
    let (include, cardinality): (&[String], _) = match &matching.group {
        None => (&[], Cardinality::OneToOne),
        Some(GroupModifier::Left(labels)) => (labels, Cardinality::ManyToOne),
        Some(GroupModifier::Right(labels)) => (labels, Cardinality::OneToMany),
    };
    // As Prometheus: one-to-many is many-to-one with the sides swapped,
    // swapped back when computing each value.
    let swapped = cardinality == Cardinality::OneToMany;
    let (many, one) = if swapped { (&rhs, &lhs) } else { (&lhs, &rhs) };
    let mut signatures = Signatures::default();
    let many_signature: Vec<usize> = many
        .iter()
        .map(|s| signatures.of(&s.key, &matching.labels))
        .collect();
    let one_signature: Vec<usize> = one
        .iter()
        .map(|s| signatures.of(&s.key, &matching.labels))
        .collect();
    // Per-signature state of the current step, stamped with `step + 1`
    // so that nothing needs clearing between steps.
    let mut one_at: Vec<(usize, usize, f64)> = vec![(0, 0, 0.0); signatures.len()];
    let mut matched: Vec<usize> = vec![0; signatures.len()];
    let mut inserted: HashSet<(usize, usize)> = HashSet::new();
    let mut slot_of_pair: HashMap<(usize, usize), usize> = HashMap::new();
    let mut slot_of_key: HashMap<SeriesKey, usize> = HashMap::new();
    let mut output: Vec<RangeSeries> = Vec::new();
    let mut many_cursor = StepCursor::starting_at(many, grid.start);
    let mut one_cursor = StepCursor::starting_at(one, grid.start);
    let (mut many_now, mut one_now) = (Vec::new(), Vec::new());
    for step in 0..grid.count {
        evaluator.limits.check_deadline_every(step + 1)?;
        let t = grid.time(step);
        let stamp = step + 1;
        many_cursor.gather(t, &mut many_now);
        one_cursor.gather(t, &mut one_now);
        if many_now.is_empty() || one_now.is_empty() {
            continue;
        }
        for &(j, v) in &one_now {
            let signature = one_signature[j];
            let (seen, other, _) = one_at[signature];
            if seen == stamp {
                return Err(duplicate_on_one_side(
                    &matching.labels,
                    &one[j].key,
                    &one[other].key,
                    swapped,
                ));
            }
            one_at[signature] = (stamp, j, v);
        }
        inserted.clear();
        let mut produced = 0;
        for &(i, v) in &many_now {
            let signature = many_signature[i];
            let (seen, j, one_value) = one_at[signature];
            if seen != stamp {
                continue;
            }
            let (l, r) = if swapped {
                (one_value, v)
            } else {
                (v, one_value)
            };
            let (mut value, keep) = element(op, l, r).ok_or_else(|| not_elementwise(op))?;
            if binary.return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let slot = match slot_of_pair.entry((i, j)) {
                Entry::Occupied(entry) => *entry.get(),
                Entry::Vacant(entry) => {
                    let key = result_key(&many[i].key, &one[j].key, binary, include, cardinality);
                    let next = output.len();
                    let slot = *slot_of_key.entry(key.clone()).or_insert(next);
                    if slot == next {
                        output.push(RangeSeries {
                            key,
                            points: Vec::new(),
                        });
                    }
                    *entry.insert(slot)
                }
            };
            if cardinality == Cardinality::OneToOne {
                if matched[signature] == stamp {
                    return Err(EvalError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
                matched[signature] = stamp;
            } else if !inserted.insert((signature, slot)) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            let points = &mut output[slot].points;
            if points.last().is_some_and(|p| p.t == t) {
                return Err(same_labelset_error());
            }
            points.push(Point { t, v: value });
            produced += 1;
        }
        evaluator.limits.charge(produced)?;
    }
    output.retain(|s| !s.points.is_empty());
    output.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(output)
}

/// `and`, `or`, `unless`, step by step: many-to-many, series unchanged.
fn set_operation(
    evaluator: &Evaluator<'_>,
    binary: &BinaryExpr,
    lhs: Vec<RangeSeries>,
    rhs: Vec<RangeSeries>,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let op = binary.op;
    let mut signatures = Signatures::default();
    let lhs_signature: Vec<usize> = lhs
        .iter()
        .map(|s| signatures.of(&s.key, &binary.matching.labels))
        .collect();
    let rhs_signature: Vec<usize> = rhs
        .iter()
        .map(|s| signatures.of(&s.key, &binary.matching.labels))
        .collect();
    let mut marked: Vec<usize> = vec![0; signatures.len()];
    let mut lhs_points: Vec<Vec<Point>> = vec![Vec::new(); lhs.len()];
    let mut rhs_points: Vec<Vec<Point>> = vec![Vec::new(); rhs.len()];
    let mut lhs_cursor = StepCursor::starting_at(&lhs, grid.start);
    let mut rhs_cursor = StepCursor::starting_at(&rhs, grid.start);
    let (mut lhs_now, mut rhs_now) = (Vec::new(), Vec::new());
    let mut produced = 0;
    for step in 0..grid.count {
        evaluator.limits.check_deadline_every(step + 1)?;
        let t = grid.time(step);
        let stamp = step + 1;
        lhs_cursor.gather(t, &mut lhs_now);
        rhs_cursor.gather(t, &mut rhs_now);
        match op {
            BinaryOp::And => {
                for &(j, _) in &rhs_now {
                    marked[rhs_signature[j]] = stamp;
                }
                for &(i, v) in &lhs_now {
                    if marked[lhs_signature[i]] == stamp {
                        lhs_points[i].push(Point { t, v });
                        produced += 1;
                    }
                }
            }
            BinaryOp::Or => {
                for &(i, v) in &lhs_now {
                    marked[lhs_signature[i]] = stamp;
                    lhs_points[i].push(Point { t, v });
                    produced += 1;
                }
                for &(j, v) in &rhs_now {
                    if marked[rhs_signature[j]] != stamp {
                        rhs_points[j].push(Point { t, v });
                        produced += 1;
                    }
                }
            }
            BinaryOp::Unless => {
                for &(j, _) in &rhs_now {
                    marked[rhs_signature[j]] = stamp;
                }
                for &(i, v) in &lhs_now {
                    if marked[lhs_signature[i]] != stamp {
                        lhs_points[i].push(Point { t, v });
                        produced += 1;
                    }
                }
            }
            other => return Err(not_elementwise(other)),
        }
    }
    evaluator.limits.charge(produced)?;
    let result = lhs
        .into_iter()
        .zip(lhs_points)
        .chain(rhs.into_iter().zip(rhs_points))
        .map(|(series, points)| RangeSeries {
            key: series.key,
            points,
        })
        .collect();
    // An `or` can bring a left and a right series with equal keys; they
    // never overlap in time (equal keys mean equal signatures).
    merge_same_labelset(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_follow_ieee_and_prometheus() {
        assert_eq!(
            element(BinaryOp::Div, 1.0, 0.0),
            Some((f64::INFINITY, true))
        );
        assert!(element(BinaryOp::Div, 0.0, 0.0).unwrap().0.is_nan());
        assert_eq!(element(BinaryOp::Mod, -7.0, 3.0), Some((-1.0, true)));
        assert!(element(BinaryOp::Mod, 7.0, 0.0).unwrap().0.is_nan());
        assert_eq!(
            element(BinaryOp::Atan2, 1.0, 2.0),
            Some((0.4636476090008061, true)),
            "Prometheus 2.42's answer to `1 atan2 2`"
        );
        assert_eq!(element(BinaryOp::Pow, 2.0, 10.0), Some((1024.0, true)));
        assert_eq!(element(BinaryOp::Gt, 3.0, 2.0), Some((3.0, true)));
        assert_eq!(element(BinaryOp::Lt, 3.0, 2.0), Some((3.0, false)));
        assert_eq!(element(BinaryOp::And, 3.0, 2.0), None);
        assert_eq!(scalar_binop(BinaryOp::Eq, 2.0, 2.0).unwrap(), 1.0);
    }

    #[test]
    fn labels_print_as_prometheus_does() {
        assert_eq!(
            format_labels(Some("up"), &[("job", "a"), ("Zone", "b")]),
            r#"{Zone="b", __name__="up", job="a"}"#
        );
    }
}
