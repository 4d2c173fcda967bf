//! `parse_duration`: the one way every binary reads a duration from a flag —
//! `10s`, `500ms`, `2m`, `1h`, `1.5s`, or a bare number of seconds.
//!
//! Bounded to a week, so no flag can produce an `Instant` overflow (a panic)
//! deep inside a component.

use std::time::Duration;

/// Longest duration any flag accepts.
pub const MAX_FLAG_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses `10s`, `500ms`, `2m`, `1h`, `1.5s` or a bare number of seconds;
/// zero is allowed (callers that need a positive value check it).
///
/// # Errors
/// A message naming the text and the accepted forms.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let text = raw.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(duration_error(raw)),
    };
    let value: f64 = number.parse().map_err(|_| duration_error(raw))?;
    let duration =
        Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| duration_error(raw))?;
    if duration > MAX_FLAG_DURATION {
        return Err(format!("duration '{raw}' is longer than the 7-day maximum"));
    }
    Ok(duration)
}

/// As [`parse_duration`], refusing zero.
///
/// # Errors
/// As [`parse_duration`], or zero.
pub fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    let duration = parse_duration(raw)?;
    if duration.is_zero() {
        return Err(format!("duration '{raw}' must be greater than zero"));
    }
    Ok(duration)
}

fn duration_error(raw: &str) -> String {
    format!("invalid duration '{raw}': expected e.g. 10s, 500ms, 2m or a bare number of seconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 0.25 "), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_values_are_named() {
        for bad in ["abc", "5y", "-1s", "", "1e3s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        assert!(
            parse_duration("4000000000000000h")
                .unwrap_err()
                .contains("7-day")
        );
        assert!(parse_duration("8d").is_err());
        assert!(
            parse_positive_duration("0s")
                .unwrap_err()
                .contains("greater than zero")
        );
    }
}
