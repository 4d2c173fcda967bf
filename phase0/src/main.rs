//! `cargo run -p phase0 [PORT]`: the seed's system — ingestion on PORT
//! (default 8080), `phase0_metrics.jsonl` in the working directory, three
//! default rules checked every 10 s. Ctrl-C or SIGTERM drains the queue into
//! the file and exits 0.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use common::duration::parse_positive_duration;
use common::{Shutdown, SystemClock};
use pipeline::Pipeline;

/// The naive monitoring platform: ingestion, queue, storage, query and
/// alerting in one process, every bottleneck visible.
#[derive(Debug, Parser)]
#[command(name = "phase0", version, about)]
struct Args {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Directory holding phase0_metrics.jsonl.
    #[arg(long, default_value = ".")]
    data_dir: PathBuf,
    /// How often the alerting engine checks its rules (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    alert_interval: Duration,
    /// A JSON file of rules replacing the three defaults:
    /// [{"metric":"cpu_usage","condition":">","threshold":80,"window_seconds":60}]
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Most metrics the queue holds before POST /metrics answers 503.
    #[arg(long, default_value_t = phase0::queue::DEFAULT_CAPACITY)]
    queue_capacity: usize,
    /// A whole request must arrive within this long, or the client gets 408.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    read_timeout: Duration,
    /// Do not log each storage write (the seed logs them; under load that
    /// is a lot of output).
    #[arg(long)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.queue_capacity == 0 {
        anyhow::bail!("--queue-capacity must be at least 1");
    }
    let rules = match &args.rules {
        Some(path) => common::load_rules(path)?,
        None => phase0::alerting::default_rules(),
    };
    let config = phase0::Config {
        data_dir: args.data_dir.clone(),
        rules,
        alert_interval: args.alert_interval,
        queue_capacity: args.queue_capacity,
        limits: phase0::ingestion::Limits {
            request_timeout: args.read_timeout,
            ..Default::default()
        },
        ..Default::default()
    };

    // Handlers first: a SIGTERM between bind and start must still drain.
    let shutdown = Shutdown::new();
    shutdown
        .trigger_on_signals()
        .context("cannot install signal handlers")?;

    common::say!("=== Systems Craft — Phase 0: a complete monitoring platform, done naively ===");
    let components = phase0::build(config, Arc::new(SystemClock))
        .with_context(|| format!("cannot use data directory {}", args.data_dir.display()))?;
    let address = format!("{}:{}", args.host, args.port);
    let listener =
        TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;

    let running = Pipeline::start_with_shutdown(
        components,
        listener,
        phase0::seed_pipeline_options(!args.quiet),
        shutdown,
    )?;
    let report = running.run_until_shutdown()?;
    common::say!(
        "[Shutdown] Queue drained: {} metrics stored this run, {} left. Bye.",
        report.stored,
        report.left_in_queue
    );
    Ok(())
}
