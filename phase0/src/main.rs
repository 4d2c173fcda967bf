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
use common::{Pipeline, Shutdown, SystemClock};

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
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    alert_interval: Duration,
    /// A JSON file of rules replacing the three defaults:
    /// [{"metric":"cpu_usage","condition":">","threshold":80,"window_seconds":60}]
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Most metrics the queue holds before POST /metrics answers 503.
    #[arg(long, default_value_t = phase0::queue::DEFAULT_CAPACITY)]
    queue_capacity: usize,
    /// A whole request must arrive within this long, or the client gets 408.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    read_timeout: Duration,
    /// Do not log each storage write (the seed logs them; under load that
    /// is a lot of output).
    #[arg(long)]
    quiet: bool,
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 10s, 500ms, 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    let duration =
        Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {text:?}"))?;
    if duration.is_zero() {
        return Err(format!("duration {text:?} must be greater than zero"));
    }
    Ok(duration)
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

    println!("=== Systems Craft — Phase 0: a complete monitoring platform, done naively ===");
    let components = phase0::build(config, Arc::new(SystemClock))
        .with_context(|| format!("cannot use data directory {}", args.data_dir.display()))?;
    let address = format!("{}:{}", args.host, args.port);
    let listener =
        TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;

    let running = Pipeline::start(
        components,
        listener,
        phase0::seed_pipeline_options(!args.quiet),
    )?;
    let shutdown: Shutdown = running.shutdown_signal();
    shutdown
        .trigger_on_signals()
        .context("cannot install signal handlers")?;
    let report = running.run_until_shutdown()?;
    println!(
        "[Shutdown] Queue drained: {} metrics stored this run, {} left. Bye.",
        report.stored, report.left_in_queue
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("abc").unwrap_err().contains("\"abc\""));
        assert!(parse_duration("5y").unwrap_err().contains("\"y\""));
        assert!(parse_duration("0s").is_err());
    }
}
