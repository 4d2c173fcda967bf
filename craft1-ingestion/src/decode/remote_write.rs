//! Prometheus remote_write 1.0 → metrics: what Prometheus, Grafana Alloy and
//! vmagent send when pointed at `/api/v1/write`.
//!
//! The body is a protobuf `WriteRequest` compressed with snappy's *block*
//! format (not the framed/stream format). Binary and compressed, it is the
//! cheapest format to decode per sample: no text to scan, no number to parse
//! from decimal. The messages are declared once, in the `prompb` crate
//! (by hand with prost's derive, keeping only the fields we read); prost
//! skips fields it does not know, so a newer sender's extras are ignored
//! rather than refused. Exemplars and native histograms are not stored,
//! and are not skipped unseen either: a request carrying them is refused
//! (400, naming the series and the sender's setting that sends them:
//! Prometheus' `send_exemplars` / `send_native_histograms`, both off by
//! default), since a 2xx would tell the sender they were kept. The request's metadata
//! (each family's type, help and unit) is handed back beside the metrics
//! for `/api/v1/metadata`.
//!
//! Rules:
//! - the `__name__` label is the metric name; a series without one is refused,
//!   naming the series;
//! - every value is kept, bit for bit: NaN (a summary with no
//!   observations), ±Inf (a `1/0` in a recording rule), and the stale
//!   marker (`common::metric::STALE_NAN_BITS`), with which Prometheus says
//!   a series ended — the query engine ends the series there, and an alert
//!   on it resolves;
//! - a request with no series at all is accepted as zero metrics (unlike an
//!   empty JSON batch): senders do send such requests, carrying only
//!   metadata, and refusing them would fill their logs with errors;
//! - the decompressed size is read from snappy's header and checked against
//!   [`DecodeLimits::max_body_bytes`] *before* any memory is allocated for
//!   it, so a small body claiming gigabytes costs nothing.
//!
//! What it does not buy: CPU. The body is ~6× smaller than the same metrics
//! as JSON, but decoding is no faster per metric (`benches/parse.rs`):
//! prost allocates every label string and the `Metric`s need owned ones, so
//! the allocator, not the wire format, sets the pace. Story: docs chapter 1.

use common::{Labels, Metric, MetricMetadata};
use prompb::{NAME_LABEL, WriteRequest};
use prost::Message;

use super::{DecodeError, DecodeLimits, Position, accept};

/// One metric family's description: its name, and its type, help, unit.
pub type FamilyMetadata = (String, MetricMetadata);

/// Most metrics reserved up front; beyond this the vector grows as needed.
/// Prometheus sends at most 2,000 samples per request by default.
const MAX_RESERVED_METRICS: usize = 16_384;

/// Decodes a remote_write 1.0 body. Samples carry their own timestamps, so
/// there is no `now_ms`.
///
/// # Errors
/// - [`DecodeError::TooLarge`] when snappy's header announces more than
///   `limits.max_body_bytes`;
/// - [`DecodeError::Snappy`] / [`DecodeError::Protobuf`] for a corrupt body;
/// - [`DecodeError::Malformed`] naming the series without a `__name__`;
/// - [`DecodeError::Invalid`] or [`DecodeError::TooManyLabels`] naming the
///   series and sample that break the rules.
pub fn decode_remote_write(body: &[u8], limits: &DecodeLimits) -> Result<Vec<Metric>, DecodeError> {
    decode_remote_write_with_metadata(body, limits).map(|(metrics, _)| metrics)
}

/// [`decode_remote_write`], also handing over the request's metadata: each
/// family's name with its type, help and unit, for the pipeline's
/// [`common::MetadataRegistry`].
///
/// # Errors
/// As [`decode_remote_write`]; metadata itself is never refused (an
/// unknown type number reads as `unknown`).
pub fn decode_remote_write_with_metadata(
    body: &[u8],
    limits: &DecodeLimits,
) -> Result<(Vec<Metric>, Vec<FamilyMetadata>), DecodeError> {
    let announced =
        snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if announced > limits.max_body_bytes {
        return Err(DecodeError::TooLarge {
            stage: "remote_write",
            limit: limits.max_body_bytes,
        });
    }
    let protobuf = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    let request = WriteRequest::decode(protobuf.as_slice())
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;

    // Reserve for every sample, but not blindly: an empty sample is two
    // bytes on the wire and a `Metric` 64 in memory, so a hostile body of
    // skipped (NaN) samples could otherwise reserve 30× its size for nothing.
    let samples: usize = request.timeseries.iter().map(|s| s.samples.len()).sum();
    // Refused before expanding: protobuf samples are 16 bytes, metrics ~100.
    if samples > limits.max_samples_per_request {
        return Err(DecodeError::TooManySamples {
            limit: limits.max_samples_per_request,
        });
    }
    let metadata = request
        .metadata
        .into_iter()
        .map(|entry| {
            let metric_type = entry.kind();
            (
                entry.metric_family_name,
                MetricMetadata {
                    metric_type,
                    help: entry.help,
                    unit: entry.unit,
                },
            )
        })
        .collect();
    let mut metrics = Vec::with_capacity(samples.min(MAX_RESERVED_METRICS));
    // The strings prost allocated move into the metrics: the last kept
    // sample of a series takes its name and labels, earlier ones get copies.
    // Prometheus mostly sends one sample per series, which then copies
    // nothing. (Reading labels as `bytes::Bytes` slices of the buffer, to
    // skip prost's allocations, measured 40% slower: the reference counting
    // costs more than the small allocations it saves.)
    for (series_index, series) in request.timeseries.into_iter().enumerate() {
        let mut name = None;
        let mut pairs = Vec::with_capacity(series.labels.len());
        for label in series.labels {
            if label.name == NAME_LABEL {
                name = Some(label.value);
            } else {
                pairs.push((label.name, label.value));
            }
        }
        let Some(mut name) = name.filter(|n| !n.is_empty()) else {
            return Err(DecodeError::Malformed {
                at: Position::Series(series_index),
                reason: "no __name__ label: every series needs a metric name".to_string(),
            });
        };
        let unstored = [
            (
                series.histograms.len(),
                "native histogram samples",
                "send_native_histograms",
            ),
            (series.exemplars.len(), "exemplars", "send_exemplars"),
        ];
        if let Some((count, what, setting)) = unstored.into_iter().find(|(count, ..)| *count > 0) {
            return Err(DecodeError::Malformed {
                at: Position::Series(series_index),
                reason: format!(
                    "{name} carries {count} {what}, which this server does not store; \
                     nothing of this request was kept (Prometheus: set {setting}: false \
                     in remote_write)"
                ),
            });
        }
        let mut labels = Labels::from_pairs(pairs);
        let last = series.samples.len().checked_sub(1);
        for (sample_index, sample) in series.samples.iter().enumerate() {
            let (name, labels) = if Some(sample_index) == last {
                (std::mem::take(&mut name), std::mem::take(&mut labels))
            } else {
                (name.clone(), labels.clone())
            };
            let metric = Metric {
                name,
                value: sample.value,
                timestamp_ms: sample.timestamp,
                labels,
            };
            let at = Position::Sample {
                series: series_index,
                sample: sample_index,
            };
            metrics.push(accept(metric, at, limits)?);
        }
    }
    Ok((metrics, metadata))
}

/// Encodes metrics as a remote_write 1.0 body, for tests and benches: the
/// shared encoder of the `prompb` crate, re-exported where the decoder is.
pub use prompb::encode_metrics as encode_remote_write;

#[cfg(test)]
mod tests {
    use super::*;
    use common::metric::MAX_TIMESTAMP_MS;
    use prompb::{Label, STALE_NAN_BITS, Sample, TimeSeries, compress};
    use proptest::prelude::*;

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(name, value)| Label {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|(value, timestamp)| Sample {
                    value: *value,
                    timestamp: *timestamp,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn exemplars_and_native_histograms_are_refused_naming_the_setting() {
        for (tag, setting) in [(3, "send_exemplars"), (4, "send_native_histograms")] {
            let mut with_extra = series(&[("__name__", "lat")], &[(1.0, 1_000)]);
            // Any bytes: the receiver counts them, it does not decode them.
            match tag {
                3 => with_extra.exemplars.push(vec![0x10, 0x01]),
                _ => with_extra.histograms.push(vec![0x10, 0x01]),
            }
            let body = compress(&WriteRequest {
                timeseries: vec![series(&[("__name__", "up")], &[(1.0, 1_000)]), with_extra],
                ..Default::default()
            });
            let error = decode_remote_write(&body, &limits()).unwrap_err();
            assert_eq!(error.status(), 400, "{error}");
            let message = error.to_string();
            assert!(message.contains("series 1"), "{message}");
            assert!(message.contains("lat carries 1"), "{message}");
            assert!(message.contains(setting), "{message}");
        }
    }

    #[test]
    fn name_label_becomes_the_name_and_others_labels() {
        let body = compress(&WriteRequest {
            timeseries: vec![series(
                &[("job", "node"), ("__name__", "up"), ("instance", "a:9100")],
                &[(1.0, 1_000), (0.0, 2_000)],
            )],
            ..Default::default()
        });
        let labels = Labels::from_pairs([("instance", "a:9100"), ("job", "node")]);
        assert_eq!(
            decode_remote_write(&body, &limits()).unwrap(),
            vec![
                Metric::new("up", 1.0, 1_000).with_labels(labels.clone()),
                Metric::new("up", 0.0, 2_000).with_labels(labels),
            ]
        );
    }

    #[test]
    fn stale_markers_nans_and_infinities_are_kept_bit_for_bit() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        assert!(stale.is_nan());
        let body = compress(&WriteRequest {
            timeseries: vec![series(
                &[("__name__", "up")],
                &[
                    (stale, 1),
                    (1.0, 2),
                    (f64::NAN, 3),
                    (f64::INFINITY, 4),
                    (f64::NEG_INFINITY, 5),
                    (2.0, 6),
                ],
            )],
            ..Default::default()
        });
        let decoded = decode_remote_write(&body, &limits()).unwrap();
        let bits: Vec<(u64, i64)> = decoded
            .iter()
            .map(|m| (m.value.to_bits(), m.timestamp_ms))
            .collect();
        assert_eq!(
            bits,
            [
                (STALE_NAN_BITS, 1),
                (1f64.to_bits(), 2),
                (f64::NAN.to_bits(), 3),
                (f64::INFINITY.to_bits(), 4),
                (f64::NEG_INFINITY.to_bits(), 5),
                (2f64.to_bits(), 6),
            ]
        );
        assert!(decoded.iter().all(|m| m.name == "up"));
    }

    #[test]
    fn metadata_comes_back_beside_the_metrics() {
        let body = compress(&WriteRequest {
            metadata: vec![
                prompb::MetricMetadata {
                    metric_type: 1,
                    metric_family_name: "http_requests_total".into(),
                    help: "Requests served.".into(),
                    unit: String::new(),
                },
                prompb::MetricMetadata {
                    metric_type: 42,
                    metric_family_name: "odd".into(),
                    help: String::new(),
                    unit: "seconds".into(),
                },
            ],
            ..Default::default()
        });
        let (metrics, metadata) = decode_remote_write_with_metadata(&body, &limits()).unwrap();
        assert!(metrics.is_empty(), "a metadata-only request has no samples");
        assert_eq!(metadata.len(), 2);
        assert_eq!(metadata[0].0, "http_requests_total");
        assert_eq!(metadata[0].1.metric_type, common::MetricType::Counter);
        assert_eq!(metadata[0].1.help, "Requests served.");
        assert_eq!(
            metadata[1].1.metric_type,
            common::MetricType::Unknown,
            "an unknown type number reads as unknown"
        );
        assert_eq!(metadata[1].1.unit, "seconds");
    }

    #[test]
    fn an_empty_request_is_zero_metrics() {
        let body = compress(&WriteRequest::default());
        assert_eq!(decode_remote_write(&body, &limits()).unwrap(), vec![]);
    }

    #[test]
    fn a_series_without_a_name_is_refused_by_index() {
        let body = compress(&WriteRequest {
            timeseries: vec![
                series(&[("__name__", "up")], &[(1.0, 1)]),
                series(&[("job", "x")], &[(1.0, 1)]),
            ],
            ..Default::default()
        });
        let err = decode_remote_write(&body, &limits()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "series 1: no __name__ label: every series needs a metric name"
        );
    }

    #[test]
    fn rule_breaks_name_series_and_sample() {
        let body = compress(&WriteRequest {
            timeseries: vec![series(&[("__name__", "up")], &[(1.0, 1), (1.0, -7)])],
            ..Default::default()
        });
        let err = decode_remote_write(&body, &limits()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("series 0 sample 1: timestamp -7 is out of range"),
            "{err}"
        );

        let body = compress(&WriteRequest {
            timeseries: vec![series(&[("__name__", "up"), ("a-b", "x")], &[(1.0, 1)])],
            ..Default::default()
        });
        let err = decode_remote_write(&body, &limits()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"series 0 sample 0: invalid label name "a-b""#),
            "{err}"
        );
    }

    #[test]
    fn labels_must_be_utf8() {
        // WriteRequest{timeseries: [TimeSeries{labels: [Label{name: "a",
        // value: "\xff"}]}]}, written field by field: our types cannot hold
        // invalid UTF-8, which is the point.
        let protobuf = [0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, 0xff];
        let body = snap::raw::Encoder::new().compress_vec(&protobuf).unwrap();
        let err = decode_remote_write(&body, &limits())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("remote_write: bad protobuf: "), "{err}");
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn labels_limit_applies_without_counting_the_name() {
        let limits = DecodeLimits {
            max_labels_per_series: 2,
            ..DecodeLimits::default()
        };
        let body = compress(&WriteRequest {
            timeseries: vec![
                series(&[("__name__", "up"), ("a", "1"), ("b", "2")], &[(1.0, 1)]),
                series(
                    &[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3")],
                    &[(1.0, 1)],
                ),
            ],
            ..Default::default()
        });
        let err = decode_remote_write(&body, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "series 1 sample 0: 3 labels, the limit is 2 per series"
        );
    }

    #[test]
    fn size_is_checked_before_decompressing() {
        let metrics: Vec<Metric> = (0..200).map(|i| Metric::new("up", 1.0, i)).collect();
        let body = encode_remote_write(&metrics);
        let limits = DecodeLimits {
            max_body_bytes: 64,
            ..DecodeLimits::default()
        };
        assert_eq!(
            decode_remote_write(&body, &limits).unwrap_err().to_string(),
            "remote_write: decompressed body exceeds 64 bytes"
        );
        // A header announcing ~4 GiB with no data behind it: refused by the
        // limit, never allocated.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(
            decode_remote_write(&claim, &DecodeLimits::default()),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_bodies_name_the_layer() {
        let err = decode_remote_write(b"", &limits()).unwrap_err().to_string();
        assert!(err.starts_with("remote_write: bad snappy data: "), "{err}");
        // Framed snappy (what `snap::write::FrameEncoder` produces) is not
        // the block format remote_write uses.
        let framed = b"\xff\x06\x00\x00sNaPpY";
        let err = decode_remote_write(framed, &limits())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("remote_write: bad snappy data: "), "{err}");
        let not_protobuf = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        let err = decode_remote_write(&not_protobuf, &limits())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("remote_write: bad protobuf: "), "{err}");
    }

    #[test]
    fn encoding_groups_consecutive_samples_and_sorts_labels() {
        let labels = Labels::from_pairs([("Zone", "z"), ("host", "a")]);
        let metrics = [
            Metric::new("up", 1.0, 1).with_labels(labels.clone()),
            Metric::new("up", 2.0, 2).with_labels(labels.clone()),
            Metric::new("down", 3.0, 3),
        ];
        let body = encode_remote_write(&metrics);
        let protobuf = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let request = WriteRequest::decode(protobuf.as_slice()).unwrap();
        assert_eq!(request.timeseries.len(), 2);
        let names: Vec<&str> = request.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["Zone", "__name__", "host"]);
        assert_eq!(request.timeseries[0].samples.len(), 2);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_remote_write(&body, &limits());
        }

        #[test]
        fn decoding_arbitrary_protobuf_never_panics(protobuf in proptest::collection::vec(any::<u8>(), 0..300)) {
            // Valid snappy around noise reaches the protobuf decoder.
            let body = snap::raw::Encoder::new().compress_vec(&protobuf).unwrap();
            let _ = decode_remote_write(&body, &limits());
        }

        #[test]
        fn metrics_round_trip(
            metrics in proptest::collection::vec(
                (
                    "[a-zA-Z_:][a-zA-Z0-9_:]{0,15}",
                    proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9_]{0,8}", ".{1,8}"), 0..4),
                    any::<f64>().prop_filter("finite", |v| v.is_finite()),
                    0..=MAX_TIMESTAMP_MS,
                ),
                0..20,
            )
        ) {
            let metrics: Vec<Metric> = metrics
                .into_iter()
                .map(|(name, pairs, value, ts)| {
                    Metric::new(name, value, ts).with_labels(Labels::from_pairs(pairs))
                })
                .collect();
            let body = encode_remote_write(&metrics);
            prop_assert_eq!(decode_remote_write(&body, &limits()), Ok(metrics));
        }
    }
}
