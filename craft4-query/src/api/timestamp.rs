//! Times and durations as the Prometheus HTTP API reads them: a timestamp
//! is unix seconds (`1700000000.123`) or RFC 3339 (`2023-11-14T22:13:20Z`,
//! with fractional seconds and offsets); a duration is float seconds (`15`,
//! `0.5`) or a Prometheus duration (`1m30s`).
//!
//! The bottleneck it removes: phase0's `/query` takes integer milliseconds
//! only, which no Prometheus client sends; promtool and Grafana send float
//! seconds, people type RFC 3339. The rules and error messages follow
//! Prometheus' `web/api/v1` (`parseTime`, `parseDuration`) so a client sees
//! the answers it already knows. Docs chapter 4, "Speaking Prometheus".
//!
//! Hand-written rather than a date crate: Go's `time.RFC3339Nano` layout is
//! one fixed shape, and forty lines say exactly which strings it accepts.

use crate::civil::{days_from_civil, days_in_month};

/// Prometheus' earliest time (`v1.MinTime`) in ms: what an absent `start`
/// means. Not `i64::MIN`, so arithmetic on it (minus a lookback, minus a
/// range) cannot overflow.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;

/// Prometheus' latest time (`v1.MaxTime`) in ms: what an absent `end` means.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// How Go prints `MinTime` and `MaxTime` in RFC 3339; client libraries send
/// these for "no bound", and Go's parser cannot read 9-digit years.
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";

/// Parses a timestamp to milliseconds since the epoch.
///
/// # Errors
/// Prometheus' message, `cannot parse "abc" to a valid timestamp`.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        // Prometheus rounds the fraction to the millisecond. Infinities and
        // NaN name no time; Go would turn them into garbage, we refuse them.
        if seconds.is_finite() {
            let whole = seconds.trunc();
            let fraction_ms = ((seconds - whole) * 1000.0).round();
            // `as` saturates; the clamp keeps later arithmetic in range.
            let ms = (whole as i64)
                .saturating_mul(1000)
                .saturating_add(fraction_ms as i64);
            return Ok(ms.clamp(MIN_TIME_MS, MAX_TIME_MS));
        }
    } else if let Some(ms) = parse_rfc3339(text) {
        return Ok(ms);
    } else if text == MIN_TIME_TEXT {
        return Ok(MIN_TIME_MS);
    } else if text == MAX_TIME_TEXT {
        return Ok(MAX_TIME_MS);
    }
    Err(format!("cannot parse {text:?} to a valid timestamp"))
}

/// Parses a duration to milliseconds: float seconds first, then a
/// Prometheus duration (`1h30m`, `500ms`). Negative and zero values parse
/// (callers decide what they mean, as Prometheus' handlers do).
///
/// # Errors
/// Prometheus' message, `cannot parse "abc" to a valid duration`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        // Go goes through nanoseconds and truncates twice (to ns, then to
        // ms in the engine); doing the same gives the same milliseconds for
        // every input. NaN becomes 0, which callers refuse as non-positive.
        let nanoseconds = seconds * 1e9;
        if nanoseconds >= i64::MAX as f64 || nanoseconds <= i64::MIN as f64 {
            return Err(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(nanoseconds as i64 / 1_000_000);
    }
    // Otherwise the query language's durations (`1h30m`, units largest
    // first), the whole text.
    promql::parse_duration(text).map_err(|_| format!("cannot parse {text:?} to a valid duration"))
}

/// Go's `time.RFC3339Nano` layout, `2006-01-02T15:04:05.999999999Z07:00`:
/// four-digit year, `T`, optional fraction (`.` or `,`, any number of
/// digits, truncated to the millisecond as Prometheus does), `Z` or
/// `±hh:mm`. Fields are range-checked, so `2023-02-30` is refused.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = bytes.get(range)?;
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, expected)| bytes.get(at) != Some(&expected))
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction_ms = 0;
    if let Some(after) = rest.strip_prefix(['.', ',']) {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // The first three digits are the milliseconds; the rest is truncated.
        fraction_ms = after
            .bytes()
            .take(digits.min(3))
            .enumerate()
            .fold(0, |acc, (i, d)| acc + i64::from(d - b'0') * [100, 10, 1][i]);
        rest = &after[digits..];
    }
    let offset_seconds = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: &u8, b: &u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (hours, minutes) = (two(h1, h2)?, two(m1, m2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1000 + fraction_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_round_to_the_millisecond() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("1700000000.1236"), Ok(1_700_000_000_124));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert_eq!(parse_time("1e300"), Ok(MAX_TIME_MS));
        assert_eq!(parse_time("-1e300"), Ok(MIN_TIME_MS));
    }

    #[test]
    fn rfc3339_with_fractions_and_offsets() {
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123456789Z"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(parse_time("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000_500));
        assert_eq!(
            parse_time("2023-11-15T00:13:20+02:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T16:43:20-05:30"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("1969-12-31T23:59:59.5Z"), Ok(-500));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        assert_eq!(parse_time(MIN_TIME_TEXT), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
    }

    #[test]
    fn bad_timestamps_use_prometheus_words() {
        for bad in [
            "",
            "abc",
            "NaN",
            "inf",
            "2023-11-14",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0200",
            "2023-11-14T22:13:20Zjunk",
            "2023-11-14T22:13:2é",
        ] {
            assert_eq!(
                parse_time(bad),
                Err(format!("cannot parse {bad:?} to a valid timestamp")),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_as_seconds_or_prometheus_units() {
        assert_eq!(parse_duration_ms("15"), Ok(15_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("0.0015"), Ok(1), "truncated, as in Go");
        assert_eq!(parse_duration_ms("15s"), Ok(15_000));
        assert_eq!(parse_duration_ms("1m"), Ok(60_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("100ms"), Ok(100));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert_eq!(parse_duration_ms("-5"), Ok(-5000));
        assert_eq!(parse_duration_ms("NaN"), Ok(0));
        for bad in [
            "",
            "abc",
            "5x",
            " 5m",
            "5m ",
            "5m # comment",
            "30m1h",
            "1.5m",
        ] {
            assert_eq!(
                parse_duration_ms(bad),
                Err(format!("cannot parse {bad:?} to a valid duration")),
                "{bad}"
            );
        }
        assert!(parse_duration_ms("1e12").unwrap_err().contains("overflows"));
    }
}
