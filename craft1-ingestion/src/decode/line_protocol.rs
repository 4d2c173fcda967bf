//! InfluxDB line protocol → metrics, the format Telegraf and every InfluxDB
//! client send:
//!
//! ```text
//! measurement,tag=v,tag2=w field=1.5,other=2i,up=true 1700000000000000000
//! ```
//!
//! One line carries several fields of one series, so a Telegraf batch of
//! 1,000 lines is often 5,000 samples in one request: the cheapest way in for
//! the agents that already exist. Parsing is the `influxdb-line-protocol`
//! crate's (the InfluxDB IOx parser); this module maps its model onto ours,
//! following Telegraf's Prometheus output so the same data gets the same
//! names whichever way it arrives:
//!
//! - each numeric or boolean field becomes one metric named
//!   `measurement_field`, except a field named `value`, which gives the
//!   measurement's name alone (`cpu_usage value=3` → `cpu_usage`);
//! - integers (`1i`), unsigned integers (`1u`) and floats are converted to
//!   `f64` (integers above 2^53 lose precision, as in Prometheus); booleans
//!   become 1 and 0;
//! - string fields are skipped: a metric value is a number. A line with only
//!   string fields yields no metric and no error, as Telegraf's Prometheus
//!   output drops them;
//! - tags become labels; a repeated tag keeps its last value;
//! - names that are not valid Prometheus names are repaired, not refused:
//!   every invalid character becomes `_` and a leading digit gets a `_`
//!   prefix (`cpu.usage` → `cpu_usage`, `1m` → `_1m`, `host-name` →
//!   `host_name`). Metric names keep `:`, label names do not allow it. Two
//!   tags repaired to the same name keep the last one;
//! - timestamps are converted from the request's [`Precision`] to
//!   milliseconds, rounding toward negative infinity; a line without one is
//!   stamped with the server's clock;
//! - blank lines and `#` comment lines are skipped, and a `\r` before the
//!   `\n` is tolerated (InfluxDB itself refuses it; being lenient costs
//!   nothing here).
//!
//! Errors name the line, counted from 1 as an editor does. The crate's own
//! messages for a malformed line are terse ("No fields were provided" for
//! `cpu value=abc`), so on that path a small diagnosis re-reads the line
//! and names the part at fault.
//!
//! The bottleneck this format keeps: it is the slowest of the four per
//! metric (`benches/parse.rs`), and more than half of that is the crate's
//! nom parser (a large `ParsedLine` copied through every combinator, an
//! allocation for each alternative a field value fails to match). A
//! hand-written single-pass parser is the next step if Telegraf traffic
//! dominates. Story: docs chapter 1.

use std::fmt;
use std::str::FromStr;

use common::{Labels, Metric};
use influxdb_line_protocol::{Error as ParseError, FieldValue, ParsedLine};

use super::{DecodeError, DecodeLimits, Position, accept};

/// The unit of line-protocol timestamps: the `precision` query parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// `ns` (InfluxDB's default; v1 also spells it `n`).
    #[default]
    Nanoseconds,
    /// `us` (v1: `u`, `µ`).
    Microseconds,
    /// `ms`.
    Milliseconds,
    /// `s`.
    Seconds,
    /// `m`: InfluxDB v1 only.
    Minutes,
    /// `h`: InfluxDB v1 only.
    Hours,
}

impl Precision {
    /// Reads a `precision` parameter: `ns`, `us`, `ms`, `s`, and InfluxDB
    /// v1's `n`, `u`, `µ`, `m` (minutes) and `h` (hours).
    ///
    /// # Errors
    /// [`DecodeError::InvalidPrecision`] naming the value.
    pub fn parse(text: &str) -> Result<Self, DecodeError> {
        match text {
            "ns" | "n" => Ok(Precision::Nanoseconds),
            "us" | "u" | "µ" | "µs" => Ok(Precision::Microseconds),
            "ms" => Ok(Precision::Milliseconds),
            "s" => Ok(Precision::Seconds),
            "m" => Ok(Precision::Minutes),
            "h" => Ok(Precision::Hours),
            other => Err(DecodeError::InvalidPrecision(other.to_string())),
        }
    }

    /// A timestamp in this unit as milliseconds, rounding toward negative
    /// infinity (so `-1` ns is `-1` ms, not `0`: the instant before the
    /// epoch stays before it); `None` when the result overflows `i64`.
    pub fn to_millis(self, timestamp: i64) -> Option<i64> {
        match self {
            Precision::Nanoseconds => Some(timestamp.div_euclid(1_000_000)),
            Precision::Microseconds => Some(timestamp.div_euclid(1_000)),
            Precision::Milliseconds => Some(timestamp),
            Precision::Seconds => timestamp.checked_mul(1_000),
            Precision::Minutes => timestamp.checked_mul(60_000),
            Precision::Hours => timestamp.checked_mul(3_600_000),
        }
    }
}

impl FromStr for Precision {
    type Err = DecodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Precision::parse(text)
    }
}

/// The canonical short form, `ns` … `h`.
impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
            Precision::Minutes => "m",
            Precision::Hours => "h",
        })
    }
}

/// Decodes a line-protocol body whose timestamps are in `precision`.
///
/// # Errors
/// - [`DecodeError::Malformed`] naming the line (from 1) for invalid UTF-8,
///   a line that does not parse, or a timestamp that overflows when
///   converted;
/// - [`DecodeError::Invalid`] or [`DecodeError::TooManyLabels`] for a metric
///   that breaks the rules (a timestamp before 1970, say);
/// - [`DecodeError::EmptyBatch`] when the body holds only blank and comment
///   lines.
pub fn decode_line_protocol(
    body: &[u8],
    precision: Precision,
    now_ms: i64,
    limits: &DecodeLimits,
) -> Result<Vec<Metric>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let before = &body[..e.valid_up_to()];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
        DecodeError::Malformed {
            at: Position::Line(line),
            reason: format!("invalid UTF-8 at column {}", column + 1),
        }
    })?;

    // Fast path: the crate's own loop over the whole body. It does not say
    // which line failed, so on any problem the body is decoded again line
    // by line, which names it: errors are rare, and this way a good body is
    // split once instead of twice (per-line parsing costs ~50% more). Two
    // characters send a body straight to the line-by-line path: `\r`, which
    // the crate refuses, and `#`, because the crate ends a comment at the
    // first newline even inside a quoted string, where our splitter (the
    // crate's own `split_lines`) does not, and both paths must agree.
    if !text.contains(['\r', '#'])
        && let Some(decoded) = decode_whole(text, precision, now_ms, limits)
    {
        return decoded;
    }
    decode_line_by_line(text, precision, now_ms, limits)
}

/// The body through one `parse_lines` pass; `None` on any error, for the
/// caller to find again with its line number.
fn decode_whole(
    text: &str,
    precision: Precision,
    now_ms: i64,
    limits: &DecodeLimits,
) -> Option<Result<Vec<Metric>, DecodeError>> {
    let mut metrics = Vec::new();
    let mut saw_data = false;
    for parsed in influxdb_line_protocol::parse_lines(text) {
        saw_data = true;
        // The position is a placeholder: an error here is discarded.
        push_line(
            &mut metrics,
            parsed.ok()?,
            Position::Line(0),
            precision,
            now_ms,
            limits,
        )
        .ok()?;
    }
    Some(if saw_data {
        Ok(metrics)
    } else {
        Err(DecodeError::EmptyBatch)
    })
}

/// Splits the body into lines ourselves, counting them, and parses each:
/// every error names its line. The reference behaviour; [`decode_whole`]
/// must agree with it on every body it accepts.
fn decode_line_by_line(
    text: &str,
    precision: Precision,
    now_ms: i64,
    limits: &DecodeLimits,
) -> Result<Vec<Metric>, DecodeError> {
    let mut metrics = Vec::new();
    let mut saw_data = false;
    let mut next_line_number = 1;
    // The crate's splitter, not `str::lines`: a quoted string field may hold
    // a newline, and then one logical line spans two physical ones.
    for raw in influxdb_line_protocol::split_lines(text) {
        let line_number = next_line_number;
        next_line_number += 1 + raw.bytes().filter(|b| *b == b'\n').count();

        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let content = line.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        saw_data = true;
        let at = Position::Line(line_number);
        // The line goes in untrimmed: the crate splits it again, and only
        // the same text splits the same way (leading spaces change how the
        // splitter reads quotes). So this yields exactly one parsed line;
        // the loop is there so that nothing could ever be dropped silently.
        for parsed in influxdb_line_protocol::parse_lines(line) {
            let parsed = parsed.map_err(|error| DecodeError::Malformed {
                at,
                reason: explain(&error, content),
            })?;
            push_line(&mut metrics, parsed, at, precision, now_ms, limits)?;
        }
    }
    if !saw_data {
        return Err(DecodeError::EmptyBatch);
    }
    Ok(metrics)
}

/// Turns one parsed line into one metric per numeric or boolean field.
fn push_line(
    metrics: &mut Vec<Metric>,
    line: ParsedLine<'_>,
    at: Position,
    precision: Precision,
    now_ms: i64,
    limits: &DecodeLimits,
) -> Result<(), DecodeError> {
    let timestamp_ms = match line.timestamp {
        None => now_ms,
        Some(timestamp) => precision.to_millis(timestamp).ok_or_else(|| {
            DecodeError::Malformed {
                at,
                reason: format!(
                    "timestamp {timestamp} in {precision} overflows a 64-bit count of milliseconds"
                ),
            }
        })?,
    };
    let mut measurement = metric_name(&line.series.measurement);
    let mut labels = match &line.series.tag_set {
        None => Labels::empty(),
        Some(tags) => Labels::from_pairs(
            tags.iter()
                .map(|(key, value)| (label_name(key), value.as_str().to_owned())),
        ),
    };
    // The last numeric field takes the line's name and labels instead of a
    // copy: with one field per line (Telegraf's usual shape) nothing is
    // cloned, and allocations are most of what decoding costs.
    let last = line
        .field_set
        .iter()
        .rposition(|(_, value)| !matches!(value, FieldValue::String(_)));
    for (index, (key, value)) in line.field_set.iter().enumerate() {
        let value = match value {
            FieldValue::F64(v) => *v,
            FieldValue::I64(v) => *v as f64,
            FieldValue::U64(v) => *v as f64,
            FieldValue::Boolean(v) => f64::from(u8::from(*v)),
            FieldValue::String(_) => continue,
        };
        let is_last = Some(index) == last;
        let name = if key.as_str() == "value" {
            if is_last {
                std::mem::take(&mut measurement)
            } else {
                measurement.clone()
            }
        } else {
            let mut name = String::with_capacity(measurement.len() + 1 + key.len());
            name.push_str(&measurement);
            name.push('_');
            push_sanitized(&mut name, key, is_metric_char);
            name
        };
        let labels = if is_last {
            std::mem::take(&mut labels)
        } else {
            labels.clone()
        };
        let metric = Metric {
            name,
            value,
            timestamp_ms,
            labels,
        };
        super::room_for_one_more(metrics.len(), limits)?;
        metrics.push(accept(metric, at, limits)?);
    }
    Ok(())
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `text` as a Prometheus metric name: invalid characters → `_`, a leading
/// digit prefixed with `_`.
fn metric_name(text: &str) -> String {
    sanitized(text, is_metric_char)
}

/// `text` as a Prometheus label name: as [`metric_name`], without `:`.
fn label_name(text: &str) -> String {
    sanitized(text, is_label_char)
}

fn sanitized(text: &str, allowed: fn(char) -> bool) -> String {
    // Almost every name is already valid: one scan and one copy.
    let leading_digit = text.starts_with(|c: char| c.is_ascii_digit());
    if !leading_digit && text.chars().all(allowed) {
        return text.to_owned();
    }
    let mut name = String::with_capacity(text.len() + 1);
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        name.push('_');
    }
    push_sanitized(&mut name, text, allowed);
    name
}

fn push_sanitized(name: &mut String, text: &str, allowed: fn(char) -> bool) {
    name.extend(text.chars().map(|c| if allowed(c) { c } else { '_' }));
}

/// A reason for a line the crate refused, naming the part at fault where the
/// crate's message is too vague to act on.
fn explain(error: &ParseError, line: &str) -> String {
    let vague = matches!(
        error,
        ParseError::FieldSetMissing
            | ParseError::CannotParseEntireLine { .. }
            | ParseError::TagSetMalformed
            | ParseError::GenericParsingError { .. }
    );
    if vague && let Some(reason) = diagnose(line) {
        return reason;
    }
    match error {
        ParseError::GenericParsingError { .. } => {
            "malformed line: expected `measurement[,tag=value…] field=value[,field=value…] [timestamp]`"
                .to_string()
        }
        other => other.to_string(),
    }
}

/// Re-reads a refused line section by section — series, fields, timestamp —
/// and names the first part that breaks the grammar. Only ever runs on a
/// line the crate already refused, so it may be simple; `None` when it finds
/// nothing to add to the crate's message.
fn diagnose(line: &str) -> Option<String> {
    let bytes = line.as_bytes();

    // The series: measurement then `,key=value` tags, up to the first
    // unescaped space.
    let Some(series_end) = find_unescaped(bytes, 0, |b| b == b' ' || b == b'\t') else {
        return Some(
            "expected a space and at least one field (`key=value`) after the measurement"
                .to_string(),
        );
    };
    if bytes[series_end] == b'\t' {
        return Some("expected a space, not a tab, after the measurement and tags".to_string());
    }
    let series = &line[..series_end];
    if let Some(first_comma) = find_unescaped(series.as_bytes(), 0, |b| b == b',') {
        for tag in split_unescaped(&series[first_comma + 1..], b',') {
            match find_unescaped(tag.as_bytes(), 0, |b| b == b'=') {
                None => return Some(format!("expected '=' after tag key {tag:?}")),
                Some(0) => return Some(format!("tag {tag:?} has an empty key")),
                Some(eq) if eq + 1 == tag.len() => {
                    return Some(format!("tag {:?} has an empty value", &tag[..eq]));
                }
                Some(_) => {}
            }
        }
    }

    // The fields: `key=value` pairs separated by commas; string values are
    // quoted and may hold spaces, commas and escaped quotes.
    let mut at = series_end;
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    if at == bytes.len() {
        return Some("expected at least one field (`key=value`) after the measurement".to_string());
    }
    loop {
        let Some(eq) = find_unescaped(bytes, at, |b| b == b'=' || b == b',' || b == b' ')
            .filter(|i| bytes[*i] == b'=')
        else {
            let end = find_unescaped(bytes, at, |b| b == b',' || b == b' ').unwrap_or(bytes.len());
            return Some(format!("expected '=' after field key {:?}", &line[at..end]));
        };
        let key = &line[at..eq];
        if key.is_empty() {
            return Some("a field has an empty key".to_string());
        }
        let value_start = eq + 1;
        let value_end = if bytes.get(value_start) == Some(&b'"') {
            let Some(close) = find_unescaped(bytes, value_start + 1, |b| b == b'"') else {
                return Some(format!("field {key:?}: unterminated string"));
            };
            close + 1
        } else {
            let end = find_unescaped(bytes, value_start, |b| b == b',' || b == b' ')
                .unwrap_or(bytes.len());
            let value = &line[value_start..end];
            if !is_field_value(value) {
                return Some(format!(
                    "field {key:?}: cannot read {value:?} as a float (1.5), integer (1i), \
                     unsigned integer (1u), boolean (true, false) or \"string\""
                ));
            }
            end
        };
        match bytes.get(value_end) {
            Some(b',') => at = value_end + 1,
            Some(b' ') => {
                at = value_end;
                break;
            }
            None => return None,
            Some(_) => {
                return Some(format!(
                    "field {key:?}: unexpected {:?} after its value",
                    &line[value_end..]
                ));
            }
        }
    }

    // The optional timestamp: an integer, then nothing but spaces.
    let timestamp = line[at..].trim_matches(' ');
    if timestamp.is_empty() {
        return None;
    }
    let digits = timestamp.strip_prefix('-').unwrap_or(timestamp);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "timestamp {timestamp:?} is not an integer (expected one field set, then an optional integer timestamp)"
        ));
    }
    None
}

/// Index of the first byte from `from` matching `wanted` that is not
/// escaped by a backslash.
fn find_unescaped(bytes: &[u8], from: usize, wanted: impl Fn(u8) -> bool) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if wanted(bytes[i]) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `text` split at unescaped `separator`s.
fn split_unescaped(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match find_unescaped(current.as_bytes(), 0, |b| b == separator) {
            Some(i) => {
                rest = Some(&current[i + 1..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// True for the unquoted field values line protocol defines: `-1.5`, `2e3`,
/// `7i`, `7u`, `t`, `FALSE`, …
fn is_field_value(value: &str) -> bool {
    const BOOLEANS: [&str; 10] = [
        "t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE",
    ];
    if BOOLEANS.contains(&value) {
        return true;
    }
    if let Some(digits) = value.strip_suffix('u') {
        return !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    }
    if let Some(integer) = value.strip_suffix('i') {
        let digits = integer.strip_prefix('-').unwrap_or(integer);
        return !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    }
    // -?digits(.digits)?([eE][+-]?digits)?
    let number = value.strip_prefix('-').unwrap_or(value);
    let (mantissa, exponent) = match number.find(['e', 'E']) {
        Some(i) => (&number[..i], Some(&number[i + 1..])),
        None => (number, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => all_digits(whole) && all_digits(fraction),
        None => all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| all_digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::metric::MAX_TIMESTAMP_MS;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_123;

    fn decode(body: &str) -> Result<Vec<Metric>, DecodeError> {
        decode_line_protocol(
            body.as_bytes(),
            Precision::Nanoseconds,
            NOW,
            &DecodeLimits::default(),
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn fields_become_metrics_named_after_measurement_and_field() {
        let metrics = decode(
            "cpu,host=a,region=eu usage=1.5,idle=2i,count=3u,up=true,down=F 1700000000000000000",
        )
        .unwrap();
        let tags = labels(&[("host", "a"), ("region", "eu")]);
        let expected: Vec<Metric> = [
            ("cpu_usage", 1.5),
            ("cpu_idle", 2.0),
            ("cpu_count", 3.0),
            ("cpu_up", 1.0),
            ("cpu_down", 0.0),
        ]
        .into_iter()
        .map(|(name, value)| Metric::new(name, value, 1_700_000_000_000).with_labels(tags.clone()))
        .collect();
        assert_eq!(metrics, expected);
    }

    #[test]
    fn a_field_named_value_gives_the_measurement_name() {
        let metrics = decode("cpu_usage,host=a value=85,max=100").unwrap();
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["cpu_usage", "cpu_usage_max"]);
        assert!(metrics.iter().all(|m| m.timestamp_ms == NOW));
    }

    #[test]
    fn string_fields_are_skipped_and_a_string_only_line_yields_nothing() {
        let metrics = decode("event message=\"disk, full\",code=3i\nevent message=\"hi\"").unwrap();
        assert_eq!(metrics, vec![Metric::new("event_code", 3.0, NOW)]);
    }

    #[test]
    fn escapes_are_undone_then_names_sanitized() {
        let metrics = decode(r"cpu\,x,host=a\ b value=1").unwrap();
        assert_eq!(
            metrics,
            vec![Metric::new("cpu_x", 1.0, NOW).with_labels(labels(&[("host", "a b")]))]
        );
        let metrics = decode(r"disk\ io,mount\=point=/a\,b value=1").unwrap();
        assert_eq!(
            metrics,
            vec![Metric::new("disk_io", 1.0, NOW).with_labels(labels(&[("mount_point", "/a,b")]))]
        );
    }

    #[test]
    fn invalid_names_are_repaired_as_telegraf_does() {
        let metrics =
            decode("cpu.usage,host-name=a,1zone=b,ns:x=c 5m=1,total.bytes=2,value=3,é=4").unwrap();
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu_usage_5m",
                "cpu_usage_total_bytes",
                "cpu_usage",
                "cpu_usage__"
            ]
        );
        assert_eq!(
            metrics[0].labels,
            labels(&[("host_name", "a"), ("_1zone", "b"), ("ns_x", "c")])
        );
        let metrics = decode("1m:load value=1").unwrap();
        assert_eq!(metrics[0].name, "_1m:load");
    }

    #[test]
    fn blank_comment_and_crlf_lines_are_tolerated() {
        let body = "# a comment\r\n\r\n  cpu value=1 1000000\r\n\t# indented comment\n\ncpu value=2 2000000\n";
        let metrics = decode(body).unwrap();
        assert_eq!(
            metrics,
            vec![Metric::new("cpu", 1.0, 1), Metric::new("cpu", 2.0, 2)]
        );
        assert_eq!(decode("# only\n\n   \n"), Err(DecodeError::EmptyBatch));
        // A quote in a comment opens a string for the line splitter, so the
        // comment runs on to the next line; whatever follows is not data.
        assert_eq!(
            decode("# a=\"x\ncpu v=1i,s=\"\""),
            Err(DecodeError::EmptyBatch)
        );
        assert_eq!(decode(""), Err(DecodeError::EmptyBatch));
    }

    #[test]
    fn precisions_convert_to_milliseconds() {
        let cases: [(Precision, i64, i64); 6] = [
            (
                Precision::Nanoseconds,
                1_700_000_000_123_456_789,
                1_700_000_000_123,
            ),
            (
                Precision::Microseconds,
                1_700_000_000_123_456,
                1_700_000_000_123,
            ),
            (
                Precision::Milliseconds,
                1_700_000_000_123,
                1_700_000_000_123,
            ),
            (Precision::Seconds, 1_700_000_000, 1_700_000_000_000),
            (Precision::Minutes, 2, 120_000),
            (Precision::Hours, 2, 7_200_000),
        ];
        for (precision, timestamp, millis) in cases {
            let body = format!("cpu value=1 {timestamp}");
            let metrics =
                decode_line_protocol(body.as_bytes(), precision, NOW, &DecodeLimits::default())
                    .unwrap();
            assert_eq!(metrics[0].timestamp_ms, millis, "{precision}");
        }
    }

    #[test]
    fn negative_timestamps_round_toward_negative_infinity() {
        assert_eq!(Precision::Nanoseconds.to_millis(-1), Some(-1));
        assert_eq!(Precision::Nanoseconds.to_millis(-1_000_000), Some(-1));
        assert_eq!(Precision::Nanoseconds.to_millis(-1_000_001), Some(-2));
        assert_eq!(Precision::Microseconds.to_millis(-1), Some(-1));
        assert_eq!(Precision::Microseconds.to_millis(999), Some(0));
        assert_eq!(Precision::Seconds.to_millis(-3), Some(-3_000));
        assert_eq!(Precision::Seconds.to_millis(i64::MAX), None);
        assert_eq!(Precision::Hours.to_millis(i64::MIN), None);
        // Before the epoch is then refused by the contract, naming the line.
        let err = decode("cpu value=1\ncpu value=1 -1").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2: timestamp -1 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn precision_parses_its_names_and_refuses_others() {
        for (text, precision) in [
            ("ns", Precision::Nanoseconds),
            ("n", Precision::Nanoseconds),
            ("us", Precision::Microseconds),
            ("u", Precision::Microseconds),
            ("ms", Precision::Milliseconds),
            ("s", Precision::Seconds),
            ("m", Precision::Minutes),
            ("h", Precision::Hours),
        ] {
            assert_eq!(Precision::parse(text), Ok(precision));
            assert_eq!(text.parse::<Precision>(), Ok(precision));
        }
        let err = Precision::parse("sec").unwrap_err();
        assert!(
            err.to_string().starts_with(r#"invalid precision "sec""#),
            "{err}"
        );
        assert_eq!(Precision::default().to_string(), "ns");
    }

    #[test]
    fn labels_limit_names_the_line() {
        let limits = DecodeLimits {
            max_labels_per_series: 2,
            ..DecodeLimits::default()
        };
        let body = b"cpu,a=1,b=2 value=1\ncpu,a=1,b=2,c=3 value=1";
        let err = decode_line_protocol(body, Precision::Nanoseconds, NOW, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: 3 labels, the limit is 2 per series"
        );
    }

    #[test]
    fn both_paths_agree_when_leading_spaces_change_the_split() {
        // Found by the property below: trimming a line before the crate
        // re-split it made the splitter read the quotes differently.
        let body = " =\\,\" \\,=t\n\"\"";
        let reference =
            decode_line_by_line(body, Precision::Seconds, NOW, &DecodeLimits::default());
        match decode_whole(body, Precision::Seconds, NOW, &DecodeLimits::default()) {
            Some(fast) => assert_eq!(fast, reference),
            None => assert!(reference.is_err(), "{reference:?}"),
        }
    }

    #[test]
    fn a_quoted_newline_does_not_shift_line_numbers() {
        let err = decode("log msg=\"two\nlines\",n=1i\ncpu value=1\ncpu value=x").unwrap_err();
        assert!(err.to_string().starts_with("line 4: "), "{err}");
    }

    #[test]
    fn bad_lines_name_line_and_reason() {
        let cases = [
            ("cpu", "line 1: expected a space and at least one field"),
            (
                "cpu,host=a",
                "line 1: expected a space and at least one field",
            ),
            (
                "cpu value",
                r#"line 1: expected '=' after field key "value""#,
            ),
            (
                "cpu value=1,idle",
                r#"line 1: expected '=' after field key "idle""#,
            ),
            ("cpu value=", r#"line 1: field "value": cannot read """#),
            (
                "cpu value=abc",
                r#"line 1: field "value": cannot read "abc" as a float"#,
            ),
            ("cpu value=1.", r#"line 1: field "value": cannot read "1.""#),
            (
                "cpu value=\"open",
                r#"line 1: field "value": unterminated string"#,
            ),
            (
                "cpu,host value=1",
                r#"line 1: expected '=' after tag key "host""#,
            ),
            (
                "cpu,host= value=1",
                r#"line 1: tag "host" has an empty value"#,
            ),
            ("cpu,=a value=1", r#"line 1: tag "=a" has an empty key"#),
            (
                "cpu value=1 abc",
                r#"line 1: timestamp "abc" is not an integer"#,
            ),
            (
                "cpu value=1 1 2",
                r#"line 1: timestamp "1 2" is not an integer"#,
            ),
            ("cpu\tvalue=1", "line 1: expected a space, not a tab"),
            ("cpu =1", "line 1: a field has an empty key"),
            (
                "cpu value=99999999999999999999i",
                "line 1: Unable to parse integer value '99999999999999999999'",
            ),
            (
                "cpu value=1 99999999999999999999",
                "line 1: Unable to parse timestamp value",
            ),
            (",host=a value=1", "line 1: Invalid measurement"),
            (
                "cpu value=1e999",
                "line 1: value inf is not a finite number",
            ),
            ("ok value=1\n\n# c\nbad", "line 4: expected a space"),
        ];
        for (body, expected) in cases {
            let err = decode(body).unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{body:?}: {err:?} does not start with {expected:?}"
            );
        }
        let err = decode_line_protocol(
            b"cpu value=1 1\nx value=1\xff",
            Precision::Seconds,
            NOW,
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "line 2: invalid UTF-8 at column 10");
        let err = decode_line_protocol(
            b"cpu value=1 300000000000",
            Precision::Seconds,
            NOW,
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1: timestamp 300000000000000 is out of range"),
            "{err}"
        );
        let err = decode_line_protocol(
            b"cpu value=1 9223372036854775807",
            Precision::Seconds,
            NOW,
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1: timestamp 9223372036854775807 in s overflows"),
            "{err}"
        );
    }

    /// A metric as Telegraf would write it, with `value` as the field and
    /// every special character escaped.
    fn to_line_protocol(metric: &Metric, precision: Precision) -> String {
        fn escape(text: &str, out: &mut String) {
            for c in text.chars() {
                if matches!(c, ',' | '=' | ' ' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        let mut line = String::new();
        escape(&metric.name, &mut line);
        for (name, value) in metric.labels.iter() {
            line.push(',');
            escape(name, &mut line);
            line.push('=');
            escape(value, &mut line);
        }
        let per_milli: i64 = match precision {
            Precision::Nanoseconds => 1_000_000,
            Precision::Microseconds => 1_000,
            _ => 1,
        };
        line.push_str(&format!(
            " value={} {}",
            metric.value,
            metric.timestamp_ms * per_milli
        ));
        line
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_line_protocol(&body, Precision::Nanoseconds, NOW, &DecodeLimits::default());
        }

        #[test]
        fn the_fast_path_agrees_with_the_line_by_line_one(body in r##"[a-c0-9 ,=\\".\-iutE\n\t]{0,60}"##) {
            // Bodies without `#` and `\r`, the ones the fast path takes. A
            // tight labels limit makes `accept` refuse some of them too.
            let limits = DecodeLimits { max_labels_per_series: 1, ..DecodeLimits::default() };
            let reference = decode_line_by_line(&body, Precision::Seconds, NOW, &limits);
            match decode_whole(&body, Precision::Seconds, NOW, &limits) {
                Some(fast) => prop_assert_eq!(fast, reference),
                None => prop_assert!(reference.is_err(), "fast path failed, reference {:?}", reference),
            }
        }

        #[test]
        fn line_shaped_noise_never_panics(body in r##"[a-z0-9 ,=\\"#.\-iuteE\n\r\t]{0,80}"##) {
            let _ = decode_line_protocol(body.as_bytes(), Precision::Seconds, NOW, &DecodeLimits::default());
        }

        #[test]
        fn metrics_round_trip_through_line_protocol(
            metrics in proptest::collection::vec(
                (
                    "[a-zA-Z_:][a-zA-Z0-9_:]{0,15}",
                    proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "[a-zA-Z0-9 ,=é.-]{1,8}"), 0..4),
                    any::<f64>().prop_filter("finite", |v| v.is_finite()),
                    0i64..9_000_000_000_000,
                ),
                1..10,
            ),
            precision in prop_oneof![
                Just(Precision::Nanoseconds),
                Just(Precision::Microseconds),
                Just(Precision::Milliseconds),
            ],
        ) {
            let metrics: Vec<Metric> = metrics
                .into_iter()
                .map(|(name, pairs, value, ts)| {
                    Metric::new(name, value, ts.min(MAX_TIMESTAMP_MS))
                        .with_labels(Labels::from_pairs(pairs))
                })
                .filter(|m| m.labels.iter().all(|(n, _)| !n.starts_with("__")))
                .collect();
            let body: Vec<String> = metrics.iter().map(|m| to_line_protocol(m, precision)).collect();
            let body = body.join("\n");
            if metrics.is_empty() {
                return Ok(());
            }
            let decoded = decode_line_protocol(body.as_bytes(), precision, NOW, &DecodeLimits::default());
            prop_assert_eq!(decoded, Ok(metrics), "{}", body);
        }
    }
}
