//! Subqueries: `expr[range:step] offset o` evaluates the instant-vector
//! expression `expr` as a range query at steps aligned to multiples of
//! `step` (absolute time, so two dashboards refreshing at different
//! moments see the same inner points), and hands the result to the outer
//! function as if it were a range selector's samples.
//!
//! As in Prometheus, the inner query runs *once* for the whole outer
//! query, from the first aligned time strictly after `start - o - range`
//! to `end - o`; each outer step then windows it like a range selector,
//! `(t - o - range, t - o]`. Without a step, Prometheus uses the global
//! evaluation interval (one minute by default), and so do we
//! ([`DEFAULT_SUBQUERY_STEP_MS`]). The cost it carries: a fine step over a
//! long range multiplies the inner work; the grid is checked against the
//! sample budget before any of it starts. Docs chapter 4, "Subqueries".

use promql::SubqueryExpr;

use super::selector::RangeInput;
use super::steps::Grid;
use super::{EvalError, Evaluator};

/// The inner step of `expr[range:]`: Prometheus' default evaluation
/// interval.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Evaluates `subquery` for every step of `grid`.
pub(crate) fn subquery(
    evaluator: &Evaluator<'_>,
    subquery: &SubqueryExpr,
    grid: Grid,
) -> Result<RangeInput, EvalError> {
    let mut input = RangeInput {
        series: Vec::new(),
        range_ms: subquery.range_ms,
        offset_ms: subquery.offset_ms,
        windows: evaluator.config.compat.windows(),
        at_ms: subquery.at.map(|at| evaluator.resolve_at(at)),
    };
    let Some(last) = grid.last() else {
        return Ok(input);
    };
    let step = subquery.step_ms.unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
    if step <= 0 {
        return Err(EvalError::BadQuery(
            "a subquery step must be greater than 0".into(),
        ));
    }
    let (window_start, _) = input.bounds(grid.start);
    let (_, inner_end) = input.bounds(last);
    // The first multiple of `step` strictly after the first window's
    // (open) start; i128 because the product can leave i64 near its ends.
    let step_wide = i128::from(step);
    let mut first = i128::from(window_start).div_euclid(step_wide) * step_wide;
    if first <= i128::from(window_start) {
        first += step_wide;
    }
    let inner = match i64::try_from(first) {
        Ok(first) => Grid::spanning(first, inner_end, step, evaluator.limits.max_samples())?,
        // Past i64::MAX: no inner step fits.
        Err(_) => Grid {
            start: 0,
            step,
            count: 0,
        },
    };
    input.series = evaluator.eval_vector(&subquery.expr, inner)?;
    Ok(input)
}
