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
}
