//! Request bodies → metrics, one module per wire format.
//!
//! phase0 speaks one format, one metric per request: `{"name":..,"value":..}`.
//! That caps ingestion at one metric per HTTP round trip, whatever the server
//! underneath. Craft 1 removes the cap by accepting whole batches in the
//! formats real agents already send:
//!
//! | format | module | who sends it |
//! |---|---|---|
//! | the seed's object, a JSON array of them | [`json`] | scripts, the seed's clients |
//! | NDJSON, one object per line | [`json`] | log shippers, `jq -c` |
//! | InfluxDB line protocol | [`line_protocol`] | Telegraf, InfluxDB clients |
//! | Prometheus remote_write (snappy + protobuf) | [`remote_write`] | Prometheus, Grafana Agent/Alloy, vmagent |
//! | Prometheus text 0.0.4 and OpenMetrics 1.0 (`/metrics` pages) | [`exposition`] | every exporter, for a scrape |
//! | `Content-Encoding: gzip` around any of them | [`gzip`] | most of the above, when configured |
//!
//! Every decoder is a pure function from bytes to `Vec<Metric>`: no I/O, no
//! clock (the caller passes `now_ms`), so each one is tested and benchmarked
//! without a server. The contract they share, enforced in one place
//! (`accept`):
//!
//! - a body is accepted whole or refused whole: one bad item refuses the batch,
//!   and the error names where it is (`item 3:`, `line 7:`, `series 2:`), so a
//!   client never has to guess which half of its batch landed;
//! - every returned metric has passed [`Metric::validate`];
//! - a series may carry at most [`DecodeLimits::max_labels_per_series`]
//!   labels, an operator's knob below the contract's hard ceiling
//!   ([`common::metric::MAX_LABELS`]);
//! - no input makes a decoder panic, and no decoder inflates a compressed body
//!   beyond [`DecodeLimits::max_body_bytes`].
//!
//! Story: docs chapter 1.

pub mod exposition;
pub mod gzip;
pub mod json;
mod json_object;
pub mod line_protocol;
mod number;
pub mod remote_write;
mod series_cache;

use std::fmt;

use common::{Metric, MetricError};
use thiserror::Error;

pub use exposition::{Exposition, ExpositionFormat, decode_exposition};
pub use gzip::gunzip;
pub use json::{decode_json, decode_ndjson};
pub use line_protocol::{Precision, decode_line_protocol};
pub use remote_write::{
    decode_remote_write, decode_remote_write_with_metadata, encode_remote_write,
};

/// Default [`DecodeLimits::max_labels_per_series`]. Real series carry 5–15
/// labels; 32 leaves room for generous relabelling while an exporter that
/// turns data into label *names* (one label per path, per user) is refused
/// at the door instead of bloating every index entry behind it. Mimir and Cortex default to 30
/// for the same reason. The contract's own ceiling,
/// [`common::metric::MAX_LABELS`] (64), still applies above any setting.
pub const DEFAULT_MAX_LABELS_PER_SERIES: usize = 32;

/// Default [`DecodeLimits::max_body_bytes`]: 8 MiB decompressed. A
/// Prometheus remote_write request (at most 2,000 samples by default) is a
/// few hundred KiB; a Telegraf batch of 1,000 lines well under 1 MiB. 8 MiB is
/// ample for any agent and small enough that a few hundred requests in flight
/// cannot exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Default [`DecodeLimits::max_samples_per_request`]: 500,000 — 250× a
/// Prometheus remote_write request and 500× Telegraf's default batch, and
/// at most ~50–100 MB of metrics in memory for one request.
pub const DEFAULT_MAX_SAMPLES_PER_REQUEST: usize = 500_000;

/// The wire formats [`decode`] understands. The HTTP layer picks one from the
/// route and `Content-Type`; gzip is a `Content-Encoding`, undone first with
/// [`gunzip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The seed's single object, or a JSON array of such objects.
    Json,
    /// One seed object per line.
    Ndjson,
    /// InfluxDB line protocol with the timestamps' precision (the `precision`
    /// query parameter of `/write` and `/api/v2/write`).
    LineProtocol(Precision),
    /// Prometheus remote_write 1.0: snappy block-compressed protobuf.
    RemoteWrite,
}

/// Per-request limits an operator may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most labels one series may carry (the metric name not counted). The
    /// HTTP layer answers 400 to [`DecodeError::TooManyLabels`].
    pub max_labels_per_series: usize,
    /// Largest body a decoder will hold *decompressed*, in bytes: the bound
    /// on the memory one request can claim. The HTTP layer answers 413 to
    /// [`DecodeError::TooLarge`].
    pub max_body_bytes: usize,
    /// Most samples one request may expand to. A byte limit alone does not
    /// bound memory: six bytes of line protocol (`a f=1\n`) become a ~100
    /// byte `Metric`, so a 32 MiB body could claim over half a gigabyte. The
    /// HTTP layer answers 413 to [`DecodeError::TooManySamples`].
    pub max_samples_per_request: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_labels_per_series: DEFAULT_MAX_LABELS_PER_SERIES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_samples_per_request: DEFAULT_MAX_SAMPLES_PER_REQUEST,
        }
    }
}

/// Where in a body a problem was found. Items count from 0 (array indices,
/// series in a remote_write request); lines count from 1, as editors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The whole body: the seed's single JSON object.
    Body,
    /// The n-th element of a JSON array, from 0.
    Item(usize),
    /// The n-th line of an NDJSON or line-protocol body, from 1.
    Line(usize),
    /// The n-th `TimeSeries` of a remote_write request, from 0.
    Series(usize),
    /// One sample of one remote_write series, both from 0.
    Sample {
        /// Index of the series in the request.
        series: usize,
        /// Index of the sample in the series.
        sample: usize,
    },
}

impl Position {
    /// `"item 3: "`, or nothing for [`Position::Body`] so that a refused
    /// single object reads exactly as phase0's error does.
    fn prefix(&self) -> String {
        match self {
            Position::Body => String::new(),
            other => format!("{other}: "),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Body => f.write_str("body"),
            Position::Item(index) => write!(f, "item {index}"),
            Position::Line(line) => write!(f, "line {line}"),
            Position::Series(index) => write!(f, "series {index}"),
            Position::Sample { series, sample } => write!(f, "series {series} sample {sample}"),
        }
    }
}

/// Why a body was refused. Each message names the position and the reason.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DecodeError {
    /// The body is not JSON at all, or is broken outside any one item
    /// (a missing `]`, trailing bytes).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// One item or line does not parse.
    #[error("{at}: {reason}")]
    Malformed {
        /// Where.
        at: Position,
        /// What the parser expected or found.
        reason: String,
    },
    /// One item parsed but breaks the metric rules.
    #[error("{}{source}", .at.prefix())]
    Invalid {
        /// Where.
        at: Position,
        /// The rule broken.
        source: MetricError,
    },
    /// One series carries more labels than [`DecodeLimits`] allows.
    #[error("{}{count} labels, the limit is {limit} per series", .at.prefix())]
    TooManyLabels {
        /// Where.
        at: Position,
        /// Labels the series carries.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A batch with nothing in it: `[]`, or an NDJSON or line-protocol body
    /// of blank and comment lines only. Almost always a client bug (the body
    /// was never written), so it is refused rather than silently accepted.
    #[error("empty batch: the body holds no metrics")]
    EmptyBatch,
    /// The body, once decompressed, would exceed
    /// [`DecodeLimits::max_body_bytes`].
    #[error("{stage}: decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// `gzip`, `remote_write` or `body` (an uncompressed body).
        stage: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// More samples in one request than [`DecodeLimits::max_samples_per_request`].
    #[error("more than {limit} samples in one request; split the batch")]
    TooManySamples {
        /// The configured limit.
        limit: usize,
    },
    /// Corrupt or truncated gzip data.
    #[error("gzip: bad data: {0}")]
    Gzip(String),
    /// Not snappy block-format data (framed snappy is refused here too).
    #[error("remote_write: bad snappy data: {0}")]
    Snappy(String),
    /// Decompressed fine but is not a `WriteRequest`.
    #[error("remote_write: bad protobuf: {0}")]
    Protobuf(String),
    /// An unknown line-protocol `precision`.
    #[error(
        "invalid precision {0:?}: expected ns, us, ms or s (InfluxDB v1 also accepts n, u, h and m)"
    )]
    InvalidPrecision(String),
}

impl DecodeError {
    /// The HTTP status this refusal deserves: 413 when the body is too large
    /// (the client should send smaller batches), 400 for everything else
    /// (the client should fix the body; resending it as is cannot help).
    pub fn status(&self) -> u16 {
        match self {
            DecodeError::TooLarge { .. } | DecodeError::TooManySamples { .. } => 413,
            _ => 400,
        }
    }
}

/// Decodes a whole body in `format` into validated metrics, stamping `now_ms`
/// on samples that carry no timestamp.
///
/// `body` is already free of any `Content-Encoding` (see [`gunzip`]).
///
/// # Errors
/// [`DecodeError::TooLarge`] when `body` exceeds `limits.max_body_bytes`;
/// otherwise the first problem the format's decoder finds, see
/// [`decode_json`], [`decode_ndjson`], [`decode_line_protocol`] and
/// [`decode_remote_write`].
pub fn decode(
    format: Format,
    body: &[u8],
    now_ms: i64,
    limits: &DecodeLimits,
) -> Result<Vec<Metric>, DecodeError> {
    // The HTTP layer bounds what it reads from the socket; checking here too
    // makes the limit a property of decoding itself, whoever calls it.
    if body.len() > limits.max_body_bytes {
        return Err(DecodeError::TooLarge {
            stage: "body",
            limit: limits.max_body_bytes,
        });
    }
    match format {
        Format::Json => decode_json(body, now_ms, limits),
        Format::Ndjson => decode_ndjson(body, now_ms, limits),
        Format::LineProtocol(precision) => decode_line_protocol(body, precision, now_ms, limits),
        Format::RemoteWrite => decode_remote_write(body, limits),
    }
}

/// The single gate every decoded metric passes: the labels limit first (so
/// an operator's limit is reported as such, even above the contract's
/// ceiling), then the contract's own rules.
/// Refuses the next sample when `so_far` already reached the limit.
pub(crate) fn room_for_one_more(so_far: usize, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if so_far >= limits.max_samples_per_request {
        return Err(DecodeError::TooManySamples {
            limit: limits.max_samples_per_request,
        });
    }
    Ok(())
}

pub(crate) fn accept(
    metric: Metric,
    at: Position,
    limits: &DecodeLimits,
) -> Result<Metric, DecodeError> {
    let count = metric.labels.len();
    if count > limits.max_labels_per_series {
        return Err(DecodeError::TooManyLabels {
            at,
            count,
            limit: limits.max_labels_per_series,
        });
    }
    metric
        .validate()
        .map_err(|source| DecodeError::Invalid { at, source })?;
    Ok(metric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Labels;

    fn many_labels(n: usize) -> Labels {
        Labels::from_pairs((0..n).map(|i| (format!("l{i}"), "v".to_string())))
    }

    #[test]
    fn labels_limit_is_checked_before_the_contract() {
        let limits = DecodeLimits {
            max_labels_per_series: 2,
            ..DecodeLimits::default()
        };
        let metric = Metric::new("x", 1.0, 0).with_labels(many_labels(3));
        let err = accept(metric, Position::Item(4), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "item 4: 3 labels, the limit is 2 per series"
        );

        // Above the contract's ceiling the operator's limit is still the one
        // reported, so the HTTP layer sees one variant for one cause.
        let metric = Metric::new("x", 1.0, 0).with_labels(many_labels(70));
        let err = accept(metric, Position::Line(1), &DecodeLimits::default()).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooManyLabels {
                count: 70,
                limit: 32,
                ..
            }
        ));
    }

    #[test]
    fn a_single_object_error_reads_like_phase0() {
        let err = accept(
            Metric::new("1x", 1.0, 0),
            Position::Body,
            &DecodeLimits::default(),
        )
        .unwrap_err();
        let phase0 = common::decode_metric_json(br#"{"name":"1x","value":1}"#, 0).unwrap_err();
        assert_eq!(err.to_string(), phase0.to_string());
    }

    #[test]
    fn positions_read_naturally() {
        let err = accept(
            Metric::new("x", 1.0, -1),
            Position::Sample {
                series: 2,
                sample: 0,
            },
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("series 2 sample 0: timestamp -1 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn an_oversized_plain_body_is_refused_before_parsing() {
        let limits = DecodeLimits {
            max_body_bytes: 4,
            ..DecodeLimits::default()
        };
        let err = decode(Format::Json, b"[1,2,3]", 0, &limits).unwrap_err();
        assert_eq!(err.to_string(), "body: decompressed body exceeds 4 bytes");
    }

    #[test]
    fn every_format_is_dispatched() {
        let limits = DecodeLimits::default();
        let metric = Metric::new("cpu_usage", 1.5, 1_000);
        let bodies: [(Format, Vec<u8>); 4] = [
            (
                Format::Json,
                br#"{"name":"cpu_usage","value":1.5,"timestamp":1000}"#.to_vec(),
            ),
            (
                Format::Ndjson,
                b"{\"name\":\"cpu_usage\",\"value\":1.5,\"timestamp\":1000}\n".to_vec(),
            ),
            (
                Format::LineProtocol(Precision::Milliseconds),
                b"cpu_usage value=1.5 1000".to_vec(),
            ),
            (
                Format::RemoteWrite,
                encode_remote_write(std::slice::from_ref(&metric)),
            ),
        ];
        for (format, body) in bodies {
            let decoded = decode(format, &body, 0, &limits).unwrap();
            assert_eq!(decoded, vec![metric.clone()], "{format:?}");
        }
    }
}
