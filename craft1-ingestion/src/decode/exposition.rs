//! The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text →
//! metrics and their metadata: what every exporter answers on `/metrics`,
//! and so what a scrape reads.
//!
//! ```text
//! # HELP http_requests_total Requests served.
//! # TYPE http_requests_total counter
//! http_requests_total{code="200",path="/a"} 1027 1700000000000
//! http_requests_total{code="500",path="/a"} 3
//! ```
//!
//! One pass over the body, line by line, with no allocation but the
//! metric's own strings: a line is split by hand into the name, the label
//! set (values unescaped only when they hold a backslash), the value and
//! the optional timestamp. Hand-written because the format is the lesson:
//! a scrape of node_exporter is ~2,000 such lines every 15 s per target,
//! and the parser is the part of a scrape that costs per sample.
//!
//! The two formats differ in a few places, each handled where it appears:
//!
//! | | text 0.0.4 | OpenMetrics 1.0 |
//! |---|---|---|
//! | timestamps | integer milliseconds | float seconds |
//! | metadata | `# HELP`, `# TYPE` | also `# UNIT` |
//! | end | the end of the body | a `# EOF` line, required, last |
//! | exemplars | — | `… value [ts] # {labels} value [ts]`, skipped (not stored) |
//!
//! Rules: the body is refused whole at its first bad line, naming it
//! (`line 7: …`); a sample without a timestamp takes the scrape's time;
//! NaN, `+Inf`, `-Inf` are values like any other; a label name given twice
//! is refused; other comments are ignored. An empty text body is a target
//! with nothing to expose: zero metrics, not an error. Docs chapter 1.

use std::borrow::Cow;
use std::collections::HashMap;

use common::{Labels, Metric, MetricMetadata, MetricType};

use super::remote_write::FamilyMetadata;
use super::{DecodeError, DecodeLimits, Position, accept};

/// Which of the two text formats a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpositionFormat {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl ExpositionFormat {
    /// What a scraper sends as `Accept`, in Prometheus' order of preference:
    /// OpenMetrics first, then the text format, then anything.
    pub const ACCEPT: &'static str = "application/openmetrics-text;version=1.0.0;q=0.5,\
         application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    /// The format a response's `Content-Type` names; the text format for
    /// anything else, as Prometheus falls back to it.
    pub fn from_content_type(content_type: &str) -> ExpositionFormat {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            ExpositionFormat::OpenMetrics
        } else {
            ExpositionFormat::Prometheus
        }
    }
}

/// A parsed exposition: the samples, and each family's type, help and
/// unit in the order the body first names them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    /// One metric per sample line.
    pub metrics: Vec<Metric>,
    /// `(family name, metadata)` per family with a `HELP`, `TYPE` or `UNIT`.
    pub metadata: Vec<FamilyMetadata>,
}

/// Parses `body`; samples without a timestamp get `default_timestamp_ms`.
///
/// # Errors
/// [`DecodeError::Malformed`] naming the first bad line (bad UTF-8, a
/// name, label set, value or timestamp that does not parse, an unknown
/// type, a label given twice, OpenMetrics without `# EOF` or with lines
/// after it); [`DecodeError::Invalid`] / [`DecodeError::TooManyLabels`]
/// for a sample that breaks the metric rules;
/// [`DecodeError::TooManySamples`] past the limit.
pub fn decode_exposition(
    body: &[u8],
    format: ExpositionFormat,
    default_timestamp_ms: i64,
    limits: &DecodeLimits,
) -> Result<Exposition, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        let line = 1 + body[..error.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        malformed(line, "the body is not UTF-8".into())
    })?;
    let mut exposition = Exposition::default();
    let mut families: HashMap<String, usize> = HashMap::new();
    let mut ended = false;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if ended {
            // Only the newline that ends `# EOF` itself may follow it.
            if line.is_empty() && number == text.split('\n').count() {
                continue;
            }
            return Err(malformed(number, "a line after # EOF".into()));
        }
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            match metadata_line(comment, format).map_err(|reason| malformed(number, reason))? {
                Comment::Eof => ended = true,
                Comment::Other => {}
                Comment::Metadata { family, field } => {
                    let slot = *families.entry(family.to_string()).or_insert_with(|| {
                        exposition
                            .metadata
                            .push((family.to_string(), MetricMetadata::default()));
                        exposition.metadata.len() - 1
                    });
                    let entry = &mut exposition.metadata[slot].1;
                    match field {
                        Field::Help(help) => entry.help = help,
                        Field::Type(kind) => entry.metric_type = kind,
                        Field::Unit(unit) => entry.unit = unit,
                    }
                }
            }
            continue;
        }
        if exposition.metrics.len() >= limits.max_samples_per_request {
            return Err(DecodeError::TooManySamples {
                limit: limits.max_samples_per_request,
            });
        }
        let metric = sample_line(trimmed, format, default_timestamp_ms)
            .map_err(|reason| malformed(number, reason))?;
        exposition
            .metrics
            .push(accept(metric, Position::Line(number), limits)?);
    }
    if format == ExpositionFormat::OpenMetrics && !ended {
        return Err(malformed(
            text.split('\n').count(),
            "no # EOF: an OpenMetrics body ends with it (a truncated scrape?)".into(),
        ));
    }
    Ok(exposition)
}

fn malformed(line: usize, reason: String) -> DecodeError {
    DecodeError::Malformed {
        at: Position::Line(line),
        reason,
    }
}

/// What a `#` line says.
enum Comment<'a> {
    Metadata { family: &'a str, field: Field },
    Eof,
    Other,
}

enum Field {
    Help(String),
    Type(MetricType),
    Unit(String),
}

/// `comment` is the line after its `#`.
fn metadata_line(comment: &str, format: ExpositionFormat) -> Result<Comment<'_>, String> {
    let open_metrics = format == ExpositionFormat::OpenMetrics;
    if open_metrics && comment == " EOF" {
        return Ok(Comment::Eof);
    }
    let rest = comment.trim_start_matches([' ', '\t']);
    let (keyword, rest) = split_blank(rest);
    let field = match keyword {
        "HELP" | "TYPE" => keyword,
        "UNIT" if open_metrics => keyword,
        _ => return Ok(Comment::Other),
    };
    let (family, rest) = split_blank(rest);
    if !is_metric_name(family) {
        return Err(format!("a metric name after # {field}, found {family:?}"));
    }
    let field = match field {
        "HELP" => Field::Help(unescape(rest, open_metrics).into_owned()),
        "TYPE" => {
            let word = rest.trim_end_matches([' ', '\t']);
            let kind = match (word, open_metrics) {
                ("untyped", false) | ("unknown", true) => MetricType::Unknown,
                ("counter" | "gauge" | "histogram" | "summary", _) => {
                    MetricType::parse(word).unwrap_or_default()
                }
                ("gaugehistogram" | "info" | "stateset", true) => {
                    MetricType::parse(word).unwrap_or_default()
                }
                _ => {
                    return Err(format!(
                        "a metric type after # TYPE {family}, found {word:?}"
                    ));
                }
            };
            Field::Type(kind)
        }
        _ => Field::Unit(rest.trim_end_matches([' ', '\t']).to_string()),
    };
    Ok(Comment::Metadata { family, field })
}

/// The first blank-separated word of `text` and what follows its blank.
fn split_blank(text: &str) -> (&str, &str) {
    match text.find([' ', '\t']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    }
}

/// `name{labels} value [timestamp] [# exemplar]`.
fn sample_line(
    line: &str,
    format: ExpositionFormat,
    default_timestamp_ms: i64,
) -> Result<Metric, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!(
            "a metric name at the start of a sample, found {:?}",
            line.chars().take(40).collect::<String>()
        ));
    }
    let mut rest = &line[name_end..];
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = label_set(after, &mut pairs)?;
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("a blank, then the value after {name}"));
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let (value_text, rest) = split_blank(rest);
    let value = parse_value(value_text)
        .ok_or_else(|| format!("a number as the value of {name}, found {value_text:?}"))?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let (timestamp_text, rest) = match rest.strip_prefix('#') {
        // OpenMetrics' exemplar, after the value: not stored.
        Some(_) if format == ExpositionFormat::OpenMetrics => ("", ""),
        _ => split_blank(rest),
    };
    let timestamp_ms = if timestamp_text.is_empty() {
        default_timestamp_ms
    } else {
        parse_timestamp(timestamp_text, format).ok_or_else(|| {
            format!("a timestamp (or nothing) after the value of {name}, found {timestamp_text:?}")
        })?
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    if !(rest.is_empty() || (format == ExpositionFormat::OpenMetrics && rest.starts_with('#'))) {
        return Err(format!(
            "the end of the line after the timestamp of {name}, found {rest:?}"
        ));
    }
    Ok(Metric::new(name, value, timestamp_ms).with_labels(Labels::from_pairs(pairs)))
}

/// Reads `name="value", …}` (the `{` already taken) into `pairs`; returns
/// what follows the `}`.
fn label_set<'a>(mut text: &'a str, pairs: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        text = text.trim_start_matches([' ', '\t']);
        if let Some(after) = text.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "a label name or \"}}\", found {:?}",
                text.chars().take(20).collect::<String>()
            ));
        }
        text = text[name_end..].trim_start_matches([' ', '\t']);
        text = text
            .strip_prefix('=')
            .ok_or_else(|| format!("\"=\" after the label name {name}"))?
            .trim_start_matches([' ', '\t']);
        text = text
            .strip_prefix('"')
            .ok_or_else(|| format!("a quoted value for the label {name}"))?;
        let (value, after) = quoted(text)
            .ok_or_else(|| format!("the closing quote of the value of the label {name}"))?;
        if pairs.iter().any(|(existing, _)| existing == name) {
            return Err(format!("the label {name} given twice"));
        }
        pairs.push((name.to_string(), value.into_owned()));
        text = after.trim_start_matches([' ', '\t']);
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        } else if !text.starts_with('}') {
            return Err(format!("\",\" or \"}}\" after the label {name}"));
        }
    }
}

/// The string up to the next unescaped `"` (the opening one already taken)
/// and what follows the quote; `None` when it never closes.
fn quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut escaped = false;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => {
                escaped = true;
                index += 2;
                continue;
            }
            b'"' => {
                let inner = &text[..index];
                let value = if escaped {
                    unescape(inner, true)
                } else {
                    Cow::Borrowed(inner)
                };
                return Some((value, &text[index + 1..]));
            }
            _ => index += 1,
        }
    }
    None
}

/// `\\`, `\n` and (in label values and OpenMetrics' help) `\"` undone;
/// any other backslash kept as it is, as Prometheus does.
fn unescape(text: &str, quotes: bool) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Go's `ParseFloat` for what exporters write: decimals, exponents, `NaN`,
/// `+Inf`, `-Inf` (any case).
fn parse_value(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.is_empty() || !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        // The words: `NaN`, `Inf`, `+Inf`, `-Inf` (Rust also takes
        // `infinity`, as Go does).
        return match unsigned.to_ascii_lowercase().as_str() {
            "nan" if unsigned.len() == text.len() => Some(f64::NAN),
            "inf" | "infinity" => Some(if text.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            _ => None,
        };
    }
    text.parse().ok()
}

/// Milliseconds (text) or float seconds (OpenMetrics) → milliseconds.
fn parse_timestamp(text: &str, format: ExpositionFormat) -> Option<i64> {
    match format {
        ExpositionFormat::Prometheus => text.parse().ok(),
        ExpositionFormat::OpenMetrics => {
            let seconds: f64 = text.parse().ok()?;
            let ms = (seconds * 1000.0).round();
            (ms.is_finite() && ms.abs() < 9.0e18).then_some(ms as i64)
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, format: ExpositionFormat) -> Result<Exposition, DecodeError> {
        decode_exposition(body.as_bytes(), format, 5_000, &DecodeLimits::default())
    }

    #[test]
    fn a_text_exposition_with_metadata_escapes_and_timestamps() {
        let body = "# HELP http_requests_total Requests \\\\ served.\\nSecond line.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{code=\"200\",path=\"/a\\\"b\"} 1027 1700000000000\n\
                    http_requests_total{ code = \"500\" , } 3\n\
                    \n\
                    # a comment\n\
                    up NaN\n\
                    temp -Inf\n";
        let exposition = parse(body, ExpositionFormat::Prometheus).unwrap();
        let metrics = &exposition.metrics;
        assert_eq!(metrics.len(), 4);
        assert_eq!(metrics[0].timestamp_ms, 1_700_000_000_000);
        assert_eq!(metrics[0].labels.get("path"), Some("/a\"b"));
        assert_eq!(metrics[1].timestamp_ms, 5_000, "no timestamp: the scrape's");
        assert_eq!(metrics[1].labels.get("code"), Some("500"));
        assert!(metrics[2].value.is_nan());
        assert_eq!(metrics[3].value, f64::NEG_INFINITY);
        assert_eq!(
            exposition.metadata,
            vec![(
                "http_requests_total".to_string(),
                MetricMetadata {
                    metric_type: MetricType::Counter,
                    help: "Requests \\ served.\nSecond line.".into(),
                    unit: String::new(),
                }
            )]
        );
    }

    #[test]
    fn open_metrics_takes_seconds_units_exemplars_and_needs_eof() {
        let body = "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n\
                    rpc_seconds_bucket{le=\"0.5\"} 3 1700000000.5 # {trace_id=\"x\"} 0.4 1700000000.1\n\
                    rpc_seconds_count 3\n# EOF\n";
        let exposition = parse(body, ExpositionFormat::OpenMetrics).unwrap();
        assert_eq!(exposition.metrics[0].timestamp_ms, 1_700_000_000_500);
        assert_eq!(exposition.metrics.len(), 2);
        assert_eq!(exposition.metadata[0].1.unit, "seconds");
        assert_eq!(exposition.metadata[0].1.metric_type, MetricType::Histogram);
        let truncated = parse("a 1\n", ExpositionFormat::OpenMetrics).unwrap_err();
        assert!(truncated.to_string().contains("no # EOF"), "{truncated}");
        let after = parse("# EOF\na 1\n", ExpositionFormat::OpenMetrics).unwrap_err();
        assert!(
            after.to_string().starts_with("line 2: a line after # EOF"),
            "{after}"
        );
    }

    #[test]
    fn bad_lines_are_refused_by_number() {
        for (body, line, phrase) in [
            ("a 1\nb{x=\"1\" 2\n", 2, "\",\" or \"}\" after the label x"),
            ("a 1\n\nc one\n", 3, "a number as the value of c"),
            ("a{x=\"1\",x=\"2\"} 1\n", 1, "the label x given twice"),
            ("a 1 12.5\n", 1, "a timestamp (or nothing)"),
            ("a 1 2 3\n", 1, "the end of the line"),
            ("9a 1\n", 1, "a metric name"),
            ("# TYPE a countr\n", 1, "a metric type"),
            ("a{x=\"1} 1\n", 1, "closing quote"),
            ("a1\n", 1, "a blank, then the value after a1"),
        ] {
            let error = parse(body, ExpositionFormat::Prometheus).unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("line {line}: ")) && message.contains(phrase),
                "{body:?}: {message}"
            );
        }
        assert!(
            parse("", ExpositionFormat::Prometheus)
                .unwrap()
                .metrics
                .is_empty()
        );
        let bad_utf8 = decode_exposition(
            b"a 1\n\xff 2\n",
            ExpositionFormat::Prometheus,
            0,
            &DecodeLimits::default(),
        );
        assert!(bad_utf8.unwrap_err().to_string().starts_with("line 2: "));
    }

    #[test]
    fn the_content_type_picks_the_format() {
        use ExpositionFormat::*;
        for (content_type, format) in [
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                OpenMetrics,
            ),
            ("text/plain; version=0.0.4; charset=utf-8", Prometheus),
            ("", Prometheus),
        ] {
            assert_eq!(ExpositionFormat::from_content_type(content_type), format);
        }
    }
}
