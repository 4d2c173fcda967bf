//! loadgen — the measuring tool every chapter uses.
//!
//! `burst` fires N one-shot requests at once (the seed's test), `run` applies
//! sustained closed-loop load and reports latency percentiles and the server's
//! queue, `null-server` answers everything instantly to measure loadgen's own
//! ceiling on this machine.
//!
//! This file is the command line only: it parses and validates arguments
//! (bad values are rejected with the value named), builds one multi-threaded
//! tokio runtime — so loadgen uses every core and is not the bottleneck — and
//! hands off to the module for the subcommand.

mod burst;
mod client;
mod generator;
mod health;
mod null_server;
mod report;
mod run;
mod stats;
mod target;

use common::duration::{parse_duration, parse_positive_duration};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::burst::BurstConfig;
use crate::report::{LoadShape, Report};
use crate::run::RunConfig;
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
    /// A do-nothing HTTP server answering 202 to everything: loadgen's ceiling.
    NullServer(NullServerArgs),
}

/// Options shared by `burst` and `run`.
#[derive(Args, Debug)]
struct CommonArgs {
    /// Write URL, e.g. http://127.0.0.1:8080/metrics (a bare http://host:port gets /metrics).
    #[arg(long)]
    url: String,
    /// Print one JSON object with all figures instead of the text report.
    #[arg(long)]
    json: bool,
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

#[derive(Args, Debug)]
struct BurstArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Number of concurrent requests.
    #[arg(short = 'n', long = "requests", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    requests: u64,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
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
    /// Metrics per request: 1 sends a JSON object, N > 1 a JSON array of N.
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Burst(args) => burst_command(args).await,
            Command::Run(args) => run_command(args).await,
            Command::NullServer(args) => null_server::serve(&args.host, args.port).await,
        }
    })
}

async fn burst_command(args: BurstArgs) -> Result<()> {
    let common = &args.common;
    let target = Target::parse(&common.url)?;
    let addr = target.resolve().await?;
    let config = BurstConfig {
        addr,
        requests: args.requests,
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
        slow_body: None,
    };
    let report = Report::new(&shape, &outcome.tally, outcome.wall_time, outcome.health);
    print_report(&report, common.json);
    Ok(())
}

async fn run_command(args: RunArgs) -> Result<()> {
    let common = &args.common;
    let target = Target::parse(&common.url)?;
    let addr = target.resolve().await?;
    let config = RunConfig {
        addr,
        connections: args.connections,
        duration: args.duration,
        keep_alive: !args.no_keep_alive,
        batch: args.batch as usize,
        slow_body: args.slow_body.map(Duration::from_millis),
        slow_clients: args.slow_clients,
        seed: common.seed,
        hosts: common.hosts as usize,
        timeout: common.timeout,
        max_requests: args.max_requests,
        drain_timeout: (!common.no_health).then_some(common.drain_timeout),
        target,
    };
    let outcome = run::run(&config).await?;
    let shape = LoadShape {
        mode: "run",
        url: config.target.write_url(),
        concurrency: config.connections,
        keep_alive: config.keep_alive,
        batch: u64::from(args.batch),
        slow_body: config.slow_body,
    };
    let mut report = Report::new(&shape, &outcome.tally, outcome.elapsed, outcome.health);
    if let Some((clients, fast)) = &outcome.fast_tally {
        report.add_fast_clients(*clients, fast, outcome.elapsed);
    }
    print_report(&report, common.json);
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
        assert_eq!(args.connections, 8);
        assert_eq!(args.duration, Duration::from_millis(500));
        assert!(args.no_keep_alive);
        assert_eq!(args.batch, 10);
        assert_eq!(args.slow_body, Some(50));
        assert_eq!(args.max_requests, Some(3));
        assert!(args.common.json);
        assert_eq!(args.common.seed, 7);
        assert_eq!(args.common.timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_cli_values_are_named() {
        for (flag, value) in [
            ("--duration", "10x"),
            ("--connections", "0"),
            ("--batch", "zero"),
            ("--timeout", "0"),
        ] {
            let error = Cli::try_parse_from(["loadgen", "run", "--url", "http://h", flag, value])
                .expect_err(flag)
                .to_string();
            assert!(error.contains(&format!("'{value}'")), "{flag}: {error}");
        }
    }
}
