//! `craft3-tsdb`: look inside a craft 3 storage directory, or write into
//! one.
//!
//! - `inspect DIR` opens the engine (replaying the WAL) and prints its
//!   blocks — range, level, series, samples, bytes per sample — and the
//!   head;
//! - `ingest DIR --series N --batches N` appends one sample per series per
//!   batch (timestamps 10 s apart, value = batch number) with persistence
//!   and compaction running in the background every millisecond, printing
//!   `acked <batch>` after each append returns — the child process the
//!   crash tests kill with SIGKILL.
//!
//! Story: docs chapter 3, "Looking inside".

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::{Labels, Metric};
use craft3_storage::db::{Db, DbConfig};
use craft3_storage::wal::{WalConfig, WalFsync};

#[derive(Parser)]
#[command(about = "Inspect or write a craft 3 storage directory")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print blocks, head and WAL replay figures.
    Inspect {
        /// The storage directory (`<data-dir>/tsdb` for `platform`).
        dir: PathBuf,
    },
    /// Append generated samples, printing `acked <batch>` after each.
    Ingest {
        /// The storage directory.
        dir: PathBuf,
        /// Series per batch (`load{series="<i>"}`).
        #[arg(long, default_value_t = 20)]
        series: u32,
        /// First batch number (to continue after a kill).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Batches to append.
        #[arg(long)]
        batches: u64,
        /// Block range in ms (small, so blocks are cut and compacted all
        /// the time).
        #[arg(long, default_value_t = 60_000)]
        block_range_ms: i64,
        /// WAL fsync policy.
        #[arg(long, default_value = "never")]
        fsync: WalFsync,
        /// Pause between batches, in microseconds, so the background
        /// thread's persist and compaction keep pace with the appends.
        #[arg(long, default_value_t = 0)]
        pause_us: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Inspect { dir } => inspect(&dir),
        Command::Ingest {
            dir,
            series,
            from,
            batches,
            block_range_ms,
            fsync,
            pause_us,
        } => ingest(&dir, series, from, batches, block_range_ms, fsync, pause_us),
    }
}

fn inspect(dir: &std::path::Path) -> anyhow::Result<()> {
    let config = DbConfig {
        maintenance_interval: None,
        ..DbConfig::default()
    };
    let db = Db::open(dir, config).with_context(|| format!("cannot open {}", dir.display()))?;
    let stats = db.stats();
    println!(
        "WAL replay: {} files, {} records, {} samples, {} damaged records, {} bytes lost",
        stats.replay.files,
        stats.replay.records,
        stats.replay.samples,
        stats.replay.corrupt_records,
        stats.replay.lost_bytes
    );
    for line in &stats.replay.damage {
        println!("  damage: {line}");
    }
    println!(
        "{:<18} {:>15} {:>15} {:>5} {:>8} {:>10} {:>10} {:>7}",
        "block", "min_time", "max_time", "level", "series", "samples", "bytes", "B/smp"
    );
    for meta in db.blocks() {
        let per_sample = if meta.stats.samples == 0 {
            0.0
        } else {
            meta.stats.bytes as f64 / meta.stats.samples as f64
        };
        println!(
            "{:<18} {:>15} {:>15} {:>5} {:>8} {:>10} {:>10} {:>7.3}",
            meta.id,
            meta.min_time,
            meta.max_time,
            meta.compaction.level,
            meta.stats.series,
            meta.stats.samples,
            meta.stats.bytes,
            per_sample
        );
    }
    println!(
        "blocks: {} with {} samples in {} bytes; head: {} series, {} samples, time range {:?}",
        stats.blocks,
        stats.block_samples,
        stats.block_bytes,
        stats.head_series,
        db.head().sample_count(),
        db.head().time_bounds()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn ingest(
    dir: &std::path::Path,
    series: u32,
    from: u64,
    batches: u64,
    block_range_ms: i64,
    fsync: WalFsync,
    pause_us: u64,
) -> anyhow::Result<()> {
    let config = DbConfig {
        wal: WalConfig {
            fsync,
            segment_bytes: 64 << 10,
        },
        block_range_ms,
        compaction_ranges_ms: vec![block_range_ms * 3, block_range_ms * 9],
        maintenance_interval: Some(Duration::from_millis(1)),
        ..DbConfig::default()
    };
    let db = Db::open(dir, config).with_context(|| format!("cannot open {}", dir.display()))?;
    let labels: Vec<Labels> = (0..series)
        .map(|i| Labels::from_pairs([("series", i.to_string())]))
        .collect();
    let mut out = std::io::stdout().lock();
    for batch in from..from + batches {
        let timestamp = i64::try_from(batch)?.saturating_mul(10_000);
        let metrics: Vec<Metric> = labels
            .iter()
            .map(|l| Metric::new("load", batch as f64, timestamp).with_labels(l.clone()))
            .collect();
        db.append(&metrics)?;
        writeln!(out, "acked {batch}")?;
        out.flush()?;
        if pause_us > 0 {
            std::thread::sleep(Duration::from_micros(pause_us));
        }
    }
    if let Some(error) = db.last_error() {
        anyhow::bail!("background maintenance failed: {error}");
    }
    Ok(())
}
