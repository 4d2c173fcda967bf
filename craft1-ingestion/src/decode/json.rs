//! The seed's JSON, batched: a single object (as phase0 reads it), a JSON
//! array of objects, and NDJSON (one object per line).
//!
//! phase0 pays a whole HTTP request per metric. A batch amortises that cost
//! over thousands of metrics, which only helps if the batch itself is cheap
//! to read: an array is decoded in *one* serde pass straight into `Metric`s
//! (each item is converted and validated the moment it is parsed, so a bad
//! item stops the pass at once), never re-parsed item by item; NDJSON parses
//! each line in place, without copying it.
//!
//! What batching does not change: per metric, reading an array costs what
//! phase0's one-object parse costs (`benches/parse.rs`), because most of it
//! is building the owned `Metric` — about eight allocations for a name and
//! two labels. The win is one request per thousand metrics, not a faster
//! parser. The one place a faster parser pays is the single object, one
//! per request: it goes through `json_object.rs` first, which skips
//! serde's intermediate `BTreeMap` of labels and hands anything unusual
//! back to serde. Story: docs chapter 1.

use std::fmt;

use common::{Labels, Metric, MetricInput};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};

use super::{DecodeError, DecodeLimits, Position, accept};

/// Decodes the seed's single object or a JSON array of such objects.
///
/// A body whose first non-blank byte is `[` is an array; anything else is
/// read as one object, with phase0's error messages.
///
/// # Errors
/// - [`DecodeError::Json`] when the body is not JSON or is broken outside
///   any item (a missing `]`, trailing bytes);
/// - [`DecodeError::Malformed`] with [`Position::Item`] (from 0) when one
///   array item is not a metric object;
/// - [`DecodeError::Invalid`] or [`DecodeError::TooManyLabels`] when an item
///   breaks the metric rules — with [`Position::Body`] for a single object;
/// - [`DecodeError::EmptyBatch`] for `[]`.
pub fn decode_json(
    body: &[u8],
    now_ms: i64,
    limits: &DecodeLimits,
) -> Result<Vec<Metric>, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return decode_array(body, now_ms, limits);
    }
    // The seed's plain object, without serde; anything else below.
    if let Some(metric) = super::json_object::read(body, now_ms) {
        return Ok(vec![accept(metric, Position::Body, limits)?]);
    }
    let MetricObject(input) =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(vec![accept(
        to_metric(input, now_ms),
        Position::Body,
        limits,
    )?])
}

/// Decodes NDJSON: one seed object per line. Blank lines are skipped and a
/// `\r` before the `\n` is tolerated, so files written on Windows and
/// bodies ending with a newline both work.
///
/// The body is read as one stream of objects, not cut into lines first:
/// serde skips the newlines as whitespace anyway, so a separate pass to find
/// them would read every byte twice (7% more instructions per metric,
/// counted with callgrind) for nothing. serde counts lines as it goes, so
/// its errors still name theirs. Two objects on one line are refused; an
/// object spread over several lines (`jq` without `-c`) is accepted, since
/// nothing is ambiguous about it.
///
/// # Errors
/// [`DecodeError::Malformed`], [`DecodeError::Invalid`] or
/// [`DecodeError::TooManyLabels`] naming the line (from 1);
/// [`DecodeError::EmptyBatch`] when no line holds an object.
pub fn decode_ndjson(
    body: &[u8],
    now_ms: i64,
    limits: &DecodeLimits,
) -> Result<Vec<Metric>, DecodeError> {
    let mut metrics = Vec::new();
    let mut objects = serde_json::Deserializer::from_slice(body).into_iter::<MetricObject>();
    let mut previous_end = 0;
    while let Some(next) = objects.next() {
        let MetricObject(input) = next.map_err(|e| DecodeError::Malformed {
            at: Position::Line(e.line()),
            reason: format!("{} at column {}", without_position(&e), e.column()),
        })?;
        let end = objects.byte_offset();
        // Where this object starts: after the whitespace that followed the
        // previous one. Only that short gap is scanned.
        let leading = body[previous_end..end]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let start = previous_end + leading;
        if previous_end > 0 && !body[previous_end..start].contains(&b'\n') {
            let (line, column) = line_and_column(body, start);
            return Err(DecodeError::Malformed {
                at: Position::Line(line),
                reason: format!("a second object starts at column {column}: one object per line"),
            });
        }
        // The line is not known yet (counting it for every object would be
        // the second pass this function avoids): a placeholder, replaced
        // on the rare refusal by counting the lines before this object.
        super::room_for_one_more(metrics.len(), limits)?;
        match accept(to_metric(input, now_ms), Position::Line(0), limits) {
            Ok(metric) => metrics.push(metric),
            Err(error) => return Err(at_line(error, line_and_column(body, start).0)),
        }
        previous_end = end;
    }
    if metrics.is_empty() {
        return Err(DecodeError::EmptyBatch);
    }
    Ok(metrics)
}

/// 1-based line and column of byte `offset` in `body`.
fn line_and_column(body: &[u8], offset: usize) -> (usize, usize) {
    let before = &body[..offset];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// `error` with its position replaced by `line`.
fn at_line(error: DecodeError, line: usize) -> DecodeError {
    let at = Position::Line(line);
    match error {
        DecodeError::Invalid { source, .. } => DecodeError::Invalid { at, source },
        DecodeError::TooManyLabels { count, limit, .. } => {
            DecodeError::TooManyLabels { at, count, limit }
        }
        other => other,
    }
}

/// The array path: one pass of serde over the body, converting and
/// validating each item as it is produced.
fn decode_array(
    body: &[u8],
    now_ms: i64,
    limits: &DecodeLimits,
) -> Result<Vec<Metric>, DecodeError> {
    let mut metrics = Vec::new();
    let mut failure = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let seed = ArraySeed {
        now_ms,
        limits,
        metrics: &mut metrics,
        failure: &mut failure,
    };
    let parsed = seed
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Err(error) = parsed {
        return Err(match failure {
            Some(ItemFailure::Refused(refusal)) => refusal,
            Some(ItemFailure::Unparsable(index)) => DecodeError::Malformed {
                at: Position::Item(index),
                reason: error.to_string(),
            },
            None => DecodeError::Json(error.to_string()),
        });
    }
    if metrics.is_empty() {
        return Err(DecodeError::EmptyBatch);
    }
    Ok(metrics)
}

/// Why the pass over an array stopped inside an item. serde's error type is
/// opaque to a visitor, so the visitor leaves the facts here and the caller
/// builds the typed error.
enum ItemFailure {
    /// Item n is not a metric object; serde's error says why.
    Unparsable(usize),
    /// The item parsed but was refused by [`accept`].
    Refused(DecodeError),
}

/// Deserializes a JSON array of metric objects into the caller's vector.
struct ArraySeed<'a> {
    now_ms: i64,
    limits: &'a DecodeLimits,
    metrics: &'a mut Vec<Metric>,
    failure: &'a mut Option<ItemFailure>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON array of metric objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let input = match seq.next_element::<MetricObject>() {
                Ok(Some(MetricObject(input))) => input,
                Ok(None) => return Ok(()),
                Err(error) => {
                    *self.failure = Some(ItemFailure::Unparsable(index));
                    return Err(error);
                }
            };
            if let Err(refusal) = super::room_for_one_more(self.metrics.len(), self.limits) {
                *self.failure = Some(ItemFailure::Refused(refusal));
                return Err(de::Error::custom("too many samples"));
            }
            match accept(
                to_metric(input, self.now_ms),
                Position::Item(index),
                self.limits,
            ) {
                Ok(metric) => self.metrics.push(metric),
                Err(refusal) => {
                    *self.failure = Some(ItemFailure::Refused(refusal));
                    // Stops serde at once; the message is never shown.
                    return Err(de::Error::custom("item refused"));
                }
            }
            index += 1;
        }
    }
}

/// A [`MetricInput`] that must be written as a JSON object. serde's derive
/// also accepts a struct as an array of its fields in order, so without this
/// `["cpu_usage", 85]` would pass for a metric: too surprising to accept,
/// and a sign the client sent something other than what it meant.
struct MetricObject(MetricInput);

impl<'de> de::Deserialize<'de> for MetricObject {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = MetricObject;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(r#"a metric object {"name":..,"value":..}"#)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<MetricObject, A::Error> {
        // Hands the already-opened object to the derived impl: still one pass.
        MetricInput::deserialize(de::value::MapAccessDeserializer::new(map)).map(MetricObject)
    }
}

/// Client input → metric, not yet validated: [`accept`] does that, after the
/// labels limit. (`MetricInput::into_metric` validates first, which would
/// report a long label set as the contract's error rather than the limit's.)
fn to_metric(input: MetricInput, now_ms: i64) -> Metric {
    Metric {
        name: input.name,
        value: input.value,
        timestamp_ms: input.timestamp.unwrap_or(now_ms),
        labels: input.labels.unwrap_or_else(Labels::empty),
    }
}

/// serde's message without its trailing " at line L column C".
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&suffix) {
        Some(bare) => bare.to_string(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000;

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    #[test]
    fn single_object_is_the_seed_form() {
        let metrics = decode_json(br#"{"name":"cpu_usage","value":85}"#, NOW, &limits()).unwrap();
        assert_eq!(metrics, vec![Metric::new("cpu_usage", 85.0, NOW)]);
    }

    #[test]
    fn array_keeps_order_timestamps_and_labels() {
        let body = br#" [
            {"name":"cpu_usage","value":1.5,"timestamp":10,"labels":{"host":"a"}},
            {"name":"memory_usage","value":2}
        ] "#;
        let metrics = decode_json(body, NOW, &limits()).unwrap();
        assert_eq!(
            metrics,
            vec![
                Metric::new("cpu_usage", 1.5, 10).with_labels(Labels::from_pairs([("host", "a")])),
                Metric::new("memory_usage", 2.0, NOW),
            ]
        );
    }

    #[test]
    fn a_bad_item_refuses_the_array_and_names_its_index() {
        let body = br#"[{"name":"a","value":1},{"name":"b","value":2},{"name":"1x","value":3}]"#;
        let err = decode_json(body, NOW, &limits()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"item 2: invalid metric name "1x""#),
            "{err}"
        );

        let body = br#"[{"name":"a","value":1},{"name":"b","value":2},{"name":"c","value":"3"}]"#;
        let err = decode_json(body, NOW, &limits()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"item 2: invalid type: string "3", expected f64"#),
            "{err}"
        );
    }

    #[test]
    fn empty_array_is_refused() {
        assert_eq!(
            decode_json(b" [ ] ", NOW, &limits()),
            Err(DecodeError::EmptyBatch)
        );
    }

    #[test]
    fn labels_limit_names_the_item() {
        let limits = DecodeLimits {
            max_labels_per_series: 1,
            ..DecodeLimits::default()
        };
        let body = br#"[{"name":"a","value":1,"labels":{"x":"1"}},{"name":"a","value":1,"labels":{"x":"1","y":"2"}}]"#;
        let err = decode_json(body, NOW, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "item 1: 2 labels, the limit is 1 per series"
        );
    }

    #[test]
    fn ndjson_skips_blank_lines_and_tolerates_crlf() {
        let body = b"\r\n{\"name\":\"a\",\"value\":1}\r\n\n  \t\n{\"name\":\"b\",\"value\":2,\"timestamp\":5}\r\n";
        let metrics = decode_ndjson(body, NOW, &limits()).unwrap();
        assert_eq!(
            metrics,
            vec![Metric::new("a", 1.0, NOW), Metric::new("b", 2.0, 5)]
        );
    }

    #[test]
    fn ndjson_accepts_an_object_spread_over_lines() {
        let body = b"{\"name\":\"a\",\"value\":1}\n{\n  \"name\": \"b\",\n  \"value\": 2\n}\n";
        let metrics = decode_ndjson(body, NOW, &limits()).unwrap();
        assert_eq!(
            metrics,
            vec![Metric::new("a", 1.0, NOW), Metric::new("b", 2.0, NOW)]
        );
    }

    #[test]
    fn ndjson_errors_name_the_line_from_one() {
        let body =
            b"{\"name\":\"a\",\"value\":1}\n\n{\"name\":\"b\",\"value\":2,\"timestamp\":-1}\n";
        let err = decode_ndjson(body, NOW, &limits()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 3: timestamp -1 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn bad_inputs_name_position_and_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "invalid JSON: EOF while parsing a value"),
            (b"{", "invalid JSON: EOF while parsing an object"),
            (br#"{"value":1}"#, "invalid JSON: missing field `name`"),
            (br#"{"name":"1x","value":1}"#, r#"invalid metric name "1x""#),
            (br#"[{"name":"a","value":1}"#, "item 1: EOF while parsing"),
            (
                br#"[{"name":"a","value":1}] x"#,
                "invalid JSON: trailing characters",
            ),
            (
                br#"[{"name":"a","value":1} {"name":"b","value":1}]"#,
                "item 1: expected `,` or `]`",
            ),
            (
                b"[1]",
                r#"item 0: invalid type: integer `1`, expected a metric object {"name":..,"value":..}"#,
            ),
            (
                br#"[["a", 1]]"#,
                "item 0: invalid type: sequence, expected a metric object",
            ),
            (br#"["a", 1]"#, "item 0: invalid type: string"),
            (
                br#"[{"name":"a","value":1e999}]"#,
                "item 0: number out of range",
            ),
            (
                br#"[{"name":"a","value":1,"labels":{"__x":"y"}}]"#,
                r#"item 0: label name "__x" is reserved"#,
            ),
        ];
        for (body, expected) in cases {
            let err = decode_json(body, NOW, &limits()).unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{:?}: {err:?} does not start with {expected:?}",
                String::from_utf8_lossy(body)
            );
        }

        let ndjson_cases: &[(&[u8], &str)] = &[
            (b"\n\n", "empty batch"),
            (
                b"{\"name\":\"a\",\"value\":1}\n{",
                "line 2: EOF while parsing an object at column 1",
            ),
            (
                b"{\"name\":\"a\",\"value\":1}\n[{\"name\":\"a\",\"value\":1}]",
                "line 2: invalid type: sequence, expected a metric object",
            ),
            (
                b"{\"name\":\"a\",\"value\":1} {\"name\":\"b\",\"value\":1}",
                "line 1: a second object starts at column 24: one object per line",
            ),
            (
                b"\n\n{\"name\":\"a\",\"value\":1}\r\n  {\"name\":\"b\",\"value\":1,\"labels\":{\"a-b\":\"c\"}}",
                "line 4: invalid label name \"a-b\"",
            ),
            (
                b"{\"name\":\"a\",\"value\":1}\n{\"name\":\"a\",\"value\":1}\n{\"name\":\"a\",\"value\":1,}",
                "line 3: trailing comma at column 23",
            ),
        ];
        for (body, expected) in ndjson_cases {
            let err = decode_ndjson(body, NOW, &limits()).unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{:?}: {err:?} does not start with {expected:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_json(&body, NOW, &limits());
            let _ = decode_ndjson(&body, NOW, &limits());
        }

        #[test]
        fn json_shaped_noise_never_panics(body in r#"[\[\]{}",:0-9a-z \n.e-]{0,120}"#) {
            let _ = decode_json(body.as_bytes(), NOW, &limits());
            let _ = decode_ndjson(body.as_bytes(), NOW, &limits());
        }

        #[test]
        fn ndjson_names_the_line_of_a_bad_object(
            blanks in proptest::collection::vec(0usize..3, 1..12),
            bad in any::<prop::sample::Index>(),
            crlf in any::<bool>(),
        ) {
            let bad = bad.index(blanks.len());
            let newline: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut body = Vec::new();
            let mut line = 1;
            let mut expected = 0;
            for (i, blank_lines) in blanks.iter().enumerate() {
                for _ in 0..*blank_lines {
                    body.extend_from_slice(newline);
                    line += 1;
                }
                let name = if i == bad { "1x" } else { "ok" };
                if i == bad {
                    expected = line;
                }
                body.extend_from_slice(format!(r#"{{"name":"{name}","value":{i}}}"#).as_bytes());
                body.extend_from_slice(newline);
                line += 1;
            }
            let err = decode_ndjson(&body, NOW, &limits()).unwrap_err().to_string();
            let prefix = format!("line {expected}: invalid metric name");
            prop_assert!(err.starts_with(&prefix), "{}", err);
        }

        #[test]
        fn arrays_and_ndjson_round_trip(
            metrics in proptest::collection::vec(
                ("[a-z_:][a-z0-9_:]{0,12}", -1e9f64..1e9, 0i64..4_000_000_000_000, "[a-z]{0,3}"),
                1..20,
            )
        ) {
            let metrics: Vec<Metric> = metrics
                .into_iter()
                .map(|(name, value, ts, host)| {
                    Metric::new(name, value, ts).with_labels(Labels::from_pairs([("host", host)]))
                })
                .collect();
            let array = serde_json::to_vec(&metrics).unwrap();
            prop_assert_eq!(&decode_json(&array, NOW, &limits()).unwrap(), &metrics);
            let mut ndjson = Vec::new();
            for metric in &metrics {
                serde_json::to_writer(&mut ndjson, metric).unwrap();
                ndjson.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(&decode_ndjson(&ndjson, NOW, &limits()).unwrap(), &metrics);
        }
    }
}
