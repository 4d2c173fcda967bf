//! `loadgen send`'s input: a dataset file (line protocol or NDJSON), read and
//! cut into request bodies of at most `--batch` lines *before* the clock
//! starts.
//!
//! Why up front: `send` measures the server. If loadgen read, split and framed
//! the file while sending, its own disk and parsing cost would be part of the
//! figure. Here every body is rendered once into the exact bytes of its
//! request (head included), in file order, so the workers only pick the next
//! one and write it. The file is streamed line by line and each body is
//! rendered as soon as it is full, so memory peaks at about the file's size
//! once, not twice.
//!
//! What counts: blank lines (and `#` comments in line protocol) carry no
//! sample and are skipped. An NDJSON line is one metric. A line-protocol line
//! carries one sample per numeric field — strings are not stored by the
//! servers — so `cpu,host=a value=1 1700000000000000000` is one sample and
//! `cpu,host=a user=1,sys=2` two. Lines are otherwise sent as they are: a
//! malformed one is the server's to refuse, and the report says so.
//!
//! Line protocol timestamps have no unit of their own, so the write path must
//! name the `precision`: `--precision`, a `precision=` already in `--url`, or
//! detected from the first timestamp's size (19 digits: ns, as `loadgen gen`
//! writes; 16: us; 13: ms; 10: s).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::body::{BodyFormat, BodySpec};
use crate::client::{RequestTemplate, WireRequest};

/// `--format` of `send`: the wire forms `loadgen gen` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SendFormat {
    /// InfluxDB line protocol (`.lp`), POSTed to `/write?precision=…`.
    Lp,
    /// One JSON metric per line (`.jsonl`, `.ndjson`), POSTed to `/metrics`
    /// as `application/x-ndjson`.
    #[value(alias = "jsonl")]
    Ndjson,
}

impl SendFormat {
    /// The format a file's extension names, if it names one.
    pub fn from_extension(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "lp" | "line" => Some(Self::Lp),
            "jsonl" | "ndjson" => Some(Self::Ndjson),
            _ => None,
        }
    }

    /// `--format` if given, else the extension's; an error names the file.
    pub fn resolve(explicit: Option<Self>, path: &Path) -> Result<Self> {
        match explicit.or_else(|| Self::from_extension(path)) {
            Some(format) => Ok(format),
            None => bail!(
                "cannot tell the format of --file '{}' from its extension \
                 (.lp, .jsonl or .ndjson); pass --format lp or --format ndjson",
                path.display()
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Lp => "lp",
            Self::Ndjson => "ndjson",
        }
    }

    /// The `run` body format with the same Content-Type and write path.
    pub fn body_format(self) -> BodyFormat {
        match self {
            Self::Lp => BodyFormat::Lp,
            Self::Ndjson => BodyFormat::Ndjson,
        }
    }

    /// Write path when `--url` has none: `/write` (precision added later) or
    /// `/metrics`.
    pub fn default_path(self) -> &'static str {
        match self {
            Self::Lp => "/write",
            Self::Ndjson => "/metrics",
        }
    }
}

/// `--precision`: the unit of line-protocol timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    Ns,
    Us,
    Ms,
    S,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ns => "ns",
            Self::Us => "us",
            Self::Ms => "ms",
            Self::S => "s",
        }
    }

    /// The unit a present-day timestamp of this many digits is in.
    fn from_digits(digits: usize) -> Self {
        match digits {
            0..=11 => Self::S,
            12..=14 => Self::Ms,
            15..=17 => Self::Us,
            _ => Self::Ns,
        }
    }
}

/// Where the precision on the write path came from (echoed in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrecisionSource {
    Flag,
    Url,
    Detected,
    /// No timestamp in the file's first data line: the InfluxDB default.
    Default,
}

impl PrecisionSource {
    pub fn name(self) -> &'static str {
        match self {
            Self::Flag => "--precision",
            Self::Url => "--url",
            Self::Detected => "detected from the first timestamp",
            Self::Default => "default, no timestamp in the first line",
        }
    }
}

/// How to read the file.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub path: PathBuf,
    pub format: SendFormat,
    /// Most lines per body, at least 1.
    pub batch: usize,
    /// Stop after this many data lines.
    pub limit: Option<u64>,
}

/// One request, ready to write.
pub struct PreparedBody {
    pub request: WireRequest,
    pub lines: u64,
    pub samples: u64,
    /// 1-based line number (in the file) of the body's first line.
    pub first_line: u64,
}

/// The whole file, cut into requests.
pub struct Prepared {
    pub bodies: Vec<PreparedBody>,
    pub summary: FileSummary,
}

/// What the file held, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    pub bodies: u64,
    pub lines: u64,
    pub samples: u64,
    /// Body bytes (without request heads).
    pub bytes: u64,
    /// Blank and comment lines left out.
    pub skipped_lines: u64,
    /// The final write path (with `precision=` for line protocol).
    pub write_path: String,
    pub precision: Option<(Precision, PrecisionSource)>,
}

/// Bodies before they become requests: the write path depends on the
/// precision, which depends on the file's first line.
struct RawBody {
    bytes: Vec<u8>,
    lines: u64,
    samples: u64,
    first_line: u64,
}

/// Reads `options.path` and renders every body as a request to `write_path`
/// on `authority` (the Host header). `flag_precision` is `--precision`.
pub fn prepare(
    options: &ReadOptions,
    write_path: &str,
    authority: &str,
    flag_precision: Option<Precision>,
) -> Result<Prepared> {
    let batch = options.batch.max(1);
    let path = &options.path;
    let file =
        File::open(path).with_context(|| format!("cannot open --file '{}'", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);

    let mut raw_bodies = Vec::new();
    let mut current = RawBody {
        bytes: Vec::new(),
        lines: 0,
        samples: 0,
        first_line: 0,
    };
    let (mut lines, mut samples, mut bytes, mut skipped_lines) = (0u64, 0u64, 0u64, 0u64);
    let mut first_timestamp_digits: Option<Option<usize>> = None;
    let mut line = Vec::with_capacity(256);
    let mut line_number = 0u64;
    loop {
        if options.limit.is_some_and(|limit| lines >= limit) {
            break;
        }
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read --file '{}'", path.display()))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let content = line.trim_ascii();
        if content.is_empty() || (options.format == SendFormat::Lp && content[0] == b'#') {
            skipped_lines += 1;
            continue;
        }
        let line_samples = match options.format {
            SendFormat::Lp => {
                let shape = lp_shape(content);
                first_timestamp_digits.get_or_insert(shape.timestamp_digits);
                shape.numeric_fields
            }
            SendFormat::Ndjson => 1,
        };
        if current.lines == 0 {
            current.first_line = line_number;
        }
        current.bytes.extend_from_slice(&line);
        if line.last() != Some(&b'\n') {
            current.bytes.push(b'\n');
        }
        current.lines += 1;
        current.samples += line_samples;
        lines += 1;
        samples += line_samples;
        if current.lines as usize == batch {
            bytes += current.bytes.len() as u64;
            let capacity = current.bytes.len() + current.bytes.len() / 8;
            raw_bodies.push(std::mem::replace(
                &mut current,
                RawBody {
                    bytes: Vec::with_capacity(capacity),
                    lines: 0,
                    samples: 0,
                    first_line: 0,
                },
            ));
        }
    }
    if current.lines > 0 {
        bytes += current.bytes.len() as u64;
        raw_bodies.push(current);
    }
    if lines == 0 {
        bail!(
            "--file '{}' has no data line to send{}",
            path.display(),
            if skipped_lines > 0 {
                " (only blank or comment lines)"
            } else {
                " (it is empty)"
            }
        );
    }

    let (write_path, precision) = match options.format {
        SendFormat::Ndjson => (write_path.to_string(), None),
        SendFormat::Lp => {
            let detected = first_timestamp_digits.flatten().map(Precision::from_digits);
            let (path, precision, source) = lp_path(write_path, flag_precision, detected)?;
            (path, Some((precision, source)))
        }
    };
    let headers = BodySpec::new(options.format.body_format(), false)?.headers();
    let template = RequestTemplate::post(&write_path, authority, true, &headers);
    let body_count = raw_bodies.len() as u64;
    let bodies = raw_bodies
        .into_iter()
        .map(|raw| {
            let mut request = WireRequest::default();
            template.render(&raw.bytes, &mut request);
            // `raw.bytes` is dropped here: one copy of each body at a time.
            PreparedBody {
                request,
                lines: raw.lines,
                samples: raw.samples,
                first_line: raw.first_line,
            }
        })
        .collect();
    Ok(Prepared {
        bodies,
        summary: FileSummary {
            bodies: body_count,
            lines,
            samples,
            bytes,
            skipped_lines,
            write_path,
            precision,
        },
    })
}

/// The line-protocol write path with exactly one `precision`: the URL's if
/// it has one (a different `--precision` is an error), else `--precision`,
/// else the detected one, else `ns` (InfluxDB's default).
fn lp_path(
    path: &str,
    flag: Option<Precision>,
    detected: Option<Precision>,
) -> Result<(String, Precision, PrecisionSource)> {
    let query = path.split_once('?').map(|(_, query)| query);
    let in_url = query.and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("precision="))
    });
    if let Some(text) = in_url {
        let Some(precision) = [Precision::Ns, Precision::Us, Precision::Ms, Precision::S]
            .into_iter()
            .find(|p| p.name() == text)
        else {
            bail!("invalid --url path '{path}': precision '{text}' is not one of ns, us, ms, s");
        };
        if let Some(flag) = flag
            && flag != precision
        {
            bail!(
                "--precision {} contradicts precision={text} in the --url path '{path}'",
                flag.name()
            );
        }
        return Ok((path.to_string(), precision, PrecisionSource::Url));
    }
    let (precision, source) = match (flag, detected) {
        (Some(flag), _) => (flag, PrecisionSource::Flag),
        (None, Some(detected)) => (detected, PrecisionSource::Detected),
        (None, None) => (Precision::Ns, PrecisionSource::Default),
    };
    let separator = match query {
        None => "?",
        Some("") => "",
        Some(_) => "&",
    };
    Ok((
        format!("{path}{separator}precision={}", precision.name()),
        precision,
        source,
    ))
}

/// What `prepare` needs to know about one line-protocol line.
#[derive(Debug, PartialEq, Eq)]
struct LpShape {
    /// Fields whose value is not a quoted string.
    numeric_fields: u64,
    /// Digits of the timestamp, if the line has one.
    timestamp_digits: Option<usize>,
}

/// Scans `measurement[,tags] fields [timestamp]` just enough to count the
/// numeric fields and find the timestamp: backslash escapes anywhere, and
/// double-quoted string values that may hold spaces, commas and `\"`.
/// Malformed lines get a best effort; the server judges them.
fn lp_shape(line: &[u8]) -> LpShape {
    let n = line.len();
    let step = |i: usize| if line[i] == b'\\' { 2 } else { 1 };
    // Measurement and tags end at the first unescaped space.
    let mut i = 0;
    while i < n && line[i] != b' ' {
        i += step(i);
    }
    // Field set: `key=value` pairs separated by commas, ending at a space.
    let mut numeric_fields = 0;
    while i < n {
        i += 1; // the space before the set, or the comma between two fields
        while i < n && !matches!(line[i], b'=' | b' ' | b',') {
            i += step(i);
        }
        if i >= n || line[i] != b'=' {
            break;
        }
        i += 1;
        if i < n && line[i] == b'"' {
            i += 1;
            while i < n && line[i] != b'"' {
                i += step(i);
            }
            i += 1; // the closing quote
        } else {
            numeric_fields += 1;
        }
        while i < n && line[i] != b',' && line[i] != b' ' {
            i += 1;
        }
        if i >= n || line[i] == b' ' {
            break;
        }
    }
    let rest = line.get(i.min(n)..).unwrap_or_default().trim_ascii();
    let digits = rest.strip_prefix(b"-").unwrap_or(rest);
    let timestamp_digits =
        (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit)).then_some(digits.len());
    LpShape {
        numeric_fields,
        timestamp_digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn shape(line: &str) -> (u64, Option<usize>) {
        let shape = lp_shape(line.as_bytes());
        (shape.numeric_fields, shape.timestamp_digits)
    }

    #[test]
    fn line_protocol_fields_and_timestamps() {
        assert_eq!(
            shape("cpu_usage,host=h-001,region=eu value=19.6 1700000000000000000"),
            (1, Some(19))
        );
        assert_eq!(shape("cpu,host=a user=1,sys=2i"), (2, None));
        assert_eq!(shape("cpu user=1,sys=2 1700000000000"), (2, Some(13)));
        assert_eq!(
            shape(r#"log,host=a msg="a, b=c \"x\" y",level=3 1700000000"#),
            (1, Some(10))
        );
        assert_eq!(shape(r#"log msg="only text" 1"#), (0, Some(1)));
        assert_eq!(
            shape(r"disk\ io,path=C:\\x used\ pct=5 -1000"),
            (1, Some(4))
        );
        assert_eq!(shape("garbage"), (0, None));
        assert_eq!(shape("cpu value=1 notatime"), (1, None));
    }

    #[test]
    fn precision_from_digits_and_path() {
        assert_eq!(Precision::from_digits(19), Precision::Ns);
        assert_eq!(Precision::from_digits(16), Precision::Us);
        assert_eq!(Precision::from_digits(13), Precision::Ms);
        assert_eq!(Precision::from_digits(10), Precision::S);

        let path = |p, flag, detected| lp_path(p, flag, detected).expect("valid");
        assert_eq!(
            path("/write", None, Some(Precision::Ns)),
            (
                "/write?precision=ns".to_string(),
                Precision::Ns,
                PrecisionSource::Detected
            )
        );
        assert_eq!(
            path("/write?db=x", Some(Precision::Ms), Some(Precision::Ns)).0,
            "/write?db=x&precision=ms"
        );
        assert_eq!(path("/write?", None, None).0, "/write?precision=ns");
        assert_eq!(
            path("/api/v2/write?precision=s", None, Some(Precision::Ns)),
            (
                "/api/v2/write?precision=s".to_string(),
                Precision::S,
                PrecisionSource::Url
            )
        );
        let error = lp_path("/write?precision=ms", Some(Precision::Ns), None)
            .expect_err("contradiction")
            .to_string();
        assert!(error.contains("--precision ns"), "{error}");
        let error = lp_path("/write?precision=h", None, None)
            .expect_err("unknown")
            .to_string();
        assert!(error.contains("'h'"), "{error}");
    }

    #[test]
    fn format_from_flag_or_extension() {
        let resolve = |flag, path: &str| SendFormat::resolve(flag, Path::new(path));
        assert_eq!(resolve(None, "/tmp/ds/data.lp").ok(), Some(SendFormat::Lp));
        assert_eq!(resolve(None, "x.JSONL").ok(), Some(SendFormat::Ndjson));
        assert_eq!(resolve(None, "x.ndjson").ok(), Some(SendFormat::Ndjson));
        assert_eq!(
            resolve(Some(SendFormat::Lp), "x.txt").ok(),
            Some(SendFormat::Lp)
        );
        let error = resolve(None, "data.txt").expect_err("unknown").to_string();
        assert!(error.contains("'data.txt'"), "{error}");
        assert!(error.contains("--format"), "{error}");
    }

    fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        let mut file = File::create(&path).expect("create");
        file.write_all(text.as_bytes()).expect("write");
        path
    }

    /// The body of a rendered request, after the blank line.
    fn body_text(body: &PreparedBody) -> String {
        let bytes = body.request.bytes();
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head");
        String::from_utf8(bytes[end + 4..].to_vec()).expect("utf-8")
    }

    #[test]
    fn splits_in_order_and_skips_blank_and_comment_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "# header\na v=1 1700000000000\n\nb v=2,w=3 1700000000001\r\nc v=4 1700000000002\n\
                    d s=\"x\" 1700000000003\ne v=5 1700000000004";
        let path = write_file(dir.path(), "x.lp", text);
        let options = ReadOptions {
            path,
            format: SendFormat::Lp,
            batch: 2,
            limit: None,
        };
        let prepared = prepare(&options, "/write", "h:1", None).expect("prepared");
        assert_eq!(prepared.summary.lines, 5);
        // a: 1, b: 2, c: 1, d: 0 (a string field only), e: 1.
        assert_eq!(prepared.summary.samples, 5);
        assert_eq!(prepared.summary.skipped_lines, 2);
        assert_eq!(prepared.summary.write_path, "/write?precision=ms");
        assert_eq!(
            prepared.summary.precision,
            Some((Precision::Ms, PrecisionSource::Detected))
        );
        let bodies: Vec<String> = prepared.bodies.iter().map(body_text).collect();
        assert_eq!(
            bodies,
            [
                "a v=1 1700000000000\nb v=2,w=3 1700000000001\r\n",
                "c v=4 1700000000002\nd s=\"x\" 1700000000003\n",
                // The last line gets the newline it lacked.
                "e v=5 1700000000004\n",
            ]
        );
        let first_lines: Vec<u64> = prepared.bodies.iter().map(|b| b.first_line).collect();
        assert_eq!(first_lines, [2, 5, 7]);
        assert_eq!(
            prepared.summary.bytes,
            bodies.iter().map(|b| b.len() as u64).sum::<u64>()
        );
        let head = String::from_utf8_lossy(prepared.bodies[0].request.bytes()).to_string();
        assert!(
            head.starts_with("POST /write?precision=ms HTTP/1.1\r\nHost: h:1\r\n"),
            "{head}"
        );
        assert!(head.contains("Content-Type: text/plain"), "{head}");

        let limited = prepare(
            &ReadOptions {
                limit: Some(3),
                batch: 10,
                ..options
            },
            "/write",
            "h:1",
            Some(Precision::Ns),
        )
        .expect("prepared");
        assert_eq!((limited.summary.lines, limited.bodies.len()), (3, 1));
        assert_eq!(limited.summary.write_path, "/write?precision=ns");
    }

    #[test]
    fn ndjson_is_one_sample_a_line_with_its_content_type() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(
            dir.path(),
            "x.jsonl",
            "{\"name\":\"a\",\"value\":1}\n{\"name\":\"b\",\"value\":2}\n",
        );
        let prepared = prepare(
            &ReadOptions {
                path,
                format: SendFormat::Ndjson,
                batch: 10,
                limit: None,
            },
            "/metrics",
            "h:1",
            None,
        )
        .expect("prepared");
        assert_eq!((prepared.summary.lines, prepared.summary.samples), (2, 2));
        assert_eq!(prepared.summary.precision, None);
        let head = String::from_utf8_lossy(prepared.bodies[0].request.bytes()).to_string();
        assert!(head.starts_with("POST /metrics HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: application/x-ndjson"),
            "{head}"
        );
    }

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = |path: PathBuf| ReadOptions {
            path,
            format: SendFormat::Lp,
            batch: 10,
            limit: None,
        };
        let missing = dir.path().join("nope.lp");
        let error = format!(
            "{:#}",
            prepare(&options(missing.clone()), "/write", "h", None)
                .err()
                .expect("missing")
        );
        assert!(
            error.contains(&format!("'{}'", missing.display())),
            "{error}"
        );
        let empty = write_file(dir.path(), "empty.lp", "\n# nothing\n");
        let error = format!(
            "{:#}",
            prepare(&options(empty), "/write", "h", None)
                .err()
                .expect("empty")
        );
        assert!(error.contains("no data line"), "{error}");
    }
}
