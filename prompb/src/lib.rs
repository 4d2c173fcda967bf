//! Prometheus remote_write 1.0 on the wire, declared once.
//!
//! Craft 1 decodes these messages at `/api/v1/write`; loadgen and the tests
//! encode them to play Prometheus. Both used to declare the schema for
//! themselves, which is how two copies drift apart one field at a time.
//!
//! # Layout
//!
//! This crate is one file:
//! - the messages — [`WriteRequest`], [`TimeSeries`], [`Label`], [`Sample`],
//!   declared by hand with prost's derive (no build script, no `protoc`),
//!   keeping only the fields anyone here reads (series, samples, and the
//!   families' metadata); prost skips unknown fields, so a newer sender's
//!   exemplars and native histograms are ignored rather than refused;
//! - [`encode_metrics`] — a batch of `common::Metric`s as the body a sender
//!   posts: the protobuf bytes, snappy *block*-compressed (not the framed
//!   format), as the protocol asks.
//!
//! What the wire means for the platform (a series without `__name__`, NaN
//! and the stale marker, limits) is craft 1's business, in
//! `craft1-ingestion/src/decode/remote_write.rs`. Docs: chapter 1.

use common::Metric;
use prost::Message;

/// The label that carries the metric name in Prometheus' data model.
pub const NAME_LABEL: &str = "__name__";

/// Prometheus' stale marker, the NaN a sender writes when a series ends;
/// defined with the data model in `common`.
pub use common::metric::STALE_NAN_BITS;

/// `prometheus.WriteRequest`: the whole request.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series, each with its samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric families' types, help and units (Prometheus sends them every
    /// `metadata_config.send_interval`, one minute by default, often in a
    /// request without series).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.MetricMetadata`: one metric family's description.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// The type: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge
    /// histogram, 5 summary, 6 info, 7 stateset; a value beyond is read
    /// as unknown.
    #[prost(int32, tag = "1")]
    pub metric_type: i32,
    /// The family's name (`http_requests_total`; a histogram's name without
    /// `_bucket`).
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// The help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// The unit (`seconds`), often empty.
    #[prost(string, tag = "5")]
    pub unit: String,
}

impl MetricMetadata {
    /// The type as the data model names it.
    pub fn kind(&self) -> common::MetricType {
        use common::MetricType::*;
        match self.metric_type {
            1 => Counter,
            2 => Gauge,
            3 => Histogram,
            4 => GaugeHistogram,
            5 => Summary,
            6 => Info,
            7 => Stateset,
            _ => Unknown,
        }
    }
}

/// `prometheus.TimeSeries`: one series' labels and samples.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// All labels, `__name__` included; sorted by name when Prometheus sends
    /// them, which a receiver should not rely on.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// `prometheus.Exemplar`s, undecoded: a receiver that does not store
    /// them must still see that they came, and say so, rather than let
    /// prost skip them unseen.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub exemplars: Vec<Vec<u8>>,
    /// `prometheus.Histogram`s (native histograms), undecoded, for the
    /// same reason.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Field keys, `(field number << 3) | wire type 2 (length-delimited)`, for
/// encoders that frame the bytes themselves: `WriteRequest.timeseries` and
/// `TimeSeries.samples` (`TimeSeries.labels` shares the first's value).
pub const KEY_TIMESERIES: u8 = (1 << 3) | 2;
/// See [`KEY_TIMESERIES`].
pub const KEY_SAMPLES: u8 = (2 << 3) | 2;

/// Encodes metrics as a remote_write 1.0 body (snappy block-compressed
/// `WriteRequest`).
///
/// Consecutive metrics of the same series share one `TimeSeries`, as
/// Prometheus batches them; labels are sent sorted by name with `__name__`
/// in its sorted place, as the protocol asks.
///
/// # Panics
/// Only if the encoded request exceeds snappy's 4 GiB block limit — far
/// beyond any batch a sender would build in memory.
pub fn encode_metrics(metrics: &[Metric]) -> Vec<u8> {
    compress(&write_request(metrics))
}

/// The `WriteRequest` [`encode_metrics`] compresses.
pub fn write_request(metrics: &[Metric]) -> WriteRequest {
    let mut request = WriteRequest::default();
    let mut previous: Option<&Metric> = None;
    for metric in metrics {
        let sample = Sample {
            value: metric.value,
            timestamp: metric.timestamp_ms,
        };
        let same_series =
            previous.is_some_and(|p| p.name == metric.name && p.labels == metric.labels);
        match request.timeseries.last_mut() {
            Some(series) if same_series => series.samples.push(sample),
            _ => request.timeseries.push(TimeSeries {
                labels: wire_labels(metric),
                samples: vec![sample],
                ..Default::default()
            }),
        }
        previous = Some(metric);
    }
    request
}

/// A request as a sender posts it: protobuf, then snappy's block format.
///
/// # Panics
/// As [`encode_metrics`].
pub fn compress(request: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("a remote_write request below snappy's 4 GiB block limit")
}

/// A metric's name and labels as one sorted list of wire labels.
pub fn wire_labels(metric: &Metric) -> Vec<Label> {
    let mut labels: Vec<Label> = metric
        .labels
        .iter()
        .map(|(name, value)| Label {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
    // `Labels` is sorted and cannot hold `__name__` (reserved), so one
    // binary search finds its place.
    let at = labels.partition_point(|l| l.name.as_str() < NAME_LABEL);
    labels.insert(
        at,
        Label {
            name: NAME_LABEL.to_string(),
            value: metric.name.clone(),
        },
    );
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Labels;

    fn metric(name: &str, labels: &[(&str, &str)], value: f64, at: i64) -> Metric {
        Metric::new(name, value, at).with_labels(Labels::from_pairs(labels.iter().copied()))
    }

    #[test]
    fn consecutive_samples_of_a_series_share_one_time_series() {
        let a = [("host", "a")];
        let b = [("host", "b")];
        let request = write_request(&[
            metric("x", &a, 1.0, 1_000),
            metric("x", &a, 2.0, 2_000),
            metric("x", &b, 3.0, 1_000),
            metric("x", &a, 4.0, 3_000),
        ]);
        let counts: Vec<usize> = request.timeseries.iter().map(|s| s.samples.len()).collect();
        assert_eq!(counts, [2, 1, 1]);
    }

    #[test]
    fn the_name_sits_in_its_sorted_place() {
        let request = write_request(&[metric("m", &[("a", "1"), ("z", "2")], 1.0, 1)]);
        let names: Vec<&str> = request.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["__name__", "a", "z"]);
    }

    #[test]
    fn the_body_is_snappy_block_compressed_protobuf() {
        let metrics = [metric("up", &[("job", "node")], 1.0, 1_700_000_000_000)];
        let body = encode_metrics(&metrics);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("snappy block");
        let decoded = WriteRequest::decode(raw.as_slice()).expect("protobuf");
        assert_eq!(decoded, write_request(&metrics));
        assert_eq!(
            decoded.timeseries[0].samples[0].timestamp,
            1_700_000_000_000
        );
    }
}
