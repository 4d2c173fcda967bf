//! Request bodies in every wire format the servers ingest: `--format` and
//! `--gzip`.
//!
//! - `json`: the seed's object for one metric, a JSON array for `--batch N`.
//! - `ndjson`: N JSON objects, one per line (`application/x-ndjson`).
//! - `lp`: InfluxDB line protocol, N lines
//!   `cpu_usage,host=web-01,region=eu-west value=12.5 1764000000000`, with
//!   millisecond timestamps — so the write path carries `precision=ms`.
//! - `remote-write`: a Prometheus remote_write `WriteRequest` (protobuf, one
//!   `TimeSeries` per metric with labels `__name__`, `host`, `region`),
//!   snappy-compressed in the block format, with the three headers
//!   Prometheus sends.
//! - `--gzip` compresses json/ndjson/lp bodies (`Content-Encoding: gzip`).
//!
//! Why it is built this way: the hot path must stay far cheaper than any
//! server it measures. Everything constant about a series is rendered once,
//! before the load, into tables shared by all workers ([`SeriesTables`]):
//! `,host=web-01,region=eu-west value=` for line protocol, and the already
//! protobuf-encoded `Label` fields for remote_write. A metric then costs a
//! couple of `memcpy`s plus formatting its value and timestamp, into buffers
//! that each worker reuses. For remote_write the `TimeSeries` frames are
//! written around those pre-encoded labels directly, which yields exactly the
//! bytes prost would produce for the full `WriteRequest` (a test checks this)
//! without allocating a `String` per label per metric. Compressors keep their
//! state between requests too: gzip is a raw deflate stream that is reset, not
//! rebuilt, framed by a hand-written gzip header and trailer, at level 1
//! (fast: loadgen must not become the bottleneck, and a server's inflate cost
//! barely depends on the level).
//!
//! All metrics of one body share one timestamp, taken when it is generated.

use std::sync::Arc;

use anyhow::{Result, bail};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use prost::Message;

use crate::generator::{
    Decimal, METRIC_NAMES, MetricGenerator, REGIONS, Sample, host_name, now_ms,
};

/// `--format`: what one request body carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BodyFormat {
    /// One JSON object, or a JSON array with `--batch N`.
    Json,
    /// Newline-delimited JSON objects.
    Ndjson,
    /// InfluxDB line protocol with millisecond timestamps.
    Lp,
    /// Prometheus remote_write: snappy-compressed protobuf.
    RemoteWrite,
}

impl BodyFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Lp => "lp",
            Self::RemoteWrite => "remote-write",
        }
    }

    /// The write path used when `--url` (or `--path`) names none.
    pub fn default_path(self) -> &'static str {
        match self {
            Self::Json | Self::Ndjson => "/metrics",
            Self::Lp => "/write?precision=ms",
            Self::RemoteWrite => "/api/v1/write",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
            Self::Lp => "text/plain; charset=utf-8",
            Self::RemoteWrite => "application/x-protobuf",
        }
    }
}

/// Format plus compression: everything that decides a body's bytes and
/// headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodySpec {
    pub format: BodyFormat,
    pub gzip: bool,
}

impl BodySpec {
    pub fn new(format: BodyFormat, gzip: bool) -> Result<Self> {
        if gzip && format == BodyFormat::RemoteWrite {
            bail!(
                "--gzip cannot be combined with --format remote-write \
                 (remote_write bodies are already snappy-compressed)"
            );
        }
        Ok(Self { format, gzip })
    }

    /// Header lines (name, value) every request with this body carries,
    /// besides Host, User-Agent and Content-Length.
    pub fn headers(self) -> Vec<(&'static str, &'static str)> {
        let mut headers = vec![("Content-Type", self.format.content_type())];
        if self.format == BodyFormat::RemoteWrite {
            headers.push(("Content-Encoding", "snappy"));
            headers.push(("X-Prometheus-Remote-Write-Version", "0.1.0"));
        }
        if self.gzip {
            headers.push(("Content-Encoding", "gzip"));
        }
        headers
    }

    /// Checks the write path against the format. Line protocol timestamps are
    /// in milliseconds, so an `lp` path gets `precision=ms` when it names no
    /// precision, and a different precision is refused (the server would
    /// misread every timestamp).
    pub fn finish_path(self, path: &str) -> Result<String> {
        if self.format != BodyFormat::Lp {
            return Ok(path.to_string());
        }
        let query = path.split_once('?').map(|(_, query)| query);
        let precision = query.and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("precision="))
        });
        match (query, precision) {
            (_, Some("ms")) => Ok(path.to_string()),
            (_, Some(other)) => bail!(
                "--format lp sends millisecond timestamps, but the path '{path}' asks for \
                 precision={other}; use precision=ms or leave it out"
            ),
            (Some(query), None) if !query.is_empty() => Ok(format!("{path}&precision=ms")),
            (Some(_), None) => Ok(format!("{path}precision=ms")),
            (None, None) => Ok(format!("{path}?precision=ms")),
        }
    }
}

/// The remote_write messages, declared once for craft 1's decoder and this
/// encoder.
use prompb as proto;
use prompb::{KEY_SAMPLES, KEY_TIMESERIES};

/// gzip member header (RFC 1952): magic, deflate, no flags, no mtime, no
/// extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The constant bytes of every series in the body's format, built once per
/// run and shared by all workers.
pub struct SeriesTables {
    /// `lp`: `,host=<host>,region=<region> value=` per host.
    lp_host_suffixes: Vec<Vec<u8>>,
    /// `remote-write`: the encoded `Label{__name__=<name>}` field per metric.
    rw_name_labels: Vec<Vec<u8>>,
    /// `remote-write`: the encoded `host` and `region` label fields per host.
    rw_host_labels: Vec<Vec<u8>>,
}

impl SeriesTables {
    /// `hosts` must be the generator's (clamped to at least 1 like it).
    pub fn new(format: BodyFormat, hosts: usize) -> Self {
        let hosts = hosts.max(1);
        let mut tables = Self {
            lp_host_suffixes: Vec::new(),
            rw_name_labels: Vec::new(),
            rw_host_labels: Vec::new(),
        };
        let region = |host: usize| REGIONS[host % REGIONS.len()];
        match format {
            BodyFormat::Json | BodyFormat::Ndjson => {}
            BodyFormat::Lp => {
                // Host names and regions need no line-protocol escaping.
                tables.lp_host_suffixes = (0..hosts)
                    .map(|host| {
                        format!(
                            ",host={},region={} value=",
                            host_name(host, hosts),
                            region(host)
                        )
                        .into_bytes()
                    })
                    .collect();
            }
            BodyFormat::RemoteWrite => {
                // A TimeSeries holding only labels encodes to exactly its
                // `labels` fields; concatenated, they form one series' labels
                // (sorted by name, as remote_write requires).
                let labels_only = |labels: Vec<(&str, String)>| {
                    proto::TimeSeries {
                        labels: labels
                            .into_iter()
                            .map(|(name, value)| proto::Label {
                                name: name.to_string(),
                                value,
                            })
                            .collect(),
                        ..Default::default()
                    }
                    .encode_to_vec()
                };
                tables.rw_name_labels = METRIC_NAMES
                    .iter()
                    .map(|name| labels_only(vec![("__name__", (*name).to_string())]))
                    .collect();
                tables.rw_host_labels = (0..hosts)
                    .map(|host| {
                        labels_only(vec![
                            ("host", host_name(host, hosts)),
                            ("region", region(host).to_string()),
                        ])
                    })
                    .collect();
            }
        }
        tables
    }
}

/// One worker's body builder: renders the next body of `batch` metrics.
pub struct BodyEncoder {
    spec: BodySpec,
    tables: Arc<SeriesTables>,
    /// The uncompressed body, when the wire form is compressed.
    raw: Vec<u8>,
    deflate: Option<Compress>,
    snappy: snap::raw::Encoder,
}

impl BodyEncoder {
    pub fn new(spec: BodySpec, tables: Arc<SeriesTables>) -> Self {
        Self {
            spec,
            tables,
            raw: Vec::new(),
            deflate: spec.gzip.then(|| Compress::new(Compression::fast(), false)),
            snappy: snap::raw::Encoder::new(),
        }
    }

    /// Replaces `out` with the next request body.
    pub fn encode(
        &mut self,
        generator: &mut MetricGenerator,
        batch: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.encode_at(generator, batch, now_ms(), out)
    }

    fn encode_at(
        &mut self,
        generator: &mut MetricGenerator,
        batch: usize,
        timestamp_ms: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let batch = batch.max(1);
        let compressed = self.spec.gzip || self.spec.format == BodyFormat::RemoteWrite;
        let plain = if compressed { &mut self.raw } else { &mut *out };
        plain.clear();
        match self.spec.format {
            BodyFormat::Json => generator.write_json_body(batch, timestamp_ms, plain),
            BodyFormat::Ndjson => {
                let timestamp_ms = Decimal::new(timestamp_ms);
                for _ in 0..batch {
                    let sample = generator.next_sample();
                    generator.write_sample(&sample, &timestamp_ms, plain);
                    plain.push(b'\n');
                }
            }
            BodyFormat::Lp => {
                let timestamp_ms = Decimal::new(timestamp_ms);
                for _ in 0..batch {
                    let sample = generator.next_sample();
                    write_lp_line(&self.tables, &sample, &timestamp_ms, plain);
                }
            }
            BodyFormat::RemoteWrite => {
                let timestamp = i64::try_from(timestamp_ms).unwrap_or(i64::MAX);
                for _ in 0..batch {
                    let sample = generator.next_sample();
                    write_timeseries(&self.tables, &sample, timestamp, plain)?;
                }
            }
        }
        if self.spec.format == BodyFormat::RemoteWrite {
            out.clear();
            out.resize(snap::raw::max_compress_len(self.raw.len()), 0);
            let written = self
                .snappy
                .compress(&self.raw, out)
                .map_err(|e| anyhow::anyhow!("snappy compression failed: {e}"))?;
            out.truncate(written);
        } else if let Some(deflate) = self.deflate.as_mut() {
            gzip(deflate, &self.raw, out)?;
        }
        Ok(())
    }
}

/// `<name>,host=<host>,region=<region> value=<value> <timestamp>\n`
fn write_lp_line(
    tables: &SeriesTables,
    sample: &Sample,
    timestamp_ms: &Decimal,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(METRIC_NAMES[sample.metric()].as_bytes());
    out.extend_from_slice(&tables.lp_host_suffixes[sample.host()]);
    // An integer without the `i` suffix is a float field in line protocol, as
    // every value here is meant to be.
    sample.value.write_to(out);
    out.push(b' ');
    out.extend_from_slice(timestamp_ms.as_bytes());
    out.push(b'\n');
}

/// Appends one `WriteRequest.timeseries` field: the series' pre-encoded
/// labels and one sample.
fn write_timeseries(
    tables: &SeriesTables,
    sample: &Sample,
    timestamp: i64,
    out: &mut Vec<u8>,
) -> Result<()> {
    let name_labels = &tables.rw_name_labels[sample.metric()];
    let host_labels = &tables.rw_host_labels[sample.host()];
    let point = proto::Sample {
        value: sample.value.as_f64(),
        timestamp,
    };
    let point_len = point.encoded_len();
    let series_len = name_labels.len()
        + host_labels.len()
        + 1
        + prost::length_delimiter_len(point_len)
        + point_len;
    out.push(KEY_TIMESERIES);
    // Encoding into a Vec only fails when out of memory, which aborts anyway.
    prost::encode_length_delimiter(series_len, out)?;
    out.extend_from_slice(name_labels);
    out.extend_from_slice(host_labels);
    out.push(KEY_SAMPLES);
    point.encode_length_delimited(out)?;
    Ok(())
}

/// Replaces `out` with `input` as one gzip member, reusing `deflate`'s state.
fn gzip(deflate: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.extend_from_slice(&GZIP_HEADER);
    deflate.reset();
    let (start_in, start_out) = (deflate.total_in(), deflate.total_out());
    loop {
        let consumed = (deflate.total_in() - start_in) as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve((input.len() - consumed) / 2 + 1024);
        }
        let (before_in, before_out) = (deflate.total_in(), deflate.total_out());
        let status = deflate
            .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            .map_err(|e| anyhow::anyhow!("gzip compression failed: {e}"))?;
        if status == Status::StreamEnd {
            break;
        }
        if deflate.total_in() == before_in && deflate.total_out() == before_out {
            bail!("gzip compression made no progress");
        }
    }
    debug_assert_eq!(
        (deflate.total_out() - start_out) as usize,
        out.len() - GZIP_HEADER.len()
    );
    let mut crc = Crc::new();
    crc.update(input);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the input length modulo 2^32.
    out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const NOW: u64 = 1_764_000_000_000;

    fn encode(format: BodyFormat, gzip: bool, batch: usize) -> Vec<u8> {
        let spec = BodySpec::new(format, gzip).expect("valid spec");
        let mut encoder = BodyEncoder::new(spec, Arc::new(SeriesTables::new(format, 50)));
        let mut generator = MetricGenerator::new(42, 50);
        let mut body = Vec::new();
        encoder
            .encode_at(&mut generator, batch, NOW, &mut body)
            .expect("encodes");
        body
    }

    /// The samples a fresh generator with the same seed produces.
    fn expected_samples(batch: usize) -> Vec<Sample> {
        let mut generator = MetricGenerator::new(42, 50);
        (0..batch).map(|_| generator.next_sample()).collect()
    }

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn decode_remote_write(body: &[u8]) -> proto::WriteRequest {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .expect("valid snappy block");
        proto::WriteRequest::decode(raw.as_slice()).expect("valid WriteRequest")
    }

    #[test]
    fn json_is_an_object_or_an_array() {
        let one: serde_json::Value =
            serde_json::from_slice(&encode(BodyFormat::Json, false, 1)).expect("json");
        assert!(one.is_object(), "{one}");
        assert_eq!(one["timestamp"].as_u64(), Some(NOW));
        let many: serde_json::Value =
            serde_json::from_slice(&encode(BodyFormat::Json, false, 7)).expect("json");
        assert_eq!(many.as_array().map(Vec::len), Some(7), "{many}");
    }

    #[test]
    fn ndjson_has_one_object_per_line() {
        let body = encode(BodyFormat::Ndjson, false, 25);
        let text = String::from_utf8(body).expect("utf-8");
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 25);
        for (line, expected) in lines.iter().zip(expected_samples(25)) {
            let json: serde_json::Value = serde_json::from_str(line).expect("json line");
            assert_eq!(json["name"], METRIC_NAMES[expected.metric()]);
            assert_eq!(json["value"].as_f64(), Some(expected.value.as_f64()));
        }
        // N = 1 is one line too, not the bare object.
        assert_eq!(encode(BodyFormat::Ndjson, false, 1).last(), Some(&b'\n'));
    }

    #[test]
    fn lp_lines_have_measurement_tags_field_and_ms_timestamp() {
        let body = encode(BodyFormat::Lp, false, 30);
        let text = String::from_utf8(body).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 30);
        for (line, expected) in lines.iter().zip(expected_samples(30)) {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "{line}");
            let tags: Vec<&str> = parts[0].split(',').collect();
            assert_eq!(tags[0], METRIC_NAMES[expected.metric()], "{line}");
            assert_eq!(
                tags[1],
                format!("host={}", host_name(expected.host(), 50)),
                "{line}"
            );
            assert_eq!(
                tags[2],
                format!("region={}", REGIONS[expected.host() % REGIONS.len()])
            );
            let value: f64 = parts[1]
                .strip_prefix("value=")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no float value field: {line}"));
            assert_eq!(value, expected.value.as_f64());
            assert_eq!(parts[2], NOW.to_string());
        }
    }

    #[test]
    fn remote_write_is_snappy_protobuf_with_sorted_labels() {
        let body = encode(BodyFormat::RemoteWrite, false, 40);
        let request = decode_remote_write(&body);
        assert_eq!(request.timeseries.len(), 40);
        for (series, expected) in request.timeseries.iter().zip(expected_samples(40)) {
            let labels: Vec<(&str, &str)> = series
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            let host = host_name(expected.host(), 50);
            assert_eq!(
                labels,
                vec![
                    ("__name__", METRIC_NAMES[expected.metric()]),
                    ("host", host.as_str()),
                    ("region", REGIONS[expected.host() % REGIONS.len()]),
                ]
            );
            assert_eq!(
                series.samples,
                vec![proto::Sample {
                    value: expected.value.as_f64(),
                    timestamp: NOW as i64,
                }]
            );
        }
    }

    #[test]
    fn hand_framed_remote_write_equals_prost_encoding() {
        let body = encode(BodyFormat::RemoteWrite, false, 100);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("snappy");
        let request = proto::WriteRequest::decode(raw.as_slice()).expect("decodes");
        assert_eq!(request.encode_to_vec(), raw);
    }

    #[test]
    fn gzip_round_trips_for_every_plain_format() {
        for format in [BodyFormat::Json, BodyFormat::Ndjson, BodyFormat::Lp] {
            for batch in [1, 500] {
                let plain = encode(format, false, batch);
                let zipped = encode(format, true, batch);
                assert_eq!(&zipped[..2], &[0x1f, 0x8b]);
                assert_eq!(gunzip(&zipped), plain, "{format:?} batch {batch}");
            }
        }
    }

    #[test]
    fn encoder_state_is_reused_across_bodies() {
        let spec = BodySpec::new(BodyFormat::Lp, true).expect("valid");
        let mut encoder = BodyEncoder::new(spec, Arc::new(SeriesTables::new(BodyFormat::Lp, 3)));
        let mut generator = MetricGenerator::new(1, 3);
        let mut replay = MetricGenerator::new(1, 3);
        let mut plain_encoder = BodyEncoder::new(
            BodySpec::new(BodyFormat::Lp, false).expect("valid"),
            Arc::new(SeriesTables::new(BodyFormat::Lp, 3)),
        );
        let (mut body, mut plain) = (Vec::new(), Vec::new());
        for batch in [1000, 3, 0, 200] {
            encoder
                .encode_at(&mut generator, batch, NOW, &mut body)
                .expect("gzip");
            plain_encoder
                .encode_at(&mut replay, batch, NOW, &mut plain)
                .expect("plain");
            assert_eq!(gunzip(&body), plain);
        }

        let spec = BodySpec::new(BodyFormat::RemoteWrite, false).expect("valid");
        let tables = Arc::new(SeriesTables::new(BodyFormat::RemoteWrite, 3));
        let mut encoder = BodyEncoder::new(spec, tables);
        for batch in [500, 1, 20] {
            encoder
                .encode_at(&mut generator, batch, NOW, &mut body)
                .expect("remote write");
            assert_eq!(decode_remote_write(&body).timeseries.len(), batch);
        }
    }

    #[test]
    fn headers_per_format() {
        let spec = |format, gzip| BodySpec::new(format, gzip).expect("valid");
        assert_eq!(
            spec(BodyFormat::Json, false).headers(),
            vec![("Content-Type", "application/json")]
        );
        assert_eq!(
            spec(BodyFormat::Ndjson, true).headers(),
            vec![
                ("Content-Type", "application/x-ndjson"),
                ("Content-Encoding", "gzip")
            ]
        );
        assert_eq!(
            spec(BodyFormat::RemoteWrite, false).headers(),
            vec![
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ]
        );
        let error = BodySpec::new(BodyFormat::RemoteWrite, true)
            .expect_err("gzip + remote-write")
            .to_string();
        assert!(error.contains("--gzip"), "{error}");
    }

    #[test]
    fn lp_paths_get_millisecond_precision() {
        let lp = BodySpec::new(BodyFormat::Lp, false).expect("valid");
        let finish = |path: &str| lp.finish_path(path).expect(path);
        assert_eq!(finish("/write?precision=ms"), "/write?precision=ms");
        assert_eq!(finish("/write"), "/write?precision=ms");
        assert_eq!(
            finish("/api/v2/write?org=a&bucket=b"),
            "/api/v2/write?org=a&bucket=b&precision=ms"
        );
        assert_eq!(finish("/write?"), "/write?precision=ms");
        let error = lp
            .finish_path("/write?precision=ns")
            .expect_err("ns")
            .to_string();
        assert!(error.contains("precision=ns"), "{error}");
        let json = BodySpec::new(BodyFormat::Json, false).expect("valid");
        assert_eq!(json.finish_path("/x?y").expect("kept"), "/x?y");
    }
}
