//! loadgen — the measuring tool every chapter uses.
//!
//! `burst` fires N one-shot requests at once (the seed's test), `run` applies
//! sustained closed-loop load and reports latency percentiles and the server's
//! queue, `compare` starts two servers in turn and applies the same `run` load
//! to each (plus, on request, loadgen's own null-server as the ceiling),
//! `null-server` answers everything instantly to measure loadgen's own
//! ceiling on this machine, `gen` writes the reference dataset (JSONL or
//! line protocol) that the storage and query chapters measure on. `--format` picks the body's wire format (JSON,
//! NDJSON, InfluxDB line protocol, Prometheus remote_write) and `--gzip`
//! compresses it.
//!
//! `send` replays such a dataset file over HTTP and measures what the
//! server *stores*: the file is cut into bodies of `--batch` lines before the
//! clock starts, `-c` keep-alive connections POST them in file order (lp →
//! `/write?precision=…`, the unit detected from the timestamps; ndjson →
//! `/metrics`), 503s are retried and counted, and after the last answer the
//! `/health` queue is watched until it is empty. The report gives accepted
//! samples/s (over the sending time) and stored samples/s (over sending plus
//! catch-up):
//!
//! ```text
//! loadgen gen --format lp -o /tmp/ds/data.lp
//! loadgen send --file /tmp/ds/data.lp --url http://127.0.0.1:8080 -c 4 --batch 10000
//! ```
//!
//! `alert-latency` times alert notifications end to end (sample accepted →
//! notification at a local webhook receiver, or in the server's stdout), and
//! `gen-rules` writes the rule files it and the 10,000-rule run use (docs
//! chapter 5). `exporters` serves a fleet of fake Prometheus targets for
//! the scraping benchmark (docs chapter 1).
//!
//! This file is the command line only: it parses and validates arguments
//! (bad values are rejected with the value named), builds one multi-threaded
//! tokio runtime — so loadgen uses every core and is not the bottleneck — and
//! hands off to the module for the subcommand.

mod alert_latency;
mod body;
mod burst;
mod client;
mod compare;
// `gen` is a reserved word in Rust 2024, hence the path attribute.
#[path = "gen.rs"]
mod dataset_gen;
mod exporters;
mod gen_rules;
mod generator;
mod health;
mod null_server;
mod replay_file;
mod report;
mod run;
mod send;
mod send_report;
mod stats;
mod target;

use common::duration::{parse_duration, parse_positive_duration};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::body::{BodyFormat, BodySpec};
use crate::burst::BurstConfig;
use crate::compare::{CompareConfig, Contender};
use crate::replay_file::{Precision, Prepared, ReadOptions, SendFormat};
use crate::report::{LoadShape, Report};
use crate::run::RunConfig;
use crate::send::SendConfig;
use crate::send_report::{SendReport, SendShape};
use crate::target::Target;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator for the Systems Craft monitoring servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// N concurrent one-shot POSTs, each on a new connection, all started at once.
    Burst(BurstArgs),
    /// Sustained closed-loop load: C workers sending back to back for a duration.
    Run(RunArgs),
    /// Start a baseline and a candidate server in turn and apply the same `run` load to each.
    Compare(CompareArgs),
    /// A do-nothing HTTP server answering 202 to everything: loadgen's ceiling.
    NullServer(NullServerArgs),
    /// Write the reference dataset (default 1,000 series x 24 h at 10 s) as JSONL or line protocol.
    Gen(dataset_gen::GenArgs),
    /// Replay a dataset file (from `gen`) over HTTP; report accepted and stored samples/s.
    #[command(long_about = SEND_ABOUT)]
    Send(SendArgs),
    /// Detection latency: 202 for a threshold-crossing sample → notification at the receiver.
    #[command(long_about = ALERT_LATENCY_ABOUT)]
    AlertLatency(AlertLatencyArgs),
    /// Write alerting rule files: one rule per probe metric, or N rules over `run`'s series.
    GenRules(gen_rules::GenRulesArgs),
    /// A fleet of fake exporters: N targets on N ports, M series each, scrapes counted.
    #[command(long_about = EXPORTERS_ABOUT)]
    Exporters(exporters::ExportersArgs),
}

const EXPORTERS_ABOUT: &str = "\
A fleet of fake Prometheus exporters in one process, for measuring scrapers.

--targets ports are bound on --host (any free ones); each answers GET /metrics
with --series series in the text format 0.0.4 (counters, gauges and classic
histograms with HELP/TYPE lines; values change every scrape). --file-sd writes
the targets as file_sd JSON, --static-config as a `scrape_configs:` section of
prometheus.yml. GET /scrapes on the control port answers the pages served per
target. The fleet runs until killed; it prints `control listening on ADDR`
once every target is bound and the files are written.

Example:
  loadgen exporters --targets 1000 --series 1000 --static-config /tmp/fleet.yml";

const ALERT_LATENCY_ABOUT: &str = "\
Measure alert detection latency end to end: from the 202 answering a sample
that crosses a threshold to the notification reaching the receiver.

Probe i POSTs {\"name\":\"<prefix><i>\",\"value\":<value>} to /metrics every
--every; the server needs one rule per probe metric (loadgen gen-rules --shape
probes). Notifications are watched by a local webhook receiver (--watch
webhook, on 127.0.0.1:--receiver-port; generic JSON or Alertmanager payloads)
or in the stdout of a server loadgen starts (--watch stdout: the seed's console
block, phase0's only channel). Reported: p50/p90/p99/max of (first arrival −
202 read), probes never notified within --timeout (exit status 1), repeated
notifications.

Examples:
  loadgen gen-rules --shape probes --count 100 --format json -o /tmp/probes.json
  loadgen alert-latency --watch stdout --probes 100 \\
    --server 'platform --port {port} --alerting phase0 --rules /tmp/probes.json --data-dir /tmp/p0'
  loadgen alert-latency --watch webhook --receiver-port 19094 --probes 100 \\
    --server 'platform --port {port} --rules /tmp/probes.json --alertmanager-config am.yml --data-dir /tmp/c5'";

#[derive(Args, Debug)]
struct AlertLatencyArgs {
    /// A running server, e.g. http://127.0.0.1:8080 (with --watch webhook).
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    url: Option<String>,
    /// Command starting the server; {port} is replaced by a free port. Split
    /// like a shell would split it, but no shell runs.
    #[arg(long, value_name = "COMMAND")]
    server: Option<String>,
    /// Where notifications are watched.
    #[arg(long, value_enum, default_value_t = alert_latency::Watch::Webhook)]
    watch: alert_latency::Watch,
    /// Port of the webhook receiver on 127.0.0.1 (0: any free port, printed).
    #[arg(long, default_value_t = 0)]
    receiver_port: u16,
    /// Number of probes (one new alert each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    probes: u32,
    /// Time between probes, e.g. 200ms (open loop).
    #[arg(long, default_value = "200ms", value_parser = parse_positive_duration)]
    every: Duration,
    /// Probe metrics are named <prefix><i>, as `gen-rules --prefix`.
    #[arg(long, default_value = "alert_probe_")]
    prefix: String,
    /// The probe sample's value (must cross the rules' threshold).
    #[arg(long, default_value_t = 100.0)]
    value: f64,
    /// How long to wait for a probe's notification after the last 202.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    timeout: Duration,
    /// How long the started server may take to answer GET /health with 200.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    startup_timeout: Duration,
    /// Append the started server's stderr (and stdout, unless watched) to FILE.
    #[arg(long, value_name = "FILE")]
    server_log: Option<PathBuf>,
    /// Print one JSON object with all figures instead of the text report.
    #[arg(long)]
    json: bool,
}

impl AlertLatencyArgs {
    fn config(&self) -> Result<alert_latency::LatencyConfig> {
        let server = match (&self.url, &self.server) {
            (Some(url), _) => {
                // Checked now, so a typo fails before anything starts.
                crate::target::Target::parse(url, "/metrics")?;
                alert_latency::Server::Url(url.clone())
            }
            (None, Some(command)) => {
                let words = shlex::split(command).ok_or_else(|| {
                    anyhow::anyhow!(
                        "invalid --server '{command}': unbalanced quotes or trailing backslash"
                    )
                })?;
                if !words.iter().any(|w| w.contains(compare::PORT_PLACEHOLDER)) {
                    bail!(
                        "invalid --server '{command}': it must contain {}, which loadgen replaces with a free port",
                        compare::PORT_PLACEHOLDER
                    );
                }
                alert_latency::Server::Command(words)
            }
            (None, None) => bail!("one of --url or --server is required"),
        };
        if !self.value.is_finite() {
            bail!("invalid --value '{}': must be a finite number", self.value);
        }
        if self.prefix.is_empty()
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            || self.prefix.as_bytes()[0].is_ascii_digit()
        {
            bail!(
                "invalid --prefix '{}': probe metrics must be valid metric names",
                self.prefix
            );
        }
        Ok(alert_latency::LatencyConfig {
            server,
            watch: self.watch,
            receiver_port: self.receiver_port,
            probes: self.probes,
            every: self.every,
            prefix: self.prefix.clone(),
            value: self.value,
            timeout: self.timeout,
            startup_timeout: self.startup_timeout,
            server_log: self.server_log.clone(),
        })
    }
}

const SEND_ABOUT: &str = "\
Replay a dataset file over HTTP and measure end-to-end stored throughput.

The file (line protocol or NDJSON, as `loadgen gen` writes it) is read and cut
into bodies of --batch lines before the clock starts, in file order. -c workers,
each on one keep-alive connection, take the next body from a shared index and
POST it: lp to /write?precision=<unit> (the unit detected from the first
timestamp unless --precision or the URL names it), ndjson to /metrics as
application/x-ndjson. A 503 (queue full) is retried after a short backoff, up to
100 tries per body; any other non-2xx answer is an error. After the last answer,
GET /health is polled until queue_size is 0 (unless --no-health).

Reported: lines, samples, requests, retries, errors (with the first answers),
send time, accepted samples/s = samples / send time, stored samples/s =
samples / (send time + catch-up time), latency percentiles per request.

Example:
  loadgen gen --format lp -o /tmp/ds/data.lp
  loadgen send --file /tmp/ds/data.lp --url http://127.0.0.1:8080 -c 4 --batch 10000";

#[derive(Args, Debug)]
struct SendArgs {
    /// The dataset file: line protocol (.lp) or NDJSON (.jsonl, .ndjson).
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
    /// Server URL, e.g. http://127.0.0.1:8080 (a bare host:port gets the format's write path).
    #[arg(long)]
    url: String,
    /// Wire format of the file; default: from its extension.
    #[arg(long, value_enum)]
    format: Option<SendFormat>,
    /// Line protocol: the timestamps' unit; default: detected from the first timestamp.
    #[arg(long, value_enum)]
    precision: Option<Precision>,
    /// Lines per request body.
    #[arg(long, value_name = "LINES", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Concurrent keep-alive connections.
    #[arg(short = 'c', long, default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    connections: u64,
    /// Send only the first N data lines of the file.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Print one JSON object with all figures instead of the text report.
    #[arg(long)]
    json: bool,
    /// Per-request timeout, e.g. 30s, 2m (bare number = seconds).
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    timeout: Duration,
    /// After the last answer, how long to wait for /health's queue_size to reach 0.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Do not poll GET /health (no catch-up time, no stored samples/s).
    #[arg(long)]
    no_health: bool,
}

/// Options shared by `burst`, `run` and `compare`.
#[derive(Args, Debug)]
struct CommonArgs {
    /// Print one JSON object with all figures instead of the text report.
    #[arg(long)]
    json: bool,
    /// Body format. Without a path in the URL (or --path), each has its own write path:
    /// json/ndjson → /metrics, lp → /write?precision=ms, remote-write → /api/v1/write.
    #[arg(long, value_enum, default_value_t = BodyFormat::Json)]
    format: BodyFormat,
    /// Gzip request bodies (Content-Encoding: gzip); not with remote-write.
    #[arg(long)]
    gzip: bool,
    /// Seed of the metric generator; the same seed sends the same metrics.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of distinct hosts (web-01..web-NN) in the generated labels.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    hosts: u32,
    /// Per-request timeout, e.g. 10s, 500ms, 2m (bare number = seconds).
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    timeout: Duration,
    /// After the load, how long to wait for /health's queue_size to reach 0.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Do not poll GET /health (no peak queue size, no catch-up time).
    #[arg(long)]
    no_health: bool,
}

impl CommonArgs {
    fn body(&self) -> Result<BodySpec> {
        BodySpec::new(self.format, self.gzip)
    }

    /// `--url` with the format's default path, checked against the format.
    fn target(&self, url: &str) -> Result<Target> {
        let body = self.body()?;
        let mut target = Target::parse(url, body.format.default_path())?;
        target.write_path = body.finish_path(&target.write_path)?;
        Ok(target)
    }
}

#[derive(Args, Debug)]
struct BurstArgs {
    /// Write URL, e.g. http://127.0.0.1:8080/metrics (a bare http://host:port gets the --format's path).
    #[arg(long)]
    url: String,
    #[command(flatten)]
    common: CommonArgs,
    /// Number of concurrent requests.
    #[arg(short = 'n', long = "requests", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    requests: u64,
}

/// The shape of sustained load, shared by `run` and `compare`.
#[derive(Args, Debug)]
struct LoadArgs {
    /// Concurrent workers (each one client, one connection at a time).
    #[arg(short = 'c', long, default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    connections: u64,
    /// How long to load, e.g. 10s, 500ms, 2m (bare number = seconds).
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_positive_duration)]
    duration: Duration,
    /// Open a new connection for every request and send `Connection: close`.
    #[arg(long)]
    no_keep_alive: bool,
    /// Metrics per request (json: 1 sends an object, N > 1 an array of N).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
    /// Send each request's headers, wait MS milliseconds, then send the body.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    slow_body: Option<u64>,
    /// With --slow-body: only this many connections are slow, the rest send
    /// at full speed, and the report shows the fast clients' figures apart.
    #[arg(long, value_name = "K", requires = "slow_body")]
    slow_clients: Option<u64>,
    /// Stop after this many requests in total (across all workers).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_requests: Option<u64>,
}

impl LoadArgs {
    fn run_config(
        &self,
        common: &CommonArgs,
        target: Target,
        addr: SocketAddr,
    ) -> Result<RunConfig> {
        Ok(RunConfig {
            addr,
            connections: self.connections,
            duration: self.duration,
            keep_alive: !self.no_keep_alive,
            batch: self.batch as usize,
            body: common.body()?,
            slow_body: self.slow_body.map(Duration::from_millis),
            slow_clients: self.slow_clients,
            seed: common.seed,
            hosts: common.hosts as usize,
            timeout: common.timeout,
            max_requests: self.max_requests,
            drain_timeout: (!common.no_health).then_some(common.drain_timeout),
            target,
        })
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Write URL, e.g. http://127.0.0.1:8080/metrics (a bare http://host:port gets the --format's path).
    #[arg(long)]
    url: String,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// Command starting the baseline server; {port} is replaced by a free
    /// port. Split like a shell would split it, but no shell runs.
    #[arg(long, value_name = "COMMAND")]
    baseline: String,
    /// Command starting the candidate server, like --baseline.
    #[arg(long, value_name = "COMMAND")]
    candidate: String,
    /// Also measure loadgen's own null-server, as the machine's ceiling row.
    #[arg(long)]
    null_server: bool,
    /// Write path (and query) on each server; default: the --format's path.
    #[arg(long)]
    path: Option<String>,
    /// How long a server may take to answer GET /health with 200.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    startup_timeout: Duration,
    /// Keep each server's stdout+stderr as DIR/<baseline|candidate|null-server>.log
    /// (default: a temporary directory, kept only when something went wrong).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
struct NullServerArgs {
    /// Port to listen on; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the cause chain; a backtrace helps nobody who
            // mistyped a URL.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<()> {
    let command = match cli.command {
        // Plain file output: no runtime needed.
        Command::Gen(args) => return dataset_gen::run(&args),
        // Reads the file before the runtime (and the clock) starts.
        Command::Send(args) => return send_command(&args),
        Command::GenRules(args) => return gen_rules::run(&args),
        // Its own runtime, sized by --threads: it shares the machine with
        // the scraper it measures.
        Command::Exporters(args) => {
            exporters::check(&args)?;
            return exporters::run(&args);
        }
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        match command {
            // Both return above, before any runtime exists.
            Command::Gen(_) | Command::Send(_) | Command::GenRules(_) | Command::Exporters(_) => {
                bail!("internal: gen/send/gen-rules/exporters return before this runtime")
            }
            Command::AlertLatency(args) => alert_latency_command(&args).await,
            Command::Burst(args) => burst_command(args).await,
            Command::Run(args) => run_command(args).await,
            Command::Compare(args) => compare_command(args).await,
            Command::NullServer(args) => null_server::serve(&args.host, args.port).await,
        }
    })
}

async fn burst_command(args: BurstArgs) -> Result<()> {
    let common = &args.common;
    let target = common.target(&args.url)?;
    let addr = target.resolve().await?;
    let config = BurstConfig {
        addr,
        requests: args.requests,
        body: common.body()?,
        seed: common.seed,
        hosts: common.hosts as usize,
        timeout: common.timeout,
        drain_timeout: (!common.no_health).then_some(common.drain_timeout),
        target,
    };
    let outcome = burst::burst(&config).await?;
    let shape = LoadShape {
        mode: "burst",
        url: config.target.write_url(),
        concurrency: args.requests,
        keep_alive: false,
        batch: 1,
        body: config.body,
        slow_body: None,
    };
    let report = Report::new(&shape, &outcome.tally, outcome.wall_time, outcome.health);
    print_report(&report, common.json);
    Ok(())
}

async fn run_command(args: RunArgs) -> Result<()> {
    let target = args.common.target(&args.url)?;
    let addr = target.resolve().await?;
    let config = args.load.run_config(&args.common, target, addr)?;
    let report = run::run_and_report(&config).await?;
    print_report(&report, args.common.json);
    Ok(())
}

async fn compare_command(args: CompareArgs) -> Result<()> {
    let common = &args.common;
    let body = common.body()?;
    let path = args.path.as_deref().unwrap_or(body.format.default_path());
    if !path.starts_with('/') {
        bail!("invalid --path '{path}': it must start with '/'");
    }
    let path = body.finish_path(path)?;
    let mut contenders = vec![
        Contender::parse("baseline", &args.baseline)?,
        Contender::parse("candidate", &args.candidate)?,
    ];
    if args.null_server {
        contenders.push(Contender::null_server()?);
    }
    // Target and address are set per server; these only check the path.
    let placeholder = Target::parse(&format!("http://127.0.0.1:1{path}"), "/")
        .with_context(|| format!("invalid --path '{path}'"))?;
    let load = args.load.run_config(
        common,
        placeholder,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
    )?;
    let config = CompareConfig {
        contenders,
        path,
        startup_timeout: args.startup_timeout,
        log_dir: args.log_dir,
        load,
    };
    let comparison = compare::compare(&config).await?;
    if common.json {
        println!("{}", comparison.to_json());
    } else {
        print!("{}", comparison.to_text());
    }
    Ok(())
}

async fn alert_latency_command(args: &AlertLatencyArgs) -> Result<()> {
    let config = args.config()?;
    let report = alert_latency::run(&config).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("cannot render the report")?
        );
    } else {
        print!("{}", report.to_text());
    }
    if report.missing > 0 || report.accepted == 0 {
        bail!(
            "{} of {} accepted probes were never notified within --timeout {:?}",
            report.missing,
            report.accepted,
            args.timeout
        );
    }
    Ok(())
}

fn send_command(args: &SendArgs) -> Result<()> {
    let format = SendFormat::resolve(args.format, &args.file)?;
    // The URL is checked before a possibly large file is read.
    let target = Target::parse(&args.url, format.default_path())?;
    let started = std::time::Instant::now();
    let prepared = replay_file::prepare(
        &ReadOptions {
            path: args.file.clone(),
            format,
            batch: usize::try_from(args.batch).context("invalid --batch")?,
            limit: args.limit,
        },
        &target.write_path,
        &target.authority,
        args.precision,
    )?;
    let prepare_time = started.elapsed();
    let url = format!("http://{}{}", target.authority, prepared.summary.write_path);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let Prepared { bodies, summary } = prepared;
    let outcome = runtime.block_on(async {
        let addr = target.resolve().await?;
        let config = SendConfig {
            addr,
            authority: target.authority.clone(),
            connections: usize::try_from(args.connections).context("invalid --connections")?,
            timeout: args.timeout,
            max_tries: send::DEFAULT_MAX_TRIES,
            retry_backoff: send::DEFAULT_RETRY_BACKOFF,
            drain_timeout: (!args.no_health).then_some(args.drain_timeout),
        };
        send::send(&config, std::sync::Arc::new(bodies)).await
    })?;
    let shape = SendShape {
        file: &args.file,
        url,
        format,
        connections: args.connections as usize,
        batch: args.batch as usize,
        prepare_time,
    };
    let report = SendReport::new(&shape, &summary, &outcome);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn print_report(report: &Report, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cli_parses_run_flags() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "run",
            "--url",
            "http://127.0.0.1:8080",
            "--connections",
            "8",
            "--duration",
            "500ms",
            "--no-keep-alive",
            "--batch",
            "10",
            "--slow-body",
            "50",
            "--max-requests",
            "3",
            "--json",
            "--seed",
            "7",
            "--timeout",
            "2s",
        ])
        .expect("valid flags");
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        assert_eq!(args.load.connections, 8);
        assert_eq!(args.load.duration, Duration::from_millis(500));
        assert!(args.load.no_keep_alive);
        assert_eq!(args.load.batch, 10);
        assert_eq!(args.load.slow_body, Some(50));
        assert_eq!(args.load.max_requests, Some(3));
        assert!(args.common.json);
        assert_eq!(args.common.seed, 7);
        assert_eq!(args.common.timeout, Duration::from_secs(2));
    }

    #[test]
    fn cli_parses_compare_and_format_flags() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "compare",
            "--baseline",
            "phase0 {port} --quiet",
            "--candidate",
            "platform --port {port}",
            "-c",
            "4",
            "-d",
            "2s",
            "--batch",
            "100",
            "--format",
            "remote-write",
            "--null-server",
            "--startup-timeout",
            "5s",
            "--path",
            "/api/v1/write",
            "--json",
        ])
        .expect("valid flags");
        let Command::Compare(args) = cli.command else {
            panic!("expected compare");
        };
        assert_eq!(args.baseline, "phase0 {port} --quiet");
        assert_eq!(args.load.connections, 4);
        assert_eq!(args.load.batch, 100);
        assert_eq!(args.common.format, BodyFormat::RemoteWrite);
        assert!(args.null_server);
        assert_eq!(args.startup_timeout, Duration::from_secs(5));
        assert_eq!(args.path.as_deref(), Some("/api/v1/write"));

        for (format, expected) in [
            ("json", BodyFormat::Json),
            ("ndjson", BodyFormat::Ndjson),
            ("lp", BodyFormat::Lp),
        ] {
            let cli = Cli::try_parse_from(["loadgen", "burst", "--url", "h:1", "--format", format])
                .expect(format);
            let Command::Burst(args) = cli.command else {
                panic!("expected burst");
            };
            assert_eq!(args.common.format, expected);
        }
    }

    #[test]
    fn default_paths_follow_the_format() {
        let target = |args: &[&str]| {
            let mut argv = vec!["loadgen", "run"];
            argv.extend_from_slice(args);
            let Command::Run(run) = Cli::try_parse_from(argv).expect("valid").command else {
                panic!("expected run");
            };
            run.common.target(&run.url).map(|t| t.write_path)
        };
        let path = |args: &[&str]| target(args).expect("valid target");
        assert_eq!(path(&["--url", "http://h:1"]), "/metrics");
        assert_eq!(
            path(&["--url", "http://h:1", "--format", "ndjson"]),
            "/metrics"
        );
        assert_eq!(
            path(&["--url", "http://h:1", "--format", "lp"]),
            "/write?precision=ms"
        );
        assert_eq!(
            path(&["--url", "http://h:1/api/v2/write", "--format", "lp"]),
            "/api/v2/write?precision=ms"
        );
        assert_eq!(
            path(&["--url", "http://h:1", "--format", "remote-write"]),
            "/api/v1/write"
        );
        assert_eq!(
            path(&["--url", "http://h:1/custom", "--format", "remote-write"]),
            "/custom"
        );
        let error = target(&["--url", "h:1", "--format", "remote-write", "--gzip"])
            .expect_err("gzip + remote-write")
            .to_string();
        assert!(error.contains("--gzip"), "{error}");
    }

    #[test]
    fn cli_parses_send_flags() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "send",
            "--file",
            "data.txt",
            "--url",
            "http://127.0.0.1:8080",
            "--format",
            "jsonl",
            "--batch",
            "500",
            "-c",
            "8",
            "--limit",
            "1000",
            "--precision",
            "ms",
            "--drain-timeout",
            "5s",
            "--no-health",
            "--json",
        ])
        .expect("valid flags");
        let Command::Send(args) = cli.command else {
            panic!("expected send");
        };
        assert_eq!(args.format, Some(SendFormat::Ndjson));
        assert_eq!(
            (args.batch, args.connections, args.limit),
            (500, 8, Some(1000))
        );
        assert_eq!(args.precision, Some(Precision::Ms));
        assert_eq!(args.drain_timeout, Duration::from_secs(5));
        assert!(args.no_health && args.json);
        let Command::Send(args) =
            Cli::try_parse_from(["loadgen", "send", "--file", "x", "--url", "h:1"])
                .expect("defaults")
                .command
        else {
            panic!("expected send");
        };
        assert_eq!((args.batch, args.connections), (10_000, 4));
        assert_eq!(args.timeout, Duration::from_secs(30));
        assert_eq!(args.drain_timeout, Duration::from_secs(120));
    }

    #[test]
    fn cli_parses_gen_flags() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "gen",
            "--size",
            "small",
            "--seed",
            "7",
            "--hosts",
            "3",
            "--hours",
            "2",
            "--interval",
            "15s",
            "--jitter",
            "200ms",
            "--format",
            "lp",
            "--output",
            "x.lp",
        ])
        .expect("valid flags");
        let Command::Gen(args) = cli.command else {
            panic!("expected gen");
        };
        let spec = args.spec().expect("valid spec");
        assert_eq!(
            (
                spec.seed,
                spec.hosts,
                spec.hours,
                spec.interval_ms,
                spec.jitter_ms
            ),
            (7, 3, 2, 15_000, 200)
        );
        let Command::Gen(args) = Cli::try_parse_from(["loadgen", "gen"])
            .expect("defaults")
            .command
        else {
            panic!("expected gen");
        };
        let spec = args.spec().expect("valid spec");
        assert_eq!(
            (spec.series_count(), spec.samples_per_series()),
            (1_000, 8_640)
        );
    }

    #[test]
    fn bad_gen_values_are_named() {
        for (flag, value) in [
            ("--hosts", "0"),
            ("--hours", "abc"),
            ("--interval", "0"),
            ("--format", "csv"),
            ("--size", "huge"),
            ("--seed", "-1"),
        ] {
            let error = Cli::try_parse_from(["loadgen", "gen", flag, value])
                .expect_err(flag)
                .to_string();
            assert!(error.contains(&format!("'{value}'")), "{flag}: {error}");
        }
        for (flag, value) in [
            ("--jitter", "5s"),
            ("--interval", "1.5ms"),
            ("--start-ms", "-5"),
        ] {
            let argument = format!("{flag}={value}");
            let Command::Gen(args) = Cli::try_parse_from(["loadgen", "gen", &argument])
                .expect("parses")
                .command
            else {
                panic!("expected gen");
            };
            let error = args.spec().expect_err(flag).to_string();
            assert!(error.contains(flag), "{flag}: {error}");
        }
    }

    #[test]
    fn cli_parses_alert_latency_flags() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "alert-latency",
            "--server",
            "platform --port {port} --alerting phase0",
            "--watch",
            "stdout",
            "--probes",
            "20",
            "--every",
            "300ms",
            "--timeout",
            "15s",
        ])
        .expect("valid flags");
        let Command::AlertLatency(args) = cli.command else {
            panic!("expected alert-latency");
        };
        let config = args.config().expect("valid config");
        assert_eq!(config.watch, alert_latency::Watch::Stdout);
        assert_eq!(
            (config.probes, config.every),
            (20, Duration::from_millis(300))
        );
        assert!(
            matches!(&config.server, alert_latency::Server::Command(words) if words[2] == "{port}")
        );

        let parse = |argv: &[&str]| {
            let mut full = vec!["loadgen", "alert-latency"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full)
        };
        assert!(
            parse(&["--probes", "5"]).is_err(),
            "needs --url or --server"
        );
        assert!(parse(&["--url", "h:1", "--server", "x {port}"]).is_err());
        let error = parse(&["--url", "h:1", "--every", "soon"])
            .expect_err("bad")
            .to_string();
        assert!(error.contains("'soon'"), "{error}");
        for (argv, named) in [
            (
                vec!["--server", "platform --port 8080"],
                "'platform --port 8080'",
            ),
            (vec!["--url", "ftp://h:1"], "'ftp://h:1'"),
            (vec!["--url", "h:1", "--prefix", "9x"], "'9x'"),
            (vec!["--url", "h:1", "--value", "NaN"], "'NaN'"),
        ] {
            let Command::AlertLatency(args) = parse(&argv).expect("parses").command else {
                panic!("expected alert-latency");
            };
            let error = args.config().expect_err(named).to_string();
            assert!(error.contains(named), "{error}");
        }
    }

    #[test]
    fn bad_cli_values_are_named() {
        for (flag, value) in [
            ("--duration", "10x"),
            ("--connections", "0"),
            ("--batch", "zero"),
            ("--timeout", "0"),
            ("--format", "xml"),
        ] {
            let error = Cli::try_parse_from(["loadgen", "run", "--url", "http://h", flag, value])
                .expect_err(flag)
                .to_string();
            assert!(error.contains(&format!("'{value}'")), "{flag}: {error}");
        }
    }
}
