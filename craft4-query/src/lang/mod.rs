//! The query language front end: text in, a type-checked [`Expr`] out.
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
//! The bottleneck it removes: phase0 can only answer "one name, one time
//! range"; everything a dashboard asks needs a language first. Supported
//! (the reference is docs chapter 4): selectors with `=`, `!=`, `=~`,
//! `!~`; ranges; subqueries; `offset`; the functions of `functions.rs`;
//! `sum avg min max count stddev topk bottomk quantile` with `by` /
//! `without`; arithmetic, comparison (`bool`) and set operators (`and or
//! unless`) with `on` / `ignoring` and `group_left` / `group_right`.
//! Not supported: the `@` modifier (a clear error), quoted UTF-8 metric and
//! label names (Prometheus 3), and functions beyond the table.

pub mod ast;
pub mod error;
pub mod functions;
pub mod lexer;
pub mod parser;

pub use ast::{
    AggregateExpr, AggregateOp, BinaryExpr, BinaryOp, Call, Expr, GroupModifier, Grouping,
    MatchingLabels, MatrixSelector, SubqueryExpr, ValueType, VectorMatching, VectorSelector,
    format_duration, format_number, quote_string,
};
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
/// use craft4_query::lang::{parse, ValueType};
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
