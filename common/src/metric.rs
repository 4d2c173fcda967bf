//! `Metric`, the one sample that flows through every slot, its JSON wire form
//! and its validation.
//!
//! The wire form is the seed's: `{"name":"cpu_usage","value":85}`, with
//! optional `timestamp` (ms since the Unix epoch; the server stamps it when
//! absent) and `labels` (`{"host":"a"}`). Validation happens once, at the edge,
//! so every component behind the ingestion slot can trust what it is handed.
//! Story: docs chapter 0.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Labels;

/// Earliest accepted timestamp: the Unix epoch.
pub const MIN_TIMESTAMP_MS: i64 = 0;
/// Latest accepted timestamp: 9999-12-31T23:59:59.999Z. Anything later is
/// almost always a unit mistake (nanoseconds sent as milliseconds).
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// The bit pattern Prometheus writes as a sample's value to mark a series
/// stale (`value.StaleNaN`): a NaN distinct from the one arithmetic
/// produces, so "this series ended" survives the wire and the store.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Longest accepted metric or label name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest accepted label value, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 4096;
/// Most labels one sample may carry.
pub const MAX_LABELS: usize = 64;

/// One sample of one series: name + labels identify the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name, Prometheus rules: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub name: String,
    /// The sample's value: any `f64`. NaN (a summary with no
    /// observations), ±Inf and Prometheus' stale marker
    /// ([`STALE_NAN_BITS`]) are data too; in JSON they travel as the
    /// strings `"NaN"`, `"+Inf"`, `"-Inf"` and `"StaleNaN"`.
    #[serde(with = "value_json")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "timestamp")]
    pub timestamp_ms: i64,
    /// Label pairs; omitted from JSON when empty, as the seed's lines have none.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

/// What a client may send: the same fields, with `timestamp` and `labels`
/// optional.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricInput {
    /// Metric name.
    pub name: String,
    /// Sample value; a JSON number.
    pub value: f64,
    /// Milliseconds since the epoch; the server's clock when absent.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Optional label pairs.
    #[serde(default)]
    pub labels: Option<Labels>,
}

/// Why a sample was refused. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricError {
    /// The body was not the JSON the route expects.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The metric name breaks the naming rules.
    #[error("invalid metric name {0:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]* and be 1-256 bytes")]
    InvalidName(String),
    /// A label name breaks the naming rules.
    #[error("invalid label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]* and be 1-256 bytes")]
    InvalidLabelName(String),
    /// Names starting with `__` belong to the system (`__name__`).
    #[error("label name {0:?} is reserved: names starting with \"__\" are for internal use")]
    ReservedLabelName(String),
    /// A label value is longer than [`MAX_LABEL_VALUE_LEN`].
    #[error("value of label {0:?} is {1} bytes, the limit is 4096")]
    LabelValueTooLong(String, usize),
    /// More labels than [`MAX_LABELS`].
    #[error("{0} labels, the limit is {MAX_LABELS}")]
    TooManyLabels(usize),
    /// Before the epoch or after year 9999.
    #[error(
        "timestamp {0} is out of range: expected milliseconds since the Unix epoch between 0 and 253402300799999"
    )]
    TimestampOutOfRange(i64),
}

/// True when `name` is a valid Prometheus metric name.
pub fn is_valid_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_' || bytes[0] == b':')
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
}

/// True when `name` is a valid Prometheus label name (reserved or not).
pub fn is_valid_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

impl Metric {
    /// A metric without labels. Not validated: call [`Metric::validate`].
    pub fn new(name: impl Into<String>, value: f64, timestamp_ms: i64) -> Self {
        Metric {
            name: name.into(),
            labels: Labels::empty(),
            value,
            timestamp_ms,
        }
    }

    /// The same metric with these labels.
    pub fn with_labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }

    /// Checks the naming rules, the label limits and that the timestamp is
    /// in range. Every value is valid, NaN and ±Inf included.
    ///
    /// # Errors
    /// The first rule broken, naming the offending value.
    pub fn validate(&self) -> Result<(), MetricError> {
        if !is_valid_metric_name(&self.name) {
            return Err(MetricError::InvalidName(self.name.clone()));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(MetricError::TooManyLabels(self.labels.len()));
        }
        for (name, value) in self.labels.iter() {
            if !is_valid_label_name(name) {
                return Err(MetricError::InvalidLabelName(name.to_string()));
            }
            if name.starts_with("__") {
                return Err(MetricError::ReservedLabelName(name.to_string()));
            }
            if value.len() > MAX_LABEL_VALUE_LEN {
                return Err(MetricError::LabelValueTooLong(
                    name.to_string(),
                    value.len(),
                ));
            }
        }
        if !(MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&self.timestamp_ms) {
            return Err(MetricError::TimestampOutOfRange(self.timestamp_ms));
        }
        Ok(())
    }
}

impl MetricInput {
    /// Turns client input into a validated metric, stamping `now_ms` when the
    /// client sent no timestamp.
    ///
    /// # Errors
    /// See [`Metric::validate`].
    pub fn into_metric(self, now_ms: i64) -> Result<Metric, MetricError> {
        let metric = Metric {
            name: self.name,
            labels: self.labels.unwrap_or_default(),
            value: self.value,
            timestamp_ms: self.timestamp.unwrap_or(now_ms),
        };
        metric.validate()?;
        Ok(metric)
    }
}

/// Decodes one metric in the seed's wire form (a single JSON object) and
/// validates it.
///
/// # Errors
/// [`MetricError::Json`] for malformed JSON, a missing or mistyped field;
/// otherwise see [`Metric::validate`].
pub fn decode_metric_json(body: &[u8], now_ms: i64) -> Result<Metric, MetricError> {
    let input: MetricInput =
        serde_json::from_slice(body).map_err(|e| MetricError::Json(e.to_string()))?;
    input.into_metric(now_ms)
}

/// `Metric::value` in JSON: a number when finite; otherwise one of the
/// strings Prometheus' own API writes (`"NaN"`, `"+Inf"`, `"-Inf"`), plus
/// `"StaleNaN"` so the stale marker keeps its meaning through a queue or a
/// file. JSON has no NaN, and `serde_json` would write `null` and lose it.
mod value_json {
    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};

    use super::STALE_NAN_BITS;

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.to_bits() == STALE_NAN_BITS {
            serializer.serialize_str("StaleNaN")
        } else if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if *value > 0.0 {
            serializer.serialize_str("+Inf")
        } else {
            serializer.serialize_str("-Inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        struct Value;
        impl Visitor<'_> for Value {
            type Value = f64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, or \"NaN\", \"+Inf\", \"-Inf\", \"StaleNaN\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                match v {
                    "NaN" => Ok(f64::NAN),
                    "+Inf" | "Inf" => Ok(f64::INFINITY),
                    "-Inf" => Ok(f64::NEG_INFINITY),
                    "StaleNaN" => Ok(f64::from_bits(STALE_NAN_BITS)),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_wire_form_gets_server_time() {
        let m = decode_metric_json(br#"{"name":"cpu_usage","value":85}"#, 1_000).unwrap();
        assert_eq!(m, Metric::new("cpu_usage", 85.0, 1_000));
    }

    #[test]
    fn optional_fields_are_read() {
        let m = decode_metric_json(
            br#"{"name":"cpu_usage","value":1.5,"timestamp":42,"labels":{"host":"a"}}"#,
            1_000,
        )
        .unwrap();
        assert_eq!(m.timestamp_ms, 42);
        assert_eq!(m.labels.get("host"), Some("a"));
    }

    #[test]
    fn serialised_form_is_the_seed_line() {
        let line = serde_json::to_string(&Metric::new("cpu_usage", 85.0, 7)).unwrap();
        assert_eq!(line, r#"{"name":"cpu_usage","value":85.0,"timestamp":7}"#);
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "invalid JSON"),
            (br#"{"value":1}"#, "missing field `name`"),
            (br#"{"name":"x"}"#, "missing field `value`"),
            (br#"{"name":"x","value":"85"}"#, "invalid type"),
            (br#"{"name":"1x","value":1}"#, "invalid metric name \"1x\""),
            (
                br#"{"name":"x","value":1,"labels":{"a-b":"c"}}"#,
                "invalid label name \"a-b\"",
            ),
            (
                br#"{"name":"x","value":1,"labels":{"__x":"c"}}"#,
                "reserved",
            ),
            (
                br#"{"name":"x","value":1,"timestamp":-5}"#,
                "timestamp -5 is out of range",
            ),
            (br#"{"name":"x","value":1e999}"#, "invalid JSON"),
            (b"[]", "invalid JSON"),
        ];
        for (body, expected) in cases {
            let err = decode_metric_json(body, 0).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{:?}: {err:?} lacks {expected:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn non_finite_values_are_data_and_survive_json() {
        for value in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(STALE_NAN_BITS),
            -0.0,
            1.5,
        ] {
            let metric = Metric::new("x", value, 0);
            assert_eq!(metric.validate(), Ok(()));
            let json = serde_json::to_string(&metric).expect("serializes");
            let back: Metric = serde_json::from_str(&json).expect("parses");
            assert_eq!(back.value.to_bits(), value.to_bits(), "{json}");
        }
        let stale = Metric::new("x", f64::from_bits(STALE_NAN_BITS), 0);
        assert_eq!(
            serde_json::to_string(&stale).unwrap(),
            r#"{"name":"x","value":"StaleNaN","timestamp":0}"#
        );
        assert!(
            serde_json::from_str::<Metric>(r#"{"name":"x","value":"many","timestamp":0}"#).is_err()
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_metric_json(&body, 0);
        }

        #[test]
        fn valid_metrics_round_trip(name in "[a-z_][a-z0-9_]{0,20}", value in -1e12f64..1e12, ts in 0i64..4_000_000_000_000) {
            let m = Metric::new(name, value, ts);
            let line = serde_json::to_vec(&m).unwrap();
            prop_assert_eq!(decode_metric_json(&line, 0).unwrap(), m);
        }
    }
}
