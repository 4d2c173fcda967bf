//! Prometheus durations — `5m`, `1h30m`, `1d`, `500ms` — read and printed
//! in one place. The lexer reads them inside queries (`x[5m]`, `offset
//! 1h`), the printer writes them back, and craft 5 reads a rule file's
//! `for:` and `interval:` with the same two functions, so a rule's `for:
//! 1h30m` and a query's `[1h30m]` cannot mean different things.
//!
//! The grammar is Prometheus' `model.ParseDuration`: one or more whole
//! numbers each followed by a unit — `ms s m h d w y`, a day being 24 h, a
//! week 7 days, a year 365 days — units from largest to smallest, each at
//! most once; or a bare `0`. Not `1.5m`, not `30` without a unit, not
//! `5m1h`. Values are milliseconds in an `i64`, the unit of the store's
//! `TimeRange`; anything longer (about 292 million years) is refused rather
//! than wrapped. Docs: `docs/src/ch04-query.md`, "The lexer".

use std::fmt::Write as _;

use thiserror::Error;

/// The units, largest first, with their length in ms. The index is the
/// unit's rank: a later unit in `1h30m` must have a higher one.
pub const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// What is wrong with a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationProblem {
    /// Not `(whole number, unit)+`: `5x`, `1.5s`, `30`, ``.
    Malformed,
    /// Units repeated or smaller before larger: `5m1h`, `1s1s`.
    OutOfOrder,
    /// More milliseconds than an `i64` holds.
    TooLong,
}

impl DurationProblem {
    /// What would have been right, as the lexer's and the rule loader's
    /// messages say it after "expected".
    pub fn expected(self) -> &'static str {
        match self {
            DurationProblem::Malformed => {
                "a whole number and a unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h30m"
            }
            DurationProblem::OutOfOrder => {
                "duration units from largest to smallest, each at most once (like 1h30m)"
            }
            DurationProblem::TooLong => "a duration of at most 292 million years",
        }
    }
}

/// A text that is not a Prometheus duration; the message names it and the
/// accepted form: `invalid duration "5x": expected a whole number and a
/// unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h30m`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid duration {text:?}: expected {}", problem.expected())]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub problem: DurationProblem,
}

/// Parses a whole text as a Prometheus duration, in milliseconds.
///
/// # Errors
/// A [`DurationError`] naming the text and what is wrong with it.
///
/// # Examples
/// ```
/// use promql::{format_duration, parse_duration};
///
/// assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
/// assert_eq!(parse_duration("0"), Ok(0));
/// assert_eq!(format_duration(5_400_000), "1h30m");
/// assert!(parse_duration("5m1h").unwrap_err().to_string().contains("largest to smallest"));
/// ```
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    if text == "0" {
        return Ok(0);
    }
    let error = |problem| DurationError {
        text: text.to_string(),
        problem,
    };
    match scan_duration(text) {
        Some((end, value)) if end == text.len() => value.map_err(error),
        _ => Err(error(DurationProblem::Malformed)),
    }
}

/// Reads the longest run of `(digits, unit)` at the start of `text`: `None`
/// when `text` does not start with one, otherwise how many bytes it spans
/// and its value (or why it has none). What follows the run is the
/// caller's business — the lexer refuses `5m30` and `5mx` as literals that
/// run into more characters.
pub fn scan_duration(text: &str) -> Option<(usize, Result<i64, DurationProblem>)> {
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut total: Option<i64> = Some(0);
    let mut previous_rank: Option<usize> = None;
    let mut in_order = true;
    loop {
        let digits = bytes[index..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            break;
        }
        let Some(rank) = unit_at(&bytes[index + digits..]) else {
            break;
        };
        let (name, unit_ms) = UNITS[rank];
        // Too many digits for an i64 is as much an overflow as the product.
        let count: Option<i64> = text[index..index + digits].parse().ok();
        total = total
            .zip(count)
            .and_then(|(sum, count)| sum.checked_add(count.checked_mul(unit_ms)?));
        if previous_rank.is_some_and(|previous| previous >= rank) {
            in_order = false;
        }
        previous_rank = Some(rank);
        index += digits + name.len();
    }
    previous_rank?;
    let value = if !in_order {
        Err(DurationProblem::OutOfOrder)
    } else {
        total.ok_or(DurationProblem::TooLong)
    };
    Some((index, value))
}

/// The rank of the unit `rest` starts with; `ms` before `m`, the longer
/// unit wins.
fn unit_at(rest: &[u8]) -> Option<usize> {
    if rest.starts_with(b"ms") {
        return Some(UNITS.len() - 1);
    }
    UNITS
        .iter()
        .position(|(name, _)| name.len() == 1 && rest.starts_with(name.as_bytes()))
}

/// A duration in milliseconds as Prometheus' `model.Duration` prints it:
/// largest units first, but years and weeks only when they divide exactly
/// (`90d` reads better than `12w6d`); `0s` for zero, a leading `-` for
/// negative offsets. `parse_duration(&format_duration(ms)) == Ok(ms)` for
/// every `ms >= 0`.
pub fn format_duration(milliseconds: i64) -> String {
    if milliseconds == 0 {
        return "0s".to_string();
    }
    let mut text = String::new();
    if milliseconds < 0 {
        text.push('-');
    }
    let mut rest = milliseconds.unsigned_abs();
    for (rank, (name, unit_ms)) in UNITS.into_iter().enumerate() {
        let unit_ms = unit_ms.unsigned_abs();
        let exact_only = rank < 2;
        if exact_only && !rest.is_multiple_of(unit_ms) {
            continue;
        }
        let count = rest / unit_ms;
        if count > 0 {
            let _ = write!(text, "{count}{name}");
            rest %= unit_ms;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_forms() {
        for (text, ms) in [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("60s", 60_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("1m30s500ms", 90_500),
            ("1y2w3d", 33_004_800_000),
        ] {
            assert_eq!(parse_duration(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn bad_forms_are_named() {
        for (bad, problem) in [
            ("5x", DurationProblem::Malformed),
            ("", DurationProblem::Malformed),
            ("5", DurationProblem::Malformed),
            ("1.5s", DurationProblem::Malformed),
            ("-1m", DurationProblem::Malformed),
            ("m", DurationProblem::Malformed),
            (" 5m", DurationProblem::Malformed),
            ("5m ", DurationProblem::Malformed),
            ("5m30", DurationProblem::Malformed),
            ("5m1h", DurationProblem::OutOfOrder),
            ("1s1s", DurationProblem::OutOfOrder),
            ("99999999999999y", DurationProblem::TooLong),
            ("99999999999999999999s", DurationProblem::TooLong),
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err.problem, problem, "{bad}");
            assert!(
                err.to_string().contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "invalid duration \"5x\": expected a whole number and a unit \
             (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h30m"
        );
    }

    #[test]
    fn scan_stops_where_the_duration_does() {
        assert_eq!(scan_duration("5m]"), Some((2, Ok(300_000))));
        assert_eq!(scan_duration("1h30m:1m"), Some((5, Ok(5_400_000))));
        assert_eq!(scan_duration("5m30"), Some((2, Ok(300_000))));
        assert_eq!(scan_duration("100ms"), Some((5, Ok(100))));
        assert_eq!(scan_duration("5"), None);
        assert_eq!(scan_duration("x5m"), None);
    }

    #[test]
    fn printing_is_largest_units_first_weeks_and_years_only_exact() {
        for (ms, text) in [
            (0, "0s"),
            (1, "1ms"),
            (100, "100ms"),
            (90_000, "1m30s"),
            (300_000, "5m"),
            (5_400_000, "1h30m"),
            (86_400_000, "1d"),
            (604_800_000, "1w"),
            (691_200_000, "8d"),
            (31_536_000_000, "1y"),
            (33_004_800_000, "382d"),
            (61_001, "1m1s1ms"),
            (-300_000, "-5m"),
        ] {
            assert_eq!(format_duration(ms), text, "{ms}");
        }
        assert!(format_duration(i64::MIN).starts_with('-'));
    }

    #[test]
    fn printing_round_trips() {
        for ms in [
            0,
            1,
            500,
            1_000,
            90_500,
            5_400_000,
            691_200_000,
            33_004_800_000,
            i64::MAX,
        ] {
            let text = format_duration(ms);
            assert_eq!(parse_duration(&text), Ok(ms), "{text}");
        }
    }
}
