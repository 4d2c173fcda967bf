//! `ParseError`: what every stage of the front end returns when a query is
//! malformed — the byte position, what was expected there, and what was
//! found instead.
//!
//! Prometheus answers a bad query with `1:14: parse error: unexpected ","`;
//! a learner gets further with *what would have been right*, so every error
//! here names the expectation (`1:14: expected "]" after the range
//! duration, found ","`). The lexer, the parser and the type checker all
//! speak this one type, so the HTTP layer has one thing to turn into a 400.
//! Docs: `docs/src/ch04-query.md`, "Errors that teach".

use thiserror::Error;

/// A query that does not parse or does not type-check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Byte offset into the query where the problem starts.
    pub position: usize,
    /// 1-based line of `position`, for the message.
    pub line: usize,
    /// 1-based column of `position`, counted in characters, for the message.
    pub column: usize,
    /// What would have been valid here (`"]" after the range duration`).
    pub expected: String,
    /// What the query has instead (`","`, `end of input`, `instant vector`).
    pub found: String,
}

impl ParseError {
    /// An error at byte `position` of `input`; line and column are worked
    /// out here so callers deal only in byte offsets.
    pub fn new(
        input: &str,
        position: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        let position = position.min(input.len());
        // Positions come from token boundaries, which are char boundaries;
        // `get` keeps a wrong one from panicking all the same.
        let before = input.get(..position).unwrap_or(input);
        let line = 1 + before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = 1 + before[line_start..].chars().count();
        ParseError {
            position,
            line,
            column,
            expected: expected.into(),
            found: found.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_line_column_expectation_and_finding() {
        let error = ParseError::new("rate(x[5m,", 9, "\"]\" after the range duration", "\",\"");
        assert_eq!(error.line, 1);
        assert_eq!(error.column, 10);
        assert_eq!(
            error.to_string(),
            "1:10: expected \"]\" after the range duration, found \",\""
        );
    }

    #[test]
    fn later_lines_count_columns_in_characters() {
        let error = ParseError::new("x +\n  é + ]", 11, "an expression", "\"]\"");
        assert_eq!((error.line, error.column), (2, 7));
    }

    #[test]
    fn positions_past_the_end_are_clamped() {
        let error = ParseError::new("ab", 99, "x", "y");
        assert_eq!((error.position, error.column), (2, 3));
    }
}
