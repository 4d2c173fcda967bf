//! `label_replace` and `label_join`: new labels made from old ones, the
//! joins' glue (`label_replace(up, "host", "$1", "instance", "(.*):.*")`
//! before an `on (host)`).
//!
//! Both keep the metric name, as Prometheus does; two series that end up
//! with the same labels at one step are an error. The regular expression
//! is anchored (`^(?:…)$`) and its replacement expands `$1`, `${1}`,
//! `$name` and `$$` as Go's `Regexp.Expand` does. A bad regular expression
//! or label name fails the query as Prometheus' execution error, naming
//! it, whether or not any series would have been touched. Docs chapter 4,
//! "Functions".

use common::Labels;
use common::metric::is_valid_label_name;
use promql::{Call, Expr};
use regex::Regex;

use super::super::steps::{Grid, merge_same_labelset};
use super::super::{EvalError, Evaluated, Evaluator};
use super::argument;
use crate::value::{RangeSeries, SeriesKey};

/// `label_replace(v, dst, replacement, src, regex)`.
pub(super) fn label_replace(
    evaluator: &Evaluator<'_>,
    call: &Call,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let dst = string_arg(evaluator, argument(call, 1)?, grid)?;
    let replacement = string_arg(evaluator, argument(call, 2)?, grid)?;
    let src = string_arg(evaluator, argument(call, 3)?, grid)?;
    let pattern = string_arg(evaluator, argument(call, 4)?, grid)?;
    let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|_| {
        EvalError::Execution(format!(
            "invalid regular expression in label_replace(): {pattern}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(EvalError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut series = evaluator.eval_vector(argument(call, 0)?, grid)?;
    for s in &mut series {
        let value = get(&s.key, &src).to_string();
        if let Some(captures) = regex.captures(&value) {
            let mut expanded = String::new();
            captures.expand(&replacement, &mut expanded);
            set(&mut s.key, &dst, &expanded);
        }
    }
    merge_same_labelset(series)
}

/// `label_join(v, dst, separator, src…)`.
pub(super) fn label_join(
    evaluator: &Evaluator<'_>,
    call: &Call,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    let dst = string_arg(evaluator, argument(call, 1)?, grid)?;
    let separator = string_arg(evaluator, argument(call, 2)?, grid)?;
    let sources = call
        .args
        .iter()
        .skip(3)
        .map(|arg| string_arg(evaluator, arg, grid))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(bad) = sources.iter().find(|name| !is_valid_label_name(name)) {
        return Err(EvalError::Execution(format!(
            "invalid source label name in label_join(): {bad}"
        )));
    }
    if !is_valid_label_name(&dst) {
        return Err(EvalError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut series = evaluator.eval_vector(argument(call, 0)?, grid)?;
    for s in &mut series {
        let joined = sources
            .iter()
            .map(|name| get(&s.key, name))
            .collect::<Vec<_>>()
            .join(&separator);
        set(&mut s.key, &dst, &joined);
    }
    merge_same_labelset(series)
}

/// A string argument (a literal, as the parser ensured).
fn string_arg(evaluator: &Evaluator<'_>, expr: &Expr, grid: Grid) -> Result<String, EvalError> {
    match evaluator.eval(expr, grid)? {
        Evaluated::String(text) => Ok(text),
        _ => Err(EvalError::BadQuery("expected a string argument".into())),
    }
}

/// A label's value, `__name__` included; "" when absent.
fn get<'a>(key: &'a SeriesKey, name: &str) -> &'a str {
    if name == "__name__" {
        key.name.as_deref().unwrap_or("")
    } else {
        key.labels.get(name).unwrap_or("")
    }
}

/// Sets a label (`__name__` included); an empty value removes it.
fn set(key: &mut SeriesKey, name: &str, value: &str) {
    if name == "__name__" {
        key.name = (!value.is_empty()).then(|| value.to_string());
        return;
    }
    let kept = key.labels.iter().filter(|(n, _)| *n != name);
    key.labels = if value.is_empty() {
        Labels::from_pairs(kept)
    } else {
        Labels::from_pairs(kept.chain(std::iter::once((name, value))))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: Option<&str>, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            name: name.map(str::to_string),
            labels: Labels::from_pairs(labels.iter().copied()),
        }
    }

    #[test]
    fn set_and_get_cover_the_name() {
        let mut k = key(Some("up"), &[("job", "node")]);
        assert_eq!(get(&k, "__name__"), "up");
        assert_eq!(get(&k, "missing"), "");
        set(&mut k, "host", "a");
        set(&mut k, "job", "");
        assert_eq!(k, key(Some("up"), &[("host", "a")]));
        set(&mut k, "__name__", "");
        assert_eq!(k.name, None);
    }
}
