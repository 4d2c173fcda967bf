//! `craft2-log`: look inside a log directory, or write into one.
//!
//! - `dump DIR` prints every partition's segments and records;
//! - `verify DIR` reads everything and reports damaged records (exit 1 if
//!   any);
//! - `append DIR --count N` appends N generated metrics in batches and
//!   prints `acked <last seq>` after each batch returns — the child process
//!   the crash test kills mid-load.
//!
//! Story: docs chapter 2, "Looking inside".

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::{Labels, Metric};
use craft2_queue::{FsyncPolicy, Log, LogConfig};

#[derive(Parser)]
#[command(about = "Inspect, verify or write a craft 2 log directory")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print partitions, segments and records.
    Dump {
        /// The log directory.
        dir: PathBuf,
        /// Partitions the log was created with.
        #[arg(long, default_value_t = 4)]
        partitions: u32,
        /// Print at most this many records per partition.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Read every record; report damaged ones (exit status 1 if any).
    Verify {
        /// The log directory.
        dir: PathBuf,
        /// Partitions the log was created with.
        #[arg(long, default_value_t = 4)]
        partitions: u32,
    },
    /// Append generated metrics, printing `acked <seq>` after each batch.
    Append {
        /// The log directory.
        dir: PathBuf,
        /// Partitions.
        #[arg(long, default_value_t = 4)]
        partitions: u32,
        /// Metrics to append (seq 0..count).
        #[arg(long)]
        count: u64,
        /// Metrics per append.
        #[arg(long, default_value_t = 10)]
        batch: u64,
        /// every-batch, never, or a group-commit interval (10ms).
        #[arg(long, default_value = "every-batch")]
        fsync: FsyncPolicy,
        /// Segment size in bytes (small values exercise rolling).
        #[arg(long, default_value_t = 64 * 1024 * 1024)]
        segment_bytes: u64,
    },
}

fn config(dir: PathBuf, partitions: u32) -> LogConfig {
    LogConfig {
        partitions,
        ..LogConfig::new(dir)
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Dump {
            dir,
            partitions,
            limit,
        } => {
            let (log, report) = Log::open(config(dir.clone(), partitions))
                .with_context(|| format!("opening {}", dir.display()))?;
            println!("recovery: {report:?}");
            let usage = log.disk_usage();
            for (p, (start, end)) in log.offsets().into_iter().enumerate() {
                let (segments, bytes) = usage[p];
                println!(
                    "partition {p}: offsets {start}..{end}, {segments} segments, {bytes} bytes"
                );
                let batch = log.read(p as u32, start, limit)?;
                for (offset, metric) in batch.records {
                    println!(
                        "  {offset:>10}  {} {} {} {}",
                        metric.name, metric.labels, metric.value, metric.timestamp_ms
                    );
                }
            }
            log.shutdown()?;
        }
        Command::Verify { dir, partitions } => {
            let (log, _) = Log::open(config(dir.clone(), partitions))
                .with_context(|| format!("opening {}", dir.display()))?;
            let mut records = 0u64;
            for (p, (start, end)) in log.offsets().into_iter().enumerate() {
                let mut at = start;
                while at < end {
                    let batch = log.read(p as u32, at, 10_000)?;
                    records += batch.records.len() as u64;
                    at = batch.next_offset.max(at + 1);
                }
            }
            let damaged = log.corruptions();
            println!("{records} records readable, {} damaged", damaged.len());
            log.shutdown()?;
            if !damaged.is_empty() {
                std::process::exit(1);
            }
        }
        Command::Append {
            dir,
            partitions,
            count,
            batch,
            fsync,
            segment_bytes,
        } => {
            let (log, _) = Log::open(LogConfig {
                fsync,
                segment_bytes,
                ..config(dir.clone(), partitions)
            })
            .with_context(|| format!("opening {}", dir.display()))?;
            let mut out = std::io::stdout().lock();
            let mut seq = 0u64;
            while seq < count {
                let n = batch.min(count - seq).max(1);
                let metrics: Vec<Metric> = (seq..seq + n)
                    .map(|i| {
                        Metric::new("crash_seq", i as f64, 1_700_000_000_000 + i as i64)
                            .with_labels(Labels::from_pairs([("series", format!("s{}", i % 16))]))
                    })
                    .collect();
                log.append(&metrics)?;
                seq += n;
                writeln!(out, "acked {}", seq - 1)?;
                out.flush()?;
            }
            log.shutdown()?;
        }
    }
    Ok(())
}
