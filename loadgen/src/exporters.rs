//! `loadgen exporters`: a fleet of fake Prometheus exporters in one process,
//! the thing a scraper is measured against.
//!
//! N targets listen on N ports of 127.0.0.1 (port 0, so any free ones),
//! each answering `GET /metrics` with M series in the text format 0.0.4: a
//! mix of counters that grow every scrape, gauges that move, and classic
//! histograms (`le` buckets, `_sum`, `_count`), with `HELP`/`TYPE` lines.
//! The addresses are written as a `file_sd` JSON and as a `scrape_configs`
//! fragment of a `prometheus.yml`, so the same fleet can be handed to the
//! platform, to Prometheus and to vmagent unchanged.
//!
//! The bottleneck it must not have: the fleet shares the machine with the
//! scraper it measures, so a page must be cheap. Every series' name,
//! labels and the family headers are rendered once into a template; a
//! scrape only writes numbers between those fixed byte strings (integers
//! by hand, no float formatting), on a tokio runtime of `--threads`
//! workers (one by default, so the fleet never takes more than one core).
//!
//! Each target counts the pages it served; `GET /scrapes` on the control
//! port answers the counts, so a run knows how many scrapes each scraper
//! really made and how many it missed. Docs chapter 1, "Measured: scraping
//! a fleet".

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The text format's content type, as real exporters send it.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of every histogram's buckets (`+Inf` added after them).
const BUCKETS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];

/// Series of one histogram child: the buckets, `+Inf`, `_sum`, `_count`.
const HISTOGRAM_SERIES: usize = BUCKETS.len() + 3;

/// Children per counter or gauge family, and per histogram family: real
/// exporters have many small families rather than one huge one.
const FAMILY_CHILDREN: usize = 100;
const HISTOGRAM_FAMILY_CHILDREN: usize = 10;

#[derive(Args, Debug, Clone)]
pub struct ExportersArgs {
    /// Number of targets (each on its own port).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub targets: u32,
    /// Series on each target's page.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub series: u32,
    /// Address the targets and the control port listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the control endpoint (`GET /scrapes`); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub control_port: u16,
    /// Write the targets as Prometheus `file_sd` JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub file_sd: Option<PathBuf>,
    /// Write a `scrape_configs:` fragment of prometheus.yml listing the
    /// targets under `static_configs` to FILE.
    #[arg(long, value_name = "FILE")]
    pub static_config: Option<PathBuf>,
    /// The job name in the written `scrape_configs` fragment.
    #[arg(long, default_value = "fleet")]
    pub job: String,
    /// Worker threads serving the pages.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
}

/// How a series' value changes from one scrape to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    /// Grows by `step` every scrape, from a per-target start.
    Counter { step: u64 },
    /// Jumps around, with two decimals.
    Gauge,
    /// A cumulative bucket count: `share` thousandths of the child's count.
    Bucket { share: u64 },
    /// The child's `_count`: `HISTOGRAM_RATE` observations per scrape.
    Count,
    /// The child's `_sum`, in seconds with three decimals.
    Sum,
}

/// Observations a histogram child gains per scrape.
const HISTOGRAM_RATE: u64 = 1_000;
/// Cumulative share of observations at or below each bucket, in
/// thousandths, for `BUCKETS` then `+Inf`: non-decreasing, ending at all.
const BUCKET_SHARES: [u64; BUCKETS.len() + 1] =
    [20, 60, 150, 300, 520, 740, 880, 950, 985, 995, 999, 1_000];

/// One series: the fixed bytes before its value (family headers when it
/// opens a family, then `name{labels} `), and how to write the value.
#[derive(Debug)]
struct Line {
    prefix: Box<[u8]>,
    value: Value,
}

/// Every target's page, rendered once but for the numbers.
#[derive(Debug)]
pub struct Template {
    lines: Vec<Line>,
    /// Bytes of the fixed parts, to size each page's buffer once.
    fixed_bytes: usize,
}

impl Template {
    /// A page of exactly `series` series: about half counters, a fifth
    /// classic histograms (whole children of 14 series) and the rest gauges.
    pub fn new(series: usize) -> Template {
        let histogram_children = series / 5 / HISTOGRAM_SERIES;
        let rest = series - histogram_children * HISTOGRAM_SERIES;
        let counters = (rest * 5).div_ceil(8).min(rest);
        let gauges = rest - counters;
        let mut lines = Vec::with_capacity(series);
        for child in 0..counters {
            let family = child / FAMILY_CHILDREN;
            let mut prefix = String::new();
            if child % FAMILY_CHILDREN == 0 {
                prefix.push_str(&format!(
                    "# HELP fleet_requests_{family}_total Requests handled, by handler and code.\n\
                     # TYPE fleet_requests_{family}_total counter\n"
                ));
            }
            let code = ["200", "201", "404", "500"][child % 4];
            prefix.push_str(&format!(
                "fleet_requests_{family}_total{{code=\"{code}\",handler=\"/api/v1/h{}\"}} ",
                child / 4
            ));
            lines.push(Line {
                prefix: prefix.into_bytes().into(),
                value: Value::Counter {
                    step: 1 + (child as u64 * 7) % 50,
                },
            });
        }
        for child in 0..gauges {
            let family = child / FAMILY_CHILDREN;
            let mut prefix = String::new();
            if child % FAMILY_CHILDREN == 0 {
                prefix.push_str(&format!(
                    "# HELP fleet_queue_depth_{family} Items waiting, by queue.\n\
                     # TYPE fleet_queue_depth_{family} gauge\n"
                ));
            }
            prefix.push_str(&format!(
                "fleet_queue_depth_{family}{{queue=\"q{child}\"}} "
            ));
            lines.push(Line {
                prefix: prefix.into_bytes().into(),
                value: Value::Gauge,
            });
        }
        for child in 0..histogram_children {
            let family = child / HISTOGRAM_FAMILY_CHILDREN;
            let name = format!("fleet_latency_{family}_seconds");
            let labels = format!("route=\"/r{child}\"");
            let mut header = String::new();
            if child % HISTOGRAM_FAMILY_CHILDREN == 0 {
                header =
                    format!("# HELP {name} Request latency, by route.\n# TYPE {name} histogram\n");
            }
            let bounds = BUCKETS.iter().copied().chain(std::iter::once("+Inf"));
            for (index, (bound, share)) in bounds.zip(BUCKET_SHARES).enumerate() {
                let head = if index == 0 { header.as_str() } else { "" };
                lines.push(Line {
                    prefix: format!("{head}{name}_bucket{{{labels},le=\"{bound}\"}} ")
                        .into_bytes()
                        .into(),
                    value: Value::Bucket { share },
                });
            }
            lines.push(Line {
                prefix: format!("{name}_sum{{{labels}}} ").into_bytes().into(),
                value: Value::Sum,
            });
            lines.push(Line {
                prefix: format!("{name}_count{{{labels}}} ").into_bytes().into(),
                value: Value::Count,
            });
        }
        let fixed_bytes = lines.iter().map(|line| line.prefix.len() + 1).sum();
        Template { lines, fixed_bytes }
    }

    /// Number of series on a page.
    pub fn series(&self) -> usize {
        self.lines.len()
    }

    /// Target `target`'s page at its `scrape`-th scrape (1 for the first).
    pub fn render(&self, target: u64, scrape: u64) -> Vec<u8> {
        // 20 digits, a dot and three decimals at most per value.
        let mut out = Vec::with_capacity(self.fixed_bytes + self.lines.len() * 24);
        // Targets start their counters apart, as real ones would.
        let start = target.wrapping_mul(1_009) % 100_000;
        for (index, line) in self.lines.iter().enumerate() {
            out.extend_from_slice(&line.prefix);
            match line.value {
                Value::Counter { step } => push_u64(&mut out, start + scrape * step),
                Value::Gauge => {
                    let hundredths = mix(target, index as u64, scrape) % 100_000;
                    push_u64(&mut out, hundredths / 100);
                    out.push(b'.');
                    push_two_digits(&mut out, hundredths % 100);
                }
                Value::Bucket { share } => {
                    push_u64(&mut out, scrape * HISTOGRAM_RATE * share / 1_000)
                }
                Value::Count => push_u64(&mut out, scrape * HISTOGRAM_RATE),
                Value::Sum => {
                    // About 0.137 s an observation.
                    let millis = scrape * HISTOGRAM_RATE * 137;
                    push_u64(&mut out, millis / 1_000);
                    out.push(b'.');
                    push_u64_padded3(&mut out, millis % 1_000);
                }
            }
            out.push(b'\n');
        }
        out
    }
}

/// A cheap hash of the three numbers (splitmix64's finaliser): gauges that
/// move between scrapes and differ between targets, with no state.
fn mix(target: u64, line: u64, scrape: u64) -> u64 {
    let mut z = target
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(line.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(scrape.wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Decimal digits of `n`, without going through `fmt` (a page is mostly
/// numbers; this is most of what a scrape costs the fleet).
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_two_digits(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

fn push_u64_padded3(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&[
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]);
}

/// What every target's server shares.
struct Fleet {
    template: Template,
    /// Pages served, per target, in the order of the written files.
    scrapes: Vec<AtomicU64>,
    addresses: Vec<SocketAddr>,
}

/// Runs the fleet until killed.
pub fn run(args: &ExportersArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads as usize)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &ExportersArgs) -> Result<()> {
    let template = Template::new(args.series as usize);
    let mut listeners = Vec::with_capacity(args.targets as usize);
    for index in 0..args.targets {
        let listener = TcpListener::bind((args.host.as_str(), 0))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:0 for target {index} (ulimit -n is too low for {} targets?)",
                    args.host, args.targets
                )
            })?;
        listeners.push(listener);
    }
    let addresses = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot read a bound address")?;
    let control = TcpListener::bind((args.host.as_str(), args.control_port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.control_port))?;
    let control_addr = control
        .local_addr()
        .context("cannot read the bound address")?;
    if let Some(path) = &args.file_sd {
        std::fs::write(path, file_sd(&addresses, &args.job))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.static_config {
        std::fs::write(path, static_config(&addresses, &args.job))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let fleet = Arc::new(Fleet {
        template,
        scrapes: addresses.iter().map(|_| AtomicU64::new(0)).collect(),
        addresses,
    });
    for (index, listener) in listeners.into_iter().enumerate() {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            accept_loop(listener, move |request| {
                let fleet = fleet.clone();
                async move { Ok::<_, Infallible>(target_answer(&fleet, index, &request)) }
            })
            .await
        });
    }
    // Scripts and tests wait for this line: every target is bound and the
    // files are written.
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "fleet: {} targets x {} series, first at {}",
        fleet.addresses.len(),
        fleet.template.series(),
        fleet.addresses[0]
    )
    .and_then(|()| writeln!(stdout, "control listening on {control_addr}"))
    .and_then(|()| stdout.flush())
    .context("cannot write to stdout")?;
    drop(stdout);
    let fleet_for_control = fleet.clone();
    accept_loop(control, move |request| {
        let fleet = fleet_for_control.clone();
        async move { Ok::<_, Infallible>(control_answer(&fleet, &request)) }
    })
    .await;
    Ok(())
}

/// Serves every connection `listener` accepts with `answer`, keep-alive.
async fn accept_loop<F, Fut>(listener: TcpListener, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of descriptors or similar: keep the connections we
                // have and try again shortly.
                eprintln!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer));
            // A scraper closing its connection is normal.
            let _ = connection.await;
        });
    }
}

fn target_answer(
    fleet: &Fleet,
    index: usize,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "only GET /metrics here\n");
    }
    let scrape = fleet.scrapes[index].fetch_add(1, Ordering::Relaxed) + 1;
    let page = fleet.template.render(index as u64, scrape);
    let mut response = Response::new(Full::new(Bytes::from(page)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

fn control_answer(fleet: &Fleet, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET || request.uri().path() != "/scrapes" {
        return plain(StatusCode::NOT_FOUND, "only GET /scrapes here\n");
    }
    let scrapes: Vec<u64> = fleet
        .scrapes
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .collect();
    let body = serde_json::json!({
        "targets": fleet.addresses.len(),
        "series": fleet.template.series(),
        "total": scrapes.iter().sum::<u64>(),
        "addresses": fleet.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "scrapes": scrapes,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// The targets as Prometheus' `file_sd_configs` reads them.
fn file_sd(addresses: &[SocketAddr], job: &str) -> String {
    let targets: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    let groups = serde_json::json!([{ "targets": targets, "labels": { "fleet": job } }]);
    format!("{groups:#}\n")
}

/// A `scrape_configs:` section with one job listing every target; a
/// `global:` block can be put before it as it is.
fn static_config(addresses: &[SocketAddr], job: &str) -> String {
    let mut out =
        format!("scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets:\n");
    for address in addresses {
        out.push_str(&format!("          - '{address}'\n"));
    }
    out
}

/// Refuses arguments the fleet cannot serve, before binding anything.
pub fn check(args: &ExportersArgs) -> Result<()> {
    if args.job.is_empty()
        || !args
            .job
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        bail!(
            "invalid --job '{}': letters, digits, '_' and '-' only",
            args.job
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of a page: (series, value).
    fn samples(page: &[u8]) -> Vec<(String, String)> {
        std::str::from_utf8(page)
            .expect("utf-8")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("series and value");
                (series.to_string(), value.to_string())
            })
            .collect()
    }

    #[test]
    fn a_page_has_exactly_the_series_asked_for() {
        for series in [1, 2, 13, 14, 70, 71, 999, 1_000, 1_001, 5_000] {
            let template = Template::new(series);
            assert_eq!(template.series(), series);
            let page = template.render(3, 1);
            let lines = samples(&page);
            assert_eq!(lines.len(), series, "{series}");
            let distinct: std::collections::HashSet<_> = lines.iter().map(|l| &l.0).collect();
            assert_eq!(distinct.len(), series, "every series once");
            assert!(page.ends_with(b"\n"));
        }
    }

    #[test]
    fn a_thousand_series_mix_counters_gauges_and_histograms() {
        let page = Template::new(1_000).render(0, 1);
        let text = String::from_utf8(page).expect("utf-8");
        let types = |kind: &str| {
            text.lines()
                .filter(|l| l.starts_with("# TYPE") && l.ends_with(kind))
                .count()
        };
        assert!(types(" counter") >= 5, "{text}");
        assert!(types(" gauge") >= 2);
        assert!(types(" histogram") >= 1);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# HELP")).count(),
            types(" counter") + types(" gauge") + types(" histogram")
        );
        let series = samples(text.as_bytes());
        let buckets = series.iter().filter(|s| s.0.contains("_bucket{")).count();
        assert_eq!(buckets % (BUCKETS.len() + 1), 0);
        assert!(buckets >= 12 * 10);
    }

    #[test]
    fn values_change_between_scrapes_and_histograms_stay_cumulative() {
        let template = Template::new(1_000);
        let first = samples(&template.render(7, 1));
        let second = samples(&template.render(7, 2));
        let mut counters_grew = 0;
        let mut gauges_moved = 0;
        for ((series, before), (same, after)) in first.iter().zip(&second) {
            assert_eq!(series, same);
            let before: f64 = before.parse().expect("number");
            let after: f64 = after.parse().expect("number");
            if series.contains("_total{") || series.contains("_count{") {
                assert!(after > before, "{series}: {before} then {after}");
                counters_grew += 1;
            } else if series.starts_with("fleet_queue_depth") && after != before {
                gauges_moved += 1;
            }
        }
        assert!(counters_grew > 400);
        assert!(gauges_moved > 200, "{gauges_moved}");
        // Within each child, bucket counts never decrease and +Inf is _count.
        let mut last = 0.0;
        for (series, value) in &second {
            let value: f64 = value.parse().expect("number");
            if series.contains("_bucket{") {
                if series.contains("le=\"0.005\"") {
                    last = 0.0;
                }
                assert!(value >= last, "{series}");
                last = value;
            } else if series.contains("_count{") {
                assert_eq!(value, last, "{series}: +Inf is the count");
            }
        }
    }

    #[test]
    fn numbers_are_written_as_fmt_would() {
        for n in [0, 7, 10, 99, 1_234_567, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        let mut out = Vec::new();
        push_u64_padded3(&mut out, 7);
        push_two_digits(&mut out, 5);
        assert_eq!(out, b"00705");
    }

    #[test]
    fn the_files_list_every_target() {
        let addresses: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().expect("address"),
            "127.0.0.1:4002".parse().expect("address"),
        ];
        let sd: serde_json::Value =
            serde_json::from_str(&file_sd(&addresses, "fleet")).expect("json");
        assert_eq!(sd[0]["targets"][1], "127.0.0.1:4002");
        assert_eq!(sd[0]["labels"]["fleet"], "fleet");
        let yml = static_config(&addresses, "fleet");
        assert!(yml.starts_with("scrape_configs:\n  - job_name: fleet\n"));
        assert!(yml.contains("- '127.0.0.1:4001'\n") && yml.contains("- '127.0.0.1:4002'\n"));
    }
}
