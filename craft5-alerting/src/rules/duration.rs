//! Durations as rule files write them: Prometheus' `1h30m`, `5m`, `90s`,
//! `500ms`, `1d`, `1w`, `1y`, and `0`.
//!
//! `common::duration::parse_duration` reads command-line flags (`1.5s`, a
//! bare number of seconds, capped at a week). Rule files follow Prometheus
//! instead, so a rule copied from a Prometheus setup loads unchanged: whole
//! numbers only, units from largest to smallest, each at most once. The
//! result is in milliseconds, the unit the windows and the state machine
//! count in. Docs chapter 5, "The rule file".

/// The units, largest first, with their length in ms. Prometheus fixes a
/// day at 24 h, a week at 7 days and a year at 365 days.
const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a Prometheus duration into milliseconds.
///
/// # Errors
/// A message naming the text and the accepted form, e.g.
/// `invalid duration "5x": expected a whole number and a unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h30m`.
pub fn parse_prometheus_duration(text: &str) -> Result<i64, String> {
    let error = || {
        format!(
            "invalid duration {text:?}: expected a whole number and a unit \
             (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h30m"
        )
    };
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(error());
    }
    let mut rest = text;
    let mut total: i64 = 0;
    // Units must appear largest first; `next_unit` is the index of the
    // largest unit still allowed.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(error());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| error())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let position = UNITS[next_unit..]
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(|| {
                if UNITS.iter().any(|(name, _)| *name == unit) {
                    format!("invalid duration {text:?}: units must go from largest to smallest, each once")
                } else {
                    error()
                }
            })?;
        let (_, unit_ms) = UNITS[next_unit + position];
        next_unit += position + 1;
        total = number
            .checked_mul(unit_ms)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("invalid duration {text:?}: too long"))?;
    }
    Ok(total)
}

/// The shortest Prometheus form of `ms`: `1h30m`, `90s` prints as `1m30s`,
/// `0s` for zero. The inverse of [`parse_prometheus_duration`].
pub fn format_prometheus_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_string();
    }
    let mut rest = ms;
    let mut text = String::new();
    // Years and weeks print as days: `1w` reads back fine as `7d`, and
    // nobody expects `52w1d`.
    for (name, unit_ms) in UNITS.iter().skip(2) {
        if rest >= *unit_ms {
            text.push_str(&format!("{}{name}", rest / unit_ms));
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
        assert_eq!(parse_prometheus_duration("0"), Ok(0));
        assert_eq!(parse_prometheus_duration("0s"), Ok(0));
        assert_eq!(parse_prometheus_duration("500ms"), Ok(500));
        assert_eq!(parse_prometheus_duration("60s"), Ok(60_000));
        assert_eq!(parse_prometheus_duration("5m"), Ok(300_000));
        assert_eq!(parse_prometheus_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_prometheus_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_prometheus_duration("1w"), Ok(604_800_000));
        assert_eq!(parse_prometheus_duration("1m30s500ms"), Ok(90_500));
    }

    #[test]
    fn bad_forms_are_named() {
        for bad in [
            "5x", "", "5", "1.5s", "-1m", "m", "5m1h", "1s1s", " 5m", "5m ",
        ] {
            let err = parse_prometheus_duration(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(
            parse_prometheus_duration("5m1h")
                .unwrap_err()
                .contains("largest to smallest")
        );
        assert!(
            parse_prometheus_duration("99999999999999y")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn format_round_trips() {
        for ms in [
            0,
            1,
            500,
            1_000,
            60_000,
            90_500,
            5_400_000,
            86_400_000,
            604_800_000,
        ] {
            let text = format_prometheus_duration(ms);
            assert_eq!(parse_prometheus_duration(&text), Ok(ms), "{text}");
        }
        assert_eq!(format_prometheus_duration(90_000), "1m30s");
    }
}
