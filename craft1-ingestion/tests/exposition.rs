//! The exposition parser against an independent model (random families
//! rendered by a plain writer, in both formats) and against the real
//! thing: Debian's `prometheus-node-exporter`, its `/metrics` in the text
//! format and in OpenMetrics.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{MetricMetadata, MetricType};
use craft1_ingestion::decode::{DecodeLimits, ExpositionFormat, decode_exposition};
use proptest::prelude::*;

/// One sample of the model.
#[derive(Debug, Clone)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp_ms: Option<i64>,
}

/// One family of the model.
#[derive(Debug, Clone)]
struct Family {
    name: String,
    help: Option<String>,
    kind: Option<MetricType>,
    samples: Vec<Sample>,
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        2 => (-1_000i64..1_000).prop_map(|v| v as f64),
    ]
}

fn family() -> impl Strategy<Value = Family> {
    let label = ("[a-z][a-z0-9_]{0,5}", "[a-z\"\\\\\n é{},=#]{1,6}");
    let sample = (
        proptest::collection::btree_map(label.0, label.1, 0..4),
        value(),
        proptest::option::of(0i64..4_000_000_000_000),
    )
        .prop_map(|(labels, value, timestamp_ms)| Sample {
            labels,
            value,
            timestamp_ms,
        });
    (
        "[a-z][a-z_:]{0,7}",
        proptest::option::of("[a-zA-Z \\\\\n\"é]{0,12}"),
        proptest::option::of(prop_oneof![
            Just(MetricType::Counter),
            Just(MetricType::Gauge),
            Just(MetricType::Summary),
            Just(MetricType::Histogram),
            Just(MetricType::Unknown),
        ]),
        proptest::collection::vec(sample, 1..4),
    )
        .prop_map(|(name, help, kind, samples)| Family {
            name,
            help,
            kind,
            samples,
        })
}

/// How the model writes a value: Go's spelling of the specials, Rust's
/// shortest round-trip text otherwise.
fn render_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value:?}")
    }
}

fn render(families: &[Family], format: ExpositionFormat) -> String {
    let open_metrics = format == ExpositionFormat::OpenMetrics;
    let mut out = String::new();
    for family in families {
        if let Some(help) = &family.help {
            let mut escaped = help.replace('\\', "\\\\").replace('\n', "\\n");
            if open_metrics {
                escaped = escaped.replace('"', "\\\"");
            }
            out.push_str(&format!("# HELP {} {escaped}\n", family.name));
        }
        if let Some(kind) = family.kind {
            let word = match (kind, open_metrics) {
                (MetricType::Unknown, false) => "untyped",
                (kind, _) => kind.as_str(),
            };
            out.push_str(&format!("# TYPE {} {word}\n", family.name));
        }
        for sample in &family.samples {
            out.push_str(&family.name);
            if !sample.labels.is_empty() {
                let pairs: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(name, value)| {
                        let value = value
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        format!("{name}=\"{value}\"")
                    })
                    .collect();
                out.push_str(&format!("{{{}}}", pairs.join(",")));
            }
            out.push(' ');
            out.push_str(&render_value(sample.value));
            if let Some(ms) = sample.timestamp_ms {
                if open_metrics {
                    out.push_str(&format!(" {}.{:03}", ms / 1000, ms % 1000));
                } else {
                    out.push_str(&format!(" {ms}"));
                }
            }
            out.push('\n');
        }
    }
    if open_metrics {
        out.push_str("# EOF\n");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the model writes, the parser reads back: every sample's
    /// name, labels, value (to the bit) and time, and each family's help
    /// and type.
    #[test]
    fn parses_what_an_independent_writer_wrote(
        families in proptest::collection::vec(family(), 0..6),
        open_metrics in any::<bool>(),
    ) {
        let format = if open_metrics { ExpositionFormat::OpenMetrics } else { ExpositionFormat::Prometheus };
        // Families named twice would merge their metadata; keep the first.
        let mut seen = std::collections::HashSet::new();
        let families: Vec<Family> = families.into_iter().filter(|f| seen.insert(f.name.clone())).collect();
        let body = render(&families, format);
        let parsed = decode_exposition(body.as_bytes(), format, 42, &DecodeLimits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        let expected: Vec<&Sample> = families.iter().flat_map(|f| &f.samples).collect();
        prop_assert_eq!(parsed.metrics.len(), expected.len());
        let names = families.iter().flat_map(|f| f.samples.iter().map(move |_| &f.name));
        for ((metric, sample), name) in parsed.metrics.iter().zip(&expected).zip(names) {
            prop_assert_eq!(&metric.name, name);
            let labels: BTreeMap<String, String> = metric.labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            prop_assert_eq!(&labels, &sample.labels);
            prop_assert_eq!(metric.value.to_bits() == sample.value.to_bits() || (metric.value.is_nan() && sample.value.is_nan()), true);
            prop_assert_eq!(metric.timestamp_ms, sample.timestamp_ms.unwrap_or(42));
        }
        let expected_metadata: Vec<(String, MetricMetadata)> = families
            .iter()
            .filter(|f| f.help.is_some() || f.kind.is_some())
            .map(|f| (f.name.clone(), MetricMetadata {
                metric_type: f.kind.unwrap_or(MetricType::Unknown),
                help: f.help.clone().unwrap_or_default(),
                unit: String::new(),
            }))
            .collect();
        prop_assert_eq!(parsed.metadata, expected_metadata);
    }
}

fn find_binary(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
}

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /metrics` over HTTP/1.0 (no chunking): the Content-Type and body.
fn scrape(port: u16, accept: &str) -> std::io::Result<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: test\r\nAccept: {accept}\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Ok((content_type, response[split + 4..].to_vec()))
}

/// A real node_exporter's page, in both formats: every sample line is one
/// metric, every family it describes has its type, and the OpenMetrics
/// page (when the exporter offers it) holds every series of the text one.
#[test]
fn a_real_node_exporter_page_parses_in_both_formats() {
    let Some(binary) = find_binary("prometheus-node-exporter") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus-node-exporter (see .ci/run)"
        );
        eprintln!("skipping: apt-get install prometheus-node-exporter");
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let _exporter = Exporter(
        Command::new(binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let (content_type, text) = loop {
        match scrape(port, "text/plain;version=0.0.4") {
            Ok(page) => break page,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => panic!("node_exporter did not answer: {error}"),
        }
    };
    assert_eq!(
        ExpositionFormat::from_content_type(&content_type),
        ExpositionFormat::Prometheus,
        "{content_type}"
    );
    let limits = DecodeLimits::default();
    let parsed = decode_exposition(&text, ExpositionFormat::Prometheus, 1, &limits)
        .unwrap_or_else(|e| panic!("{e}"));
    let page = String::from_utf8(text).expect("UTF-8");
    let sample_lines = page
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(parsed.metrics.len(), sample_lines);
    assert!(
        sample_lines > 100,
        "a node_exporter page has hundreds of samples"
    );
    // Every TYPE line gave its family a type.
    let typed: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("# TYPE ") && !l.ends_with(" untyped"))
        .collect();
    let with_type = parsed
        .metadata
        .iter()
        .filter(|(_, m)| m.metric_type != MetricType::Unknown)
        .count();
    assert_eq!(with_type, typed.len());
    assert!(typed.len() > 20, "{} TYPE lines", typed.len());
    assert!(
        parsed.metrics.iter().all(|m| m.timestamp_ms == 1),
        "node_exporter sends no timestamps"
    );

    let (content_type, body) = scrape(port, ExpositionFormat::ACCEPT).expect("scrape");
    let format = ExpositionFormat::from_content_type(&content_type);
    let again = decode_exposition(&body, format, 1, &limits)
        .unwrap_or_else(|e| panic!("{content_type}: {e}"));
    let series = |metrics: &[common::Metric]| -> std::collections::BTreeSet<String> {
        metrics
            .iter()
            .map(|m| format!("{}{:?}", m.name, m.labels))
            .collect()
    };
    let (first, second) = (series(&parsed.metrics), series(&again.metrics));
    // Series come and go between two scrapes (scrape durations per
    // collector stay; a process's threads may not): nearly all must match.
    let common = first.intersection(&second).count();
    assert!(
        common * 100 >= first.len() * 95,
        "{content_type}: {common} of {} series in both pages",
        first.len()
    );
    eprintln!(
        "node_exporter: {} samples, {} families in the text page; the {content_type} page: {} samples",
        parsed.metrics.len(),
        parsed.metadata.len(),
        again.metrics.len()
    );
}

/// The exporter the OpenMetrics test runs: Python's official client
/// (Debian's `python3-prometheus-client`), one family of each type, with
/// exemplars, label values that need escaping, and `start_http_server`,
/// which answers OpenMetrics to a scraper that asks for it.
const PYTHON_EXPORTER: &str = r#"
import sys, time
from prometheus_client import Counter, Gauge, Histogram, Summary, Info, Enum, start_http_server
c = Counter('requests', 'Requests served.', ['path'])
c.labels('/a').inc(3)
c.labels('quote"back\\slash\nnewline').inc(2)
c.labels('/e').inc(1, exemplar={'trace_id': 'abc123'})
Gauge('temperature_celsius', 'Room temperature.', unit='celsius').set(21.5)
h = Histogram('latency_seconds', 'Latency.', buckets=[0.1, 0.5, 1.0])
for v in (0.05, 0.3, 0.7, 2.0):
    h.observe(v)
h.observe(0.2, exemplar={'trace_id': 'def'})
Summary('size_bytes', 'Sizes.').observe(512)
Info('build', 'Build info.').info({'version': '1.2.3'})
Enum('state', 'State.', states=['up', 'down']).state('down')
start_http_server(int(sys.argv[1]), addr='127.0.0.1')
while True:
    time.sleep(1)
"#;

/// A real OpenMetrics page, from an implementation not written here:
/// Python's official client (node_exporter 1.5 and Prometheus 2.42 answer
/// only the text format). Every sample line is one metric, exemplars and
/// escapes included, the page ends in `# EOF`, the values and types are
/// the client's, and its text-format page holds the same series.
#[test]
fn a_real_openmetrics_page_from_the_python_client_parses() {
    let python = Path::new("/usr/bin/python3");
    let available = python.exists()
        && Command::new(python)
            .args(["-c", "import prometheus_client"])
            .status()
            .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install python3-prometheus-client (see .ci/run)"
        );
        eprintln!("skipping: apt-get install python3-prometheus-client");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let _exporter = Exporter(
        Command::new(python)
            .args(["-c", PYTHON_EXPORTER, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the python exporter"),
    );
    let accept = ExpositionFormat::ACCEPT;
    let deadline = Instant::now() + Duration::from_secs(20);
    let (content_type, body) = loop {
        match scrape(port, accept) {
            Ok(page) if !page.1.is_empty() => break page,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(_) => panic!("the exporter answered an empty page"),
            Err(error) => panic!("the exporter did not answer: {error}"),
        }
    };
    let format = ExpositionFormat::from_content_type(&content_type);
    assert_eq!(format, ExpositionFormat::OpenMetrics, "{content_type}");
    let limits = DecodeLimits::default();
    let parsed = decode_exposition(&body, format, 1, &limits).unwrap_or_else(|e| panic!("{e}"));
    let page = String::from_utf8(body).expect("UTF-8");
    assert_eq!(page.lines().last(), Some("# EOF"), "{page}");
    assert!(
        page.contains("# {trace_id=\"abc123\"}"),
        "exemplars on the page: {page}"
    );
    let sample_lines = page
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(parsed.metrics.len(), sample_lines, "{page}");
    let value = |name: &str, label: Option<(&str, &str)>| -> Option<f64> {
        parsed
            .metrics
            .iter()
            .find(|m| m.name == name && label.is_none_or(|(n, v)| m.labels.get(n) == Some(v)))
            .map(|m| m.value)
    };
    assert_eq!(value("requests_total", Some(("path", "/a"))), Some(3.0));
    assert_eq!(
        value(
            "requests_total",
            Some(("path", "quote\"back\\slash\nnewline"))
        ),
        Some(2.0),
        "escapes read back"
    );
    assert_eq!(
        value("requests_total", Some(("path", "/e"))),
        Some(1.0),
        "exemplar skipped"
    );
    assert_eq!(value("temperature_celsius", None), Some(21.5));
    assert_eq!(
        value("latency_seconds_bucket", Some(("le", "0.5"))),
        Some(3.0)
    );
    assert_eq!(
        value("latency_seconds_bucket", Some(("le", "+Inf"))),
        Some(5.0)
    );
    assert_eq!(value("latency_seconds_count", None), Some(5.0));
    assert_eq!(value("build_info", Some(("version", "1.2.3"))), Some(1.0));
    assert_eq!(value("state", Some(("state", "down"))), Some(1.0));
    let kind = |family: &str| {
        parsed
            .metadata
            .iter()
            .find(|(f, _)| f == family)
            .map(|(_, m)| (m.metric_type, m.unit.clone()))
    };
    assert_eq!(kind("requests").map(|k| k.0), Some(MetricType::Counter));
    assert_eq!(
        kind("latency_seconds").map(|k| k.0),
        Some(MetricType::Histogram)
    );
    assert_eq!(kind("size_bytes").map(|k| k.0), Some(MetricType::Summary));
    assert_eq!(
        kind("temperature_celsius"),
        Some((MetricType::Gauge, "celsius".to_string()))
    );

    let (text_type, text) = scrape(port, "text/plain;version=0.0.4").expect("text page");
    assert_eq!(
        ExpositionFormat::from_content_type(&text_type),
        ExpositionFormat::Prometheus
    );
    let text = decode_exposition(&text, ExpositionFormat::Prometheus, 1, &limits)
        .unwrap_or_else(|e| panic!("{e}"));
    let series = |metrics: &[common::Metric]| -> std::collections::BTreeSet<String> {
        metrics
            .iter()
            .map(|m| format!("{}{:?}", m.name, m.labels))
            .collect()
    };
    let (om, plain) = (series(&parsed.metrics), series(&text.metrics));
    let missing: Vec<&String> = plain.difference(&om).collect();
    assert!(missing.is_empty(), "in the text page only: {missing:?}");
    eprintln!(
        "python client: {} samples in the OpenMetrics page, {} in the text page",
        parsed.metrics.len(),
        text.metrics.len()
    );
}
