//! Query results as Prometheus' JSON: `{"resultType": …, "result": …}`,
//! samples as `[<unix seconds>, "<value>"]`, series as label objects with
//! `__name__` among the labels.
//!
//! The bottleneck it removes: phase0 answers with its own array of
//! `{"name", "value", "timestamp"}` objects, which no Prometheus client
//! reads; every byte here is shaped so `promtool` and Grafana parse it
//! unchanged. Two details carry the compatibility: values travel as
//! strings (JSON numbers cannot say `NaN` or `+Inf`), printed as Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)`; timestamps are numbers of
//! seconds with millisecond precision. Docs chapter 4, "Speaking
//! Prometheus".

use std::io::Write as _;

use common::Labels;
use rayon::prelude::*;
use serde_json::{Map, Value as Json, json};

use crate::value::{InstantSample, Point, RangeSeries, SeriesKey, Value};

/// A sample value as Prometheus writes it: the shortest decimal that reads
/// back to the same `f64`, never with an exponent (`1e21` is
/// `"1000000000000000000000"`, `1e-7` is `"0.0000001"`), and `+Inf`,
/// `-Inf`, `NaN`.
///
/// Rust's `Display` for `f64` is already Go's `'f', -1` format (shortest
/// round-trip digits, positional notation, `-0` for negative zero); only
/// the non-finite spellings differ (`inf`, `-inf`).
pub fn format_sample_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        value.to_string()
    }
}

/// A millisecond timestamp as Prometheus writes it: a JSON number of
/// seconds, an integer when the milliseconds are zero (`1700000000`),
/// otherwise with the fraction (`1700000000.123`).
///
/// A whole second goes out as a JSON integer because serde_json prints a
/// whole `f64` as `1700000000.0`. For a fraction, dividing the exact
/// integer by 1000 is one correctly rounded IEEE operation, so the
/// shortest digits that serde_json prints are exactly the decimal
/// milliseconds (Prometheus keeps trailing zeros, `.100`; the number is
/// the same).
pub fn format_timestamp(t_ms: i64) -> Json {
    if t_ms % 1000 == 0 {
        Json::Number((t_ms / 1000).into())
    } else {
        serde_json::Number::from_f64(t_ms as f64 / 1000.0).map_or(Json::Null, Json::Number)
    }
}

/// One `[t, "v"]` pair.
pub fn format_point(point: Point) -> Json {
    Json::Array(vec![
        format_timestamp(point.t),
        Json::String(format_sample_value(point.v)),
    ])
}

/// A series' identity as Prometheus' label object: `__name__` (when kept)
/// and the labels, keys in byte order as Prometheus' sorted label sets
/// print them (so `Zone` comes before `__name__`, which comes before
/// `host`).
pub fn format_labels(name: Option<&str>, labels: &Labels) -> Json {
    let mut object = Map::with_capacity(labels.len() + 1);
    let mut name = name.filter(|n| !n.is_empty());
    for (label, value) in labels.iter() {
        if let Some(metric_name) = name
            && "__name__" < label
        {
            object.insert("__name__".to_string(), json!(metric_name));
            name = None;
        }
        object.insert(label.to_string(), json!(value));
    }
    if let Some(metric_name) = name {
        object.insert("__name__".to_string(), json!(metric_name));
    }
    Json::Object(object)
}

/// `format_labels` for a result's [`SeriesKey`].
pub fn format_series_key(key: &SeriesKey) -> Json {
    format_labels(key.name.as_deref(), &key.labels)
}

/// The `data` member of a query answer: `{"resultType", "result"}`.
pub fn format_value(value: &Value) -> Json {
    let (result_type, result) = match value {
        Value::Scalar(point) => ("scalar", format_point(*point)),
        Value::String { t, v } => ("string", json!([format_timestamp(*t), v])),
        Value::Vector(samples) => (
            "vector",
            Json::Array(samples.iter().map(format_instant_sample).collect()),
        ),
        Value::Matrix(series) => (
            "matrix",
            // Series in parallel: a dashboard's answer is tens of thousands
            // of points, each a small allocation or two.
            Json::Array(series.par_iter().map(format_range_series).collect()),
        ),
    };
    // Built by hand: `json!` would copy `result` through the serializer.
    let mut data = Map::with_capacity(2);
    data.insert("resultType".into(), Json::String(result_type.into()));
    data.insert("result".into(), result);
    Json::Object(data)
}

/// `{"metric": {…}, "value": [t, "v"]}`
pub fn format_instant_sample(sample: &InstantSample) -> Json {
    let mut object = Map::with_capacity(2);
    object.insert("metric".into(), format_series_key(&sample.key));
    object.insert("value".into(), format_point(sample.point));
    Json::Object(object)
}

/// `{"metric": {…}, "values": [[t, "v"], …]}`
pub fn format_range_series(series: &RangeSeries) -> Json {
    let mut object = Map::with_capacity(2);
    object.insert("metric".into(), format_series_key(&series.key));
    object.insert(
        "values".into(),
        Json::Array(series.points.iter().map(|p| format_point(*p)).collect()),
    );
    Json::Object(object)
}

// ------------------------------------------------------------ as bytes
//
// The same JSON written straight into a buffer. A dashboard's matrix is
// megabytes: building it as a `serde_json::Value` first costs an
// allocation or two per point, and serialising the tree again walks it on
// one thread — for query (c) of chapter 4 that was 25 ms of a 57 ms
// answer. Written directly (series in parallel, each into its own
// buffer), the bytes are identical (tested against `format_value`).

/// [`format_value`]'s JSON text, appended to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"resultType\":\"");
    match value {
        Value::Scalar(point) => {
            out.extend_from_slice(b"scalar\",\"result\":");
            write_point(*point, out);
        }
        Value::String { t, v } => {
            out.extend_from_slice(b"string\",\"result\":[");
            write_timestamp(*t, out);
            out.push(b',');
            write_string(v, out);
            out.push(b']');
        }
        Value::Vector(samples) => {
            out.extend_from_slice(b"vector\",\"result\":[");
            for (i, sample) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"metric\":");
                write_series_key(&sample.key, out);
                out.extend_from_slice(b",\"value\":");
                write_point(sample.point, out);
                out.push(b'}');
            }
            out.push(b']');
        }
        Value::Matrix(series) => {
            out.extend_from_slice(b"matrix\",\"result\":[");
            // Each series into its own buffer, in parallel; joined in order.
            let parts: Vec<Vec<u8>> = series
                .par_iter()
                .map(|series| {
                    let mut part = Vec::with_capacity(64 + series.points.len() * 28);
                    write_range_series(series, &mut part);
                    part
                })
                .collect();
            out.reserve(parts.iter().map(|p| p.len() + 1).sum());
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(part);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}

/// `{"metric": {…}, "values": [[t, "v"], …]}` as text.
fn write_range_series(series: &RangeSeries, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"metric\":");
    write_series_key(&series.key, out);
    out.extend_from_slice(b",\"values\":[");
    for (i, point) in series.points.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_point(*point, out);
    }
    out.extend_from_slice(b"]}");
}

/// `[t,"v"]` as text.
fn write_point(point: Point, out: &mut Vec<u8>) {
    out.push(b'[');
    write_timestamp(point.t, out);
    out.extend_from_slice(b",\"");
    // Digits, a sign, a dot, `NaN`/`Inf`: nothing a JSON string escapes.
    if point.v.is_finite() {
        let _ = write!(out, "{}", point.v);
    } else {
        out.extend_from_slice(format_sample_value(point.v).as_bytes());
    }
    out.extend_from_slice(b"\"]");
}

/// [`format_timestamp`] as text: serde_json's own number printing, so the
/// digits are the ones the `Value` path prints.
fn write_timestamp(t_ms: i64, out: &mut Vec<u8>) {
    if t_ms % 1000 == 0 {
        let _ = write!(out, "{}", t_ms / 1000);
    } else {
        let seconds = t_ms as f64 / 1000.0;
        if serde_json::to_writer(&mut *out, &seconds).is_err() || !seconds.is_finite() {
            // Unreachable for an i64 of milliseconds; `null` as the Value
            // path writes for a number JSON cannot hold.
            out.extend_from_slice(b"null");
        }
    }
}

/// A JSON string, escaped by serde_json.
fn write_string(text: &str, out: &mut Vec<u8>) {
    if serde_json::to_writer(&mut *out, text).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// [`format_series_key`] as text: keys in byte order, `__name__` among
/// them.
fn write_series_key(key: &SeriesKey, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut name = key.name.as_deref().filter(|n| !n.is_empty());
    let mut first = true;
    let mut pair = |label: &str, value: &str, out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_string(label, out);
        out.push(b':');
        write_string(value, out);
    };
    for (label, value) in key.labels.iter() {
        if let Some(metric_name) = name
            && "__name__" < label
        {
            pair("__name__", metric_name, out);
            name = None;
        }
        pair(label, value, out);
    }
    if let Some(metric_name) = name {
        pair("__name__", metric_name, out);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_like_go_format_float_f_minus_one() {
        for (value, text) in [
            (1.5, "1.5"),
            (100.0, "100"),
            (0.001, "0.001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (123_456_789.0, "123456789"),
            (-2.5, "-2.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_sample_value(value), text, "{value:?}");
        }
        // The extremes print every digit and still read back exactly.
        for value in [f64::MAX, f64::MIN_POSITIVE, 5e-324] {
            let text = format_sample_value(value);
            assert!(!text.contains('e'), "{text}");
            assert_eq!(text.parse::<f64>(), Ok(value));
        }
    }

    #[test]
    fn timestamps_are_seconds_with_millisecond_fractions() {
        assert_eq!(
            format_timestamp(1_700_000_000_000).to_string(),
            "1700000000"
        );
        assert_eq!(
            format_timestamp(1_700_000_000_123).to_string(),
            "1700000000.123"
        );
        assert_eq!(
            format_timestamp(1_700_000_000_100).to_string(),
            "1700000000.1"
        );
        assert_eq!(
            format_timestamp(1_700_000_000_001).to_string(),
            "1700000000.001"
        );
        assert_eq!(format_timestamp(-1500).to_string(), "-1.5");
        assert_eq!(format_timestamp(0).to_string(), "0");
    }

    #[test]
    fn labels_sort_with_the_name_among_them() {
        let labels = Labels::from_pairs([("host", "a"), ("Zone", "eu"), ("__x", "1")]);
        let text = format_labels(Some("cpu"), &labels).to_string();
        assert_eq!(
            text,
            r#"{"Zone":"eu","__name__":"cpu","__x":"1","host":"a"}"#
        );
        assert_eq!(format_labels(None, &labels).as_object().unwrap().len(), 3);
        assert_eq!(
            format_labels(Some("up"), &Labels::empty()).to_string(),
            r#"{"__name__":"up"}"#
        );
    }

    mod bytes {
        use super::super::*;
        use crate::value::{InstantSample, Point, RangeSeries, SeriesKey, Value};
        use proptest::prelude::*;

        fn value_f64() -> impl Strategy<Value = f64> {
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-0.0),
                Just(5e-324),
                (-1_000_000i64..1_000_000).prop_map(|v| v as f64 / 8.0),
            ]
        }

        fn point() -> impl Strategy<Value = Point> {
            (
                prop_oneof![any::<i64>(), -5_000i64..5_000, Just(1_700_000_000_000i64)],
                value_f64(),
            )
                .prop_map(|(t, v)| Point { t, v })
        }

        fn key() -> impl Strategy<Value = SeriesKey> {
            let label =
                "[A-Za-z_][A-Za-z0-9_]{0,6}".prop_filter("not the name", |l| l != "__name__");
            (
                proptest::option::of("[a-z_:\"\\\\é\n]{0,8}"),
                proptest::collection::vec((label, "[ -~é\t\u{1}]{0,8}"), 0..5),
            )
                .prop_map(|(name, pairs)| SeriesKey {
                    name,
                    labels: Labels::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                })
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                point().prop_map(Value::Scalar),
                (any::<i64>(), ".{0,10}").prop_map(|(t, v)| Value::String { t, v }),
                proptest::collection::vec(
                    (key(), point()).prop_map(|(key, point)| InstantSample { key, point }),
                    0..5
                )
                .prop_map(Value::Vector),
                proptest::collection::vec(
                    (key(), proptest::collection::vec(point(), 0..6))
                        .prop_map(|(key, points)| RangeSeries { key, points }),
                    0..5
                )
                .prop_map(Value::Matrix),
            ]
        }

        proptest! {
            /// The direct writer prints exactly what serde_json prints for
            /// the `Value` tree.
            #[test]
            fn written_bytes_equal_the_value_path(value in value()) {
                let mut written = Vec::new();
                write_value(&value, &mut written);
                let expected = format_value(&value).to_string();
                prop_assert_eq!(String::from_utf8(written).expect("UTF-8"), expected);
            }
        }
    }
}
