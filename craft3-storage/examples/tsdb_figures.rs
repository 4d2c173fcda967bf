//! Chapter 3's end-to-end figures for the whole engine (`Db`), on the
//! reference dataset:
//!
//! 1. append through `MetricStore::append` (WAL + head), time-major in
//!    batches of 1,000 as the storage consumer hands them over;
//! 2. WAL replay: the engine is dropped with everything still in the head
//!    and reopened, so the whole dataset is replayed;
//! 3. persist: the head is cut into 2 h blocks, then compacted; bytes per
//!    sample on disk are the blocks' files (chunks + index + meta.json)
//!    over the samples;
//! 4. query latency, median and p90 of repeated runs: one series over
//!    24 h, and every series of one metric (200) over 24 h — from blocks,
//!    the engine reopened cold so nothing is in the head.
//!
//! ```text
//! cargo run --release -p craft3-storage --example tsdb_figures
//! cargo run --release -p craft3-storage --example tsdb_figures -- --hours 28   # 10.08 M samples
//! ```
//! Flags: `--hosts N` (5 series each), `--hours N`, `--fsync every-batch|never|1s`,
//! `--dir PATH` (default: a temporary directory), `--runs N` (query repeats).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{LabelMatcher, Labels, MatchOp, Metric, MetricStore, TimeRange};
use craft3_storage::db::{Db, DbConfig};
use craft3_storage::wal::{WalConfig, WalFsync};
use fixtures::dataset::{Dataset, DatasetSpec};

struct Options {
    spec: DatasetSpec,
    fsync: WalFsync,
    dir: Option<String>,
    runs: usize,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        spec: DatasetSpec::default(),
        fsync: WalFsync::Never,
        dir: None,
        runs: 50,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value:?}: {e}");
        match flag.as_str() {
            "--hosts" => options.spec.hosts = value.parse().map_err(bad)?,
            "--hours" => options.spec.hours = value.parse().map_err(bad)?,
            "--runs" => options.runs = value.parse().map_err(bad)?,
            "--fsync" => options.fsync = value.parse()?,
            "--dir" => options.dir = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    options.spec.validate().map_err(|e| e.to_string())?;
    Ok(options)
}

fn config(fsync: WalFsync) -> DbConfig {
    DbConfig {
        wal: WalConfig {
            fsync,
            ..WalConfig::default()
        },
        maintenance_interval: None,
        ..DbConfig::default()
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                dir_bytes(&path)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let options = parse()?;
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = options
        .dir
        .as_ref()
        .map_or_else(|| temp.path().to_path_buf(), std::path::PathBuf::from);
    let dataset = Dataset::new(options.spec).map_err(|e| e.to_string())?;
    let series = dataset.series();
    let labels: Vec<Labels> = series
        .iter()
        .map(|info| Labels::from_pairs(info.labels()))
        .collect();
    let total = options.spec.total_samples();
    println!(
        "dataset: {} series x {} samples = {total} samples; WAL fsync {:?}; dir {}",
        series.len(),
        options.spec.samples_per_series(),
        options.fsync,
        dir.display()
    );

    // 1. Append.
    let db = Db::open(&dir, config(options.fsync)).map_err(|e| e.to_string())?;
    let mut batch = Vec::with_capacity(1_000);
    let mut busy = Duration::ZERO;
    for (index, sample) in dataset.rows() {
        batch.push(
            Metric::new(series[index].metric, sample.value, sample.timestamp_ms)
                .with_labels(labels[index].clone()),
        );
        if batch.len() == 1_000 {
            let started = Instant::now();
            MetricStore::append(&db, &batch).map_err(|e| e.to_string())?;
            busy += started.elapsed();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        let started = Instant::now();
        MetricStore::append(&db, &batch).map_err(|e| e.to_string())?;
        busy += started.elapsed();
    }
    println!(
        "append (WAL + head, one thread): {:.2} M samples/s ({busy:.2?} in append); WAL {:.1} MB = {:.2} B/sample",
        total as f64 / busy.as_secs_f64() / 1e6,
        dir_bytes(&dir.join("wal")) as f64 / 1e6,
        dir_bytes(&dir.join("wal")) as f64 / total as f64
    );
    drop(db);

    // 2. Replay.
    let started = Instant::now();
    let db = Db::open(&dir, config(options.fsync)).map_err(|e| e.to_string())?;
    let replay = started.elapsed();
    println!(
        "WAL replay of {} samples: {replay:.2?} ({:.2} M samples/s)",
        db.stats().replay.samples,
        db.stats().replay.samples as f64 / replay.as_secs_f64() / 1e6
    );

    // 3. Persist everything into 2 h blocks, then compact.
    let (min, max) = db.head().time_bounds().ok_or("empty head")?;
    let range = db.config().block_range_ms;
    let started = Instant::now();
    db.persist_before(max + 1).map_err(|e| e.to_string())?;
    let persisted = started.elapsed();
    let started = Instant::now();
    db.maintain().map_err(|e| e.to_string())?;
    let compacted = started.elapsed();
    let stats = db.stats();
    let on_disk = dir_bytes(&dir.join("blocks"));
    println!(
        "persist into {} h blocks: {persisted:.2?}; compaction: {compacted:.2?} -> {} blocks (levels {:?})",
        range / 3_600_000,
        stats.blocks,
        db.blocks()
            .iter()
            .map(|b| b.compaction.level)
            .collect::<Vec<_>>()
    );
    println!(
        "on disk: {on_disk} bytes for {} samples = {:.3} B/sample (chunks + index only: {:.3}); phase0 JSONL ~110",
        stats.block_samples,
        on_disk as f64 / stats.block_samples.max(1) as f64,
        stats.block_bytes as f64 / stats.block_samples.max(1) as f64
    );
    drop(db);

    // 4. Queries, cold from blocks.
    let db = Db::open(&dir, config(options.fsync)).map_err(|e| e.to_string())?;
    let day = TimeRange::new(min, min + 24 * 3_600_000 - 1);
    let one = vec![
        LabelMatcher::metric_name("cpu_usage"),
        LabelMatcher::new("host", MatchOp::Equal, series[0].host.clone())
            .map_err(|e| e.to_string())?,
    ];
    let metric = vec![LabelMatcher::metric_name("cpu_usage")];
    for (what, matchers) in [
        ("one series over 24 h", &one),
        ("every cpu_usage series over 24 h", &metric),
    ] {
        let mut times = Vec::with_capacity(options.runs);
        let mut samples = 0;
        for _ in 0..options.runs {
            let started = Instant::now();
            let got = db.select(matchers, day).map_err(|e| e.to_string())?;
            times.push(started.elapsed());
            samples = got.iter().map(|s| s.samples.len()).sum::<usize>();
        }
        let (p50, p90) = percentiles(times);
        println!(
            "select {what}: {samples} samples, median {p50:.2?}, p90 {p90:.2?} ({} runs)",
            options.runs
        );
    }
    Ok(())
}
