//! # promql — the query language, shared by the craft that evaluates it
//! and the craft that writes alerting rules in it
//!
//! Text in, a type-checked [`Expr`] out, and back again:
//!
//! ```text
//! "sum by (host) (rate(http_requests_total[5m]))"
//!        │ lexer.rs      tokens with byte spans
//!        ▼
//!   [sum] [by] [(] [host] [)] [(] [rate] [(] … [5m] []] [)] [)]
//!        │ parser.rs     precedence climbing + type checks (functions.rs)
//!        ▼
//!   Aggregate { sum, by [host], Call { rate, [Matrix { http_requests_total, 5m }] } }
//!        │ ast.rs        Display: the canonical text, parse(print(e)) == e
//!        ▼
//! "sum by (host) (rate(http_requests_total[5m]))"
//! ```
//!
//! phase0 can only answer "one name, one time range"; everything a
//! dashboard or an alerting rule asks needs a language first. Craft 4
//! (`craft4-query`) evaluates the tree over a `common::MetricStore`; craft
//! 5 (`craft5-alerting`) parses rule expressions and rule-file durations
//! with it. Supported: selectors with `=`, `!=`, `=~`, `!~`; ranges;
//! subqueries; `offset`; the functions of `functions.rs`; `sum avg min max
//! count stddev topk bottomk quantile` with `by` / `without`; arithmetic,
//! comparison (`bool`) and set operators (`and or unless`) with `on` /
//! `ignoring` and `group_left` / `group_right`. Not supported: the `@`
//! modifier (a clear error), quoted UTF-8 metric and label names
//! (Prometheus 3), and functions beyond the table. No parser generator and
//! no parser crate: the parser is the lesson.
//!
//! # Layout
//!
//! - `lexer.rs` — text to tokens with byte spans: numbers, durations,
//!   Go-escaped strings, `#` comments.
//! - `parser.rs` — tokens to [`Expr`] by precedence climbing, type-checking
//!   each node as it is built; nesting capped at [`MAX_DEPTH`].
//! - `ast.rs` — the tree, value types, operator precedence, and the
//!   canonical printer.
//! - `functions.rs` — the function table: argument types, optional
//!   arguments, result type.
//! - `duration.rs` — Prometheus durations (`1h30m`), parsed and printed in
//!   one place for queries and rule files alike.
//! - `error.rs` — [`ParseError`]: byte position, line, column, what was
//!   expected, what was found.
//!
//! The story is docs chapter 4, `docs/src/ch04-query.md`; the language
//! reference is `docs/src/query-language.md`.

pub mod ast;
pub mod duration;
pub mod error;
pub mod functions;
pub mod lexer;
pub mod parser;

pub use ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Expr, GroupModifier,
    Grouping, MatchingLabels, MatrixSelector, SubqueryExpr, ValueType, VectorMatching,
    VectorSelector, format_number, quote_string,
};
pub use duration::{DurationError, DurationProblem, format_duration, parse_duration};
pub use error::ParseError;
pub use functions::{FUNCTIONS, Function, lookup_function};
pub use parser::MAX_DEPTH;

/// Parses and type-checks a PromQL-style query.
///
/// `expr.to_string()` prints it back in canonical form, and parsing that
/// gives an equal tree.
///
/// # Errors
/// A [`ParseError`] with the byte position of the first problem, what was
/// expected there and what was found, e.g. `1:14: expected "]" after the
/// range duration, found ","`.
///
/// # Examples
/// ```
/// use promql::{parse, ValueType};
///
/// let expr = parse("sum by(job)(rate(http_requests_total{code=~'5..'}[5m]))").unwrap();
/// assert_eq!(expr.value_type(), ValueType::InstantVector);
/// assert_eq!(
///     expr.to_string(),
///     r#"sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))"#
/// );
///
/// let error = parse("rate(x[5m,").unwrap_err();
/// assert_eq!(error.position, 9);
/// assert_eq!(error.to_string(), r#"1:10: expected "]" after the range duration, found ",""#);
/// ```
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parser::parse_expression(input)
}
